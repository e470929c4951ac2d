// atomic_file.h: THE way this program writes a file that must be whole or absent
// (checkpoints, shards, synthetic CSVs, metrics, configs): a temp file next to the target,
// every write checked, fsync, rename over the target, fsync of the directory. The target is
// never touched until the new file is complete (the Redis rdb.c pattern).
//
// Every call returns 0, or -1 with a message in f->err naming the path and errno's text;
// a failing call has already closed and removed the temp file, so no error path can leave
// one behind. af_abort() does the same for errors of the caller's own (idempotent).
// Writes may be buffered (buf_bytes > 0) for callers that write many small records.
#pragma once
#include <stddef.h>
#include <sys/types.h>

enum { AF_FAULT_NONE, AF_FAULT_EIO, AF_FAULT_ENOSPC, AF_FAULT_KILL };

typedef struct {
    char path[4096], tmp[4160];
    int fd;         // -1 once closed
    int open;       // the temp file exists and is ours to publish or remove
    size_t written; // bytes handed to write(2)
    char *buf;      // write buffer, cap bytes (NULL: unbuffered)
    size_t len, cap;
    // Tests: the write that would pass fault_after bytes fails (EIO, ENOSPC) or SIGKILLs.
    int fault_mode;
    size_t fault_after;
    char err[4400];
} AtomicFile;

// Creates the temp file PATH.tmp (PATH.tmp.PID when unique_tmp: for targets that several
// processes may write at once, such as shared metrics files).
int af_open(AtomicFile *f, const char *path, int unique_tmp, size_t buf_bytes);
int af_write(AtomicFile *f, const void *data, size_t n);
// Overwrites n bytes at offset off (e.g. a header whose checksums are known only at the end).
int af_pwrite(AtomicFile *f, const void *data, size_t n, off_t off);
int af_sync(AtomicFile *f);    // flush, fsync, close: the temp file is whole on disk
int af_publish(AtomicFile *f); // rename over the target, fsync the directory
int af_commit(AtomicFile *f);  // af_sync + af_publish
void af_abort(AtomicFile *f);  // close and remove the temp file, if any
