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
//
// DP mode (stepper_dp, privacy.dp): user-level DP-SGD in the same step. The lanes are the
// users Poisson-sampled for this step, one window each, from a zero state, in chunks of at
// most max_lanes lanes (groups: one per virtual shard in reproducible mode). Per chunk:
// forward, backward, each lane's gradient norm (lane_grad.h), and the sum of the lanes'
// gradients scaled by min(1, C / ||g_lane / n_lane||) / n_lane (n_lane its targets: the
// gradient of the user's MEAN event loss, clipped to C), formed from the stored dy and dG
// by the weight-gradient GEMMs (lane_grad_clipped_sum). Every rank adds the
// Gaussian noise N(0, sigma^2 C^2) of its 1/P slice of the coordinates (a function of seed,
// step and coordinate only: the sum gets each draw exactly once, on any P), then the sums
// are reduced and the update is divided by the EXPECTED number of lanes.
#pragma once
#include <stdint.h>

#include "gradsync.h"
#include "lane_grad.h"
#include "model.h"
#include "optim.h"

// What every rank contributes to a step besides its gradients (reduced with them).
typedef struct {
    LossSums sums;      // summed over ranks
    double dp_lanes;    // DP mode, summed: users sampled in this step
    double dp_clipped;  // DP mode, summed: ... whose gradient was clipped
    double nonfinite;   // max over ranks: 1 if some rank saw a non-finite loss or gradient
    double stop;        // max over ranks: 1 if some rank was asked to stop (SIGTERM/SIGUSR1)
} StepHeader;
#define STEP_HEADER_LEN (LOSS_SUMS_LEN + 4)
_Static_assert(sizeof(StepHeader) == sizeof(double) * STEP_HEADER_LEN, "header is doubles only");

// The lanes [first, first + n) (rank-local) of the next window.
typedef const Batch *(*StepBatchFn)(void *ctx, int first, int n);

// DP mode: chunk `chunk` (0, 1, ...) of the lanes sampled at `step` in group `group`, or NULL
// after the last; each lane is one user's window. Groups: the local virtual shards in
// reproducible mode, else one group (0) of all this rank's users.
typedef const Batch *(*DpBatchFn)(void *ctx, int64_t step, int group, int chunk);

typedef struct {
    double clip;           // C
    double sigma;          // noise multiplier
    double expected_lanes; // E = q * (training users): the update is divided by it
    LaneGradMethod method;
    DpBatchFn next;
    void *ctx;
} DpConfig;

typedef struct {
    Model *model;
    Optimizer *opt;
    GradSync sync;
    LossConfig lc;
    double dropout;
    double dropout_input, dropout_output; // model.dropout_input, model.dropout_output
    uint64_t seed;
    int lanes; // this rank's lanes
    // Reproducible mode: lanes come in n_shards groups of lanes_per_shard, shard s of this
    // rank being virtual shard first_shard + s of n_vshards.
    int reproducible, n_shards, first_shard, n_vshards, lanes_per_shard;
    int64_t *fixed;     // n_params + STEP_HEADER_LEN fixed-point sums
    double *shard_sums; // (n_vshards, LOSS_SUMS_LEN): a row of loss sums per virtual shard
    int fault_nan;      // tests: the next step puts a NaN into this rank's gradient
    int dp;             // DP mode (stepper_dp)
    DpConfig dpc;
    LaneGrad lane_grad;
    LaneState dp_state; // (max_lanes) zero state of sampled lanes
    double *lane_sq;    // (max_lanes) squared norms of the lanes' gradients
    double t_norms, t_clipsum; // seconds in lane norms and the clipped sum (DP, accumulated)
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
// Switches to DP mode (after stepper_init and, if used, stepper_reproducible).
void stepper_dp(Stepper *st, const DpConfig *dpc);
void stepper_free(Stepper *st);
// Step `step` (0-based) from state (DP mode: from the DpConfig's batches; state and next are
// not used). stop_vote (may be NULL) is asked after backward whether
// this rank wants to stop; the votes are reduced with the gradients.
StepResult step_run(Stepper *st, int64_t step, LaneState *state, StepBatchFn next, void *ctx,
                    int (*stop_vote)(void));
