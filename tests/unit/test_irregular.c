// test_irregular.c: the scoring core of `trainer score` / `trainer serve` (run/surprise.h)
// against an independent float64 reference (tests/tools/make_irregular_fixture.py writes
// tests/fixtures/irregular.txt): per event the surprisal parts, their excess and the action
// part's variance; per user the zwindow evidence of both sides after every event, the score
// and its peak window. The change-point channel on a small model's real forward passes against
// tests/tools/make_change_reference.py (tests/fixtures/change_reference.txt). Also the
// calibrated threshold (share above it), the AUROC with ties, and the window/mean statistics
// on a hand-made sequence.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "irregular_truth.h"
#include "surprise.h"
#include "util.h"

#include "check.h"

static int close_rel(double a, double b, double tol) {
    return fabs(a - b) <= tol * fmax(1.0, fmax(fabs(a), fabs(b)));
}

static void check_fixture(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[8192];
    SurpriseParams sp = {0};
    ScoreSpec spec = {.statistic = STAT_ZWINDOW, .window = 0};
    UserScore us;
    RingEntry *ring = NULL;
    int events = 0, users = 0, last_n = 0;
    static float last_y[256 * 16], last_g[256], last_e[256];
    static int32_t last_a[256];
    double last_score = 0;
    double worst_s = 0, worst_score = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "params ", 7) == 0) {
            sscanf(line + 7, "%d %d %lf %lf %lf %lf", &sp.K, &spec.window, &sp.loggap_mean,
                   &sp.loggap_std, &sp.gap_offset, &sp.eng_sigma);
            sp.engagement = 1;
            ring = xcalloc((size_t)score_ring_len(&spec), sizeof(RingEntry));
        } else if (strncmp(line, "user ", 5) == 0) {
            user_score_reset(&us);
            last_n = 0;
            users++;
        } else if (strncmp(line, "event ", 6) == 0) {
            char *p = line + 6, *end;
            float y[16];
            for (int k = 0; k < sp.K + 3; k++) y[k] = (float)strtod(p, &end), p = end;
            int action = (int)strtol(p, &end, 10);
            p = end;
            // loggap, eng, s[3], x[3], v_action, evidence of every channel but the change point
            // (the fixture has no fresh-state surprisal: check_change does), score
            double want[16];
            for (int k = 0; k < 10 + CH_CHANGE; k++) want[k] = strtod(p, &end), p = end;
            int peak_start = (int)strtol(p, &end, 10), peak_end = (int)strtol(end, &end, 10);
            int part = (int)strtol(end, &end, 10);
            EventSurprise ev;
            surprise_event(&sp, y, action, (float)want[0], (float)want[1], &ev);
            if (last_n < 256) {
                memcpy(last_y + (size_t)last_n * (sp.K + 3), y, sizeof(float) * (size_t)(sp.K + 3));
                last_a[last_n] = action, last_g[last_n] = (float)want[0], last_e[last_n] = (float)want[1];
                last_n++;
            }
            for (int q = 0; q < 3; q++) {
                CHECK(close_rel(ev.s[q], want[2 + q], 1e-9), "event %d: s[%d] %.12g, reference %.12g",
                      events, q, ev.s[q], want[2 + q]);
                CHECK(close_rel(ev.x[q], want[5 + q], 1e-9), "event %d: x[%d] %.12g, reference %.12g",
                      events, q, ev.x[q], want[5 + q]);
                worst_s = fmax(worst_s, fabs(ev.s[q] - want[2 + q]));
            }
            CHECK(close_rel(ev.v[0], want[8], 1e-9), "event %d: v_action %.12g, reference %.12g",
                  events, ev.v[0], want[8]);
            user_score_add(&us, ring, &spec, &ev, (int64_t)us.n + 1);
            for (int side = 0; side < CH_CHANGE; side++)
                CHECK(close_rel(us.evidence[side], want[9 + side], 1e-9),
                      "event %d: evidence[%d] %.12g, reference %.12g", events, side,
                      us.evidence[side], want[9 + side]);
            CHECK(us.evidence[CH_CHANGE] == SCORE_NO_EVIDENCE,
                  "event %d: change-point evidence %g without fresh surprisal", events,
                  us.evidence[CH_CHANGE]);
            const double want_score = want[9 + CH_CHANGE];
            CHECK(close_rel(us.score, want_score, 1e-9), "event %d: score %.12g, reference %.12g",
                  events, us.score, want_score);
            CHECK(us.peak.start == peak_start && us.peak.end == peak_end && us.peak.part == part,
                  "event %d: peak [%lld, %lld] part %d, reference [%d, %d] part %d", events,
                  (long long)us.peak.start, (long long)us.peak.end, us.peak.part, peak_start,
                  peak_end, part);
            worst_score = fmax(worst_score, fabs(us.score - want_score));
            last_score = us.score;
            events++;
        }
    }
    fclose(f);
    free(ring);
    CHECK(last_n > 0 && close_rel(surprise_window_score(&sp, &spec, last_n, last_y, sp.K + 3, last_a,
                                                        last_g, last_e), last_score, 1e-9),
          "surprise_window_score of the last user differs from the running score");
    printf("  %d users, %d events: largest difference %.3g (parts), %.3g (score)\n", users,
           events, worst_s, worst_score);
    CHECK(events > 100, "fixture has only %d events", events);
}

static void check_statistics(void) {
    // window (W = 2, total excess) and mean on x = 1, 3, -1, 5 (all in the action part).
    const double xs[4] = {1, 3, -1, 5};
    ScoreSpec win = {.statistic = STAT_WINDOW, .window = 2},
              mean = {.statistic = STAT_MEAN, .window = 2};
    RingEntry ring[8];
    UserScore a, b;
    user_score_reset(&a), user_score_reset(&b);
    const double want_win[4] = {1, 2, 2, 2}, want_mean[4] = {1, 2, 1, 2};
    for (int i = 0; i < 4; i++) {
        EventSurprise ev = {.x = {xs[i], 0, 0}, .v = {1, 0.5, 0.5}, .excess = xs[i]};
        user_score_add(&a, ring, &win, &ev, i + 1);
        user_score_add(&b, ring + 4, &mean, &ev, i + 1);
        CHECK(a.score == want_win[i], "window: after %d events %g, want %g", i + 1, a.score, want_win[i]);
        CHECK(b.score == want_mean[i], "mean: after %d events %g, want %g", i + 1, b.score, want_mean[i]);
    }
    CHECK(a.peak.start == 1 && a.peak.end == 2, "window: peak [%lld, %lld], want [1, 2] (the first max)",
          (long long)a.peak.start, (long long)a.peak.end);
    CHECK(a.peak.top[0] == 2 && a.peak.top[1] == 1, "window: top events %lld %lld, want 2 1",
          (long long)a.peak.top[0], (long long)a.peak.top[1]);
}

// The change point on a hand-made sequence: W = 4 (segments of 16 events from t = 4, 8, ...,
// burn-in 1); every event has surprisal 1 (action) under the carried state and under every
// fresh one but the segment from t = 8's (0.5): its ratio is 0.5 per event from event 9 to 23;
// event 12 is also 3 nats more surprising in timing under the carried state than under that
// fresh one, and adds only CP_CLIP_NATS (0.5) of it. The evidence is the largest ratio less
// log(segments past their burn-in).
static void check_change(void) {
    ScoreSpec spec = {.statistic = STAT_ZWINDOW, .window = 4};
    RingEntry ring[16];
    UserScore u;
    user_score_reset(&u);
    CHECK(cp_burn(4) == 1 && cp_burn(8) == 2 && cp_burn(2) == 1, "burn-in W/4 (at least 1)");
    for (int e = 1; e <= 30; e++) {
        EventSurprise ev = {.s = {1, e == 12 ? 3 : 0, 0}, .v = {1, 0.5, 0.5}};
        for (int k = 0; k < CP_SLOTS; k++)
            for (int q = 0; q < N_PARTS; q++) ev.fresh[k][q] = NAN;
        for (int t = 4; t < e; t += 4)
            if (e <= t + cp_len(4) - 1) {
                float *f = ev.fresh[(t / 4) % CP_SLOTS];
                f[0] = t == 8 ? 0.5f : 1.0f, f[1] = e == 12 && t != 8 ? 3.0f : 0, f[2] = 0;
            }
        user_score_add(&u, ring, &spec, &ev, e);
        // Segment 8: 0.5 per event from event 9 on (its burn-in), event 12 0.5 more (clipped).
        const int last = e < 23 ? e : 23;
        const double ratio = e < 9 ? 0 : 0.5 * (last - 8) + (e >= 12 ? 0.5 : 0);
        const double want = e < 5 ? SCORE_NO_EVIDENCE : ratio - log(fmax(1, (e - 1) / 4));
        CHECK(fabs(u.evidence[CH_CHANGE] - want) < 1e-12, "change: after event %d %g, want %g", e,
              u.evidence[CH_CHANGE], want);
    }
    const Peak *pk = &u.side[CH_CHANGE];
    CHECK(pk->kind == PEAK_CHANGE && pk->start == 9 && pk->end == 23,
          "change: peak [%lld, %lld], want [9, 23]", (long long)pk->start, (long long)pk->end);
}

// The calibration's exponential tail: 200 validation users with evidence 1..200 (standardised
// as they are), so the top SCORE_TAIL_SHARE (10 users) start at the knot 191, their mean
// excess is 4.5; past it the score grows by 1 / 4.5 per unit, continuous at the knot.
static void check_tail(void) {
    enum { N = 200 };
    double sorted[N], ke[N + 2], kk[N + 2];
    for (int i = 0; i < N; i++) sorted[i] = i + 1;
    int nk = score_knots(sorted, N, ke, kk);
    ScoreSpec spec = {.statistic = STAT_ZWINDOW, .window = 8, .n_cal = N};
    for (int c = 0; c < N_CHANNELS; c++) {
        spec.cal[c] = ke, spec.cal_count[c] = kk, spec.n_knots[c] = nk;
        spec.cal_loc[c] = 0, spec.cal_scale[c] = 1;
    }
    score_tail(sorted, N, ke, kk, nk, &spec.tail_e[0], &spec.tail_k[0], &spec.tail_beta[0]);
    CHECK(spec.tail_e[0] == 191 && spec.tail_k[0] == 10 && fabs(spec.tail_beta[0] - 4.5) < 1e-12,
          "tail: knot %g (k %g), scale %g; want 191 (10), 4.5", spec.tail_e[0], spec.tail_k[0],
          spec.tail_beta[0]);
    const double at = -log(11.0 / 201);
    CHECK(fabs(score_channel(&spec, 0, 191) - at) < 1e-12, "tail: continuous at its knot");
    CHECK(fabs(score_channel(&spec, 0, 191 + 9) - (at + 2)) < 1e-12, "tail: 2 nats 9 units past it");
    CHECK(fabs(score_channel(&spec, 0, 300) - (at + 109 / 4.5)) < 1e-12,
          "tail: past the last user it goes on at the same rate");
    CHECK(fabs(score_channel(&spec, 1, 300) - (log(201.0) + 300 - 200 - SCORE_KNOT_NATS)) < 1e-12,
          "no tail: past the last knot log(n + 1) + the evidence past it");
    score_tail(sorted, 150, ke, kk, score_knots(sorted, 150, ke, kk), &spec.tail_e[1],
               &spec.tail_k[1], &spec.tail_beta[1]);
    CHECK(spec.tail_beta[1] == 0, "tail: fewer than %d users in it (150 users): none", SCORE_TAIL_MIN);
}

// ---------------------------------------------------------------- change point vs float64

// The change-point channel of one user against tests/tools/make_change_reference.py (float64,
// from the documented definition): the fixture's weights in the C model, the carried sequence
// in lane 0 and every segment (from t = W, 2W, ...; its first row a user's first event) in a
// lane of its own, one model_forward; the scoring core then gets, per event, the carried
// surprisal and each covering segment's fresh one, exactly as score's segment pass and serve's
// fresh rows hand them over. After every event the channel's evidence must agree within
// CHANGE_TOL nats (float32 model against float64: measured about 1e-6), the carried
// surprisal parts within 1e-4, and the final peak window exactly.
#define CHANGE_TOL 1e-4
enum { REF_MAX_N = 64, REF_MAX_LANES = 1 + REF_MAX_N / 4 };

static int read_tensor(FILE *f, const char *name, real *dst, int count) {
    char got[64];
    int n = 0;
    if (fscanf(f, " tensor %63s %d", got, &n) != 2 || strcmp(got, name) != 0 || n != count) {
        CHECK(0, "change reference: expected tensor %s of %d, got %s of %d", name, count, got, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        double v;
        if (fscanf(f, "%lf", &v) != 1) return -1;
        dst[i] = (real)v;
    }
    return 0;
}

static void check_change_reference(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[256];
    if (!fgets(line, sizeof line, f)) line[0] = 0; // the comment line
    int K, EA, V1, EC, NNUM, H, L, E, W;
    double lg_mean, lg_std, eng_sigma, clip;
    if (fscanf(f, " params %d %d %d %d %d %d %d %d %d %lf %lf %lf %lf", &K, &EA, &V1, &EC, &NNUM,
               &H, &L, &E, &W, &lg_mean, &lg_std, &eng_sigma, &clip) != 13) {
        CHECK(0, "%s: no params line", path);
        fclose(f);
        return;
    }
    CHECK(clip == CP_CLIP_NATS, "the reference clips at %g nats, the C at %g", clip, CP_CLIP_NATS);
    const int D = NNUM + 6, SEG = cp_len(W);
    ModelShape shape = {.n_actions = K, .action_embed = EA, .n_cat = 1, .cat_vocab = {V1},
                        .cat_embed = EC, .n_dense = D, .hidden = H, .layers = L, .engagement = E,
                        .max_lanes = REF_MAX_LANES, .window = REF_MAX_N};
    Model *m = model_create(&shape);
    const int I0 = model_input_width(&shape), O = model_outputs(&shape);
    int bad = read_tensor(f, "action_emb", m->p.action_emb, K * EA) ||
              read_tensor(f, "cat_emb", m->p.cat_emb[0], V1 * EC);
    char name[32];
    for (int l = 0; l < L && !bad; l++) {
        snprintf(name, sizeof name, "w_ih%d", l);
        bad |= read_tensor(f, name, m->p.w_ih[l], 4 * H * (l ? H : I0));
        snprintf(name, sizeof name, "w_hh%d", l);
        bad |= read_tensor(f, name, m->p.w_hh[l], 4 * H * H);
        snprintf(name, sizeof name, "bias%d", l);
        bad |= read_tensor(f, name, m->p.bias[l], 4 * H);
    }
    bad = bad || read_tensor(f, "w_head", m->p.w_head, O * H) || read_tensor(f, "b_head", m->p.b_head, O);
    // Events: index, action, content, D dense inputs, log gap and engagement as targets, the
    // reference's carried surprisal parts and evidence after the event.
    static int32_t action[REF_MAX_N], cat[REF_MAX_N];
    static real dense[REF_MAX_N][16], loggap[REF_MAX_N], eng[REF_MAX_N];
    static double want_s[REF_MAX_N][3], want_ev[REF_MAX_N];
    int n = 0, idx;
    while (!bad && n < REF_MAX_N && fscanf(f, " event %d %d %d", &idx, &action[n], &cat[n]) == 3) {
        double v;
        for (int k = 0; k < D; k++) bad |= fscanf(f, "%lf", &v) != 1, dense[n][k] = (real)v;
        bad |= fscanf(f, "%lf", &v) != 1, loggap[n] = (real)v;
        bad |= fscanf(f, "%lf", &v) != 1, eng[n] = (real)v;
        for (int q = 0; q < 3; q++) bad |= fscanf(f, "%lf", &want_s[n][q]) != 1;
        bad |= fscanf(f, "%lf", &want_ev[n]) != 1 || idx != n;
        n++;
    }
    long long want_start = -1, want_end = -1;
    bad |= fscanf(f, " peak %lld %lld", &want_start, &want_end) != 2;
    fclose(f);
    CHECK(!bad && n > 2 * SEG, "%s: unreadable (%d events)", path, n);
    if (bad || n <= 2 * SEG) {
        model_free(m);
        return;
    }
    // Lanes: 0 the carried sequence, 1 + s the segment from t = W (s + 1).
    int n_seg = 0, seg_t[REF_MAX_LANES];
    for (int t = W; t + 2 <= n; t += W) seg_t[n_seg++] = t;
    const int B = 1 + n_seg, T = n;
    int32_t *b_action = xcalloc((size_t)T * B, sizeof(int32_t)), *b_cat = xcalloc((size_t)T * B, sizeof(int32_t));
    int32_t *b_tgt = xmalloc(sizeof(int32_t) * (size_t)T * B);
    real *b_dense = xcalloc((size_t)T * B * D, sizeof(real)), *b_zero = xcalloc((size_t)T * B, sizeof(real));
    uint8_t *b_keep = xmalloc((size_t)T * B);
    uint64_t lane_id[REF_MAX_LANES];
    for (int r = 0; r < T * B; r++) b_tgt[r] = -1, b_keep[r] = r >= B;
    for (int b = 0; b < B; b++) lane_id[b] = (uint64_t)b;
    for (int b = 0; b < B; b++) {
        const int t0 = b == 0 ? 0 : seg_t[b - 1], len = b == 0 ? n : (n - t0 < SEG ? n - t0 : SEG);
        for (int j = 0; j < len; j++) {
            const size_t r = (size_t)j * B + b;
            b_action[r] = action[t0 + j], b_cat[r] = cat[t0 + j];
            memcpy(b_dense + r * D, dense[t0 + j], sizeof(real) * (size_t)D);
            if (j == 0) b_dense[r * D + NNUM] = 0, b_dense[r * D + NNUM + 1] = 1; // a first event
        }
    }
    Batch view = {.lanes = B, .window = T, .action = b_action, .cat = b_cat, .dense = b_dense,
                  .keep = b_keep, .tgt_action = b_tgt, .tgt_loggap = b_zero, .tgt_eng = b_zero,
                  .lane_id = lane_id};
    LaneState st = lane_state_alloc(&shape, B);
    model_forward(m, &view, &st, NULL, NULL, NULL, 0);
    const SurpriseParams sp = {K, E, lg_mean, lg_std, 1e-3, eng_sigma};
    ScoreSpec spec = {.statistic = STAT_ZWINDOW, .window = W};
    RingEntry *ring = xcalloc((size_t)score_ring_len(&spec), sizeof(RingEntry));
    UserScore us;
    user_score_reset(&us);
    double worst = 0, worst_s = 0;
    for (int i = 1; i < n; i++) {
        EventSurprise ev;
        surprise_event(&sp, m->act.y + (size_t)(i - 1) * B * O, action[i], loggap[i], eng[i], &ev);
        for (int s = 0; s < n_seg; s++) {
            const int j = i - seg_t[s];
            if (j < 1 || j >= SEG) continue;
            EventSurprise fe;
            surprise_event(&sp, m->act.y + ((size_t)(j - 1) * B + 1 + s) * O, action[i], loggap[i],
                           eng[i], &fe);
            for (int q = 0; q < N_PARTS; q++) ev.fresh[(seg_t[s] / W) % CP_SLOTS][q] = (float)fe.s[q];
        }
        user_score_add(&us, ring, &spec, &ev, i);
        for (int q = 0; q < 3; q++) worst_s = fmax(worst_s, fabs(ev.s[q] - want_s[i][q]));
        const double got = us.evidence[CH_CHANGE], want = want_ev[i];
        const int none = want <= SCORE_NO_EVIDENCE;
        CHECK(none ? got <= SCORE_NO_EVIDENCE : fabs(got - want) <= CHANGE_TOL,
              "change reference: after event %d evidence %.9g, float64 reference %.9g", i, got, want);
        if (!none) worst = fmax(worst, fabs(got - want));
    }
    CHECK(worst_s <= 1e-4, "change reference: carried surprisal differs by %.3g", worst_s);
    const Peak *pk = &us.side[CH_CHANGE];
    CHECK(pk->kind == PEAK_CHANGE && pk->start == want_start && pk->end == want_end,
          "change reference: peak [%lld, %lld], reference [%lld, %lld]", (long long)pk->start,
          (long long)pk->end, want_start, want_end);
    printf("  %d events, %d segments: evidence within %.3g nats of the float64 reference "
           "(tolerance %g), final %.6f, peak [%lld, %lld]\n",
           n, n_seg, worst, CHANGE_TOL, us.evidence[CH_CHANGE], (long long)pk->start,
           (long long)pk->end);
    free(ring);
    lane_state_free(&st);
    free(b_action), free(b_cat), free(b_tgt), free(b_dense), free(b_zero), free(b_keep);
    model_free(m);
}

static void check_threshold_auroc(void) {
    double s[100];
    for (int i = 0; i < 100; i++) s[i] = 100 - i; // 100 .. 1, unsorted order
    double t = calibrate_threshold(s, 100, 0.05);
    CHECK(t == 95, "threshold at 5%% of 1..100: %g, want 95 (5 users above)", t);
    CHECK(calibrate_threshold(s, 100, 0) == 100, "rate 0: nobody above the threshold");
    CHECK(calibrate_threshold(s, 100, 1) == -INFINITY, "rate 1: everybody above");
    CHECK(calibrate_threshold(s, 0, 0.1) == INFINITY, "no users: +inf");
    // Calibrated scores: -log((1 + k) / (n + 1)), k at or above, continuous between knots.
    double ten[10], ke[12], kk[12];
    for (int i = 0; i < 10; i++) ten[i] = i + 1;
    int nk = score_knots(ten, 10, ke, kk);
    CHECK(nk == 11 && ke[10] == 10 + SCORE_KNOT_NATS && kk[10] == 0 && kk[0] == 10,
          "knots of 1..10: %d knots", nk);
    CHECK(fabs(score_calibrated(ke, kk, nk, 10, 5) + log(7.0 / 11)) < 1e-12, "k(5) = 6");
    CHECK(fabs(score_calibrated(ke, kk, nk, 10, 5.5) + log(6.5 / 11)) < 1e-12, "k(5.5) = 5.5");
    CHECK(score_calibrated(ke, kk, nk, 10, 0) == 0, "below every user: k = n, score 0");
    CHECK(fabs(score_calibrated(ke, kk, nk, 10, 11) - (log(11.0) + 11 - 10 - SCORE_KNOT_NATS)) < 1e-12,
          "beyond the last knot: log(n + 1) + the evidence past it");
    CHECK(fabs(score_calibrated(ke, kk, nk, 10, 10 + SCORE_KNOT_NATS - 1e-9) - log(11.0)) < 1e-6,
          "continuous at the last knot");
    double tied[3] = {1, 1, 2};
    nk = score_knots(tied, 3, ke, kk);
    CHECK(nk == 3 && kk[0] == 3 && kk[1] == 1, "ties: knots (1, 3), (2, 1), got %d knots", nk);
    double pos[2] = {4, 3}, neg[3] = {3, 1, 2};
    double auc = auroc(pos, 2, neg, 3);
    CHECK(fabs(auc - 5.5 / 6) < 1e-12, "auroc %g, want %g (a tie counts one half)", auc, 5.5 / 6);
    CHECK(isnan(auroc(pos, 0, neg, 3)), "auroc without positives is NaN");
}

int main(int argc, char **argv) {
    // Both fixtures are required: a missing path fails instead of skipping the comparison.
    CHECK(argc > 2, "usage: test_irregular FIXTURE CHANGE_REFERENCE (got %d arguments)", argc - 1);
    printf("scoring core against the float64 reference (%s)\n", argc > 1 ? argv[1] : "?");
    if (argc > 1) check_fixture(argv[1]);
    printf("window and mean statistics\n");
    check_statistics();
    printf("change point\n");
    check_change();
    printf("change point against the float64 reference (%s)\n", argc > 2 ? argv[2] : "?");
    if (argc > 2) check_change_reference(argv[2]);
    printf("calibration tail\n");
    check_tail();
    printf("threshold calibration and AUROC\n");
    check_threshold_auroc();
    if (g_failures) {
        printf("test_irregular: %d check(s) FAILED\n", g_failures);
        return 1;
    }
    printf("test_irregular: ok\n");
    return 0;
}
