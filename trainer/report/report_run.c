// report_run.c: the page of one training run, from RUNDIR/log.jsonl (see run/runlog.h),
// config.yaml, overrides.txt, metrics.json, the generator's best.txt and the validation pass.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "html.h"
#include "json.h"
#include "optim.h"
#include "report.h"
#include "setup.h"
#include "svg.h"
#include "synth.h"

// A growable column of doubles.
typedef struct {
    double *v;
    int n, cap;
} Col;

static void col_push(Col *c, double v) {
    if (c->n == c->cap)
        c->cap = c->cap ? 2 * c->cap : 256, c->v = xrealloc(c->v, sizeof(double) * (size_t)c->cap);
    c->v[c->n++] = v;
}

enum {
    S_STEP,
    S_TIME,
    S_LOSS,
    S_ACT,
    S_TNLL,
    S_ENG,
    S_LR,
    S_EVS,
    S_COMM,
    S_COMMX,
    S_GNORM,
    S_NCOL
};
static const char *const STEP_KEYS[S_NCOL] = {
    "step", "time",         "loss",       "action_nll",     "time_nll", "eng_mse",
    "lr",   "events_per_s", "comm_share", "comm_share_max", "grad_norm"};
enum { V_STEP, V_TIME, V_ACT, V_TNLL, V_ENG, V_TOP1, V_TOPK, V_MAE, V_NCOL };
static const char *const VALID_KEYS[V_NCOL] = {"step",    "time", "action_nll", "time_nll",
                                               "eng_mse", "top1", "topk",       "gap_mae"};
#define MAX_RANKS 64

typedef struct {
    Col st[S_NCOL], va[V_NCOL];
    Col ck_step, ck_time, ck_stall, skip_step, resume_step, resume_time;
    Col rank_compute[MAX_RANKS], rank_wait[MAX_RANKS], rank_x; // per log line, seconds
    double rank_total_compute[MAX_RANKS], rank_total_wait[MAX_RANKS];
    int n_ranks_logged;
    int n_lines, n_bad, n_superseded, n_starts;
    double t0;
    char ranks[16], host[128], git[64], launcher[32], config_hash[24], data_hash[24];
    char bad_line[160];
} RunLogData;

// A resume goes back to its checkpoint: what was logged past that step was redone.
static void supersede(Col *cols, int ncol, double step) {
    while (cols[0].n > 0 && cols[0].v[cols[0].n - 1] >= step)
        for (int k = 0; k < ncol; k++) cols[k].n--;
}

static void take_ranks(RunLogData *d, const JsonNode *line, double x) {
    const JsonNode *a = json_get(line, "rank_step_s"), *b = json_get(line, "rank_comm_s");
    if (!a || !b || a->type != JSON_ARRAY || b->type != JSON_ARRAY) return;
    int r = 0;
    const JsonNode *p = a->child, *q = b->child;
    for (; p && q && r < MAX_RANKS; p = p->next, q = q->next, r++) {
        col_push(&d->rank_compute[r], p->number - q->number);
        col_push(&d->rank_wait[r], q->number);
        d->rank_total_compute[r] += p->number - q->number, d->rank_total_wait[r] += q->number;
    }
    if (d->n_ranks_logged == 0 || r == d->n_ranks_logged) {
        d->n_ranks_logged = r;
        col_push(&d->rank_x, x);
    } else { // another number of ranks after a resume: start the per-rank series afresh
        for (int k = 0; k < MAX_RANKS; k++) d->rank_compute[k].n = d->rank_wait[k].n = 0;
        d->rank_x.n = 0;
        d->n_ranks_logged = r;
        memset(d->rank_total_compute, 0, sizeof d->rank_total_compute);
        memset(d->rank_total_wait, 0, sizeof d->rank_total_wait);
    }
}

static void take_line(RunLogData *d, const JsonNode *o) {
    const char *ev = json_str(o, "event");
    const double t = json_num(o, "time", NAN), step = json_num(o, "step", NAN);
    if (!ev || !isfinite(t)) return;
    if (!isfinite(d->t0)) d->t0 = t;
    if (strcmp(ev, "start") == 0) {
        d->n_starts++;
        snprintf(d->ranks, sizeof d->ranks, "%.0f", json_num(o, "ranks", 0));
        snprintf(d->host, sizeof d->host, "%s", json_str(o, "host") ? json_str(o, "host") : "?");
        snprintf(d->git, sizeof d->git, "%s",
                 json_str(o, "git_commit") ? json_str(o, "git_commit") : "?");
        snprintf(d->launcher, sizeof d->launcher, "%s",
                 json_str(o, "launcher") ? json_str(o, "launcher") : "?");
        snprintf(d->config_hash, sizeof d->config_hash, "%s",
                 json_str(o, "config_hash") ? json_str(o, "config_hash") : "?");
        snprintf(d->data_hash, sizeof d->data_hash, "%s",
                 json_str(o, "data_hash") ? json_str(o, "data_hash") : "?");
        const double from = json_num(o, "resumed_from", 0);
        if (from > 0 || d->n_starts > 1) {
            col_push(&d->resume_step, from), col_push(&d->resume_time, t - d->t0);
            int before = d->st[0].n + d->va[0].n;
            supersede(d->st, S_NCOL, from + 1);
            supersede(d->va, V_NCOL, from + 1);
            d->n_superseded += before - d->st[0].n - d->va[0].n;
        }
    } else if (strcmp(ev, "step") == 0 && isfinite(step)) {
        for (int k = 0; k < S_NCOL; k++)
            col_push(&d->st[k], k == S_TIME ? t - d->t0 : json_num(o, STEP_KEYS[k], NAN));
        take_ranks(d, o, step);
    } else if (strcmp(ev, "valid") == 0 && isfinite(step)) {
        for (int k = 0; k < V_NCOL; k++)
            col_push(&d->va[k], k == V_TIME ? t - d->t0 : json_num(o, VALID_KEYS[k], NAN));
    } else if (strcmp(ev, "checkpoint") == 0) {
        col_push(&d->ck_step, step), col_push(&d->ck_time, t - d->t0);
        col_push(&d->ck_stall, json_num(o, "stall_s", NAN));
    } else if (strcmp(ev, "skip") == 0) {
        col_push(&d->skip_step, step);
    }
}

static int read_log(RunLogData *d, const char *path) {
    memset(d, 0, sizeof *d);
    d->t0 = NAN;
    size_t n;
    char *text = read_file(path, &n);
    if (!text) return -1;
    int line_no = 0;
    for (char *p = text, *end = text + n; p < end;) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end; // a last line without newline (a killed run) is still read
        line_no++;
        JsonDoc doc;
        char err[128];
        if (eol > p) {
            if (json_parse(&doc, p, (size_t)(eol - p), err, sizeof err) == 0) {
                take_line(d, doc.root);
                json_free(&doc);
                d->n_lines++;
            } else if (d->n_bad++ == 0) {
                snprintf(d->bad_line, sizeof d->bad_line, "line %d: %s", line_no, err);
            }
        }
        p = eol + 1;
    }
    free(text);
    return 0;
}

static void free_log(RunLogData *d) {
    for (int k = 0; k < S_NCOL; k++) free(d->st[k].v);
    for (int k = 0; k < V_NCOL; k++) free(d->va[k].v);
    Col *cols[] = {&d->ck_step,     &d->ck_time,     &d->ck_stall, &d->skip_step,
                   &d->resume_step, &d->resume_time, &d->rank_x};
    for (size_t k = 0; k < ARRAY_LEN(cols); k++) free(cols[k]->v);
    for (int r = 0; r < MAX_RANKS; r++) free(d->rank_compute[r].v), free(d->rank_wait[r].v);
}

// ---------------------------------------------------------------- the page

typedef struct {
    RunLogData *d;
    const ValidDetail *vd;
    int have_best;
    SynthSplitStats best; // the generator's best on the validation users
    int charts;
    char marks_note[200];
} Page;

static void add_marks(Chart *c, const Page *pg, int by_time) {
    const RunLogData *d = pg->d;
    static char labels[CHART_MAX_MARKS][64];
    for (int i = 0; i < d->resume_step.n && c->n_mark < CHART_MAX_MARKS / 2; i++) {
        snprintf(labels[c->n_mark], 64, "resumed from step %.0f", d->resume_step.v[i]);
        chart_mark(c, by_time ? d->resume_time.v[i] : d->resume_step.v[i], labels[c->n_mark],
                   "#d62728");
    }
    for (int i = 0; !by_time && i < d->skip_step.n && c->n_mark < CHART_MAX_MARKS; i++) {
        snprintf(labels[c->n_mark], 64, "step %.0f skipped (non-finite)", d->skip_step.v[i]);
        chart_mark(c, d->skip_step.v[i], labels[c->n_mark], "#ff7f0e");
    }
}

static void loss_chart(StrBuf *o, Page *pg, const char *id, const char *title, const char *ylabel,
                       int s_col, int v_col, double best, double baseline, int by_time) {
    RunLogData *d = pg->d;
    Chart c;
    char full[160];
    snprintf(full, sizeof full, "%s vs %s", title, by_time ? "wall time" : "steps");
    chart_init(&c, id, full, by_time ? "wall time since the first start (s)" : "step", ylabel);
    const int xs = by_time ? S_TIME : S_STEP, xv = by_time ? V_TIME : V_STEP;
    chart_add(&c, "train (last step of each log interval)", d->st[xs].v, d->st[s_col].v,
              d->st[s_col].n, SERIES_LINE);
    if (v_col >= 0)
        chart_add(&c, "validation", d->va[xv].v, d->va[v_col].v, d->va[v_col].n,
                  SERIES_LINE_POINTS);
    if (pg->have_best && isfinite(best))
        chart_ref(&c, best, "generator's best achievable (validation)", "#2ca02c");
    if (isfinite(baseline)) chart_ref(&c, baseline, "constant predictor (validation)", "#7f7f7f");
    add_marks(&c, pg, by_time);
    c.note = pg->marks_note[0] ? pg->marks_note : NULL;
    pg->charts += chart_svg(o, &c) > 0;
}

static void losses_section(StrBuf *o, Page *pg, int engagement) {
    const ValidDetail *vd = pg->vd;
    page_section(o, "losses", "Losses");
    sb_appendf(o, "<div class=\"grid2\">");
    for (int by_time = 0; by_time < 2; by_time++) {
        char id[32];
        snprintf(id, sizeof id, "action-nll-%s", by_time ? "time" : "step");
        loss_chart(o, pg, id, "Next-action NLL", "nats per event", S_ACT, V_ACT,
                   pg->best.action_nll, vd->ok ? vd->const_action_nll : NAN, by_time);
        snprintf(id, sizeof id, "time-nll-%s", by_time ? "time" : "step");
        loss_chart(o, pg, id, "Next-gap NLL", "nats per event (density per time unit)", S_TNLL,
                   V_TNLL, pg->best.time_nll, vd->ok ? vd->const_time_nll : NAN, by_time);
        if (engagement) {
            snprintf(id, sizeof id, "eng-%s", by_time ? "time" : "step");
            loss_chart(o, pg, id, "Engagement MSE", "squared error (normalised units)", S_ENG,
                       V_ENG, NAN, NAN, by_time);
        }
    }
    sb_appendf(o, "</div>");
}

static void quality_section(StrBuf *o, Page *pg, const Config *cfg, int have_cfg) {
    RunLogData *d = pg->d;
    page_section(o, "quality", "Accuracy, gap error, learning rate");
    sb_appendf(o, "<div class=\"grid2\">");
    Chart c;
    char topk[32];
    snprintf(topk, sizeof topk, "top-%lld", have_cfg ? (long long)cfg->eval.top_k : 5LL);
    chart_init(&c, "accuracy", "Next-action accuracy on validation", "step", "share of targets");
    chart_add(&c, "top-1", d->va[V_STEP].v, d->va[V_TOP1].v, d->va[V_TOP1].n, SERIES_LINE_POINTS);
    chart_add(&c, topk, d->va[V_STEP].v, d->va[V_TOPK].v, d->va[V_TOPK].n, SERIES_LINE_POINTS);
    if (pg->have_best) chart_ref(&c, pg->best.action_acc, "generator's best top-1", "#2ca02c");
    if (pg->vd->ok) chart_ref(&c, pg->vd->majority_acc, "majority class top-1", "#7f7f7f");
    add_marks(&c, pg, 0);
    pg->charts += chart_svg(o, &c) > 0;
    char unit[64];
    snprintf(unit, sizeof unit, "mean absolute error (%s)",
             have_cfg && strcmp(cfg->data.time_unit, "none") != 0 ? cfg->data.time_unit
                                                                  : "time units");
    chart_init(&c, "gap-mae", "Gap MAE of the median prediction (validation)", "step", unit);
    chart_add(&c, "gap MAE", d->va[V_STEP].v, d->va[V_MAE].v, d->va[V_MAE].n, SERIES_LINE_POINTS);
    add_marks(&c, pg, 0);
    pg->charts += chart_svg(o, &c) > 0;
    // The schedule as configured (every step), with the logged values on it.
    chart_init(&c, "lr", "Learning-rate schedule", "step", "learning rate");
    c.y_zero = 1;
    double *sx = NULL, *sy = NULL;
    int ns = 0;
    if (have_cfg && cfg->train.steps > 0) {
        OptimConfig oc = optim_config_from(cfg);
        ns = cfg->train.steps > 2000 ? 2000 : (int)cfg->train.steps;
        sx = xmalloc(sizeof(double) * (size_t)ns), sy = xmalloc(sizeof(double) * (size_t)ns);
        for (int i = 0; i < ns; i++) {
            int64_t st =
                (int64_t)((double)i * (double)(cfg->train.steps - 1) / (ns > 1 ? ns - 1 : 1));
            sx[i] = (double)st + 1, sy[i] = optim_lr(&oc, st);
        }
        chart_add(&c, "configured schedule", sx, sy, ns, SERIES_DASHED);
    }
    chart_add(&c, "logged", d->st[S_STEP].v, d->st[S_LR].v, d->st[S_LR].n, SERIES_POINTS);
    pg->charts += chart_svg(o, &c) > 0;
    free(sx), free(sy);
    chart_init(&c, "grad-norm", "Gradient norm (before clipping)", "step", "global L2 norm");
    c.logy = 1;
    chart_add(&c, "grad norm", d->st[S_STEP].v, d->st[S_GNORM].v, d->st[S_GNORM].n, SERIES_LINE);
    add_marks(&c, pg, 0);
    pg->charts += chart_svg(o, &c) > 0;
    sb_appendf(o, "</div>");
}

static void rank_charts(StrBuf *o, Page *pg);
static void stall_skip_charts(StrBuf *o, Page *pg);

static void speed_section(StrBuf *o, Page *pg) {
    RunLogData *d = pg->d;
    page_section(o, "speed", "Speed, ranks, checkpoints, skipped steps");
    sb_appendf(o, "<div class=\"grid2\">");
    Chart c;
    chart_init(&c, "events-per-s", "Training throughput", "wall time since the first start (s)",
               "events per second (all ranks)");
    c.y_zero = 1;
    chart_add(&c, "events/s", d->st[S_TIME].v, d->st[S_EVS].v, d->st[S_EVS].n, SERIES_LINE);
    static char ck_labels[CHART_MAX_MARKS][48];
    for (int i = 0; i < d->ck_time.n && c.n_mark < CHART_MAX_MARKS / 2; i++) {
        snprintf(ck_labels[c.n_mark], 48, "checkpoint at step %.0f", d->ck_step.v[i]);
        chart_mark(&c, d->ck_time.v[i], ck_labels[c.n_mark], "#7f7f7f");
    }
    add_marks(&c, pg, 1);
    c.note = "Grey marks: checkpoints; red: resumes.";
    pg->charts += chart_svg(o, &c) > 0;

    chart_init(&c, "comm-share", "Time blocked in communication", "step", "share of step time");
    c.y_zero = 1;
    chart_add(&c, "mean over ranks", d->st[S_STEP].v, d->st[S_COMM].v, d->st[S_COMM].n,
              SERIES_LINE);
    chart_add(&c, "max over ranks", d->st[S_STEP].v, d->st[S_COMMX].v, d->st[S_COMMX].n,
              SERIES_DASHED);
    add_marks(&c, pg, 0);
    pg->charts += chart_svg(o, &c) > 0;

    rank_charts(o, pg);
    stall_skip_charts(o, pg);
    sb_appendf(o, "</div>");
}

// Per rank: compute = step time - comm wait. The slowest rank computes longest and waits
// least (the others wait for it).
static void rank_charts(StrBuf *o, Page *pg) {
    RunLogData *d = pg->d;
    Chart c;
    const int P = d->n_ranks_logged;
    static double rx[MAX_RANKS], rc[MAX_RANKS], rw[MAX_RANKS];
    int slow = 0;
    for (int r = 0; r < P; r++) {
        rx[r] = r, rc[r] = d->rank_total_compute[r], rw[r] = d->rank_total_wait[r];
        slow = rc[r] > rc[slow] ? r : slow;
    }
    char title[128], note[200];
    snprintf(title, sizeof title, "Per rank: compute vs communication wait (slowest: rank %d)",
             slow);
    if (P == MAX_RANKS)
        page_note(o, "note", "The log holds more ranks than the 64 the per-rank charts show.");
    chart_init(&c, "rank-split", title, "rank", "seconds over the logged steps");
    c.y_zero = 1, c.x_integer = 1;
    chart_add(&c, "compute", rx, rc, P, SERIES_LINE_POINTS);
    chart_add(&c, "blocked in communication", rx, rw, P, SERIES_LINE_POINTS);
    if (P > 0) {
        snprintf(note, sizeof note,
                 "Rank %d computed %.3f s and waited %.3f s; the fastest rank "
                 "waited longest for it.",
                 slow, rc[slow], rw[slow]);
        c.note = note;
    }
    pg->charts += chart_svg(o, &c) > 0;

    chart_init(&c, "rank-compute", "Compute seconds per log interval, by rank", "step",
               "seconds of compute");
    c.y_zero = 1;
    static char rank_names[MAX_RANKS][16];
    for (int r = 0; r < P && r < CHART_MAX_SERIES; r++) {
        snprintf(rank_names[r], 16, "rank %d", r);
        chart_add(&c, rank_names[r], d->rank_x.v, d->rank_compute[r].v, d->rank_compute[r].n,
                  SERIES_LINE);
    }
    char more[96];
    snprintf(more, sizeof more, "Ranks 0..%d of %d are drawn (the per-rank totals above cover %d).",
             CHART_MAX_SERIES - 1, P, P);
    if (P > CHART_MAX_SERIES) c.note = more;
    pg->charts += chart_svg(o, &c) > 0;
}

// Checkpoint stalls and the running count of skipped steps.
static void stall_skip_charts(StrBuf *o, Page *pg) {
    RunLogData *d = pg->d;
    Chart c;
    char title[128];
    double stall_total = 0;
    for (int i = 0; i < d->ck_stall.n; i++)
        stall_total += isfinite(d->ck_stall.v[i]) ? d->ck_stall.v[i] : 0;
    snprintf(title, sizeof title, "Checkpoint writes: training stalled %.3f s over %d writes",
             stall_total, d->ck_step.n);
    chart_init(&c, "ckpt-stall", title, "step", "stall per checkpoint (s)");
    c.y_zero = 1;
    chart_add(&c, "stall", d->ck_step.v, d->ck_stall.v, d->ck_stall.n, SERIES_POINTS);
    pg->charts += chart_svg(o, &c) > 0;

    // Skipped steps: the running count.
    double *kx = xmalloc(sizeof(double) * (size_t)(d->skip_step.n + 2));
    double *ky = xmalloc(sizeof(double) * (size_t)(d->skip_step.n + 2));
    int nk = 0;
    kx[nk] = 0, ky[nk++] = 0;
    for (int i = 0; i < d->skip_step.n; i++) kx[nk] = d->skip_step.v[i], ky[nk] = nk, nk++;
    if (d->st[S_STEP].n) kx[nk] = d->st[S_STEP].v[d->st[S_STEP].n - 1], ky[nk] = nk - 1, nk++;
    snprintf(title, sizeof title, "Skipped steps (non-finite loss or gradient): %d",
             d->skip_step.n);
    chart_init(&c, "skipped", title, "step", "steps skipped so far");
    c.y_zero = 1;
    chart_add(&c, "skipped so far", kx, ky, nk, SERIES_LINE_POINTS);
    add_marks(&c, pg, 0);
    pg->charts += chart_svg(o, &c) > 0;
    free(kx), free(ky);
}

static void identity_section(StrBuf *o, const RunLogData *d, const char *run_dir,
                             const char *metrics, const char *config_text, const char *overrides) {
    page_section(o, "identity", "Identity and configuration");
    char starts[32], lines[64];
    snprintf(starts, sizeof starts, "%d (%d resumed)", d->n_starts, d->resume_step.n);
    snprintf(lines, sizeof lines, "%d read, %d unreadable", d->n_lines, d->n_bad);
    const char *k[] = {"run directory", "git commit",  "ranks",  "launcher", "host",
                       "config hash",   "data digest", "starts", "log lines"};
    const char *v[] = {run_dir,        d->git,       d->ranks, d->launcher, d->host,
                       d->config_hash, d->data_hash, starts,   lines};
    page_kv_table(o, k, v, (int)ARRAY_LEN(k));
    if (metrics) {
        sb_appendf(o, "<p class=\"note\">metrics.json (written at the end of the run):</p>");
        page_pre(o, metrics);
    }
    sb_appendf(o, "<p class=\"note\">Resolved experiment (config.yaml):</p>");
    page_pre(o, config_text ? config_text : "(config.yaml missing)");
    if (overrides) {
        sb_appendf(o, "<p class=\"note\">Overrides of every start (overrides.txt):</p>");
        page_pre(o, overrides);
    }
}

static char *read_in(const char *dir, const char *name) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return read_file(path, NULL);
}

int report_run(StrBuf *o, const char *run_dir, int with_valid, int *argc, char ***argv, char *err,
               size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/log.jsonl", run_dir);
    RunLogData *d = xcalloc(1, sizeof *d);
    if (read_log(d, path) != 0) {
        snprintf(err, errlen, "%s: cannot read (is %s a run directory?)", path, run_dir);
        free(d);
        return -1;
    }
    Config *cfg = xmalloc(sizeof *cfg);
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    config_quiet(1);
    const int have_cfg = config_load(cfg, path, 0, NULL) == 0;
    config_quiet(0);
    Page pg;
    memset(&pg, 0, sizeof pg);
    pg.d = d;
    SynthReport rep;
    if (have_cfg && strcmp(cfg->data.source, "synth") == 0 &&
        synth_read_report(cfg->synth.out_dir, &rep) == 0)
        pg.have_best = 1, pg.best = rep.split[SPLIT_VALID];
    else
        pg.best.action_nll = pg.best.time_nll = pg.best.action_acc = NAN;
    ValidDetail *vd = xcalloc(1, sizeof *vd);
    if (with_valid)
        valid_detail_compute(vd, run_dir, argc, argv);
    else
        snprintf(vd->why, sizeof vd->why, "--no-validation was given");
    pg.vd = vd;
    char title[1300], sub[600];
    snprintf(title, sizeof title, "Training run %s", run_dir);
    const int last = d->st[S_STEP].n - 1;
    snprintf(sub, sizeof sub,
             "%s%.0f of %lld steps logged; %d resume%s; %d skipped "
             "step%s; git %s on %s, %s rank%s",
             have_cfg && strcmp(cfg->data.source, "synth") == 0 ? "synthetic users; "
                                                                : "real data; ",
             last >= 0 ? d->st[S_STEP].v[last] : 0.0, have_cfg ? (long long)cfg->train.steps : 0LL,
             d->resume_step.n, d->resume_step.n == 1 ? "" : "s", d->skip_step.n,
             d->skip_step.n == 1 ? "" : "s", d->git[0] ? d->git : "?", d->host[0] ? d->host : "?",
             d->ranks[0] ? d->ranks : "?", strcmp(d->ranks, "1") ? "s" : "");
    page_begin(o, title, sub);
    if (!have_cfg) page_note(o, "warn", "config.yaml is missing or invalid: settings unknown.");
    if (d->n_bad) {
        char m[256];
        snprintf(m, sizeof m, "log.jsonl: %d unreadable line%s skipped (first: %s).", d->n_bad,
                 d->n_bad > 1 ? "s" : "", d->bad_line);
        page_note(o, "warn", m);
    }
    if (d->st[S_STEP].n == 0)
        page_note(o, "warn",
                  "No training steps were logged yet (the run stopped before its "
                  "first log interval, or log.every exceeds the steps run).");
    if (d->st[S_STEP].n == 1) page_note(o, "note", "One logged step: curves are single points.");
    if (d->resume_step.n) {
        snprintf(pg.marks_note, sizeof pg.marks_note,
                 "Red marks: resumes (%d); %d log line%s past a resume's checkpoint were redone "
                 "and are shown once.",
                 d->resume_step.n, d->n_superseded, d->n_superseded == 1 ? "" : "s");
    }
    if (!pg.have_best && have_cfg && strcmp(cfg->data.source, "synth") == 0)
        page_note(o, "note", "The generator's best.txt was not found: no best-achievable lines.");
    losses_section(o, &pg, have_cfg ? cfg->data.engagement_col[0] != '\0' : 1);
    quality_section(o, &pg, cfg, have_cfg);
    speed_section(o, &pg);
    const int unitless = !have_cfg || strcmp(cfg->data.time_unit, "none") == 0;
    pg.charts += valid_detail_html(o, vd, unitless ? "time units" : cfg->data.time_unit);
    char *metrics = read_in(run_dir, "metrics.json"), *conf = read_in(run_dir, "config.yaml"),
         *ovr = read_in(run_dir, "overrides.txt");
    identity_section(o, d, run_dir, metrics, conf, ovr);
    free(metrics), free(conf), free(ovr);
    page_end(o);
    valid_detail_free(vd);
    free(vd);
    free(cfg);
    free_log(d);
    free(d);
    return 0;
}
