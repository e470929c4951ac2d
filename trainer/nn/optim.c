// optim.c: see optim.h. Update rules match torch.optim (SGD, Adam, AdamW) exactly.
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "util.h"

void optim_init(Optimizer *opt, const OptimConfig *oc, const ModelShape *shape, size_t n_params) {
    memset(opt, 0, sizeof *opt);
    opt->cfg = *oc;
    opt->n = n_params;
    opt->m = xalloc_aligned(n_params * sizeof(float));
    opt->v = xalloc_aligned(n_params * sizeof(float));
    opt->n_tensors = model_tensors(shape, opt->tensors);
}

void optim_free(Optimizer *opt) {
    free(opt->m);
    free(opt->v);
    free(opt->boost_spans);
    opt->m = opt->v = NULL;
    opt->boost_spans = NULL, opt->n_boost = 0;
}

int optim_set_boost(Optimizer *opt, size_t n, const uint64_t *spans, double boost) {
    for (size_t k = 0; k < n; k++) {
        const uint64_t lo = spans[2 * k], len = spans[2 * k + 1];
        if (len == 0 || lo > opt->n || len > opt->n - lo || (k && lo < spans[2 * k - 2] + spans[2 * k - 1]))
            return -1;
    }
    if (n > 0 && !(boost > 0)) return -1;
    free(opt->boost_spans);
    opt->boost_spans = n ? xmalloc(sizeof(uint64_t) * 2 * n) : NULL;
    if (n) memcpy(opt->boost_spans, spans, sizeof(uint64_t) * 2 * n);
    opt->n_boost = n, opt->boost = n ? boost : 0;
    return 0;
}

// Elements [lo, hi) of the flat buffers: the boosted spans with `fast`, the rest with u.
static void update_range(const Optimizer *opt, const OptimUpdate *u, const OptimUpdate *fast,
                         size_t lo, size_t hi, float *p, const float *g) {
    const Kernels *kern = kernels();
    size_t at = lo;
    for (size_t k = 0; k < opt->n_boost && at < hi; k++) {
        size_t b0 = (size_t)opt->boost_spans[2 * k], b1 = b0 + (size_t)opt->boost_spans[2 * k + 1];
        if (b1 <= at || b0 >= hi) continue;
        b0 = b0 > at ? b0 : at, b1 = b1 < hi ? b1 : hi;
        if (b0 > at) kern->optim_update(u, b0 - at, p + at, opt->m + at, opt->v + at, g + at);
        kern->optim_update(fast, b1 - b0, p + b0, opt->m + b0, opt->v + b0, g + b0);
        at = b1;
    }
    if (at < hi) kern->optim_update(u, hi - at, p + at, opt->m + at, opt->v + at, g + at);
}

double optim_lr(const OptimConfig *oc, int64_t step) {
    if (step < oc->warmup_steps) return oc->lr * (double)(step + 1) / (double)oc->warmup_steps;
    if (oc->schedule == SCHED_CONSTANT) return oc->lr;
    int64_t span = oc->total_steps - oc->warmup_steps;
    double p = span > 0 ? (double)(step - oc->warmup_steps) / (double)span : 1.0;
    p = p < 0 ? 0 : (p > 1 ? 1 : p);
    double f = oc->schedule == SCHED_COSINE ? 0.5 * (1.0 + cos(3.141592653589793 * p)) : 1.0 - p;
    return oc->lr * (oc->min_lr_frac + (1.0 - oc->min_lr_frac) * f);
}

double sum_squares(const float *x, size_t n) {
    // Four partial sums in double: vectorises and keeps the result independent of n's parity.
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)x[i] * x[i];
        s1 += (double)x[i + 1] * x[i + 1];
        s2 += (double)x[i + 2] * x[i + 2];
        s3 += (double)x[i + 3] * x[i + 3];
    }
    for (; i < n; i++) s0 += (double)x[i] * x[i];
    return (s0 + s1) + (s2 + s3);
}

double optim_clip_factor(const OptimConfig *oc, double grad_norm) {
    if (oc->clip_norm <= 0 || grad_norm <= oc->clip_norm) return 1.0;
    return oc->clip_norm / (grad_norm + 1e-6); // as torch.nn.utils.clip_grad_norm_
}

void optim_step(Optimizer *opt, float *params, const float *grads, double grad_scale,
                int64_t step) {
    const OptimConfig *oc = &opt->cfg;
    const float lr = (float)optim_lr(oc, step), gs = (float)grad_scale;
    const float b1 = (float)oc->beta1, b2 = (float)oc->beta2, eps = (float)oc->eps;
    const double t = (double)(step + 1);
    const float bc1 = (float)(1.0 - pow(oc->beta1, t));
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow(oc->beta2, t)));
    const float step_size = lr / bc1, mom = (float)oc->momentum;
    OptimUpdate u = {.adam = oc->kind != OPT_SGD,
                     .gs = gs,
                     .lr = lr,
                     .mom = mom,
                     .b1 = b1,
                     .b2 = b2,
                     .eps = eps,
                     .step_size = step_size,
                     .inv_sqrt_bc2 = inv_sqrt_bc2};
    const float boost = (float)opt->boost;
    for (int k = 0; k < opt->n_tensors; k++) {
        const TensorInfo *ti = &opt->tensors[k];
        const float wd = ti->decay ? (float)oc->weight_decay : 0.0f;
        u.wd = wd;
        u.l2 = oc->kind == OPT_ADAM ? wd : 0.0f;
        u.shrink = oc->kind == OPT_ADAMW ? 1.0f - lr * wd : 1.0f;
        OptimUpdate fast = u;
        fast.lr = lr * boost, fast.step_size = step_size * boost;
        fast.shrink = oc->kind == OPT_ADAMW ? 1.0f - fast.lr * wd : 1.0f;
        update_range(opt, &u, &fast, ti->offset, ti->offset + ti->count, params, grads);
    }
}

// The generic path of kernels.h's optim_update: one flat loop.
void optim_update_generic(const OptimUpdate *u, size_t n, float *restrict p, float *restrict m,
                          float *restrict v, const float *restrict g) {
    if (!u->adam) {
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * u->gs + u->wd * p[i];
            m[i] = u->mom * m[i] + gi;
            p[i] -= u->lr * m[i];
        }
        return;
    }
    const float b1 = u->b1, b2 = u->b2, l2 = u->l2, shrink = u->shrink;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * u->gs + l2 * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float denom = sqrtf(v[i]) * u->inv_sqrt_bc2 + u->eps;
        p[i] = p[i] * shrink - u->step_size * m[i] / denom;
    }
}
