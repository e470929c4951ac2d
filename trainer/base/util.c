// util.c: see util.h.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "util.h"

#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void default_abort(int status) {
    exit(status);
}

// ---------------------------------------------------------------- cleanup on errors

#define MAX_CLEANUPS 16
static struct {
    char dir[1024], suffix[32];
    int whole_dir, used;
} g_cleanup[MAX_CLEANUPS];

int remove_matching(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    size_t sl = suffix ? strlen(suffix) : 0;
    struct dirent *e;
    char path[1400];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        size_t nl = strlen(e->d_name);
        if (suffix && (nl < sl || strcmp(e->d_name + nl - sl, suffix) != 0)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        removed += unlink(path) == 0;
    }
    closedir(d);
    if (!suffix) rmdir(dir);
    return removed;
}

static void run_cleanups(void) {
    for (int i = 0; i < MAX_CLEANUPS; i++)
        if (g_cleanup[i].used) {
            g_cleanup[i].used = 0;
            remove_matching(g_cleanup[i].dir, g_cleanup[i].whole_dir ? NULL : g_cleanup[i].suffix);
        }
}

void cleanup_register(const char *dir, const char *suffix) {
    static int at_exit = 0;
    if (!at_exit) at_exit = atexit(run_cleanups) == 0;
    for (int i = 0; i < MAX_CLEANUPS; i++)
        if (!g_cleanup[i].used) {
            snprintf(g_cleanup[i].dir, sizeof g_cleanup[i].dir, "%s", dir);
            snprintf(g_cleanup[i].suffix, sizeof g_cleanup[i].suffix, "%s", suffix ? suffix : "");
            g_cleanup[i].whole_dir = suffix == NULL;
            g_cleanup[i].used = 1;
            return;
        }
    fatal("cleanup_register: more than %d at once (internal)", MAX_CLEANUPS);
}

void cleanup_unregister(const char *dir, const char *suffix) {
    for (int i = 0; i < MAX_CLEANUPS; i++)
        if (g_cleanup[i].used && strcmp(g_cleanup[i].dir, dir) == 0 &&
            g_cleanup[i].whole_dir == (suffix == NULL) &&
            strcmp(g_cleanup[i].suffix, suffix ? suffix : "") == 0)
            g_cleanup[i].used = 0;
}
static abort_hook_fn g_abort_hook = default_abort;
static char g_prefix[64] = "";

static void (*g_quiesce_hook)(void) = NULL;
void set_quiesce_hook(void (*hook)(void)) {
    g_quiesce_hook = hook;
}
void set_abort_hook(abort_hook_fn hook) {
    g_abort_hook = hook ? hook : default_abort;
}
void set_log_prefix(const char *prefix) {
    snprintf(g_prefix, sizeof g_prefix, "%s", prefix);
}
const char *log_prefix(void) {
    return g_prefix;
}

static void vmessage(const char *kind, const char *fmt, va_list ap) {
    char line[4096];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "%s%s%s\n", g_prefix, kind, line);
    fflush(stderr);
}

// After the message: stdout flushed, the other ranks stopped (quiesce hook), cleanups run (partial files removed), the abort hook
// (which ends every rank under MPI), then exit.
static _Noreturn void fatal_exit(int status) {
    fflush(stdout);
    if (g_quiesce_hook) g_quiesce_hook();
    run_cleanups();
    g_abort_hook(status);
    exit(status);
}

_Noreturn void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage("error: ", fmt, ap);
    va_end(ap);
    fatal_exit(EXIT_FATAL);
}

_Noreturn void fatal_status(int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage("error: ", fmt, ap);
    va_end(ap);
    fatal_exit(status);
}

void warnf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning: ", fmt, ap);
    va_end(ap);
}

void *malloc_check(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) fatal("out of memory allocating %zu bytes at %s:%d", size, file, line);
    return p;
}

void *calloc_check(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) fatal("out of memory allocating %zu x %zu bytes at %s:%d", n, size, file, line);
    return p;
}

void *realloc_check(void *p, size_t size, const char *file, int line) {
    void *q = realloc(p, size ? size : 1);
    if (!q) fatal("out of memory reallocating %zu bytes at %s:%d", size, file, line);
    return q;
}

void *aligned_alloc_check(size_t size, const char *file, int line) {
    size_t rounded = (size + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) fatal("out of memory allocating %zu aligned bytes at %s:%d", size, file, line);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

FILE *fopen_check(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f)
        fatal("%s: cannot open (%s) for %s [%s:%d]", path, strerror(errno),
              mode[0] == 'r' ? "reading" : "writing", file, line);
    return f;
}

void fread_check(void *dst, size_t size, FILE *f, const char *path, const char *file, int line) {
    if (size && fread(dst, 1, size, f) != size) {
        if (feof(f)) fatal("%s: file ends early (truncated?) [%s:%d]", path, file, line);
        fatal("%s: read error (%s) [%s:%d]", path, strerror(errno), file, line);
    }
}

void fwrite_check(const void *src, size_t size, FILE *f, const char *path, const char *file,
                  int line) {
    if (size && fwrite(src, 1, size, f) != size)
        fatal("%s: write error (%s) [%s:%d]", path, strerror(errno), file, line);
}

void fclose_check(FILE *f, const char *path, const char *file, int line) {
    if (fclose(f) != 0) fatal("%s: close failed (%s) [%s:%d]", path, strerror(errno), file, line);
}

char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[len] = 0;
    if (size) *size = len;
    return buf;
}

int fsync_dir_of(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int write_file_atomic(const char *path, const void *data, size_t size, char *err, size_t errlen) {
    AtomicFile f;
    int rc = af_open(&f, path, 1, 0);
    if (rc == 0) rc = af_write(&f, data, size);
    if (rc == 0) rc = af_commit(&f);
    if (rc != 0) snprintf(err, errlen, "%s", f.err);
    return rc;
}

int mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t n = strlen(tmp);
    if (n == 0) return 0;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

int path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void str_copy(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) fatal("string too long (%zu bytes, limit %zu): \"%.40s...\"", n, cap - 1, src);
    memcpy(dst, src, n + 1);
}

void str_visible(char *dst, size_t cap, const char *src) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p && o + 5 < cap; p++) {
        if (*p >= 0x20 && *p != 0x7f)
            dst[o++] = (char)*p;
        else if (*p == '\r' || *p == '\n' || *p == '\t')
            dst[o++] = '\\', dst[o++] = *p == '\r' ? 'r' : *p == '\n' ? 'n' : 't';
        else
            o += (size_t)snprintf(dst + o, cap - o, "\\x%02x", *p);
    }
    if (cap) dst[o < cap ? o : cap - 1] = 0;
}

char *str_dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

void sb_append(StrBuf *sb, const char *s, size_t n) {
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (cap < sb->len + n + 1) cap *= 2;
        sb->data = xrealloc(sb->data, cap);
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = 0;
}

void sb_appendf(StrBuf *sb, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        sb_append(sb, small, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_append(sb, big, (size_t)n);
    free(big);
}

void sb_free(StrBuf *sb) {
    free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
}

size_t peak_rss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;
}
