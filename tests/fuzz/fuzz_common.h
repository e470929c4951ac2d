// fuzz_common.h: shared by the libFuzzer harnesses of tests/fuzz/ (built with clang
// -fsanitize=fuzzer,address,undefined by tests/fuzz/run.sh; see README "Fuzzing").
//
// The readers take file paths, so each input is written to an in-memory file (memfd) and
// read back through /proc/self/fd/N: no disk traffic per execution. A fatal() reached from
// bad input is a finding (bad input must get a message and a non-zero status from the
// reader, not an internal error), so the abort hook aborts: libFuzzer reports a crash.
// The readers' own messages (one line per problem) go to stderr, which run.sh closes with
// -close_fd_mask=2 (libFuzzer and the sanitizers keep a private copy for their reports).
#pragma once
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"

static inline void fuzz_abort_hook(int status) {
    fprintf(stderr, "fuzz: fatal() reached (exit status %d): a reader must report, not die\n",
            status);
    abort();
}

// Writes data to this process's memfd and returns its path (valid until the next call).
static inline const char *fuzz_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-input", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        set_abort_hook(fuzz_abort_hook);
    }
    if (ftruncate(fd, 0) != 0) abort();
    if (size && pwrite(fd, data, size, 0) != (ssize_t)size) abort();
    return path;
}

