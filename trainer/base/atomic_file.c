// atomic_file.c: see atomic_file.h.
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static int fail(AtomicFile *f, const char *what, int err) {
    snprintf(f->err, sizeof f->err, "%s: %s failed (%s)", f->tmp, what, strerror(err));
    af_abort(f);
    return -1;
}

void af_abort(AtomicFile *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->open) unlink(f->tmp);
    f->open = 0;
    free(f->buf);
    f->buf = NULL;
}

int af_open(AtomicFile *f, const char *path, int unique_tmp, size_t buf_bytes) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    int n = snprintf(f->path, sizeof f->path, "%s", path);
    int m = unique_tmp ? snprintf(f->tmp, sizeof f->tmp, "%s.tmp.%d", path, (int)getpid())
                       : snprintf(f->tmp, sizeof f->tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof f->path || m < 0 || (size_t)m >= sizeof f->tmp) {
        snprintf(f->err, sizeof f->err, "%.200s...: path too long", path);
        return -1;
    }
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (f->fd < 0) {
        snprintf(f->err, sizeof f->err, "%s: cannot create (%s)", f->tmp, strerror(errno));
        return -1;
    }
    f->open = 1;
    if (buf_bytes) f->buf = xmalloc(buf_bytes), f->cap = buf_bytes;
    return 0;
}

// write(2) all of it, with the tests' injected faults.
static int write_raw(AtomicFile *f, const char *p, size_t n) {
    while (n > 0) {
        size_t chunk = n;
        if (f->fault_mode && f->written + chunk > f->fault_after) {
            chunk = f->fault_after > f->written ? f->fault_after - f->written : 0;
            if (chunk == 0) {
                if (f->fault_mode == AF_FAULT_KILL) raise(SIGKILL);
                int e = f->fault_mode == AF_FAULT_EIO ? EIO : ENOSPC;
                fail(f, "write", e);
                size_t len = strlen(f->err);
                snprintf(f->err + len, sizeof f->err - len, " [injected]");
                return -1;
            }
        }
        ssize_t w = write(f->fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return fail(f, "write", w < 0 ? errno : ENOSPC);
        p += w, n -= (size_t)w, f->written += (size_t)w;
    }
    return 0;
}

static int flush(AtomicFile *f) {
    if (!f->buf || f->len == 0) return 0;
    size_t n = f->len;
    f->len = 0;
    return write_raw(f, f->buf, n);
}

int af_write(AtomicFile *f, const void *data, size_t n) {
    if (!f->open || f->fd < 0) return -1;
    if (!f->buf) return write_raw(f, data, n);
    if (f->len + n > f->cap && flush(f) != 0) return -1;
    if (n >= f->cap) return write_raw(f, data, n);
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return 0;
}

int af_pwrite(AtomicFile *f, const void *data, size_t n, off_t off) {
    if (!f->open || f->fd < 0 || flush(f) != 0) return -1;
    const char *p = data;
    while (n > 0) {
        ssize_t w = pwrite(f->fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return fail(f, "write", w < 0 ? errno : ENOSPC);
        p += w, n -= (size_t)w, off += w;
    }
    return 0;
}

int af_sync(AtomicFile *f) {
    if (!f->open || f->fd < 0 || flush(f) != 0) return -1;
    if (fsync(f->fd) != 0) return fail(f, "fsync", errno);
    int rc = close(f->fd);
    f->fd = -1;
    if (rc != 0) return fail(f, "close", errno);
    free(f->buf);
    f->buf = NULL;
    return 0;
}

int af_publish(AtomicFile *f) {
    if (!f->open || f->fd >= 0) return -1;
    if (rename(f->tmp, f->path) != 0) {
        int e = errno;
        snprintf(f->err, sizeof f->err, "%s: rename to %s failed (%s)", f->tmp, f->path,
                 strerror(e));
        af_abort(f);
        return -1;
    }
    f->open = 0;
    if (fsync_dir_of(f->path) != 0) {
        // The file is complete under its name; only its durability is in doubt.
        snprintf(f->err, sizeof f->err, "%s: fsync of the directory failed (%s)", f->path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

int af_commit(AtomicFile *f) {
    return af_sync(f) != 0 ? -1 : af_publish(f);
}
