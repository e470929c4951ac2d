// irregular.c: see irregular.h.
#include "irregular.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "util.h"

// The change-point segments of one split as users of their own (the same event records; a
// segment user's `reserved` is its start t within its user) and, per shard, every event's
// surprisal per part under each fresh segment state: fresh[s][((event index) * CP_SLOTS + slot)
// * N_PARTS + part].
typedef struct {
    Dataset view;
    float **fresh; // (n_shards) x (shard events * CP_SLOTS * N_PARTS), NAN where no segment covers
    int W;
} ChangeSegments;

typedef struct {
    const ScoreSpec *spec;
    const SurpriseParams *sp;
    UserScore *lane;  // (lanes)
    RingEntry *rings; // (lanes, score_ring_len)
    const ChangeSegments *cs;
    IrregularEvent on_event;
    IrregularUser on_user;
    void *ctx;
} PassState;

// Segments from t = W, 2W, ... with at least 2 events: min(4W, n - t) of them each.
static void segments_open(ChangeSegments *cs, const Dataset *ds, int split, int W) {
    memset(cs, 0, sizeof *cs);
    cs->W = W;
    cs->view = *ds;
    cs->view.shards[split] = xcalloc((size_t)ds->n_shards + 1, sizeof(Shard));
    cs->fresh = xcalloc((size_t)ds->n_shards + 1, sizeof(float *));
    for (int s = 0; s < ds->n_shards; s++) {
        const Shard *sh = &ds->shards[split][s];
        Shard *v = &cs->view.shards[split][s];
        *v = *sh;
        uint64_t n_seg = 0;
        for (uint64_t i = 0; i < sh->hdr.n_users; i++)
            for (uint64_t t = (uint64_t)W; t + 2 <= sh->users[i].n_events; t += (uint64_t)W) n_seg++;
        v->users = xmalloc(sizeof(ShardUser) * (size_t)(n_seg + 1));
        v->hdr.n_users = n_seg;
        n_seg = 0;
        for (uint64_t i = 0; i < sh->hdr.n_users; i++) {
            const ShardUser *u = &sh->users[i];
            for (uint64_t t = (uint64_t)W; t + 2 <= u->n_events; t += (uint64_t)W) {
                uint64_t len = u->n_events - t < (uint64_t)cp_len(W) ? u->n_events - t : (uint64_t)cp_len(W);
                v->users[n_seg++] = (ShardUser){u->user_hash, u->first_event + t, (uint32_t)len, (uint32_t)t};
            }
        }
        const size_t n = (size_t)sh->hdr.n_events * CP_SLOTS * N_PARTS + 1;
        cs->fresh[s] = xmalloc(sizeof(float) * n);
        for (size_t k = 0; k < n; k++) cs->fresh[s][k] = NAN;
    }
}

static void segments_free(ChangeSegments *cs, int split) {
    for (int s = 0; s < cs->view.n_shards; s++) free(cs->view.shards[split][s].users), free(cs->fresh[s]);
    free(cs->view.shards[split]);
    free(cs->fresh);
}

typedef struct {
    ChangeSegments *cs;
    const SurpriseParams *sp;
} FreshState;

// A segment's scored events: their surprisal per part under its fresh state.
static void fresh_visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb) {
    FreshState *fs = ctx;
    const int B = bb->view.lanes, O = model_outputs(&sc->model->shape), W = fs->cs->W;
    for (int r = 0; r < B * bb->view.window; r++) {
        const Shard *sh;
        const ShardUser *seg = scorer_slot_user(es, bb, r, &sh);
        if (!seg || bb->tgt_action[r] < 0) continue;
        EventSurprise ev;
        surprise_event(fs->sp, sc->model->act.y + (size_t)r * O, bb->tgt_action[r],
                       bb->tgt_loggap[r], bb->tgt_eng[r], &ev);
        const uint64_t event = seg->first_event + (uint64_t)bb->slot_pos[r] + 1;
        const int slot = (int)((seg->reserved / (uint32_t)W) % CP_SLOTS);
        float *f = fs->cs->fresh[es->user_shard[bb->slot_user[r]]] + (event * CP_SLOTS + slot) * N_PARTS;
        for (int p = 0; p < N_PARTS; p++) f[p] = (float)ev.s[p];
    }
}

static void pass_visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb) {
    PassState *ps = ctx;
    const int B = bb->view.lanes, O = model_outputs(&sc->model->shape);
    for (int r = 0; r < B * bb->view.window; r++) {
        const Shard *sh;
        const ShardUser *u = scorer_slot_user(es, bb, r, &sh);
        if (!u || bb->tgt_action[r] < 0) continue;
        const int lane = r % B;
        const int64_t event = bb->slot_pos[r] + 1; // the event scored: the slot's target
        UserScore *us = &ps->lane[lane];
        if (bb->slot_pos[r] == 0) user_score_reset(us);
        EventSurprise ev;
        surprise_event(ps->sp, sc->model->act.y + (size_t)r * O, bb->tgt_action[r],
                       bb->tgt_loggap[r], bb->tgt_eng[r], &ev);
        if (ps->cs) {
            const float *f = ps->cs->fresh[es->user_shard[bb->slot_user[r]]] +
                             (u->first_event + (uint64_t)event) * CP_SLOTS * N_PARTS;
            memcpy(ev.fresh, f, sizeof ev.fresh);
        }
        user_score_add(us, ps->rings + (size_t)lane * score_ring_len(ps->spec), ps->spec, &ev, event);
        if (ps->on_event) ps->on_event(ps->ctx, u, sh, event, &ev, us);
        if (event == (int64_t)u->n_events - 1 && ps->on_user) ps->on_user(ps->ctx, u, sh, us);
    }
}

// zwindow: a pass over the change-point segments first (fresh states), then the pass proper.
void irregular_pass(Scorer *sc, const Dataset *ds, int split, const ScoreSpec *spec,
                    const SurpriseParams *sp, IrregularEvent on_event, IrregularUser on_user,
                    void *ctx) {
    if (!ds) ds = &sc->ds, split = sc->split;
    ChangeSegments cs;
    const int change = spec->statistic == STAT_ZWINDOW;
    if (change) {
        segments_open(&cs, ds, split, spec->window);
        FreshState fs = {&cs, sp};
        scorer_pass_on(sc, &cs.view, split, 0, NULL, fresh_visit, &fs);
    }
    PassState ps = {spec, sp, NULL, NULL, change ? &cs : NULL, on_event, on_user, ctx};
    ps.lane = xcalloc((size_t)sc->lanes, sizeof(UserScore));
    ps.rings = xcalloc((size_t)sc->lanes * (size_t)score_ring_len(spec), sizeof(RingEntry));
    scorer_pass_on(sc, ds, split, 0, NULL, pass_visit, &ps);
    free(ps.lane);
    free(ps.rings);
    if (change) segments_free(&cs, split);
}

// ---------------------------------------------------------------- calibration

typedef struct {
    const FeatureSpec *fs;
    int window;
    double *scores, *ev[N_CHANNELS]; // this rank's validation users: score, evidence
    long long n, cap;
    double f_sum[BASE_N_FEATURES], f_sq[BASE_N_FEATURES], events;
} CalibState;

static void calib_user(void *ctx, const ShardUser *u, const Shard *sh, const UserScore *us) {
    CalibState *cs = ctx;
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? 2 * cs->cap : 1024;
        cs->scores = xrealloc(cs->scores, sizeof(double) * (size_t)cs->cap);
        for (int k = 0; k < N_CHANNELS; k++)
            cs->ev[k] = xrealloc(cs->ev[k], sizeof(double) * (size_t)cs->cap);
    }
    for (int k = 0; k < N_CHANNELS; k++) cs->ev[k][cs->n] = us->evidence[k];
    cs->scores[cs->n++] = us->score;
    cs->events += (double)us->n;
    double f[BASE_N_FEATURES];
    baseline_features(sh, u, cs->fs, cs->window, f);
    for (int k = 0; k < BASE_N_FEATURES; k++) cs->f_sum[k] += f[k], cs->f_sq[k] += f[k] * f[k];
}

// Every rank's scores on rank 0 (counts first, then arrays padded to the longest).
static double *gather_scores(const double *mine, long long n, long long *total) {
    const int size = comm_size(), rank = comm_rank();
    int64_t max_n = n, all_n = n;
    double mx = (double)n;
    comm_allreduce_max_f64(&mx, 1);
    max_n = (int64_t)mx;
    comm_allreduce_sum_i64(&all_n, 1);
    *total = all_n;
    double *pad = xcalloc((size_t)max_n + 1, sizeof(double));
    // NAN pads; a user's own -inf evidence (a side never seen) is kept as the lowest value.
    for (long long i = 0; i <= (long long)max_n; i++) pad[i] = i < n ? fmax(mine[i], -1e300) : NAN;
    double *all = rank == 0 ? xmalloc(sizeof(double) * ((size_t)max_n + 1) * (size_t)size) : NULL;
    comm_gather_bytes(pad, sizeof(double) * ((size_t)max_n + 1), all, 0);
    free(pad);
    if (rank != 0) return NULL;
    long long k = 0;
    for (long long i = 0; i < (long long)(max_n + 1) * size; i++)
        if (!isnan(all[i])) all[k++] = all[i];
    return all;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Median and MAD (times 1.4826, an SD for a normal) of sorted[0..n); sorted becomes
// (sorted - median) / scale, still sorted. A MAD of 0 (most users alike): scale 1.
static void robust_standardise(double *sorted, long long n, double *loc, double *scale) {
    *loc = 0, *scale = 1;
    if (n == 0) return;
    double med = 0.5 * (sorted[(n - 1) / 2] + sorted[n / 2]);
    double *dev = xmalloc(sizeof(double) * (size_t)n);
    for (long long i = 0; i < n; i++) dev[i] = fabs(sorted[i] - med);
    qsort(dev, (size_t)n, sizeof(double), by_value);
    double mad = 1.4826 * 0.5 * (dev[(n - 1) / 2] + dev[n / 2]);
    free(dev);
    *loc = med, *scale = mad > 1e-12 ? mad : 1;
    for (long long i = 0; i < n; i++)
        if (sorted[i] > SCORE_NO_EVIDENCE) sorted[i] = (sorted[i] - *loc) / *scale;
}

// zwindow: every rank gets every channel's sorted evidence; rank 0 returns the users' calibrated
// scores (in *scores, n_all of them) for the threshold.
static void share_evidence(CalibState *cs, ScoreSpec *spec, Calibration *cal, double **scores,
                           long long *n_all) {
    double *all[N_CHANNELS];
    for (int k = 0; k < N_CHANNELS; k++) all[k] = gather_scores(cs->ev[k], cs->n, n_all);
    for (int k = 0; k < N_CHANNELS; k++) {
        double *sorted = xmalloc(sizeof(double) * (size_t)(*n_all + 1));
        if (comm_rank() == 0) memcpy(sorted, all[k], sizeof(double) * (size_t)*n_all);
        comm_bcast(sorted, sizeof(double) * (size_t)*n_all, 0);
        qsort(sorted, (size_t)*n_all, sizeof(double), by_value);
        if (k >= CH_SHIFT_ACTION) robust_standardise(sorted, *n_all, &spec->cal_loc[k], &spec->cal_scale[k]);
        cal->knot_e[k] = xmalloc(sizeof(double) * (size_t)(*n_all + 2));
        cal->knot_k[k] = xmalloc(sizeof(double) * (size_t)(*n_all + 2));
        spec->n_knots[k] = score_knots(sorted, *n_all, cal->knot_e[k], cal->knot_k[k]);
        spec->cal[k] = cal->knot_e[k], spec->cal_count[k] = cal->knot_k[k];
        score_tail(sorted, *n_all, cal->knot_e[k], cal->knot_k[k], spec->n_knots[k],
                   &spec->tail_e[k], &spec->tail_k[k], &spec->tail_beta[k]);
        free(sorted);
    }
    spec->n_cal = *n_all;
    *scores = NULL;
    if (comm_rank() == 0) {
        // Each validation user's score as it will be computed from now on.
        *scores = xmalloc(sizeof(double) * (size_t)(*n_all + 1));
        for (long long i = 0; i < *n_all; i++) {
            double sc[N_CHANNELS];
            for (int k = 0; k < N_CHANNELS; k++) sc[k] = score_channel(spec, k, all[k][i]);
            (*scores)[i] = score_combine(sc, NULL);
        }
    }
    for (int k = 0; k < N_CHANNELS; k++) free(all[k]);
}

void calibration_free(Calibration *cal) {
    for (int k = 0; k < N_CHANNELS; k++) {
        free(cal->knot_e[k]), free(cal->knot_k[k]);
        cal->knot_e[k] = cal->knot_k[k] = NULL;
    }
}

void irregular_calibrate(Scorer *sc, ScoreSpec *spec, double flag_rate, Calibration *cal) {
    memset(cal, 0, sizeof *cal);
    Dataset valid;
    scorer_open_split(sc, &valid, SPLIT_VALID);
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    scorer_pass_on(sc, &valid, SPLIT_VALID, 0, &sums, NULL, NULL);
    comm_allreduce_sum_f64((double *)&sums, LOSS_SUMS_LEN);
    cal->eng_sigma = sums.n_targets > 0 && sums.eng_se > 0 ? sqrt(2 * sums.eng_se / sums.n_targets) : 1;
    SurpriseParams sp = surprise_params(&sc->model->shape, &sc->lc, cal->eng_sigma);
    FeatureSpec fs = feature_spec(&sc->ds.meta);
    CalibState cs = {&fs, spec->window, NULL, {NULL}, 0, 0, {0}, {0}, 0};
    irregular_pass(sc, &valid, SPLIT_VALID, spec, &sp, NULL, calib_user, &cs);
    double red[2 * BASE_N_FEATURES + 1];
    memcpy(red, cs.f_sum, sizeof cs.f_sum);
    memcpy(red + BASE_N_FEATURES, cs.f_sq, sizeof cs.f_sq);
    red[2 * BASE_N_FEATURES] = cs.events;
    comm_allreduce_sum_f64(red, 2 * BASE_N_FEATURES + 1);
    long long n_all = 0;
    double *all;
    spec->n_cal = 0;
    if (spec->statistic == STAT_ZWINDOW)
        share_evidence(&cs, spec, cal, &all, &n_all);
    else
        all = gather_scores(cs.scores, cs.n, &n_all);
    double thr = sc->rank == 0 ? calibrate_threshold(all, n_all, flag_rate) : 0;
    comm_bcast(&thr, sizeof thr, 0);
    free(all);
    free(cs.scores);
    for (int k = 0; k < N_CHANNELS; k++) free(cs.ev[k]);
    dataset_free(&valid);
    cal->threshold = thr, cal->flag_rate = flag_rate, cal->n_users = n_all;
    cal->valid_events = red[2 * BASE_N_FEATURES];
    for (int k = 0; k < BASE_N_FEATURES; k++) {
        double n = n_all > 0 ? (double)n_all : 1, m = red[k] / n;
        double var = red[BASE_N_FEATURES + k] / n - m * m;
        cal->base_mean[k] = m, cal->base_sd[k] = var > 1e-12 ? sqrt(var) : 1e-6;
    }
}

// ---------------------------------------------------------------- the baseline

// Window statistics of v[0..n): smallest mean, smallest SD, largest mean over windows of w.
static void window_stats(const double *v, int n, int w, double *min_mean, double *min_sd,
                         double *max_mean) {
    if (w > n) w = n;
    *min_mean = INFINITY, *min_sd = INFINITY, *max_mean = -INFINITY;
    for (int j = 0; j + w <= n; j++) {
        double s = 0, q = 0;
        for (int k = j; k < j + w; k++) s += v[k], q += v[k] * v[k];
        double m = s / w, var = q / w - m * m;
        *min_mean = fmin(*min_mean, m), *max_mean = fmax(*max_mean, m);
        *min_sd = fmin(*min_sd, sqrt(var > 0 ? var : 0));
    }
}

void baseline_features(const Shard *sh, const ShardUser *u, const FeatureSpec *fs, int window,
                       double *f) {
    const int n = (int)u->n_events, ng = n - 1, eb = (int)sh->hdr.event_bytes, A = 64;
    const uint8_t *ev = sh->events + u->first_event * (uint64_t)eb;
    double *lg = xmalloc(sizeof(double) * (size_t)(2 * n + 1)), *eng = lg + n;
    double s = 0, q = 0;
    for (int i = 0; i < ng; i++) {
        lg[i] = log(ev_time(ev + (size_t)(i + 1) * eb) - ev_time(ev + (size_t)i * eb) + fs->gap_offset);
        s += lg[i], q += lg[i] * lg[i];
    }
    f[0] = s / ng, f[1] = sqrt(fmax(0, q / ng - f[0] * f[0]));
    double unused;
    window_stats(lg, ng, window, &f[2], &f[3], &unused);
    // The largest share of one action over a window; the action mix of the two halves.
    int w = window < n ? window : n, cnt[64] = {0}, half[2][64] = {{0}};
    double best = 0;
    for (int i = 0; i < n; i++) {
        int a = ev_action(ev + (size_t)i * eb) % A;
        half[i >= n / 2][a]++;
        cnt[a]++;
        if (i >= w) cnt[ev_action(ev + (size_t)(i - w) * eb) % A]--;
        if (i >= w - 1)
            for (int k = 0; k < A; k++) best = fmax(best, (double)cnt[k] / w);
    }
    f[4] = best;
    double tv = 0, n0 = n / 2, n1 = n - n / 2;
    for (int k = 0; k < A; k++) tv += 0.5 * fabs(half[0][k] / n0 - half[1][k] / n1);
    f[6] = tv;
    for (int i = 0; i < n; i++)
        eng[i] = fs->engagement_index >= 0
                     ? log1p(fmax(0, ev_num(ev + (size_t)i * eb, fs->n_cat, fs->engagement_index)))
                     : 0;
    double lo, lo_sd;
    window_stats(eng, n, window, &lo, &lo_sd, &f[5]);
    // Mean log gap and hour of day (a point on the circle) of the two halves.
    double m[2] = {0}, c[2] = {0}, sn[2] = {0};
    for (int i = 0; i < ng; i++) m[i >= ng / 2] += lg[i];
    m[0] /= fmax(1, ng / 2), m[1] /= fmax(1, ng - ng / 2);
    f[7] = fabs(m[0] - m[1]);
    for (int i = 0; i < n; i++) {
        double secs = ev_time(ev + (size_t)i * eb) * (fs->unit_seconds > 0 ? fs->unit_seconds : 0);
        double ang = 6.283185307179586 * fmod(secs, 86400.0) / 86400.0;
        c[i >= n / 2] += cos(ang), sn[i >= n / 2] += sin(ang);
    }
    f[8] = hypot(c[0] / n0 - c[1] / n1, sn[0] / n0 - sn[1] / n1);
    free(lg);
}

double baseline_score(const Calibration *cal, const double *f) {
    double best = 0;
    for (int k = 0; k < BASE_N_FEATURES; k++)
        best = fmax(best, fabs(f[k] - cal->base_mean[k]) / cal->base_sd[k]);
    return best;
}
