// sweep.c: `trainer sweep plan|run|summary`: hyperparameter sweeps over trial directories.
//
//   trainer sweep plan SWEEP.yaml DIR      one directory per trial with its resolved config
//   trainer sweep run DIR [--trial i] [--launcher "mpirun -np 2"]
//   trainer sweep summary DIR              trials sorted by the sweep's metric, best config
//
// A trial directory is that trial's run directory: trial-NNN/config.yaml is exactly what
// `trainer train` records there, so training it resumes from its own checkpoints. `run`
// starts each trial as a child process (the launcher, then `trainer train`), so a crash of
// one trial cannot take the sweep down; it marks the trial DONE (with its metrics) or
// FAILED (with the exit status and the end of its log). Running again skips DONE trials and
// retries the rest. A SIGTERM/SIGUSR1 to `sweep run` is passed to the trial, which
// checkpoints; `run` then exits 75 so a Slurm array task can be requeued. Trials share
// prepared data (DIR/shards) unless an axis changes the data.

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "sweep_config.h"
#include "util.h"

#define MAX_OVERRIDES (SWEEP_MAX_FIXED + SWEEP_MAX_AXES + 4)

static void trial_dir(char *out, size_t cap, const char *dir, int64_t i) {
    snprintf(out, cap, "%s/trial-%03lld", dir, (long long)i);
}

static int changes_data(const char *key) {
    return strncmp(key, "data.", 5) == 0 || strncmp(key, "synth.", 6) == 0 ||
           strcmp(key, "model.gap_offset") == 0;
}

static void write_text(const char *path, const char *text) {
    char err[1024];
    if (write_file_atomic(path, text, strlen(text), err, sizeof err) != 0) fatal("%s", err);
}

// Where trials keep their data: shared by all (DIR/shards) unless an axis changes the data;
// paths the base derives from its run.dir move into the sweep directory.
typedef struct {
    const char *dir;
    int shared, move_shards, move_synth;
} Layout;

static Layout plan_layout(const SweepSpec *sp, const Config *base, const char *dir) {
    Layout lay = {.dir = dir, .shared = 1};
    for (int a = 0; a < sp->n_axes; a++) lay.shared &= !changes_data(sp->axes[a].key);
    char derived_shards[CFG_PATH_LEN + 16], derived_synth[CFG_PATH_LEN + 16];
    snprintf(derived_shards, sizeof derived_shards, "%s/shards", base->run.dir);
    snprintf(derived_synth, sizeof derived_synth, "%s/synth", base->run.dir);
    lay.move_shards = strcmp(base->data.shard_dir, derived_shards) == 0;
    lay.move_synth = strcmp(base->synth.out_dir, derived_synth) == 0;
    return lay;
}

// Every trial's resolved experiment (texts[i]) and its line of the plan, checked before
// anything is written; -1 (after a message) when a trial is not a valid experiment.
static int plan_trials(const char *sweep_path, const SweepSpec *sp, const Layout *lay,
                       char **texts, StrBuf *plan) {
    static char ov[MAX_OVERRIDES][256];
    char *ovp[MAX_OVERRIDES];
    for (int k = 0; k < MAX_OVERRIDES; k++) ovp[k] = ov[k];
    Config *cfg = xmalloc(sizeof *cfg);
    const int64_t n = sweep_trial_count(sp);
    for (int64_t i = 0; i < n; i++) {
        char tdir[CFG_PATH_LEN + 16];
        trial_dir(tdir, sizeof tdir, lay->dir, i);
        const char *data_dir = lay->shared ? lay->dir : tdir;
        int k = 0;
        snprintf(ov[k++], 256, "run.dir=%s", tdir);
        if (lay->move_shards) snprintf(ov[k++], 256, "data.shard_dir=%s/shards", data_dir);
        if (lay->move_synth) snprintf(ov[k++], 256, "synth.out_dir=%s/synth", data_dir);
        for (int f = 0; f < sp->n_fixed; f++) snprintf(ov[k++], 256, "%s", sp->fixed[f]);
        int first_axis = k;
        k += sweep_trial_overrides(sp, i, ov + k, MAX_OVERRIDES - k);
        if (config_load(cfg, sp->base, k, ovp) != 0) {
            fprintf(stderr, "error: %s: trial %lld is not a valid experiment (see above)\n",
                    sweep_path, (long long)i);
            for (int64_t j = 0; j < i; j++) free(texts[j]);
            free(cfg);
            return -1;
        }
        texts[i] = config_to_yaml(cfg, 0);
        sb_appendf(plan, "trial-%03lld", (long long)i);
        for (int j = first_axis; j < k; j++) sb_appendf(plan, "\t%s", ov[j]);
        sb_appendf(plan, "\n");
    }
    free(cfg);
    return 0;
}

// Writes the trial directories, sweep.txt and plan.txt; a directory holds one plan, and
// planning the same sweep again is a no-op. Returns 1 when the plan is new. Frees texts[].
static int plan_commit(const char *dir, const SweepSpec *sp, int64_t n, char **texts,
                       const char *plan) {
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/plan.txt", dir);
    char *old = read_file(path, NULL);
    if (old && strcmp(old, plan) != 0)
        fatal("%s already holds another sweep plan (%s); use another directory", dir, path);
    int fresh = !old;
    free(old);
    for (int64_t i = 0; i < n; i++) {
        char tdir[CFG_PATH_LEN + 16], p[CFG_PATH_LEN + 48];
        trial_dir(tdir, sizeof tdir, dir, i);
        if (mkdir_p(tdir) != 0) fatal("%s: cannot create (%s)", tdir, strerror(errno));
        snprintf(p, sizeof p, "%s/config.yaml", tdir);
        if (!path_exists(p)) write_text(p, texts[i]);
        free(texts[i]);
    }
    char meta[256];
    snprintf(meta, sizeof meta, "metric %s\nmode %s\n", sp->metric, sp->maximize ? "max" : "min");
    snprintf(path, sizeof path, "%s/sweep.txt", dir);
    write_text(path, meta);
    snprintf(path, sizeof path, "%s/plan.txt", dir);
    write_text(path, plan);
    return fresh;
}

static int sweep_plan(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: trainer sweep plan SWEEP.yaml DIR\n");
        return EXIT_USAGE;
    }
    SweepSpec *sp = xcalloc(1, sizeof *sp);
    Config *base = xmalloc(sizeof *base);
    int rc = EXIT_USAGE;
    if (sweep_spec_load(argv[0], sp) != 0) goto out;
    if (mkdir_p(argv[1]) != 0) fatal("%s: cannot create (%s)", argv[1], strerror(errno));
    char dir[CFG_PATH_LEN];
    if (!realpath(argv[1], dir)) fatal("%s: %s", argv[1], strerror(errno));
    if (config_load(base, sp->base, 0, NULL) != 0) {
        fprintf(stderr, "error: %s: base experiment %s is invalid (see above)\n", argv[0],
                sp->base);
        goto out;
    }
    Layout lay = plan_layout(sp, base, dir);
    const int64_t n = sweep_trial_count(sp);
    StrBuf plan = {0};
    sb_appendf(&plan, "# sweep %s, base %s, %lld trials, metric %s (%s)\n", argv[0], sp->base,
               (long long)n, sp->metric, sp->maximize ? "max" : "min");
    char **texts = xcalloc((size_t)n, sizeof(char *));
    if (plan_trials(argv[0], sp, &lay, texts, &plan) == 0) {
        int fresh = plan_commit(dir, sp, n, texts, plan.data);
        printf("%s %lld trials in %s (data %s):\n%s", fresh ? "planned" : "plan unchanged:",
               (long long)n, dir, lay.shared ? "shared by all trials" : "per trial", plan.data);
        printf("run them here: trainer sweep run %s\n"
               "or on Slurm:   sbatch --array=0-%lld cluster/sweep.sbatch %s\n",
               dir, (long long)n - 1, dir);
        rc = EXIT_OK;
    }
    free(texts);
    sb_free(&plan);
out:
    free(sp), free(base);
    return rc;
}

// ---------------------------------------------------------------- reading a sweep directory

typedef struct {
    int64_t n;
    char (*name)[32];
    char (*overrides)[1024];
    char metric[64];
    int maximize;
} Plan;

static void plan_read(const char *dir, Plan *p) {
    memset(p, 0, sizeof *p);
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/plan.txt", dir);
    char *text = read_file(path, NULL);
    if (!text)
        fatal("%s: no sweep plan here (%s); run `trainer sweep plan SWEEP.yaml %s` first", dir,
              strerror(errno), dir);
    int64_t cap = 16;
    p->name = xmalloc(sizeof *p->name * (size_t)cap);
    p->overrides = xmalloc(sizeof *p->overrides * (size_t)cap);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') continue;
        if (p->n == cap) {
            cap *= 2;
            p->name = xrealloc(p->name, sizeof *p->name * (size_t)cap);
            p->overrides = xrealloc(p->overrides, sizeof *p->overrides * (size_t)cap);
        }
        char *tab = strchr(line, '\t');
        snprintf(p->name[p->n], 32, "%.*s", (int)(tab ? tab - line : (long)strlen(line)), line);
        snprintf(p->overrides[p->n], 1024, "%s", tab ? tab + 1 : "");
        for (char *c = p->overrides[p->n]; *c; c++)
            if (*c == '\t') *c = ' ';
        p->n++;
    }
    free(text);
    snprintf(path, sizeof path, "%s/sweep.txt", dir);
    text = read_file(path, NULL);
    snprintf(p->metric, sizeof p->metric, "valid.action_nll");
    if (text) {
        char m[64] = "", mode[16] = "";
        if (sscanf(text, "metric %63s\nmode %15s", m, mode) == 2) {
            snprintf(p->metric, sizeof p->metric, "%s", m);
            p->maximize = strcmp(mode, "max") == 0;
        }
        free(text);
    }
}

static void plan_free(Plan *p) {
    free(p->name);
    free(p->overrides);
}

// The value of a validation metric in a trial's metrics.json (our own writer's format).
static int read_metric(const char *tdir, const char *metric, double *out) {
    char path[CFG_PATH_LEN + 48];
    snprintf(path, sizeof path, "%s/metrics.json", tdir);
    char *text = read_file(path, NULL);
    if (!text) return -1;
    const char *valid = strstr(text, "\"valid\":{");
    char key[80];
    snprintf(key, sizeof key, "\"%s\":", strchr(metric, '.') + 1);
    const char *at = valid ? strstr(valid, key) : NULL;
    int rc = -1;
    if (at) {
        *out = strtod(at + strlen(key), NULL);
        rc = 0;
    }
    free(text);
    return rc;
}

// ---------------------------------------------------------------- run

static volatile sig_atomic_t g_child = 0, g_stop = 0;

static void forward_signal(int sig) {
    g_stop = sig;
    if (g_child > 0) kill((pid_t)g_child, sig);
}

// Runs one trial as a child process; returns its exit status (or 128 + signal).
static int run_child(char **launcher, int n_launcher, const char *config, const char *log_path) {
    char self[CFG_PATH_LEN];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) fatal("cannot find the trainer executable (/proc/self/exe)");
    self[len] = 0;
    char *args[64];
    int n = 0;
    for (int i = 0; i < n_launcher && n < 58; i++) args[n++] = launcher[i];
    args[n++] = self, args[n++] = "train", args[n++] = (char *)config, args[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) fatal("fork failed (%s)", strerror(errno));
    if (pid == 0) {
        FILE *f = freopen(log_path, "a", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0) _exit(126);
        execvp(args[0], args);
        fprintf(stderr, "cannot run %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    g_child = pid;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) fatal("waitpid failed (%s)", strerror(errno));
    g_child = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void tail_lines(const char *path, int n, StrBuf *out) {
    char *text = read_file(path, NULL);
    if (!text) return;
    size_t len = strlen(text);
    int lines = 0;
    size_t i = len;
    while (i > 0 && lines <= n) lines += text[--i] == '\n';
    sb_appendf(out, "%s", text + (i > 0 ? i + 1 : 0));
    free(text);
}

static const char RUN_USAGE[] =
    "usage: trainer sweep run DIR [--trial i] [--launcher \"mpirun -np 2\"]\n";

// DIR [--trial i] [--launcher CMD]; returns EXIT_OK or EXIT_USAGE.
static int parse_run_args(int argc, char **argv, const char **dir, long *trial,
                          const char **launcher_text) {
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--trial") == 0 && i + 1 < argc) {
            char *end;
            *trial = strtol(argv[++i], &end, 10);
            if (*end || *trial < 0) {
                fprintf(stderr,
                        "error: trainer sweep run: --trial expects a trial index, got \"%s\"\n",
                        argv[i]);
                return EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--launcher") == 0 && i + 1 < argc)
            *launcher_text = argv[++i];
        else if (!*dir && argv[i][0] != '-')
            *dir = argv[i];
        else {
            fputs(RUN_USAGE, stderr);
            return EXIT_USAGE;
        }
    }
    if (!*dir) {
        fputs(RUN_USAGE, stderr);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

typedef struct {
    char *argv[32];
    int n;
    const char *text;
} Launcher;

enum { TRIAL_DONE, TRIAL_FAILED, TRIAL_STOPPED };

// Runs trial i unless it is DONE: DONE with its metrics, FAILED with the end of its log,
// or stopped by a signal after its checkpoint.
static int run_trial(const Plan *p, const char *dir, int64_t i, Launcher *l) {
    char tdir[CFG_PATH_LEN + 16], done[CFG_PATH_LEN + 32], fail_path[CFG_PATH_LEN + 32];
    char config[CFG_PATH_LEN + 32], log_path[CFG_PATH_LEN + 32], metrics[CFG_PATH_LEN + 32];
    trial_dir(tdir, sizeof tdir, dir, i);
    snprintf(done, sizeof done, "%s/DONE", tdir);
    snprintf(fail_path, sizeof fail_path, "%s/FAILED", tdir);
    snprintf(config, sizeof config, "%s/config.yaml", tdir);
    snprintf(log_path, sizeof log_path, "%s/train.log", tdir);
    snprintf(metrics, sizeof metrics, "%s/metrics.json", tdir);
    if (path_exists(done)) {
        printf("%s: DONE already, skipped\n", p->name[i]);
        return TRIAL_DONE;
    }
    unlink(fail_path);
    printf("%s: running %s%s%s (log %s)\n", p->name[i], l->text ? l->text : "",
           l->text ? " " : "", p->overrides[i], log_path);
    double t0 = now_seconds();
    int status = run_child(l->argv, l->n, config, log_path);
    double secs = now_seconds() - t0;
    char *m = status == 0 ? read_file(metrics, NULL) : NULL;
    if (m) {
        write_text(done, m);
        printf("%s: DONE in %.1f s: %s", p->name[i], secs, m);
        free(m);
        return TRIAL_DONE;
    }
    if (status == 0) status = 1; // exited 0 without its metrics
    if (status == EXIT_PREEMPTED) {
        printf("%s: stopped by a signal after its checkpoint; run the sweep again to resume it\n",
               p->name[i]);
        return TRIAL_STOPPED;
    }
    StrBuf why = {0};
    sb_appendf(&why, "exit status %d after %.1f s\nlast lines of %s:\n", status, secs, log_path);
    tail_lines(log_path, 15, &why);
    write_text(fail_path, why.data);
    printf("%s: FAILED (exit status %d); see %s\n", p->name[i], status, fail_path);
    sb_free(&why);
    return TRIAL_FAILED;
}

static int sweep_run(int argc, char **argv) {
    const char *dir = NULL;
    long trial = -1;
    Launcher l = {.n = 0, .text = getenv("TRAINER_LAUNCHER")};
    if (parse_run_args(argc, argv, &dir, &trial, &l.text) != EXIT_OK) return EXIT_USAGE;
    Plan p;
    plan_read(dir, &p);
    if (trial >= p.n)
        fatal("%s has %lld trials (0..%lld); --trial %ld is not one of them", dir, (long long)p.n,
              (long long)p.n - 1, trial);
    char lbuf[512] = "";
    if (l.text) {
        snprintf(lbuf, sizeof lbuf, "%s", l.text);
        for (char *tok = strtok(lbuf, " "); tok && l.n < 32; tok = strtok(NULL, " "))
            l.argv[l.n++] = tok;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    int failed = 0, stopped = 0;
    int64_t first = trial >= 0 ? trial : 0, end = trial >= 0 ? trial + 1 : p.n;
    for (int64_t i = first; i < end && !g_stop && !stopped; i++) {
        int outcome = run_trial(&p, dir, i, &l);
        failed += outcome == TRIAL_FAILED;
        stopped = outcome == TRIAL_STOPPED;
    }
    plan_free(&p);
    if (stopped || g_stop) return EXIT_PREEMPTED;
    return failed ? EXIT_FATAL : EXIT_OK;
}

// ---------------------------------------------------------------- summary

typedef struct {
    int64_t i;
    int status; // 0 done, 1 failed, 2 pending
    double value;
} Row;

static int g_maximize;
static int by_status_metric(const void *a, const void *b) {
    const Row *x = a, *y = b;
    if (x->status != y->status) return x->status - y->status;
    if (x->status == 0 && x->value != y->value)
        return (g_maximize ? x->value < y->value : x->value > y->value) ? 1 : -1;
    return x->i < y->i ? -1 : (x->i > y->i);
}

static int sweep_summary(int argc, char **argv) {
    if (argc != 1) {
        fprintf(stderr, "usage: trainer sweep summary DIR\n");
        return EXIT_USAGE;
    }
    const char *dir = argv[0];
    Plan p;
    plan_read(dir, &p);
    Row *rows = xcalloc((size_t)p.n + 1, sizeof(Row));
    int n_done = 0, n_failed = 0;
    for (int64_t i = 0; i < p.n; i++) {
        char tdir[CFG_PATH_LEN + 16], path[CFG_PATH_LEN + 32];
        trial_dir(tdir, sizeof tdir, dir, i);
        rows[i].i = i;
        snprintf(path, sizeof path, "%s/DONE", tdir);
        if (path_exists(path) && read_metric(tdir, p.metric, &rows[i].value) == 0)
            rows[i].status = 0, n_done++;
        else {
            snprintf(path, sizeof path, "%s/FAILED", tdir);
            rows[i].status = path_exists(path) ? 1 : 2;
            n_failed += rows[i].status == 1;
        }
    }
    g_maximize = p.maximize;
    qsort(rows, (size_t)p.n, sizeof(Row), by_status_metric);
    static const char *status_name[] = {"DONE", "FAILED", "pending"};
    printf("sweep %s: %lld trials, %d done, %d failed, %lld pending; sorted by %s (%s is best)\n\n",
           dir, (long long)p.n, n_done, n_failed, (long long)p.n - n_done - n_failed, p.metric,
           p.maximize ? "highest" : "lowest");
    printf("| rank | trial | status | %s | overrides |\n|---|---|---|---|---|\n", p.metric);
    for (int64_t r = 0; r < p.n; r++) {
        const Row *row = &rows[r];
        char value[32] = "-";
        if (row->status == 0) snprintf(value, sizeof value, "%.6g", row->value);
        printf("| %lld | %s | %s | %s | %s |\n", (long long)r + 1, p.name[row->i],
               status_name[row->status], value, p.overrides[row->i]);
    }
    if (n_done > 0) {
        char tdir[CFG_PATH_LEN + 16], path[CFG_PATH_LEN + 32];
        trial_dir(tdir, sizeof tdir, dir, rows[0].i);
        snprintf(path, sizeof path, "%s/config.yaml", tdir);
        printf("\nbest: %s (%s %.6g) with %s\nits config (%s):\n", p.name[rows[0].i], p.metric,
               rows[0].value, p.overrides[rows[0].i], path);
        char *text = read_file(path, NULL);
        if (text) fputs(text, stdout);
        free(text);
    }
    free(rows);
    plan_free(&p);
    return EXIT_OK;
}

int cmd_sweep(int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "plan") == 0) return sweep_plan(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "run") == 0) return sweep_run(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "summary") == 0) return sweep_summary(argc - 1, argv + 1);
    fprintf(stderr, "usage: trainer sweep plan SWEEP.yaml DIR\n"
                    "       trainer sweep run DIR [--trial i] [--launcher \"mpirun -np 2\"]\n"
                    "       trainer sweep summary DIR\n");
    return EXIT_USAGE;
}
