// nextk.h: next-k accuracy (eval.next_k): from every scored event of a user, the model
// predicts the next k events by feeding its own predictions back in (greedy roll-out), and
// position j of the roll-out is a hit when its type equals the user's j-th next real event.
//
// Step 1 is the ordinary next-event prediction (its accuracy is eval's top-1). For j >= 2
// the input event is the previous step's prediction: its most likely type, a gap of the
// point prediction (eval.time_point) after the previous event, categorical columns <unk>,
// numeric columns at their train mean except the engagement column (the predicted value).
// Positions j past a user's last event are not counted. A visit callback of scorer_pass():
// the roll-outs start from the states the pass computed, in one extra model of the pass's
// lanes and window 1 (same parameters); nothing is allocated per window.
#pragma once
#include "scoring.h"

#define NEXTK_MAX 64

typedef struct {
    int k;
    Model *roll;            // the scorer's model with window 1 (a copy of its parameters)
    LaneState st;           // (lanes) roll-out state
    BatchBuf bb;            // window 1
    double *t_last;         // (lanes) time of each lane's last (real or predicted) event
    int32_t *pos;           // (lanes) the scored input event of each lane
    const ShardUser **user; // (lanes) its user, NULL: no roll-out from this slot
    const Shard **shard;    // (lanes) the user's shard
    // sums[j - 1]: hits at step j; sums[NEXTK_MAX + j - 1]: positions counted (local sums,
    // the caller reduces all 2 * NEXTK_MAX)
    double sums[2 * NEXTK_MAX];
} NextK;

void nextk_init(NextK *nk, const Scorer *sc, int k);
void nextk_free(NextK *nk);
// ScorerVisit: ctx is a NextK.
void nextk_visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb);
