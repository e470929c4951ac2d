// report_valid.c: the charts of a run that need the model: one pass over the validation
// users with the run's newest checkpoint (run/scoring.h), then confusion, reliability and
// time-head calibration.
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "report.h"
#include "scoring.h"
#include "svg.h"
#include "time_mix.h"

typedef struct {
    ValidDetail *vd;
    double *act_count;      // (K) targets per true action
    double sum_lg, sum_lg2; // of log(gap + delta), for the constant log-normal
    long long cap;
} Pass;

static void visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb) {
    (void)es;
    Pass *p = ctx;
    ValidDetail *vd = p->vd;
    const ModelShape *s = &sc->model->shape;
    const int K = s->n_actions, O = model_outputs(s);
    const LossConfig *lc = &sc->lc;
    for (int r = 0; r < bb->view.lanes * bb->view.window; r++) {
        const int tgt = bb->view.tgt_action[r];
        if (tgt < 0) continue;
        const float *y = sc->model->act.y + (size_t)r * O;
        int best = 0;
        for (int k = 1; k < K; k++) best = y[k] > y[best] ? k : best;
        double z = 0;
        for (int k = 0; k < K; k++) z += exp((double)y[k] - y[best]);
        const double pmax = 1 / z;
        vd->confusion[(size_t)tgt * K + best] += 1;
        int bin = (int)(pmax * CAL_BINS);
        bin = bin >= CAL_BINS ? CAL_BINS - 1 : bin;
        vd->rel_n[bin] += 1, vd->rel_conf[bin] += pmax, vd->rel_acc[bin] += best == tgt;
        p->act_count[tgt] += 1;
        // Time head: log(gap + delta) ~ N(mean + std * y_mu, (std * exp(y_ls))^2).
        const double lg = bb->view.tgt_loggap[r];
        const double mu = lc->loggap_mean + lc->loggap_std * y[K];
        const double sd = lc->loggap_std * exp((double)y[K + 1]);
        const int M = model_time_mix(s); // > 1: a mixture (time_mix.h)
        const double pit = M > 1 ? time_mix_cdf(M, y + K, (lg - lc->loggap_mean) / lc->loggap_std)
                                 : 0.5 * erfc(-(lg - mu) / (sd * sqrt(2.0)));
        for (int q = 0; q < GAP_QS; q++) vd->gap_cover[q] += pit <= 0.05 * (q + 1);
        p->sum_lg += lg, p->sum_lg2 += lg * lg;
        if (vd->n == p->cap) {
            p->cap = p->cap ? 2 * p->cap : 4096;
            vd->pred_median = xrealloc(vd->pred_median, sizeof(double) * (size_t)p->cap);
            vd->obs_gap = xrealloc(vd->obs_gap, sizeof(double) * (size_t)p->cap);
        }
        vd->pred_median[vd->n] =
            M > 1 ? time_mix_median_gap(M, y + K, lc->loggap_mean, lc->loggap_std, lc->gap_offset)
                  : fmax(0, exp(mu) - lc->gap_offset);
        vd->obs_gap[vd->n] = fmax(0, exp(lg) - lc->gap_offset);
        vd->n++;
    }
}

// A checkpoint file in dir (the scorer picks the newest that verifies).
static int has_checkpoint(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    for (struct dirent *e; (e = readdir(d)) && !found;)
        found = strncmp(e->d_name, "step-", 5) == 0 && strstr(e->d_name, ".ckpt") != NULL;
    closedir(d);
    return found;
}

void valid_detail_compute(ValidDetail *vd, const char *run_dir, int *argc, char ***argv) {
    memset(vd, 0, sizeof *vd);
    char exp[1100], ckdir[1100], meta[CFG_PATH_LEN + 32];
    snprintf(exp, sizeof exp, "%s/config.yaml", run_dir);
    snprintf(ckdir, sizeof ckdir, "%s/checkpoints", run_dir);
    Config *cfg = xmalloc(sizeof *cfg);
    config_quiet(1);
    int bad = config_load(cfg, exp, 0, NULL) != 0;
    config_quiet(0);
    if (!bad) snprintf(meta, sizeof meta, "%s/dataset.meta", cfg->data.shard_dir);
    free(cfg);
    if (bad) {
        snprintf(vd->why, sizeof vd->why, "%s does not load as an experiment", exp);
        return;
    }
    if (!has_checkpoint(ckdir)) {
        snprintf(vd->why, sizeof vd->why, "no checkpoint in %s", ckdir);
        return;
    }
    if (!path_exists(meta)) {
        snprintf(vd->why, sizeof vd->why,
                 "the run's prepared data (%s) is not here; run the report where the run's "
                 "data is (paths in config.yaml are relative to where training started)",
                 meta);
        return;
    }
    double t0 = now_seconds();
    ScoreRequest req = {.command = "report", .exp_path = exp, .checkpoint = run_dir,
                        .split = SPLIT_VALID, .min_events = 2};
    Scorer sc;
    if (scorer_open(&sc, &req, argc, argv) != EXIT_OK) {
        snprintf(vd->why, sizeof vd->why, "%s does not load as an experiment", exp);
        return;
    }
    // One process reads the whole validation split; several would each see a share.
    if (sc.size > 1) fatal("trainer report runs as one process: start it without mpirun/srun");
    const int K = sc.model->shape.n_actions;
    vd->K = K;
    vd->ckpt_step = sc.ck.d.step;
    snprintf(vd->ckpt_path, sizeof vd->ckpt_path, "%s", sc.ckpt_path);
    vd->confusion = xcalloc((size_t)K * K, sizeof(double));
    vd->labels = xmalloc(sizeof(char *) * (size_t)K);
    for (int k = 0; k < K; k++) vd->labels[k] = str_dup(sc.ds.meta.vocab[0][k]);
    Pass p = {vd, xcalloc((size_t)K, sizeof(double)), 0, 0, 0};
    scorer_pass(&sc, 0, NULL, visit, &p);
    if (vd->n > 0) {
        double h = 0, best = 0, n = (double)vd->n;
        for (int k = 0; k < K; k++) {
            if (p.act_count[k] > 0) h -= p.act_count[k] / n * log(p.act_count[k] / n);
            best = p.act_count[k] > best ? p.act_count[k] : best;
        }
        const double m = p.sum_lg / n, var = fmax(p.sum_lg2 / n - m * m, 1e-12);
        vd->const_action_nll = h, vd->majority_acc = best / n;
        // The best single log-normal: mean NLL = E[log(gap+d)] + log sd + 1/2 + log sqrt(2 pi).
        vd->const_time_nll = m + 0.5 * log(var) + 0.5 + 0.9189385332046727;
        for (int q = 0; q < GAP_QS; q++) vd->gap_cover[q] /= n;
        vd->ok = 1;
    } else {
        snprintf(vd->why, sizeof vd->why, "the validation split has no targets");
    }
    free(p.act_count);
    scorer_close(&sc);
    vd->seconds = now_seconds() - t0;
}

void valid_detail_free(ValidDetail *vd) {
    for (int k = 0; vd->labels && k < vd->K; k++) free(vd->labels[k]);
    free(vd->labels), free(vd->confusion), free(vd->pred_median), free(vd->obs_gap);
    memset(vd, 0, sizeof *vd);
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Reliability of the top-1 probability and coverage of the time head's quantiles.
static int calibration_charts(StrBuf *o, const ValidDetail *vd) {
    int charts = 0;
    // Reliability: per bin of top-1 probability, mean confidence vs observed accuracy.
    static double cx[CAL_BINS], cy[CAL_BINS], diag[2] = {0, 1};
    int nb = 0;
    double ece = 0;
    for (int b = 0; b < CAL_BINS; b++)
        if (vd->rel_n[b] > 0) {
            cx[nb] = vd->rel_conf[b] / vd->rel_n[b], cy[nb] = vd->rel_acc[b] / vd->rel_n[b];
            ece += vd->rel_n[b] / (double)vd->n * fabs(cx[nb] - cy[nb]);
            nb++;
        }
    Chart c;
    chart_init(&c, "reliability", "Reliability of next-action probabilities",
               "predicted probability of the top-1 action", "observed accuracy");
    c.fixed_range = 1, c.xmin = 0, c.xmax = 1, c.ymin = 0, c.ymax = 1;
    chart_add(&c, "perfect calibration", diag, diag, 2, SERIES_DASHED);
    c.s[0].color = "#888";
    chart_add(&c, "model (bins of 0.1)", cx, cy, nb, SERIES_LINE_POINTS);
    char note[160];
    snprintf(note, sizeof note, "Expected calibration error %.4f (weighted by the bins' counts).",
             ece);
    c.note = note;
    chart_svg(o, &c), charts++;
    static double qn[GAP_QS];
    for (int q = 0; q < GAP_QS; q++) qn[q] = 0.05 * (q + 1);
    chart_init(&c, "gap-calibration", "Time head: predicted vs observed gap quantiles",
               "predicted quantile level q of the gap distribution",
               "share of observed gaps below it");
    c.fixed_range = 1, c.xmin = 0, c.xmax = 1, c.ymin = 0, c.ymax = 1;
    chart_add(&c, "perfect calibration", diag, diag, 2, SERIES_DASHED);
    c.s[0].color = "#888";
    chart_add(&c, "model", qn, vd->gap_cover, GAP_QS, SERIES_LINE_POINTS);
    c.note =
        "Above the diagonal: gaps shorter than predicted; a flatter curve: intervals too wide.";
    chart_svg(o, &c), charts++;
    return charts;
}

// Percentiles of predicted median gaps against those of the observed gaps (log axes).
static int gap_qq_chart(StrBuf *o, const ValidDetail *vd, const char *time_unit) {
    int charts = 0;
    Chart c;
    // Q-Q: quantiles of predicted medians vs quantiles of observed gaps.
    double *pm = xmalloc(sizeof(double) * (size_t)vd->n),
           *og = xmalloc(sizeof(double) * (size_t)vd->n);
    memcpy(pm, vd->pred_median, sizeof(double) * (size_t)vd->n);
    memcpy(og, vd->obs_gap, sizeof(double) * (size_t)vd->n);
    qsort(pm, (size_t)vd->n, sizeof(double), by_value);
    qsort(og, (size_t)vd->n, sizeof(double), by_value);
    static double qx[99], qy[99];
    for (int i = 0; i < 99; i++) {
        long long at = (long long)((double)(i + 1) / 100 * (double)(vd->n - 1));
        qx[i] = og[at], qy[i] = pm[at];
    }
    char xl[96], yl[96];
    snprintf(xl, sizeof xl, "observed gap (%s), percentiles 1..99", time_unit);
    snprintf(yl, sizeof yl, "predicted median gap (%s)", time_unit);
    chart_init(&c, "gap-qq", "Time head: percentiles of predicted median vs observed gaps", xl, yl);
    c.logx = c.logy = 1;
    double lo = fmax(qx[0] > 0 ? qx[0] : 1e-3, 1e-9), hi = qx[98] > lo ? qx[98] : lo * 10;
    static double dx[2], dy[2];
    dx[0] = dy[0] = lo, dx[1] = dy[1] = hi;
    chart_add(&c, "equal", dx, dy, 2, SERIES_DASHED);
    c.s[0].color = "#888";
    chart_add(&c, "model", qx, qy, 99, SERIES_LINE_POINTS);
    chart_svg(o, &c), charts++;
    free(pm), free(og);
    return charts;
}

// The numbers behind the validation charts, machine-readable (tests, users' own scripts):
// <script type="application/json" id="validation-data">.
static void data_block(StrBuf *o, const ValidDetail *vd) {
    sb_appendf(o,
               "<script type=\"application/json\" id=\"validation-data\">{\"checkpoint_step\":"
               "%lld,\"n_targets\":%lld,\"const_action_nll\":%.9g,\"majority_acc\":%.9g,"
               "\"const_time_nll\":%.9g,\"labels\":[",
               vd->ckpt_step, vd->n, vd->const_action_nll, vd->majority_acc, vd->const_time_nll);
    for (int k = 0; k < vd->K; k++) {
        if (k) sb_append(o, ",", 1);
        json_string(o, vd->labels[k]);
    }
    sb_appendf(o, "],\"confusion\":[");
    for (int i = 0; i < vd->K * vd->K; i++) sb_appendf(o, "%s%.0f", i ? "," : "", vd->confusion[i]);
    sb_appendf(o, "],\"reliability\":[");
    for (int b = 0; b < CAL_BINS; b++)
        sb_appendf(o, "%s[%.0f,%.9g,%.0f]", b ? "," : "", vd->rel_n[b], vd->rel_conf[b],
                   vd->rel_acc[b]);
    sb_appendf(o, "],\"gap_coverage\":[");
    for (int q = 0; q < GAP_QS; q++) sb_appendf(o, "%s%.9g", q ? "," : "", vd->gap_cover[q]);
    sb_appendf(o, "]}</script>\n");
}

int valid_detail_html(StrBuf *o, const ValidDetail *vd, const char *time_unit) {
    page_section(o, "validation", "Validation: predictions against what happened");
    if (!vd->ok) {
        char msg[700];
        snprintf(msg, sizeof msg, "Confusion matrix and calibration not computed: %s.", vd->why);
        page_note(o, "warn", msg);
        return 0;
    }
    char msg[1400];
    snprintf(msg, sizeof msg,
             "From one pass over the validation users (%lld targets) with %s (step %lld), "
             "in %.2f s.",
             vd->n, vd->ckpt_path, vd->ckpt_step, vd->seconds);
    page_note(o, "note", msg);
    int charts = 0;
    sb_appendf(o, "<div class=\"grid2\">");
    // <unk> (id 0) is left out when it is neither a target nor a prediction.
    int first = 0, K = vd->K;
    double unk = 0;
    for (int k = 0; k < K; k++) unk += vd->confusion[k] + vd->confusion[(size_t)k * K];
    if (unk == 0 && K > 1) first = 1;
    if (K - first <= CONF_MAX_K) {
        const int n = K - first;
        double *m = xmalloc(sizeof(double) * (size_t)n * n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                m[i * n + j] = vd->confusion[(size_t)(i + first) * K + j + first];
        heatmap_svg(o, "confusion", "Next action: true (rows) vs predicted top-1 (columns)",
                    "true next action", "predicted next action",
                    (const char *const *)vd->labels + first,
                    (const char *const *)vd->labels + first, m, n, n);
        free(m);
        charts++;
    } else {
        page_note(o, "note", "More than 64 actions: the confusion matrix is not drawn.");
    }
    data_block(o, vd);
    charts += calibration_charts(o, vd);
    charts += gap_qq_chart(o, vd, time_unit);
    sb_appendf(o, "</div>");
    return charts;
}
