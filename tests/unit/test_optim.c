// test_optim.c: the optimizer rules on their own, as a second line of defence next to the
// PyTorch reference (test_reference replays torch.optim on one small model):
//   - weight decay applies to matrices and embeddings only: with zero gradients, AdamW
//     shrinks every decayed parameter by exactly (1 - lr * wd) and leaves biases bitwise
//     untouched; Adam (L2) and SGD move decayed parameters towards 0 and biases not at all;
//   - Adam's bias correction: the first step with gradient g moves each parameter by
//     lr * g / (|g| + eps'), i.e. lr * sign(g), for Adam and AdamW alike;
//   - the learning-rate schedule: linear warm-up to lr, cosine and linear decay to
//     lr * min_lr_frac at total_steps.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hash.h"
#include "model.h"
#include "optim.h"

static const ModelShape SHAPE = {.n_actions = 5, .action_embed = 3, .n_cat = 1,
                                 .cat_vocab = {4}, .cat_embed = 2, .n_dense = 2, .hidden = 4,
                                 .layers = 2, .engagement = 1, .max_lanes = 2, .window = 2};

static void random_params(float *p, size_t n, uint64_t seed) {
    Rng r = rng_make(seed, 3);
    for (size_t i = 0; i < n; i++) p[i] = (float)rng_normal(&r);
}

static void check_decay(OptimKind kind, const char *name) {
    const size_t n = model_param_count(&SHAPE);
    float *p = malloc(sizeof(float) * n), *p0 = malloc(sizeof(float) * n);
    float *g = calloc(n, sizeof(float));
    random_params(p, n, 7);
    memcpy(p0, p, sizeof(float) * n);
    OptimConfig oc = {.kind = kind, .schedule = SCHED_CONSTANT, .lr = 0.01, .beta1 = 0.9,
                      .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1, .total_steps = 10};
    Optimizer opt;
    optim_init(&opt, &oc, &SHAPE, n);
    optim_step(&opt, p, g, 1.0, 0);
    int n_decay = 0, n_bias = 0, bad_bias = 0, bad_decay = 0;
    for (int k = 0; k < opt.n_tensors; k++) {
        const TensorInfo *ti = &opt.tensors[k];
        for (size_t i = ti->offset; i < ti->offset + ti->count; i++) {
            if (!ti->decay) {
                n_bias++;
                bad_bias += memcmp(&p[i], &p0[i], sizeof(float)) != 0;
                continue;
            }
            n_decay++;
            if (kind == OPT_ADAMW)
                bad_decay += fabsf(p[i] - p0[i] * (1.0f - 0.001f)) > 1e-6f * fabsf(p0[i]);
            else
                bad_decay += !((p[i] - p0[i]) * p0[i] < 0); // a step towards 0
        }
    }
    printf("  %s, zero gradient, weight decay 0.1: %d decayed values stepped towards 0 (%d wrong), %d "
           "biases untouched (%d moved)\n",
           name, n_decay, bad_decay, n_bias, bad_bias);
    CHECK(n_decay > 0 && n_bias > 0, "%s: no decayed or no undecayed tensors", name);
    CHECK(bad_decay == 0, "%s: %d decayed values not shrunk as they should", name, bad_decay);
    CHECK(bad_bias == 0, "%s: weight decay moved %d bias values", name, bad_bias);
    optim_free(&opt);
    free(p), free(p0), free(g);
}

static void check_bias_correction(OptimKind kind, const char *name) {
    const size_t n = model_param_count(&SHAPE);
    float *p = malloc(sizeof(float) * n), *p0 = malloc(sizeof(float) * n);
    float *g = malloc(sizeof(float) * n);
    random_params(p, n, 8);
    random_params(g, n, 9);
    memcpy(p0, p, sizeof(float) * n);
    OptimConfig oc = {.kind = kind, .schedule = SCHED_CONSTANT, .lr = 0.01, .beta1 = 0.9,
                      .beta2 = 0.999, .eps = 1e-8, .total_steps = 10};
    Optimizer opt;
    optim_init(&opt, &oc, &SHAPE, n);
    optim_step(&opt, p, g, 1.0, 0);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabsf(g[i]) < 1e-3f) continue; // eps matters there
        double want = p0[i] - 0.01 * (g[i] > 0 ? 1 : -1);
        double err = fabs(p[i] - want) / 0.01;
        worst = err > worst ? err : worst;
    }
    printf("  %s first step: |dp| = lr within %.2e of lr\n", name, worst);
    CHECK(worst < 1e-3, "%s: first step moves by lr * %.3f, not lr (bias correction?)", name,
          1 + worst);
    optim_free(&opt);
    free(p), free(p0), free(g);
}

static void check_schedule(void) {
    OptimConfig oc = {.lr = 0.1, .warmup_steps = 10, .total_steps = 110, .min_lr_frac = 0.1};
    oc.schedule = SCHED_COSINE;
    CHECK(fabs(optim_lr(&oc, 0) - 0.01) < 1e-12, "warm-up step 0: %g", optim_lr(&oc, 0));
    CHECK(fabs(optim_lr(&oc, 9) - 0.1) < 1e-12, "warm-up end: %g", optim_lr(&oc, 9));
    CHECK(fabs(optim_lr(&oc, 60) - 0.1 * (0.1 + 0.9 * 0.5)) < 1e-12, "cosine mid: %g",
          optim_lr(&oc, 60));
    CHECK(fabs(optim_lr(&oc, 110) - 0.01) < 1e-12, "cosine end: %g", optim_lr(&oc, 110));
    oc.schedule = SCHED_LINEAR;
    CHECK(fabs(optim_lr(&oc, 60) - 0.1 * (0.1 + 0.9 * 0.5)) < 1e-12, "linear mid: %g",
          optim_lr(&oc, 60));
    oc.schedule = SCHED_CONSTANT;
    CHECK(fabs(optim_lr(&oc, 100) - 0.1) < 1e-12, "constant: %g", optim_lr(&oc, 100));
    printf("  schedules: warm-up, cosine, linear, constant at their landmarks\n");
}

int main(void) {
    printf("optimizer rules\n");
    check_decay(OPT_ADAMW, "AdamW");
    check_decay(OPT_ADAM, "Adam (L2)");
    check_decay(OPT_SGD, "SGD");
    check_bias_correction(OPT_ADAM, "Adam");
    check_bias_correction(OPT_ADAMW, "AdamW");
    check_schedule();
    printf(g_failures ? "%d check(s) failed\n" : "all optimizer checks passed\n", g_failures);
    return g_failures ? 1 : 0;
}
