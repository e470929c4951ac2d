// step.c: see step.h.
#include "step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "dp.h"
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

void stepper_dp(Stepper *st, const DpConfig *dpc) {
    const ModelShape *s = &st->model->shape;
    st->dp = 1, st->dpc = *dpc;
    lane_grad_init(&st->lane_grad, s, dpc->method);
    st->dp_state = lane_state_alloc(s, s->max_lanes);
    st->lane_sq = xmalloc(sizeof(double) * (size_t)s->max_lanes);
}

void stepper_free(Stepper *st) {
    gradsync_free(&st->sync);
    free(st->fixed);
    free(st->shard_sums);
    if (st->dp) {
        lane_grad_free(&st->lane_grad);
        lane_state_free(&st->dp_state);
        free(st->lane_sq);
    }
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

// fixed += g in 2^-32 units; returns 1 if some value does not fit (the sum over all V shards
// stays within int64).
static int add_fixed(Stepper *st, const real *g, int V) {
    const double limit = 9.0e18 / V;
    int overflow = 0;
    for (size_t i = 0; i < st->model->n_params; i++) {
        double v = (double)g[i] * FIXED_SCALE;
        if (!(fabs(v) < limit)) overflow = 1, v = 0;
        st->fixed[i] += (int64_t)llrint(v);
    }
    return overflow;
}

// One virtual shard at a time with the same shapes on any number of ranks; exact fixed-point
// accumulation, so the order of the sums does not matter.
static void compute_reproducible(Stepper *st, const DropoutConfig *dc, LaneState *state,
                                 StepBatchFn next, void *ctx, StepHeader *h) {
    Model *m = st->model;
    const int V = st->n_vshards;
    memset(st->fixed, 0, sizeof(int64_t) * (m->n_params + STEP_HEADER_LEN));
    memset(st->shard_sums, 0, sizeof(double) * (size_t)V * LOSS_SUMS_LEN);
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
        overflow |= add_fixed(st, m->grads, V);
        // Loss sums keep their own row: metrics such as gap_sq_err (squared time units) do
        // not fit a 2^32 fixed point; rows are summed in shard order after the reduction.
        memcpy(st->shard_sums + (size_t)(st->first_shard + s) * LOSS_SUMS_LEN, &ss,
               sizeof(double) * LOSS_SUMS_LEN);
        if (!isfinite(ss.loss)) overflow = 1;
    }
    h->nonfinite = overflow;
}

// ---------------------------------------------------------------- DP mode

// Each lane's factor min(1, C / ||g / n||) / n into lane_sq (which held ||g||^2): the
// lanes' clipped mean-loss gradients then sum to sum_lane factor * g. Returns 1 if some norm
// is not finite (that lane then contributes nothing).
static int clip_factors(Stepper *st, const Batch *b, StepHeader *h) {
    const int B = b->lanes, T = b->window;
    const double C = st->dpc.clip;
    int bad = 0;
    for (int lane = 0; lane < B; lane++) {
        int n = 0;
        for (int t = 0; t < T; t++) n += b->tgt_action[(size_t)t * B + lane] >= 0;
        const double norm = n > 0 ? sqrt(st->lane_sq[lane]) / n : 0;
        double f = n > 0 ? (norm > C ? C / norm : 1.0) / n : 0;
        if (!isfinite(norm)) bad = 1, f = 0;
        h->dp_clipped += norm > C;
        st->lane_sq[lane] = f;
    }
    h->dp_lanes += B;
    return bad;
}

// One chunk of sampled lanes from a zero state: adds its lanes' clipped gradient sum to
// m->grads, its loss sums to *sums. Backward runs once, for the lanes' dG only; the clipped
// sum is formed from them (lane_grad.h).
static int dp_chunk(Stepper *st, const DropoutConfig *dc, const Batch *b, LossSums *sums,
                    StepHeader *h) {
    Model *m = st->model;
    const size_t BH = (size_t)b->lanes * (size_t)m->shape.hidden;
    for (int l = 0; l < m->shape.layers; l++) {
        memset(st->dp_state.h[l], 0, sizeof(real) * BH);
        memset(st->dp_state.c[l], 0, sizeof(real) * BH);
    }
    double t0 = now_seconds();
    model_forward(m, b, &st->dp_state, &st->lc, dc, sums, 1);
    double t1 = now_seconds();
    m->skip_param_grads = 1; // only dG: the unclipped sums are never formed
    model_backward(m, b, NULL);
    m->skip_param_grads = 0;
    double t2 = now_seconds();
    lane_grad_norms_sq(m, b, &st->lane_grad, st->lane_sq);
    double t3 = now_seconds();
    int bad = clip_factors(st, b, h);
    lane_grad_clipped_sum(m, b, &st->lane_grad, st->lane_sq);
    st->t_forward += t1 - t0, st->t_backward += t2 - t1, st->t_norms += t3 - t2;
    st->t_clipsum += now_seconds() - t3;
    return bad;
}

// This rank's slice of the noise, N(0, (sigma C)^2) per coordinate: into the gradient sums, or
// (reproducible) into the fixed-point sums.
static void add_noise(Stepper *st, int64_t step) {
    const size_t n = st->model->n_params, P = (size_t)comm_size(), r = (size_t)comm_rank();
    const size_t lo = n * r / P, hi = n * (r + 1) / P;
    const double sd = st->dpc.sigma * st->dpc.clip;
    for (size_t i = lo; i < hi; i++) {
        const double z = sd * dp_noise_at(st->seed, step, i);
        if (st->reproducible)
            st->fixed[i] += (int64_t)llrint(z * FIXED_SCALE);
        else
            st->model->grads[i] += (real)z;
    }
}

static void compute_dp(Stepper *st, const DropoutConfig *dc, int64_t step, StepHeader *h) {
    Model *m = st->model;
    const int groups = st->reproducible ? st->n_shards : 1, V = st->n_vshards;
    int bad = 0;
    if (st->reproducible) {
        memset(st->fixed, 0, sizeof(int64_t) * (m->n_params + STEP_HEADER_LEN));
        memset(st->shard_sums, 0, sizeof(double) * (size_t)V * LOSS_SUMS_LEN);
    }
    memset(m->grads, 0, sizeof(real) * m->n_params);
    for (int g = 0; g < groups; g++) {
        LossSums ss;
        memset(&ss, 0, sizeof ss);
        for (int chunk = 0;; chunk++) {
            const Batch *b = st->dpc.next(st->dpc.ctx, step, g, chunk);
            if (!b) break;
            bad |= dp_chunk(st, dc, b, &ss, h);
            take_fault(st);
            if (st->reproducible) {
                bad |= add_fixed(st, m->grads, V);
                memset(m->grads, 0, sizeof(real) * m->n_params);
            }
        }
        if (!isfinite(ss.loss)) bad = 1;
        if (st->reproducible)
            memcpy(st->shard_sums + (size_t)(st->first_shard + g) * LOSS_SUMS_LEN, &ss,
                   sizeof(double) * LOSS_SUMS_LEN);
        else
            for (int k = 0; k < LOSS_SUMS_LEN; k++) ((double *)&h->sums)[k] += ((double *)&ss)[k];
    }
    add_noise(st, step);
    if (!st->reproducible) {
        // Start every bucket (backward ran without hooks: a chunk's sums are not final).
        BackwardHooks hk = gradsync_hooks(&st->sync);
        for (int layer = m->shape.layers; layer >= -1; layer--) hk.bucket_ready(hk.ctx, layer);
        bad |= !isfinite(st->sync.local_sumsq);
    }
    h->nonfinite = bad;
}

static void reduce_reproducible(Stepper *st, StepHeader *h) {
    Model *m = st->model;
    int64_t *fx = st->fixed, *hx = fx + m->n_params + LOSS_SUMS_LEN;
    hx[0] = (int64_t)h->dp_lanes, hx[1] = (int64_t)h->dp_clipped;
    hx[2] = h->nonfinite > 0, hx[3] = h->stop > 0;
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
    h->dp_lanes = (double)hx[0], h->dp_clipped = (double)hx[1];
    h->nonfinite = hx[2] > 0, h->stop = hx[3] > 0;
}

StepResult step_run(Stepper *st, int64_t step, LaneState *state, StepBatchFn next, void *ctx,
                    int (*stop_vote)(void)) {
    Model *m = st->model;
    DropoutConfig dc = {.p = st->dropout,
                        .seed = st->seed,
                        .step = (uint64_t)step,
                        .p_input = st->dropout_input,
                        .p_output = st->dropout_output};
    StepResult r;
    memset(&r, 0, sizeof r);
    comm_set_step(step + 1); // as the log counts steps: named by the watchdog
    if (st->dp)
        compute_dp(st, &dc, step, &r.h);
    else if (st->reproducible)
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
    // DP: divided by the expected lanes, and a step without sampled users still updates
    // (the noise was released: the accountant counts every step).
    const double n_global = st->dp ? st->dpc.expected_lanes : r.h.sums.n_targets;
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
