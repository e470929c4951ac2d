// surprise.c: see surprise.h. Everything in double, from the float head outputs.
#include "surprise.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *const PART_NAMES[N_PARTS] = {"action", "timing", "engagement"};
const char *const STAT_NAMES[3] = {"zwindow", "window", "mean"};

#define LOG_SQRT_2PI 0.9189385332046727

SurpriseParams surprise_params(const ModelShape *s, const LossConfig *lc, double eng_sigma) {
    SurpriseParams p = {s->n_actions, s->engagement, lc->loggap_mean, lc->loggap_std,
                        lc->gap_offset, eng_sigma > 0 ? eng_sigma : 1.0};
    return p;
}

void surprise_event(const SurpriseParams *p, const real *y, int action, real loggap, real eng,
                    EventSurprise *out) {
    const int K = p->K;
    // Action: -log softmax and the entropy of the prediction.
    double mx = y[0];
    for (int k = 1; k < K; k++) mx = y[k] > mx ? y[k] : mx;
    double z = 0, ey = 0, ey2 = 0; // sums of e, e (y - mx), e (y - mx)^2
    for (int k = 0; k < K; k++) {
        double d = (double)y[k] - mx, e = exp(d);
        z += e, ey += e * d, ey2 += e * d * d;
    }
    double logz = log(z);
    for (int k = 0; k < PRED_MAX_K; k++) out->pred[PRED_P + k] = 0;
    for (int k = 0; k < K; k++)
        out->pred[PRED_P + (k < PRED_MAX_K ? k : PRED_MAX_K - 1)] += (float)(exp((double)y[k] - mx) / z);
    out->pred[PRED_MU] = y[K];
    out->pred[PRED_ENG] = p->engagement ? y[K + 2] : 0;
    out->s[PART_ACTION] = logz - ((double)y[action] - mx);
    out->x[PART_ACTION] = out->s[PART_ACTION] - (logz - ey / z);
    // Var[-log p(a)] = Var[y_a] under p.
    out->v[PART_ACTION] = fmax(ey2 / z - (ey / z) * (ey / z), 1e-6);
    // Timing: x = log(gap + delta) ~ N(mu, sd), scored on that log scale (unit-free; a gap
    // 20 times shorter than predicted is as surprising as one 20 times longer).
    double mu = p->loggap_mean + p->loggap_std * (double)y[K];
    double log_sd = log(p->loggap_std) + (double)y[K + 1];
    double u = ((double)loggap - mu) / exp(log_sd);
    out->s[PART_TIMING] = log_sd + 0.5 * u * u + LOG_SQRT_2PI;
    out->x[PART_TIMING] = 0.5 * (u * u - 1.0);
    out->v[PART_TIMING] = 0.5;
    // Engagement: the standardised residual.
    if (p->engagement) {
        double r = ((double)eng - (double)y[K + 2]) / p->eng_sigma;
        out->s[PART_ENGAGEMENT] = 0.5 * r * r + log(p->eng_sigma) + LOG_SQRT_2PI;
        out->x[PART_ENGAGEMENT] = 0.5 * (r * r - 1.0);
        out->v[PART_ENGAGEMENT] = 0.5;
    } else {
        out->s[PART_ENGAGEMENT] = out->x[PART_ENGAGEMENT] = out->v[PART_ENGAGEMENT] = 0;
    }
    out->excess = out->x[0] + out->x[1] + out->x[2];
    for (int k = 0; k < CP_SLOTS; k++)
        for (int q = 0; q < N_PARTS; q++) out->fresh[k][q] = NAN;
}

ScoreSpec score_spec_from(const Config *cfg) {
    ScoreSpec s = {.statistic = STAT_ZWINDOW, .window = (int)cfg->score.window}; // tails: none
    for (int c = 0; c < N_CHANNELS; c++) s.cal_loc[c] = 0, s.cal_scale[c] = 1;
    for (int k = 0; k < 3; k++)
        if (strcmp(cfg->score.statistic, STAT_NAMES[k]) == 0) s.statistic = k;
    return s;
}

static void peak_reset(Peak *pk) {
    memset(pk, 0, sizeof *pk);
    for (int i = 0; i < SCORE_TOP; i++) pk->top[i] = -1, pk->top_x[i] = -INFINITY;
}

void user_score_reset(UserScore *u) {
    memset(u, 0, sizeof *u);
    for (int c = 0; c < N_CHANNELS; c++) peak_reset(&u->side[c]), u->evidence[c] = -INFINITY;
    peak_reset(&u->peak);
    peak_reset(&u->cp_done);
}

// Inserts (event, x) into the top list if it belongs there (ties: the earlier event stays).
static void top_insert(Peak *pk, int64_t event, double x) {
    int i = SCORE_TOP;
    while (i > 0 && x > pk->top_x[i - 1]) i--;
    if (i == SCORE_TOP) return;
    for (int j = SCORE_TOP - 1; j > i; j--) pk->top[j] = pk->top[j - 1], pk->top_x[j] = pk->top_x[j - 1];
    pk->top[i] = event, pk->top_x[i] = x;
}

// The window is entries [first, first + len) of the ring in event order; its top events by
// |x| of `part` (-1: by the total excess).
static void set_peak(Peak *pk, const RingEntry *ring, int cap, int64_t first, int len, int part,
                     double z) {
    peak_reset(pk);
    pk->z = z, pk->part = part < 0 ? 0 : part;
    for (int k = 0; k < len; k++) {
        const RingEntry *e = &ring[(first + k) % cap];
        for (int p = 0; p < N_PARTS; p++) pk->parts[p] += e->x[p];
        double t = (double)e->x[0] + e->x[1] + e->x[2];
        top_insert(pk, e->event, part < 0 ? t : fabs(e->x[part]));
    }
    pk->start = ring[first % cap].event;
    pk->end = ring[(first + len - 1) % cap].event;
}

// log Phi(-z): the upper tail of a standard normal, without underflow.
static double log_upper_tail(double z) {
    if (z < 8) return log(0.5 * erfc(z / 1.4142135623730951));
    return -0.5 * z * z - log(z) - 0.9189385332046727; // asymptotic: phi(z) / z
}

int score_knots(const double *sorted, long long n, double *knot_e, double *knot_k) {
    if (n == 0) return 0;
    int m = 0;
    knot_e[m] = sorted[n - 1] + SCORE_KNOT_NATS, knot_k[m++] = 0; // descending for now
    for (long long i = n - 1; i >= 0; i--) {
        if (i > 0 && sorted[i - 1] == sorted[i]) continue; // ties: the lowest index counts all
        if (m == 1 || sorted[i] <= knot_e[m - 1] - SCORE_KNOT_NATS || i == 0)
            knot_e[m] = sorted[i], knot_k[m++] = (double)(n - i);
    }
    for (int a = 0, b = m - 1; a < b; a++, b--) { // ascending
        double te = knot_e[a], tk = knot_k[a];
        knot_e[a] = knot_e[b], knot_k[a] = knot_k[b], knot_e[b] = te, knot_k[b] = tk;
    }
    return m;
}

double score_calibrated(const double *knot_e, const double *knot_k, int n_knots, long long n,
                        double e) {
    if (n_knots == 0) return e;
    if (e >= knot_e[n_knots - 1]) return log((double)(n + 1)) + (e - knot_e[n_knots - 1]);
    double k = (double)n;
    if (e > knot_e[0]) {
        int lo = 0, hi = n_knots - 1; // knot_e[lo] < e <= knot_e[hi]
        while (hi - lo > 1) {
            int mid = (lo + hi) / 2;
            if (knot_e[mid] < e) lo = mid;
            else hi = mid;
        }
        double t = (e - knot_e[lo]) / (knot_e[hi] - knot_e[lo]);
        k = knot_k[lo] + t * (knot_k[hi] - knot_k[lo]);
    }
    return -log((1.0 + k) / (double)(n + 1));
}

void score_tail(const double *sorted, long long n, const double *knot_e, const double *knot_k,
                int n_knots, double *tail_e, double *tail_k, double *beta) {
    *tail_e = *tail_k = *beta = 0;
    const double want = ceil(SCORE_TAIL_SHARE * (double)n);
    if (want < SCORE_TAIL_MIN) return;
    // The highest knot with at least `want` users at or above it (never the last: k = 0).
    int i = n_knots - 1;
    while (i >= 0 && knot_k[i] < want) i--;
    if (i < 0 || knot_e[i] <= SCORE_NO_EVIDENCE) return;
    double sum = 0;
    const long long k = (long long)knot_k[i];
    for (long long j = n - k; j < n; j++) sum += sorted[j] - knot_e[i];
    if (!(sum > 1e-9 * (double)k)) return; // all tied: no scale
    *tail_e = knot_e[i], *tail_k = knot_k[i], *beta = sum / (double)k;
}

double score_channel(const ScoreSpec *spec, int c, double e) {
    if (spec->n_cal <= 0) return e;
    if (e <= SCORE_NO_EVIDENCE) return 0; // the validation users' lowest
    const double z = (e - spec->cal_loc[c]) / spec->cal_scale[c];
    // Past the tail's knot: its share there, falling by e per tail_beta (continuous at the knot).
    if (spec->tail_beta[c] > 0 && z > spec->tail_e[c])
        return -log((1.0 + spec->tail_k[c]) / (double)(spec->n_cal + 1)) +
               (z - spec->tail_e[c]) / spec->tail_beta[c];
    return score_calibrated(spec->cal[c], spec->cal_count[c], spec->n_knots[c], spec->n_cal, z);
}

double score_combine(const double *sc, int *top) {
    int t = 0;
    for (int c = 1; c < N_CHANNELS; c++)
        if (sc[c] > sc[t]) t = c;
    double sum = 0;
    for (int c = 0; c < N_CHANNELS; c++) sum += exp(sc[c] - sc[t]);
    if (top) *top = t;
    return sc[t] + log(sum);
}

// The prediction channels (shifts and levels) after the newest entry (u->n counts it): the
// model's mean prediction over the last A = W / 2 events against its mean over the events
// before them from event W on (the model's warm-up on a new user left out; at least W / 2 of
// them): the action shift is the total variation between the two mean action distributions,
// the engagement shift the change of the predicted engagement. The levels, over the last W
// events: short gaps (-mean standardised log-gap) and high predicted engagement. Each
// channel's peak is its largest value, at those last events.
static void prediction_add(UserScore *u, const RingEntry *ring, int W, int engagement) {
    const int cap = 4 * W, skip = W, A = W / 2 > 0 ? W / 2 : 1;
    if (u->n > skip)
        for (int k = 0; k < N_PRED; k++) u->pred_sum[k] += ring[(u->n - 1) % cap].pred[k];
    double v[N_CHANNELS] = {0};
    int len[N_CHANNELS] = {0}, part[N_CHANNELS] = {0};
    const int64_t nb = u->n - A - skip;
    if (nb >= (W + 1) / 2) {
        double after[N_PRED] = {0}, tv = 0;
        for (int j = 0; j < A; j++)
            for (int k = 0; k < N_PRED; k++) after[k] += ring[(u->n - A + j) % cap].pred[k];
        for (int k = 0; k < N_PRED; k++)
            after[k] = after[k] / A - (u->pred_sum[k] - after[k]) / (double)nb; // the change
        for (int k = PRED_P; k < N_PRED; k++) tv += 0.5 * fabs(after[k]);
        v[CH_SHIFT_ACTION] = tv, len[CH_SHIFT_ACTION] = A, part[CH_SHIFT_ACTION] = PART_ACTION;
        v[CH_SHIFT_ENGAGEMENT] = fabs(after[PRED_ENG]), part[CH_SHIFT_ENGAGEMENT] = PART_ENGAGEMENT;
        len[CH_SHIFT_ENGAGEMENT] = engagement ? A : 0;
    }
    if (u->n >= W) {
        double m[N_PRED] = {0};
        for (int j = 0; j < W; j++)
            for (int k = 0; k < N_PRED; k++) m[k] += ring[(u->n - W + j) % cap].pred[k];
        v[CH_LEVEL_GAP] = -m[PRED_MU] / W, len[CH_LEVEL_GAP] = W, part[CH_LEVEL_GAP] = PART_TIMING;
        v[CH_LEVEL_ENGAGEMENT] = m[PRED_ENG] / W, part[CH_LEVEL_ENGAGEMENT] = PART_ENGAGEMENT;
        len[CH_LEVEL_ENGAGEMENT] = engagement ? W : 0;
    }
    for (int c = CH_SHIFT_ACTION; c < N_CHANNELS; c++) {
        Peak *pk = &u->side[c];
        if (len[c] == 0 || (pk->kind != PEAK_Z && v[c] <= pk->z)) continue;
        set_peak(pk, ring, cap, u->n - len[c], len[c], part[c], v[c]);
        pk->kind = c < CH_LEVEL_GAP ? PEAK_SHIFT : PEAK_LEVEL;
    }
}

// The window of the last len entries as the change point's peak (its part: the largest excess
// sum there).
static void change_peak(Peak *pk, const RingEntry *ring, int cap, int64_t n, int len, double v) {
    set_peak(pk, ring, cap, n - len, len, -1, v);
    int part = 0;
    for (int p = 1; p < N_PARTS; p++)
        if (pk->parts[p] > pk->parts[part]) part = p;
    // Top events again by that part (set_peak ranked them by the total).
    set_peak(pk, ring, cap, n - len, len, part, v);
    pk->kind = PEAK_CHANGE;
}

// The change-point channel after event `event` (u->n counts it; the ring holds 4W entries):
// every segment covering it (starts t = kW >= W, t < event <= t + 4W - 1) adds carried minus
// fresh surprisal (per part, clipped at CP_CLIP_NATS) from its burn-in on; a segment's last event folds its total into cp_done.
// The channel's peak is the largest of cp_done and the unfinished segments' sums.
static void change_add(UserScore *u, const RingEntry *ring, int W, const EventSurprise *ev,
                       int64_t event) {
    const int L = cp_len(W), burn = cp_burn(W), cap = 4 * W;
    double open_sum[CP_SLOTS];
    int open_len[CP_SLOTS], n_open = 0;
    for (int64_t t = (event - 1) / W * W; t >= W && t > event - L; t -= W) {
        const int k = cp_slot(t, W);
        const int64_t j = event - t;
        if (j == 1) u->cp_sum[k] = 0;
        if (j < burn || isnan(ev->fresh[k][0])) continue;
        double d = 0; // carried less fresh surprisal, each part's at most CP_CLIP_NATS
        for (int p = 0; p < N_PARTS; p++) d += cp_term(ev->s[p], ev->fresh[k][p]);
        u->cp_sum[k] += d;
        const int len = (int)(j - burn + 1);
        if (j < L - 1) open_sum[n_open] = u->cp_sum[k], open_len[n_open++] = len;
        else if (u->cp_done.kind != PEAK_CHANGE || u->cp_sum[k] > u->cp_done.z)
            change_peak(&u->cp_done, ring, cap, u->n, len, u->cp_sum[k]);
    }
    double best = u->cp_done.kind == PEAK_CHANGE ? u->cp_done.z : -INFINITY;
    int best_len = 0;
    for (int i = 0; i < n_open; i++)
        if (open_sum[i] > best) best = open_sum[i], best_len = open_len[i];
    if (best_len > 0) change_peak(&u->side[CH_CHANGE], ring, cap, u->n, best_len, best);
    else if (u->cp_done.kind == PEAK_CHANGE) u->side[CH_CHANGE] = u->cp_done;
}

// The zwindow statistic after the newest entry (u->n counts it); ring holds 4W entries.
static void zwindow_add(UserScore *u, RingEntry *ring, const ScoreSpec *spec, const EventSurprise *ev,
                        int64_t event) {
    const int engagement = ev->v[PART_ENGAGEMENT] > 0;
    const int W = spec->window, cap = 4 * W, scales[3] = {W / 4 > 0 ? W / 4 : 1, W, 4 * W};
    double m = 0;
    for (int k = 0; k < 3; k++) {
        const int w = scales[k], len = u->n < w ? (int)u->n : w;
        const int64_t first = u->n - len;
        m += (N_PARTS + 1) * (u->n > w ? (double)u->n / w : 1.0);
        if (k > 0 && w == scales[k - 1]) continue; // the same windows as the last scale
        // Per part, and (index N_PARTS) all parts together: their excesses are independent
        // under the model, so a bot a little too regular in every part adds up.
        double sx[N_PARTS + 1] = {0}, sv[N_PARTS + 1] = {0};
        for (int j = 0; j < len; j++) {
            const RingEntry *e = &ring[(first + j) % cap];
            for (int p = 0; p < N_PARTS; p++) sx[p] += e->x[p];
            sv[PART_ACTION] += e->v_action;
        }
        sv[PART_TIMING] = 0.5 * len, sv[PART_ENGAGEMENT] = engagement ? 0.5 * len : 0;
        for (int p = 0; p < N_PARTS; p++) sx[N_PARTS] += sx[p], sv[N_PARTS] += sv[p];
        for (int p = 0; p <= N_PARTS; p++) {
            if (sv[p] <= 0) continue;
            double z = sx[p] / sqrt(sv[p]);
            // Every window seen so far competes (while n < w, the history so far is one).
            for (int side = 0; side < 2; side++) {
                Peak *pk = &u->side[side];
                double v = side ? -z : z;
                if (!((u->n == 1 && k == 0 && p == 0) || v > (side ? -pk->z : pk->z))) continue;
                int part = p;
                if (p == N_PARTS) { // the part that contributed most to this side
                    part = 0;
                    for (int q = 1; q < N_PARTS; q++)
                        if (side ? sx[q] < sx[part] : sx[q] > sx[part]) part = q;
                }
                set_peak(pk, ring, cap, first, len, part, z);
            }
        }
    }
    prediction_add(u, ring, W, engagement);
    change_add(u, ring, W, ev, event);
    // Segments past their burn-in so far (t = kW, k >= 1, t + burn <= event).
    const double m_cp = fmax(1.0, (double)((event - cp_burn(W)) / W));
    double sc[N_CHANNELS];
    for (int c = 0; c < N_CHANNELS; c++) {
        const Peak *pk = &u->side[c];
        // A prediction channel not reached yet (too few events) has the lowest evidence.
        // The change point's ratio, a log-likelihood ratio: P(ratio > r) <= exp(-r) under the
        // carried model, so the largest of m_cp segments less log(m_cp) (as the surprise's m).
        u->evidence[c] = c == CH_SURPRISE          ? -log(m) - log_upper_tail(pk->z)
                         : c == CH_REGULAR         ? -log(m) - log_upper_tail(-pk->z)
                         : pk->kind == PEAK_CHANGE ? pk->z - log(m_cp)
                         : pk->kind != PEAK_Z      ? pk->z
                                                   : SCORE_NO_EVIDENCE;
        sc[c] = score_channel(spec, c, u->evidence[c]);
    }
    int top = 0;
    u->score = score_combine(sc, &top);
    u->peak = u->side[top];
}

void user_score_add(UserScore *u, RingEntry *ring, const ScoreSpec *spec, const EventSurprise *ev,
                    int64_t event) {
    Peak *pk = &u->side[0];
    if (spec->statistic == STAT_MEAN) {
        for (int p = 0; p < N_PARTS; p++) u->sum[p] += ev->x[p], pk->parts[p] = u->sum[p];
        if (u->n == 0) pk->start = event;
        pk->end = event;
        top_insert(pk, event, ev->excess);
        u->n++;
        u->score = (u->sum[0] + u->sum[1] + u->sum[2]) / (double)u->n;
        u->peak = *pk;
        return;
    }
    const int W = spec->window, cap = score_ring_len(spec);
    RingEntry *slot = &ring[u->n % cap];
    for (int p = 0; p < N_PARTS; p++) slot->x[p] = (float)ev->x[p];
    slot->v_action = (float)ev->v[PART_ACTION];
    memcpy(slot->pred, ev->pred, sizeof slot->pred);
    slot->event = event;
    u->n++;
    if (spec->statistic == STAT_ZWINDOW) {
        zwindow_add(u, ring, spec, ev, event);
        return;
    }
    // The window's sum is recomputed from the ring every event (W adds, in event order), so
    // it never drifts and serve and score add the same numbers in the same order.
    int len = u->n < W ? (int)u->n : W;
    int64_t first = u->n - len;
    double sum = 0;
    for (int k = 0; k < len; k++) {
        const float *x = ring[(first + k) % cap].x;
        sum += (double)x[0] + x[1] + x[2];
    }
    double mean = sum / len;
    if (u->n <= W || mean > u->score) {
        u->score = mean;
        set_peak(pk, ring, cap, first, len, -1, 0);
        u->peak = *pk;
    }
}

int user_score_reason(const UserScore *u) {
    if (u->peak.z != 0) return u->peak.part;
    int best = 0;
    for (int p = 1; p < N_PARTS; p++)
        if (u->peak.parts[p] > u->peak.parts[best]) best = p;
    return best;
}

const char *user_score_reason_text(const UserScore *u) {
    static const char *const REGULAR[N_PARTS] = {"action-regular", "timing-regular",
                                                 "engagement-regular"};
    static const char *const SHIFT[N_PARTS] = {"action-shift", "timing-shift", "engagement-shift"};
    static const char *const LEVEL[N_PARTS] = {"action-level", "timing-level", "engagement-level"};
    static const char *const CHANGE[N_PARTS] = {"action-change", "timing-change",
                                                "engagement-change"};
    int p = user_score_reason(u);
    if (u->peak.kind == PEAK_CHANGE) return CHANGE[p];
    if (u->peak.kind != PEAK_Z) return u->peak.kind == PEAK_SHIFT ? SHIFT[p] : LEVEL[p];
    return u->peak.parts[p] < 0 ? REGULAR[p] : PART_NAMES[p];
}

void user_score_top_text(const UserScore *u, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < SCORE_TOP && u->peak.top[i] >= 0 && len + 24 < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%lld", i ? " " : "",
                                (long long)u->peak.top[i]);
}

double surprise_window_score(const SurpriseParams *sp, const ScoreSpec *spec, int n, const real *y,
                             int O, const int32_t *action, const real *loggap, const real *eng) {
    RingEntry *ring = xcalloc((size_t)score_ring_len(spec), sizeof(RingEntry));
    UserScore u;
    user_score_reset(&u);
    for (int i = 0; i < n; i++) {
        EventSurprise ev;
        surprise_event(sp, y + (size_t)i * O, action[i], loggap[i], eng[i], &ev);
        user_score_add(&u, ring, spec, &ev, i + 1);
    }
    free(ring);
    return n > 0 ? u.score : 0;
}

static int by_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double calibrate_threshold(double *scores, long long n, double rate) {
    if (n <= 0) return INFINITY;
    qsort(scores, (size_t)n, sizeof(double), by_double);
    long long k = (long long)ceil((1.0 - rate) * (double)n - 1e-9); // users at or below
    if (k <= 0) return -INFINITY;
    if (k > n) k = n;
    return scores[k - 1];
}
