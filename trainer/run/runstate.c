// runstate.c: see runstate.h.
#include "runstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

void runstate_checkpoint_dir(const Config *cfg, char *out, size_t cap) {
    snprintf(out, cap, "%s/checkpoints", cfg->run.dir);
}

// The lock's descriptor stays open for the life of the process: the kernel drops the flock
// when the holder exits or dies, so a lock is never stale; the file's text only names the
// holder for the message of the next trainer that finds it taken.
static int g_lock_fd = -1;

static void lock_refused(const char *path, int fd) {
    char holder[256] = "";
    // The holder writes its name right after taking the lock: give it a moment.
    for (int tries = 0; tries < 20 && !holder[0]; tries++) {
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = 0;
        char *nl = strchr(holder, '\n');
        if (nl) *nl = 0;
        if (!holder[0]) usleep(50 * 1000);
    }
    close(fd);
    fatal_status(EXIT_USAGE,
                 "%s: run directory in use by another trainer (%s); wait for it to finish or stop "
                 "it, or use another run.dir (eval, predict and checkpoint inspect can read a "
                 "locked run)",
                 path, holder[0] ? holder : "holder unknown");
}

void runstate_lock(const Config *cfg) {
    if (g_lock_fd >= 0) return;
    const char *dir = cfg->run.dir;
    if (mkdir_p(dir) != 0) fatal("run.dir: %s: cannot create (%s)", dir, strerror(errno));
    char path[CFG_PATH_LEN + 16];
    snprintf(path, sizeof path, "%s/lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fatal("%s: cannot open the run lock (%s)", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) lock_refused(path, fd);
        fatal("%s: cannot lock (%s)", path, strerror(errno));
    }
    char host[128] = "?", text[320], stamp[64];
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    int n = snprintf(text, sizeof text, "pid %ld on host %s, since %s\n", (long)getpid(), host,
                     stamp);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
        warnf("%s: cannot write the holder's name (%s)", path, strerror(errno));
    g_lock_fd = fd;
}

// The stored experiment of run.dir, and what differs from cfg ("" when the same experiment:
// location keys are not compared, so a copied or moved run directory is the same one).
// Returns the stored text (NULL when there is none yet).
static char *stored_experiment(const Config *cfg, char *diff, size_t cap) {
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/config.yaml", cfg->run.dir);
    diff[0] = 0;
    char *old = read_file(path, NULL);
    if (!old) return NULL;
    // The stored file is a resolved experiment; load it quietly to name what changed.
    Config prev;
    config_quiet(1);
    int bad = config_load(&prev, path, 0, NULL) != 0;
    config_quiet(0);
    if (bad)
        snprintf(diff, cap, "its config.yaml is unreadable");
    else if (config_hash(&prev) != config_hash(cfg))
        config_diff(&prev, cfg, diff, cap);
    return old;
}

void runstate_check(const Config *cfg, int allow_changed) {
    runstate_lock(cfg); // before anything in the directory is read or written
    char diff[2048];
    free(stored_experiment(cfg, diff, sizeof diff));
    if (diff[0] && !allow_changed)
        fatal_status(EXIT_USAGE,
                     "run.dir %s holds a different experiment (changed: %s). Start a new run "
                     "with --set run.dir=OTHER, or pass --resume to continue this directory with "
                     "the new settings",
                     cfg->run.dir, diff);
}

void runstate_commit(const Config *cfg, const char *exp_path, int n_overrides, char **overrides) {
    const char *dir = cfg->run.dir;
    char path[CFG_PATH_LEN + 32], err[1024], diff[2048];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    char *text = config_to_yaml(cfg, 0);
    char *old = stored_experiment(cfg, diff, sizeof diff);
    if (old && diff[0]) {
        printf("run: continuing %s with changed settings: %s\n", dir, diff);
        char prev_path[CFG_PATH_LEN + 64];
        snprintf(prev_path, sizeof prev_path, "%s/config.prev-%ld.yaml", dir, (long)time(NULL));
        if (write_file_atomic(prev_path, old, strlen(old), err, sizeof err) != 0) fatal("%s", err);
    }
    free(old);
    if (write_file_atomic(path, text, strlen(text), err, sizeof err) != 0) fatal("%s", err);
    free(text);
    // overrides.txt: one block per start, so a run's history of settings is kept.
    snprintf(path, sizeof path, "%s/overrides.txt", dir);
    FILE *f = xfopen(path, "a");
    time_t now = time(NULL);
    char stamp[64];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "# %s experiment %s\n", stamp, exp_path ? exp_path : "(defaults)");
    for (int i = 0; i < n_overrides; i++) fprintf(f, "--set %s\n", overrides[i]);
    xfclose(f, path);
}

void runstate_segments(const char *run_dir, StrBuf *out, double *total_seconds) {
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/log.jsonl", run_dir);
    *total_seconds = 0;
    sb_append(out, "[", 1);
    FILE *f = fopen(path, "r");
    int n = 0;
    char line[4096];
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "\"event\":\"segment\",");
        long long from, to;
        double secs;
        int status;
        if (!p || sscanf(p, "\"event\":\"segment\",\"from_step\":%lld,\"to_step\":%lld,"
                            "\"train_seconds\":%lf,\"exit\":%d",
                         &from, &to, &secs, &status) != 4)
            continue;
        sb_appendf(out, "%s{\"from_step\":%lld,\"to_step\":%lld,\"train_seconds\":%.3f,\"exit\":%d}",
                   n++ ? "," : "", from, to, secs, status);
        *total_seconds += secs;
    }
    if (f) fclose(f);
    sb_append(out, "]", 1);
}

void runstate_record_exit(int status, int64_t step, const char *checkpoint_path) {
    const char *path = getenv("TRAINER_EXIT_FILE");
    if (!path || !*path) return;
    char text[CFG_PATH_LEN + 128], err[512];
    int n = snprintf(text, sizeof text, "status %d\nstep %lld\ncheckpoint %s\n", status,
                     (long long)step, checkpoint_path ? checkpoint_path : "");
    if (write_file_atomic(path, text, (size_t)n, err, sizeof err) != 0)
        warnf("TRAINER_EXIT_FILE: %s", err);
}
