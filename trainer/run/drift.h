// drift.h: how far new events have moved from what a model was trained on (`trainer drift`).
//
// Per feature, a histogram of the reference (the experiment's training split) and of the new
// events: the action mix, each categorical column's mix (vocabulary ids; 0 = <unk>, values
// training never saw), the gap between a user's events (log(gap + gap_offset) standardised
// with the training statistics, 24 bins of 0.25 sd over [-3, 3) plus two tails) and the hour
// of day (UTC; only with a calendar time unit). Each pair is compared with the Jensen-Shannon
// distance (base 2, in [0, 1]) and the population stability index; a feature is shifted
// when the distance reaches the threshold (0.1, Evidently's default for both). Counts are
// allreduced, so the result is the same on any number of ranks.
#pragma once
#include "dataset.h"
#include "evaluate.h"

enum { DRIFT_GAP_BINS = 26, DRIFT_MAX_FEATURES = 3 + CFG_LIST_MAX };

typedef struct {
    char name[CFG_NAME_LEN + 8]; // "action", a categorical column's name, "gap", "hour"
    int n_bins;
    int vocab;           // index into meta.vocab (0 actions, 1 + c column c); -1: numeric
    double *ref, *cur;   // (n_bins) counts
    double js, psi;      // Jensen-Shannon distance, population stability index
    double ref_unk, cur_unk; // vocabulary features: share of <unk> (values training never saw)
    int shifted;
} DriftFeature;

typedef struct {
    int n;
    DriftFeature f[DRIFT_MAX_FEATURES];
} DriftHist;

void drift_hist_init(DriftHist *h, const DataMeta *meta);
void drift_hist_free(DriftHist *h);
// Adds this rank's users of ds's `split` to the reference (cur = 0) or the new (cur = 1) side.
void drift_hist_add(DriftHist *h, const Dataset *ds, int split, int cur);
// Allreduces the counts (collective) and scores every feature against threshold.
void drift_hist_finish(DriftHist *h, double threshold);

typedef enum { DRIFT_NONE, DRIFT_FINE_TUNE, DRIFT_RETRAIN } DriftVerdict;

// The verdict from the shifted features and the model's figures on the new data (cur) vs
// the validation data (ref): retrain when the action NLL is worse by more than 20%;
// fine-tune when a feature shifted, values unseen in training make more than 0.5% of the
// events, the action NLL is worse by more than 3% or the time NLL by more than 0.2 nats (20 no-drift
// samples of configs/default.yaml vary by up to 0.14 nats: tests/bench/refresh.sh).
DriftVerdict drift_verdict(const DriftHist *h, const Metrics *ref, const Metrics *cur);
extern const char *const DRIFT_VERDICT_TEXT[3];
