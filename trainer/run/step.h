// step.h: THE training step, shared by `trainer train` and `trainer bench` (so the speed
// figures measure the shipped code).
//
// One step: zero the gradient sums, forward with loss sums and backward of this rank's lanes
// (buckets of the allreduce start as backward finishes each layer), the step header reduced
// with the last bucket, the global gradient norm, and, unless some rank saw a non-finite
// value, the optimizer update scaled by clip / (global target count). In reproducible mode
// every virtual shard is processed on its own and the gradient sums are reduced as exact
// 64-bit fixed-point integers, so the result does not depend on how shards sit on ranks.
// Everything is allocated in stepper_init(); a step allocates nothing.
#pragma once
#include <stdint.h>

#include "gradsync.h"
#include "model.h"
#include "optim.h"

// What every rank contributes to a step besides its gradients (reduced with them).
typedef struct {
    LossSums sums;    // summed over ranks
    double nonfinite; // max over ranks: 1 if some rank saw a non-finite loss or gradient
    double stop;      // max over ranks: 1 if some rank was asked to stop (SIGTERM/SIGUSR1)
} StepHeader;
#define STEP_HEADER_LEN (LOSS_SUMS_LEN + 2)
_Static_assert(sizeof(StepHeader) == sizeof(double) * STEP_HEADER_LEN, "header is doubles only");

// The lanes [first, first + n) (rank-local) of the next window.
typedef const Batch *(*StepBatchFn)(void *ctx, int first, int n);

typedef struct {
    Model *model;
    Optimizer *opt;
    GradSync sync;
    LossConfig lc;
    double dropout;
    uint64_t seed;
    int lanes; // this rank's lanes
    // Reproducible mode: lanes come in n_shards groups of lanes_per_shard, shard s of this
    // rank being virtual shard first_shard + s of n_vshards.
    int reproducible, n_shards, first_shard, n_vshards, lanes_per_shard;
    int64_t *fixed;     // n_params + STEP_HEADER_LEN fixed-point sums
    double *shard_sums; // (n_vshards, LOSS_SUMS_LEN): a row of loss sums per virtual shard
    int fault_nan;      // tests: the next step puts a NaN into this rank's gradient
    double t_forward, t_backward, t_reduce, t_update; // seconds, accumulated (bench)
} Stepper;

typedef struct {
    StepHeader h;     // global sums and flags
    double grad_norm; // of the mean gradient (before clipping); 0 when skipped
    int skipped;      // non-finite somewhere or nothing scored: no update was made
} StepResult;

void stepper_init(Stepper *st, Model *m, Optimizer *opt, const LossConfig *lc, double dropout,
                  uint64_t seed, double bucket_mb, int lanes);
// Switches to reproducible mode (call after stepper_init).
void stepper_reproducible(Stepper *st, int n_shards, int first_shard, int n_vshards,
                          int lanes_per_shard);
void stepper_free(Stepper *st);
// Step `step` (0-based) from state. stop_vote (may be NULL) is asked after backward whether
// this rank wants to stop; the votes are reduced with the gradients.
StepResult step_run(Stepper *st, int64_t step, LaneState *state, StepBatchFn next, void *ctx,
                    int (*stop_vote)(void));
