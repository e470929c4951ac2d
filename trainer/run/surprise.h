// surprise.h: THE scoring core of irregular activity, shared by `trainer score` (a pass over
// users) and `trainer serve` (events as they arrive): per-event surprisal in parts, the
// per-user irregularity score with its peak window and reason, and the calibration of the
// flag threshold from validation users.
//
// Per event i >= 1 of a user, from the model's head outputs y after event i-1 (one row of
// act.y, O = K + 2 + E) and event i's targets (as the batcher builds them):
//   action      s_a = -log p(a_i)                         expected: H(p) (entropy)
//   timing      s_t = -log f(gap_i), the log-normal density of the gap per time unit (as
//               eval's time NLL)                          expected: E[-log f] = mu + log sd + 1/2 + log sqrt(2 pi)
//   engagement  z = (e_i - e_hat) / sigma_e, the residual of the normalised engagement
//               standardised by its RMS on validation users;  s_e = z^2/2 + log sigma_e +
//               log sqrt(2 pi)                            expected: 1/2 + log sigma_e + log sqrt(2 pi)
//   (categorical columns are inputs only, not predicted: they have no part)
// excess = sum over parts of (s - expected): 0 on average for events the model describes well,
// and free of the time unit. (Timing: excess = sd z + (z^2 - 1)/2 with z the standardised
// log-gap, so gaps far shorter than predicted count as well as far longer ones.)
//
// Under the model each part's excess has mean 0 and a variance it also knows: the variance of
// -log p(a) under p for the action, 1/2 for timing and engagement (Gaussian on their scales).
//
// Per user, over the events scored so far (n of them), with windows of w events (the last
// min(n, w) while n < w), one of (score.statistic; W = score.window):
//   zwindow  channels of evidence, each calibrated against the validation users:
//            surprise and regularity: for each window of w = W/4, W and 4W events and each
//            part, Z = sum(x) / sqrt(sum(v)), the part's excess in units of its own standard
//            deviation; two-sided, so behaviour far MORE regular than the model expects (a
//            bot's clockwork gaps) counts as well as surprise; short windows catch a short
//            spree, long ones a sustained bot. Each side's evidence is its largest Z
//            corrected for how many windows were looked at, -log(m Phi(-Z)), m = 3 sum_w
//            max(1, n / w): a long history has more windows to be unlucky in.
//            prediction channels, from what the model predicts rather than how well: the
//            shift of its mean prediction over the last W/2 events against the events before
//            (from event W on), in action mix (total variation) and in engagement: a
//            takeover, a bot's onset; and the levels of its mean prediction over W events:
//            short gaps (bursts), high engagement (sprees). Their evidence is the largest
//            value so far, standardised by the validation users' median and MAD.
//            the change point (CH_CHANGE, segments above): the largest (clipped) ratio of
//            a fresh state against the carried one over a segment's events from its burn-in
//            on (a finished segment's total, an unfinished one's sum so far), standardised
//            the same way; it needs EventSurprise.fresh (surprise_window_score has none).
//            The score is -log of the sum over channels of the calibrated tail shares (a
//            union bound: score_combine), so channels whose tails differ are on one scale.
//   window   max over windows of mean(x), the total excess (one-sided);
//   mean     mean(x) over the whole history.
// The peak window is the (first) window of the maximum (zwindow: of the channel with the
// largest calibrated score); the reason is its part (zwindow; for the others, the part with
// the largest excess sum there), with "-regular" appended when that part was below its
// expectation, "-shift" or "-level" for a prediction channel, and its top events are those
// with the largest |x| of that part; the change point's reason is "<part>-change", the part
// with the largest excess sum in its window.
// The running score after each event is the same function of the events so far, so serve's
// last value for a user equals score's (UserScore is the accumulator both use).
#pragma once
#include <math.h>
#include <stdint.h>

#include "config.h"
#include "model.h"

enum { PART_ACTION, PART_TIMING, PART_ENGAGEMENT, N_PARTS };
// zwindow's channels: the two sides of the excess (surprise, regularity), and the model's
// predictions: how far its mean prediction shifts (action mix, engagement) and how extreme it
// gets (short gaps, high engagement).
// The last, the change point: the log-likelihood ratio of a fresh state against the carried one.
enum {
    CH_SURPRISE, CH_REGULAR, CH_SHIFT_ACTION, CH_SHIFT_ENGAGEMENT, CH_LEVEL_GAP, CH_LEVEL_ENGAGEMENT,
    CH_CHANGE, N_CHANNELS
};
// The change-point channel's segments: from every event t = W, 2W, ... of a user on, a fresh
// LSTM state (the initial one, as for a new user) is fed events t, t + 1, ..., t + 4W - 1 (or
// to the end of the history) alongside the carried one; event t + j (1 <= j < 4W) then has a
// surprisal per part under each. From j = burn-in on, the segment's ratio is the sum over its
// events and parts of min(carried - fresh, CP_CLIP_NATS): large when a state that forgot the
// past explains the events better than the one that remembers it (a takeover). The clip
// bounds what one event can add, so a few outliers that the carried state was too sure about
// (a night owl's unusually long gap: 7 nats of timing in one event) are not a change; the
// clipped sum is at most the log-likelihood ratio, so its tail bound still holds. At most
// CP_SLOTS segments overlap; the one starting at t has slot (t / W) % CP_SLOTS.
// Burn-in W/4 and the clip 0.5 nats were chosen on the validation split (README).
enum { CP_SLOTS = 4 };
#define CP_CLIP_NATS 0.5
static inline int cp_len(int W) {
    return CP_SLOTS * W;
}
static inline int cp_burn(int W) {
    return W / 4 > 0 ? W / 4 : 1;
}
// The slot of the segment starting at event t.
static inline int cp_slot(int64_t t, int W) {
    return (int)((t / W) % CP_SLOTS);
}
// What one event's part adds to a segment's ratio: carried less fresh surprisal, clipped.
static inline double cp_term(double carried, float fresh) {
    return fmin(carried - (double)fresh, CP_CLIP_NATS);
}
// The model's prediction before an event, as the prediction channels use it: the standardised
// mean log-gap, the predicted engagement (normalised; 0 without one) and the action
// probabilities (actions from PRED_MAX_K - 1 on folded into the last).
enum { PRED_MAX_K = 8, PRED_MU = 0, PRED_ENG, PRED_P, N_PRED = PRED_P + PRED_MAX_K };
#define SCORE_NO_EVIDENCE (-1e300) // a channel's evidence before it has any
extern const char *const PART_NAMES[N_PARTS]; // "action", "timing", "engagement"

typedef struct {
    int K, engagement;
    double loggap_mean, loggap_std, gap_offset;
    double eng_sigma; // RMS residual of normalised engagement on validation users (1: unknown)
} SurpriseParams;

typedef struct {
    double s[N_PARTS]; // surprisal, nats
    double x[N_PARTS]; // excess over the expected surprisal
    double v[N_PARTS]; // the excess's variance under the model
    double excess;     // sum of x
    float pred[N_PRED]; // the prediction the event was scored against
    // The event's surprisal per part under each change-point segment's fresh state (slot as
    // above; NAN: no segment of that slot covers the event), rounded to float by score and
    // serve alike. surprise_event sets NAN; the pass (score) or the live scorer (serve) fills
    // them in.
    float fresh[CP_SLOTS][N_PARTS];
} EventSurprise;

SurpriseParams surprise_params(const ModelShape *s, const LossConfig *lc, double eng_sigma);
// y: the head outputs (O) before the event; action, loggap = log(gap + delta), eng = normalised
// engagement: the event's values as the batcher's targets hold them.
void surprise_event(const SurpriseParams *p, const real *y, int action, real loggap, real eng,
                    EventSurprise *out);

enum { STAT_ZWINDOW, STAT_WINDOW, STAT_MEAN };
extern const char *const STAT_NAMES[3]; // "zwindow", "window", "mean"
enum { SCORE_TOP = 3 };
typedef struct {
    int statistic, window;
    // zwindow: knots of the validation users' evidence per side (score_knots; n_cal = 0: none
    // yet, the score is the raw evidence).
    const double *cal[N_CHANNELS], *cal_count[N_CHANNELS];
    int n_knots[N_CHANNELS];
    // The evidence is standardised as (e - loc) / scale before the knots (the shift channels:
    // median and MAD of the validation users; the others 0 and 1).
    double cal_loc[N_CHANNELS], cal_scale[N_CHANNELS];
    // Past the standardised evidence tail_e (the knot at or above which the top
    // SCORE_TAIL_SHARE of the validation users lie, tail_k of them) the tail is exponential
    // with the mean excess over tail_e as its scale (tail_beta; 0: none, the knots all the way).
    double tail_e[N_CHANNELS], tail_k[N_CHANNELS], tail_beta[N_CHANNELS];
    long long n_cal;
} ScoreSpec;
ScoreSpec score_spec_from(const Config *cfg);

typedef struct {
    float x[N_PARTS]; // excess per part (float: 4W of them per user, in serve's memory)
    float v_action;   // the action part's variance (timing's and engagement's are 1/2)
    float pred[N_PRED];
    int64_t event;
} RingEntry;
// Entries of the ring a user's UserScore needs: 4W.
static inline int score_ring_len(const ScoreSpec *s) {
    return 4 * s->window;
}

enum { PEAK_Z, PEAK_SHIFT, PEAK_LEVEL, PEAK_CHANGE };
// A window where a statistic peaked: its Z (zwindow) and part, the excess sums per part, its
// first and last event and its top events.
typedef struct {
    double z;
    int part, kind; // kind: PEAK_Z (z a Z), PEAK_SHIFT, PEAK_LEVEL, PEAK_CHANGE (the value)
    double parts[N_PARTS];
    int64_t start, end;
    int64_t top[SCORE_TOP]; // event indices, -1: none
    double top_x[SCORE_TOP];
} Peak;

// The running irregularity of one user; ring: score_ring_len entries of caller memory (the
// accumulator is plain data: serve snapshots it as bytes, with the ring after it).
// zwindow keeps N_CHANNELS channels: surprise, the largest Z of any part; regularity, the
// largest -Z; the prediction channels' largest values. Each channel's evidence is turned into
// a calibrated score -log((1 + k) / (n + 1)), k of the n validation users having at least
// that evidence on that channel (score_channel; ScoreSpec.cal; the raw evidence while
// calibrating), and the user's score combines them (score_combine). (Measured against one
// surprise channel per part and side, and against the largest channel instead of the union:
// both rank worse; README.)
typedef struct {
    int64_t n;            // events scored
    double score;         // running score (valid when n > 0)
    double evidence[N_CHANNELS]; // zwindow: raw evidence per channel
    Peak side[N_CHANNELS];       // zwindow: each channel's peak; window/mean: side[0]
    Peak peak;            // the channel with the largest calibrated score
    double sum[N_PARTS];  // statistic mean: running sums
    double pred_sum[N_PRED]; // zwindow: sum of the predictions from the W-th event on
    double cp_sum[CP_SLOTS]; // zwindow: each change-point segment's ratio so far
    Peak cp_done;            // zwindow: the largest ratio of a finished segment (kind PEAK_Z: none)
} UserScore;

void user_score_reset(UserScore *u);
void user_score_add(UserScore *u, RingEntry *ring, const ScoreSpec *spec, const EventSurprise *ev,
                    int64_t event);
int user_score_reason(const UserScore *u); // the dominant part of the peak window
// "timing", or "timing-regular" when that part was below its expectation there.
const char *user_score_reason_text(const UserScore *u);
// "12 15 18": the top events of the peak window.
void user_score_top_text(const UserScore *u, char *out, size_t cap);

// The irregularity of a stretch of one user's events as a function of the model's outputs
// (for `explain --target irregularity`): y (n, O) the head outputs before each event, action,
// loggap, eng (n) the events' values as targets; the score after the n events.
double surprise_window_score(const SurpriseParams *sp, const ScoreSpec *spec, int n, const real *y,
                             int O, const int32_t *action, const real *loggap, const real *eng);

// A side's calibration from the sorted evidence of n validation users: knots (e, k), k the
// users at or above e, at least SCORE_KNOT_NATS apart, the last (max + SCORE_KNOT_NATS, 0);
// knot_e, knot_k need n + 1 entries. Returns the number of knots.
#define SCORE_KNOT_NATS 0.05
int score_knots(const double *sorted, long long n, double *knot_e, double *knot_k);
// The calibrated score of evidence e: -log((1 + k(e)) / (n + 1)), k interpolated linearly
// between knots (continuous, and no steeper than the knots' spacing allows: float-level
// differences in e, serve's batches against score's, stay that small); beyond the last knot
// log(n + 1) plus the evidence past it; below the first, k = n.
double score_calibrated(const double *knot_e, const double *knot_k, int n_knots, long long n,
                        double e);
// The tail of a channel's calibration (ScoreSpec.tail_*), from the same sorted standardised
// evidence and its knots: the top SCORE_TAIL_SHARE of the validation users (at least
// SCORE_TAIL_MIN of them, else none: *beta = 0) are summarised by an exponential tail (the
// peaks-over-threshold estimate: scale = their mean excess over the knot where they start).
// The validation users include irregular ones, which bunch at the top of the channel that
// finds them: counted one by one they would cap the score of every user like them at
// -log((1 + k) / (n + 1)), k = those alike (a test burst ranked among the validation bursts);
// the fitted tail goes on growing. SCORE_TAIL_SHARE was chosen on the validation split.
#define SCORE_TAIL_SHARE 0.05
#define SCORE_TAIL_MIN 10
void score_tail(const double *sorted, long long n, const double *knot_e, const double *knot_k,
                int n_knots, double *tail_e, double *tail_k, double *beta);
// The user's score from its channels' calibrated scores sc (N_CHANNELS): -log of the sum of
// the channels' tail shares exp(-sc), a union bound (one strong channel or several moderate
// ones); *top (if not NULL) gets the channel with the largest.
double score_combine(const double *sc, int *top);
// Channel c's calibrated score of raw evidence e under spec (standardised, then the knots).
double score_channel(const ScoreSpec *spec, int c, double e);

// The flag threshold: the (1 - rate) quantile of the validation users' scores, so that a
// share `rate` of them lies strictly above it (sorts scores in place). n = 0: +inf.
double calibrate_threshold(double *scores, long long n, double rate);
