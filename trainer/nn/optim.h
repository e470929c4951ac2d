// optim.h: SGD with momentum, Adam and AdamW over the flat parameter buffer, learning-rate
// schedules and global-norm clipping.
//
// The moments have the parameters' layout, so one step is one flat loop per tensor (weight
// decay applies to matrices and embeddings only). The step takes the reduced gradient SUMS
// and a scale (1 / global events, times the clipping factor), so normalisation and clipping
// cost no extra pass over the gradient.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptimKind;
typedef enum { SCHED_CONSTANT, SCHED_COSINE, SCHED_LINEAR } ScheduleKind;

typedef struct {
    OptimKind kind;
    ScheduleKind schedule;
    double lr, momentum, beta1, beta2, eps, weight_decay, clip_norm, min_lr_frac;
    int64_t warmup_steps, total_steps;
} OptimConfig;

typedef struct {
    OptimConfig cfg;
    size_t n;
    float *m, *v; // moments (v unused by SGD), n each
    int n_tensors;
    TensorInfo tensors[MODEL_MAX_TENSORS];
    // Spans trained at boost times the learning rate (a warm start's rows for new values):
    // (offset, count) pairs in elements, sorted and disjoint; NULL when n_boost = 0.
    size_t n_boost;
    uint64_t *boost_spans; // 2 * n_boost
    double boost;
} Optimizer;

void optim_init(Optimizer *opt, const OptimConfig *oc, const ModelShape *shape, size_t n_params);
void optim_free(Optimizer *opt);
// Sets the boosted spans (copied; pairs sorted by offset, disjoint, inside the parameters;
// n = 0 clears them). Returns 0, or -1 when the spans are not so (nothing changed).
int optim_set_boost(Optimizer *opt, size_t n, const uint64_t *spans, double boost);
// Learning rate of step `step` (0-based): linear warm-up, then the schedule.
double optim_lr(const OptimConfig *oc, int64_t step);
// Sum of squares of x in double (for the global gradient norm).
double sum_squares(const float *x, size_t n);
// Clipping factor for a gradient of the given norm (1 when no clipping applies).
double optim_clip_factor(const OptimConfig *oc, double grad_norm);
// One update: g = grads * grad_scale; step is the 0-based index of this update.
void optim_step(Optimizer *opt, float *params, const float *grads, double grad_scale, int64_t step);
