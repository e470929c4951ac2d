// step.c: see step.h.
#include "step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "util.h"

#define FIXED_SCALE 4294967296.0 // 2^32: fixed-point unit of reproducible reductions

void stepper_init(Stepper *st, Model *m, Optimizer *opt, const LossConfig *lc, double dropout,
                  uint64_t seed, double bucket_mb, int lanes) {
    memset(st, 0, sizeof *st);
    st->model = m, st->opt = opt, st->lc = *lc, st->dropout = dropout, st->seed = seed;
    st->lanes = lanes;
    gradsync_init(&st->sync, m, bucket_mb, STEP_HEADER_LEN);
}

void stepper_reproducible(Stepper *st, int n_shards, int first_shard, int n_vshards,
                          int lanes_per_shard) {
    st->reproducible = 1;
    st->n_shards = n_shards, st->first_shard = first_shard, st->n_vshards = n_vshards;
    st->lanes_per_shard = lanes_per_shard;
    st->fixed = xmalloc(sizeof(int64_t) * (st->model->n_params + STEP_HEADER_LEN));
    st->shard_sums = xmalloc(sizeof(double) * (size_t)n_vshards * LOSS_SUMS_LEN);
}

void stepper_free(Stepper *st) {
    gradsync_free(&st->sync);
    free(st->fixed);
    free(st->shard_sums);
}

static void take_fault(Stepper *st) {
    if (st->fault_nan) st->model->grads[0] = NAN, st->fault_nan = 0;
}

// All lanes at once; local sums into h, buckets started during backward.
static void compute_fast(Stepper *st, const DropoutConfig *dc, LaneState *state, StepBatchFn next,
                         void *ctx, StepHeader *h) {
    Model *m = st->model;
    memset(m->grads, 0, sizeof(float) * m->n_params);
    const Batch *b = next(ctx, 0, st->lanes);
    double t0 = now_seconds();
    model_forward(m, b, state, &st->lc, dc, &h->sums, 1);
    take_fault(st);
    double t1 = now_seconds();
    BackwardHooks hooks = gradsync_hooks(&st->sync);
    model_backward(m, b, &hooks);
    st->t_forward += t1 - t0, st->t_backward += now_seconds() - t1;
    h->nonfinite = !isfinite(st->sync.local_sumsq) || !isfinite(h->sums.loss);
}

// One virtual shard at a time with the same shapes on any number of ranks; exact fixed-point
// accumulation, so the order of the sums does not matter.
static void compute_reproducible(Stepper *st, const DropoutConfig *dc, LaneState *state,
                                 StepBatchFn next, void *ctx, StepHeader *h) {
    Model *m = st->model;
    const int V = st->n_vshards;
    memset(st->fixed, 0, sizeof(int64_t) * (m->n_params + STEP_HEADER_LEN));
    memset(st->shard_sums, 0, sizeof(double) * (size_t)V * LOSS_SUMS_LEN);
    const double limit = 9.0e18 / V; // the sum over all V shards stays within int64
    int overflow = 0;
    for (int s = 0; s < st->n_shards; s++) {
        memset(m->grads, 0, sizeof(float) * m->n_params);
        LossSums ss;
        memset(&ss, 0, sizeof ss);
        const int first = s * st->lanes_per_shard;
        const Batch *b = next(ctx, first, st->lanes_per_shard);
        LaneState view = lane_state_slice(&m->shape, state, first);
        model_forward(m, b, &view, &st->lc, dc, &ss, 1);
        take_fault(st);
        model_backward(m, b, NULL);
        for (size_t i = 0; i < m->n_params; i++) {
            double v = (double)m->grads[i] * FIXED_SCALE;
            if (!(fabs(v) < limit)) overflow = 1, v = 0;
            st->fixed[i] += (int64_t)llrint(v);
        }
        // Loss sums keep their own row: metrics such as gap_sq_err (squared time units) do
        // not fit a 2^32 fixed point; rows are summed in shard order after the reduction.
        memcpy(st->shard_sums + (size_t)(st->first_shard + s) * LOSS_SUMS_LEN, &ss,
               sizeof(double) * LOSS_SUMS_LEN);
        if (!isfinite(ss.loss)) overflow = 1;
    }
    h->nonfinite = overflow;
}

static void reduce_reproducible(Stepper *st, StepHeader *h) {
    Model *m = st->model;
    int64_t *fx = st->fixed;
    fx[m->n_params + LOSS_SUMS_LEN] = h->nonfinite > 0;
    fx[m->n_params + LOSS_SUMS_LEN + 1] = h->stop > 0;
    comm_allreduce_sum_i64(fx, m->n_params + STEP_HEADER_LEN);
    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = (float)((double)fx[i] / FIXED_SCALE);
    // Each shard's row comes from one rank (the others add exact zeros): P-independent sums.
    const int V = st->n_vshards;
    comm_allreduce_sum_f64(st->shard_sums, V * LOSS_SUMS_LEN);
    double *sums = (double *)&h->sums;
    for (int k = 0; k < LOSS_SUMS_LEN; k++) {
        sums[k] = 0;
        for (int v = 0; v < V; v++) sums[k] += st->shard_sums[(size_t)v * LOSS_SUMS_LEN + k];
    }
    h->nonfinite = fx[m->n_params + LOSS_SUMS_LEN] > 0;
    h->stop = fx[m->n_params + LOSS_SUMS_LEN + 1] > 0;
}

StepResult step_run(Stepper *st, int64_t step, LaneState *state, StepBatchFn next, void *ctx,
                    int (*stop_vote)(void)) {
    Model *m = st->model;
    DropoutConfig dc = {.p = st->dropout, .seed = st->seed, .step = (uint64_t)step};
    StepResult r;
    memset(&r, 0, sizeof r);
    comm_set_step(step + 1); // as the log counts steps: named by the watchdog
    if (st->reproducible)
        compute_reproducible(st, &dc, state, next, ctx, &r.h);
    else
        compute_fast(st, &dc, state, next, ctx, &r.h);
    r.h.stop = stop_vote && stop_vote();
    double t0 = now_seconds();
    if (st->reproducible)
        reduce_reproducible(st, &r.h);
    else
        gradsync_finish(&st->sync, (double *)&r.h);
    double t1 = now_seconds();
    const double n_global = r.h.sums.n_targets;
    r.skipped = r.h.nonfinite > 0 || n_global <= 0;
    if (!r.skipped) {
        r.grad_norm = sqrt(sum_squares(m->grads, m->n_params)) / n_global;
        if (!isfinite(r.grad_norm)) r.skipped = 1;
    }
    if (!r.skipped) {
        double clip = optim_clip_factor(&st->opt->cfg, r.grad_norm);
        optim_step(st->opt, m->params, m->grads, clip / n_global, step);
    }
    st->t_reduce += t1 - t0, st->t_update += now_seconds() - t1;
    return r;
}
