// evaluate.h: scoring a split with a model, and the metrics derived from loss sums.
#pragma once
#include <stdio.h>

#include "batch.h"
#include "dataset.h"
#include "model.h"

typedef struct {
    double n_targets, action_nll, time_nll, eng_mse, top1, topk, gap_mae, gap_rmse, loss;
} Metrics;

// Forward passes over every user of this rank's shards of `split`; adds to *sums (local:
// the caller reduces across ranks). bb and state must hold the model's lanes.
void evaluate_local(Model *m, const Dataset *ds, int split, int lanes, const LossConfig *lc,
                    LaneState *state, BatchBuf *bb, LossSums *sums);
Metrics metrics_from(const LossSums *s);
// "action_nll 1.2345 top1 0.512 top5 0.931 time_nll 7.89 gap_mae 123.4 gap_rmse 456.7 ..."
void metrics_print(FILE *out, const Metrics *m, int top_k, const char *time_unit, int engagement);
// JSON object members (no braces): "n_targets":...,"action_nll":...
void metrics_json(char *out, size_t cap, const Metrics *m);
