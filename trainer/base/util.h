// util.h: checked wrappers for libc calls, fatal errors, clocks and small string helpers.
//
// Every fatal error goes through fatal(): it prints one line to stderr and then calls the
// abort hook. Outside MPI the hook is exit(1); once comm_init() ran, main installs a hook
// that calls MPI_Abort so no other rank is left waiting. This file knows nothing of MPI.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

// Exit statuses the program documents (README "Exit statuses").
enum {
    EXIT_OK = 0,
    EXIT_FATAL = 1,      // bad input, I/O error, internal error
    EXIT_USAGE = 2,      // bad command line
    EXIT_NONFINITE = 3,  // training stopped on a non-finite loss/gradient (train.on_nonfinite=stop)
    EXIT_HUNG = 4,       // comm watchdog: some rank never arrived at a collective (comm.timeout_s)
    EXIT_PREEMPTED = 75, // stopped by SIGTERM/SIGUSR1 after a checkpoint: requeue to resume
};

typedef void (*abort_hook_fn)(int status);
void set_abort_hook(abort_hook_fn hook);
// Run by fatal() after the message and before the cleanups (NULL: none): under MPI, stops
// the other ranks writing into files the cleanups remove (comm_agree_on_fatal).
void set_quiesce_hook(void (*hook)(void));
// Prefix for every message of this process, e.g. "[rank 3] " (empty by default).
void set_log_prefix(const char *prefix);
const char *log_prefix(void);

_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// The same with a documented exit status (EXIT_USAGE for a refusal the user can fix).
_Noreturn void fatal_status(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Temporary files that must not outlive an error: while registered, fatal() (before it ends
// the process, also under MPI_Abort) and a normal exit remove every file directly in `dir`
// whose name ends in `suffix`, or, with suffix NULL, every file in dir and dir itself. The
// caller holds whatever lock makes those names its own. Unregister once the files are final.
void cleanup_register(const char *dir, const char *suffix);
void cleanup_unregister(const char *dir, const char *suffix);
// Removes those files now (the same matching); returns how many were removed.
int remove_matching(const char *dir, const char *suffix);

// Checked allocation and I/O. On failure they call fatal() naming the call site and path.
void *malloc_check(size_t size, const char *file, int line);
void *calloc_check(size_t n, size_t size, const char *file, int line);
void *realloc_check(void *p, size_t size, const char *file, int line);
void *aligned_alloc_check(size_t size, const char *file, int line); // 64-byte aligned, zeroed
FILE *fopen_check(const char *path, const char *mode, const char *file, int line);
void fread_check(void *dst, size_t size, FILE *f, const char *path, const char *file, int line);
void fwrite_check(const void *src, size_t size, FILE *f, const char *path, const char *file,
                  int line);
void fclose_check(FILE *f, const char *path, const char *file, int line);
#define xmalloc(n)          malloc_check((n), __FILE__, __LINE__)
#define xcalloc(n, s)       calloc_check((n), (s), __FILE__, __LINE__)
#define xrealloc(p, n)      realloc_check((p), (n), __FILE__, __LINE__)
#define xalloc_aligned(n)   aligned_alloc_check((n), __FILE__, __LINE__)
#define xfopen(p, m)        fopen_check((p), (m), __FILE__, __LINE__)
#define xfread(d, n, f, p)  fread_check((d), (n), (f), (p), __FILE__, __LINE__)
#define xfwrite(s, n, f, p) fwrite_check((s), (n), (f), (p), __FILE__, __LINE__)
#define xfclose(f, p)       fclose_check((f), (p), __FILE__, __LINE__)

// Whole-file helpers. read_file returns a NUL-terminated buffer (size excludes the NUL) or
// NULL with errno set; the caller frees it.
char *read_file(const char *path, size_t *size);
// Durable write: temp file in the same directory, write, fsync, rename, fsync directory.
// Returns 0, or -1 with a message in err (the target is then untouched).
int write_file_atomic(const char *path, const void *data, size_t size, char *err, size_t errlen);
int fsync_dir_of(const char *path);
int mkdir_p(const char *path); // 0 or -1 with errno
int path_exists(const char *path);

double now_seconds(void);  // monotonic clock
double wall_seconds(void); // time since the epoch, for logs

// Strings.
void str_copy(char *dst, size_t cap, const char *src); // always NUL-terminates; fatal on overflow
char *str_dup(const char *s);
// src with control characters made visible (\r, \t, \n, \xNN), truncated to fit dst.
void str_visible(char *dst, size_t cap, const char *src);

// A growable byte buffer for building text.
typedef struct {
    char *data;
    size_t len, cap;
} StrBuf;
void sb_appendf(StrBuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_append(StrBuf *sb, const char *s, size_t n);
void sb_free(StrBuf *sb);

// Peak resident set size of this process in bytes (getrusage).
size_t peak_rss_bytes(void);
