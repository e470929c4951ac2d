// irregular.h: the pass over users of `trainer score` and its calibration, built on the scoring
// core (surprise.h) and the shared pass (scoring.h); also what serve needs from calibration.
//
// irregular_pass() feeds every user of a split through the model once (scorer_pass_on) and, per
// lane, keeps the user's UserScore: on_event sees every scored event, on_user each user once
// after its last event. irregular_calibrate() runs on the validation users of the experiment's
// prepared data: one pass for the engagement residual's RMS (sigma_e), one for the users'
// scores, whose (1 - flag_rate) quantile is the flag threshold (the same on every rank), and
// for the mean and SD of the baseline's features.
//
// The baseline a model must beat: z-scores (against validation users) of hand-made per-user
// features of the raw events, the user's baseline score being the largest |z|:
//   log-gap mean and SD; the smallest mean and SD of log gaps over score.window events (bursts,
//   bots); the largest share of one action over a window (repetition); the largest mean
//   log1p(engagement) over a window (sprees); the change between the two halves of the history
//   in action mix (total variation), mean log gap and hour of day (takeovers).
#pragma once
#include "scoring.h"
#include "surprise.h"

enum { BASE_N_FEATURES = 9 };

typedef struct {
    double eng_sigma;    // RMS residual of the normalised engagement on validation users
    double threshold;    // flag when score > threshold
    double flag_rate;    // the share of validation users above it
    long long n_users;   // validation users scored
    double valid_events; // their scored events
    double base_mean[BASE_N_FEATURES], base_sd[BASE_N_FEATURES];
    double *knot_e[N_CHANNELS], *knot_k[N_CHANNELS]; // zwindow: calibration knots per channel
} Calibration;

typedef void (*IrregularEvent)(void *ctx, const ShardUser *u, const Shard *sh, int64_t event,
                               const EventSurprise *ev, const UserScore *us);
typedef void (*IrregularUser)(void *ctx, const ShardUser *u, const Shard *sh, const UserScore *us);

// One pass over `split` of ds (NULL: the scorer's own data and split).
void irregular_pass(Scorer *sc, const Dataset *ds, int split, const ScoreSpec *spec,
                    const SurpriseParams *sp, IrregularEvent on_event, IrregularUser on_user,
                    void *ctx);
// Collective. Loads the validation split, runs the two passes; fills *cal on every rank and
// points spec->cal at its evidence (zwindow), so scores are calibrated from then on.
void irregular_calibrate(Scorer *sc, ScoreSpec *spec, double flag_rate, Calibration *cal);
void calibration_free(Calibration *cal);

// The baseline's features of one user (BASE_N_FEATURES values) and its score given the
// validation statistics.
void baseline_features(const Shard *sh, const ShardUser *u, const FeatureSpec *fs, int window,
                       double *f);
double baseline_score(const Calibration *cal, const double *f);
