// fsync_trace.c: an LD_PRELOAD shim for the durability test. Logs every fsync (with the
// path of its descriptor) and rename to the file named by $FSYNC_TRACE, one line each:
//   fsync PATH
//   rename FROM TO
// then calls the real function. Lets tests/integration/durable_order.sh check the order
// the durable-write path promises: fsync(temp) before rename(temp, target), then fsync of
// the directory.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void trace(const char *line) {
    const char *path = getenv("FSYNC_TRACE");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return;
    ssize_t n = write(fd, line, strlen(line));
    (void)n;
    close(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    char link[64], target[4096] = "?", line[4200];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) target[n] = 0;
    snprintf(line, sizeof line, "fsync %s\n", target);
    trace(line);
    return real(fd);
}

int rename(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    char line[8300];
    snprintf(line, sizeof line, "rename %s %s\n", from, to);
    trace(line);
    return real(from, to);
}
