// dp.h: the pieces of user-level DP-SGD around the step (step.c runs the clipped, noised
// step itself): the noise draws, Poisson sampling of users with their windows, and the
// privacy settings of a training run (q, delta, sigma solved from a target epsilon).
//
// Every random choice is counter based: the noise of coordinate i at step s is a function
// of (run.seed, s, i); whether user u is sampled at step s, and which window of u is used,
// are functions of (run.seed, s, u's virtual shard and index). So a resumed run, and a run
// on any number of ranks, draws exactly the same users, windows and noise.
#pragma once
#include <stdint.h>

#include "batch.h"
#include "config.h"
#include "dataset.h"
#include "dp_accountant.h"
#include "step.h"

// Standard normal draw for coordinate i of step `step` (Box-Muller on two uniforms).
double dp_noise_at(uint64_t seed, int64_t step, uint64_t i);

// Poisson sampling of this rank's training users; the DpBatchFn of step.h.
typedef struct {
    const Dataset *ds;
    BatchBuf *bb;
    double q;
    uint64_t seed;
    int reproducible, chunk_lanes, window;
    int64_t built_step; // (step, group) the list was built for; -1: none
    int built_group;
    UserWindow *list; // sampled users of the group, in shard then user order
    int64_t n_list;
} DpSampler;

void dp_sampler_init(DpSampler *sp, const Dataset *ds, BatchBuf *bb, double q, uint64_t seed,
                     int reproducible, int chunk_lanes, int window);
void dp_sampler_free(DpSampler *sp);
const Batch *dp_sampler_next(void *ctx, int64_t step, int group, int chunk);
// Whether user (global virtual shard vshard, index u) is in step `step`'s sample.
int dp_sampled(uint64_t seed, int64_t step, int vshard, uint32_t u, double q);

// The privacy settings of a run, resolved from privacy.* and the data.
typedef struct {
    int on;
    double q, sigma, clip, delta, expected_lanes;
    uint64_t users; // training users
    DpConversion conv;
    uint64_t exclusion_digest, excluded_listed; // data.exclude_users (also without DP)
} DpRun;

// Resolves privacy.* (and the digest of data.exclude_users) for n_users training users and train.steps (solving sigma from
// privacy.target_epsilon). Returns 0, or -1 after printing (when verbose) an error naming
// the key: the run must exit with status 2.
int dp_run_resolve(DpRun *d, const Config *cfg, uint64_t n_users, int verbose);
// epsilon after `steps` steps (0 when DP is off: callers say "unbounded").
double dp_run_epsilon(const DpRun *d, int64_t steps);

// The checkpoint's privacy record after `steps` steps.
#include "checkpoint.h"
CkptPrivacy dp_run_record(const DpRun *d, int64_t steps);
// Lanes per chunk of a DP step: the rank's (or, reproducible, a shard's) expected sampled
// users plus 4 standard deviations (more sampled users run as further chunks).
int dp_chunk_lanes(double expected);
