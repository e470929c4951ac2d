// warmstart.h: train.init_from: a trained model's parameters as the start of a new run whose
// data may differ (a later period: new and vanished actions or categorical values).
//
// Vocabularies are matched by value: a value known to the checkpoint keeps its embedding row
// and its output row; a new one starts from the kept rows' frequency-weighted mean (and, for
// an action, the output bias of its share of this data) and is trained at
// train.init_new_lr_mult times the learning rate (a fresh row must travel as far as in a run
// from scratch, the kept ones only adjust); a vanished one is dropped.
// The architecture must be the same (model.hidden, model.layers, model.action_embed,
// model.cat_embed, data.categorical_cols, data.numeric_cols, the calendar features of
// data.time_unit, model.engagement_head); otherwise the run exits 2 naming each differing key.
// train.init_stats=keep folds the checkpoint's numeric normalisation into the first layer
// and the time/engagement head, so the model computes on the new data exactly what it
// computed with its own statistics; refit takes the weights as they are.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "config.h"

typedef struct {
    int kept[1 + CFG_LIST_MAX], added[1 + CFG_LIST_MAX], dropped[1 + CFG_LIST_MAX];
    // The rows made for new values (embedding and output rows): (offset, count) pairs of the
    // flat parameters, sorted and disjoint, for optim_set_boost(); the caller frees them.
    size_t n_fresh, cap_fresh;
    uint64_t *fresh_spans;
} WarmStartCounts;

// Writes the warm-started parameters (and, with moments != NULL, the Adam moments, zero for
// new rows) over params, which hold the fresh initialisation of `shape`. value_counts[v][j]
// (training events of value j of vocabulary v, 0: actions, on all ranks) set the rows of new
// values: the embedding row is the frequency-
// weighted mean of the kept rows, a new action's output row too, with the bias that gives it
// its training share. Returns 0, or -1 with the reason in err (the keys that differ).
int warmstart_apply(const LoadedCheckpoint *ck, const Config *cfg, const DataMeta *meta,
                    const ModelShape *shape, const double *const *value_counts, float *params,
                    float *adam_m, float *adam_v, WarmStartCounts *counts, char *err,
                    size_t errlen);
