// best.h: the best validation of a run and early stopping (checkpoint.keep_best,
// eval.metric, train.early_stop_patience, train.early_stop_min_delta).
//
// Every rank feeds the same (allreduced) metrics in the same order, so every rank reaches the
// same decisions; the record travels in the checkpoint (CkptBest), so a resumed run continues
// the patience count and the best value exactly.
#pragma once
#include <stdint.h>

#include "checkpoint.h"
#include "config.h"
#include "evaluate.h"

typedef struct {
    int higher_better;  // top1: higher is better; the NLLs and loss: lower
    double min_delta;   // smallest improvement that counts
    int64_t patience;   // validations without improvement before stopping; 0: never
    CkptBest rec;
} BestTracker;

void best_init(BestTracker *b, const Config *cfg);
// The value of eval.metric `metric` in m.
double best_metric_value(const Metrics *m, const char *metric);
// A validation at `step`: 1 when it is the new best (rec updated, rec.is_best set), else 0
// (the patience count advances).
int best_update(BestTracker *b, const Metrics *m, int64_t step);
// 1 when train.early_stop_patience validations in a row brought no improvement.
int best_should_stop(const BestTracker *b);
// After a resume: the record of the checkpoint (ignored when it tracked another metric).
void best_restore(BestTracker *b, const CkptBest *rec);
