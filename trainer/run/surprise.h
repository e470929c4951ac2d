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
// Per user, over the excesses x_1..x_n of its scored events (statistic `window`, W events):
//   n <  W: score = mean(x_1..x_n), the peak window is all of them;
//   n >= W: score = max over j of mean(x_j..x_{j+W-1}), the peak window is the first argmax.
// (`mean`: the mean over the whole history.) The reason is the part with the largest excess
// sum in the peak window, and its top events (largest excess) are named by event index. The
// running score after each event is the same function of the events so far, so serve's last
// value for a user equals score's (UserScore is the accumulator both use).
#pragma once
#include <stdint.h>

#include "config.h"
#include "model.h"

enum { PART_ACTION, PART_TIMING, PART_ENGAGEMENT, N_PARTS };
extern const char *const PART_NAMES[N_PARTS]; // "action", "timing", "engagement"

typedef struct {
    int K, engagement;
    double loggap_mean, loggap_std, gap_offset;
    double eng_sigma; // RMS residual of normalised engagement on validation users (1: unknown)
} SurpriseParams;

typedef struct {
    double s[N_PARTS]; // surprisal, nats
    double x[N_PARTS]; // excess over the expected surprisal
    double excess;     // sum of x
} EventSurprise;

SurpriseParams surprise_params(const ModelShape *s, const LossConfig *lc, double eng_sigma);
// y: the head outputs (O) before the event; action, loggap = log(gap + delta), eng = normalised
// engagement: the event's values as the batcher's targets hold them.
void surprise_event(const SurpriseParams *p, const real *y, int action, real loggap, real eng,
                    EventSurprise *out);

enum { STAT_WINDOW, STAT_MEAN };
enum { SCORE_TOP = 3 };
typedef struct {
    int statistic, window;
} ScoreSpec;
ScoreSpec score_spec_from(const Config *cfg);

typedef struct {
    double x[N_PARTS];
    int64_t event;
} RingEntry;

// The running irregularity of one user; ring: spec.window entries of caller memory (the
// accumulator is plain data: serve snapshots it as bytes, with the ring after it).
typedef struct {
    int64_t n;                  // events scored
    double score;               // running score (valid when n > 0)
    double peak_parts[N_PARTS]; // excess sums per part over the peak window
    int64_t peak_start, peak_end;
    int64_t top[SCORE_TOP]; // event indices, -1: none
    double top_x[SCORE_TOP];
    double sum[N_PARTS]; // statistic mean: running sums
} UserScore;

void user_score_reset(UserScore *u);
void user_score_add(UserScore *u, RingEntry *ring, const ScoreSpec *spec, const EventSurprise *ev,
                    int64_t event);
int user_score_reason(const UserScore *u); // the dominant part of the peak window
// "12 15 18": the top events of the peak window.
void user_score_top_text(const UserScore *u, char *out, size_t cap);

// The flag threshold: the (1 - rate) quantile of the validation users' scores, so that a
// share `rate` of them lies strictly above it (sorts scores in place). n = 0: +inf.
double calibrate_threshold(double *scores, long long n, double rate);
