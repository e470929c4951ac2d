// test_optim.c: the optimizer rules on their own, as a second line of defence next to the
// PyTorch reference (test_reference replays torch.optim on one small model):
//   - weight decay applies to matrices and embeddings only: with zero gradients, AdamW
//     shrinks every decayed parameter by exactly (1 - lr * wd) and leaves biases bitwise
//     untouched; Adam (L2) and SGD move decayed parameters towards 0 and biases not at all;
//   - Adam's bias correction: the first step with gradient g moves each parameter by
//     lr * g / (|g| + eps'), i.e. lr * sign(g), for Adam and AdamW alike;
//   - the learning-rate schedule: linear warm-up to lr, cosine and linear decay to
//     lr * min_lr_frac at total_steps;
//   - boosted spans (warm start's rows of new values, train.init_new_lr_mult): on Adam's first
//     step they move by boost * lr * sign(g), every other value by lr * sign(g) exactly as
//     without spans; bad spans (overlapping, out of range, unsorted) are refused.
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

// Spans [3, 7) and [20, 21) boosted 10x; a third optimizer without spans as the reference.
static void check_boost(void) {
    const size_t n = model_param_count(&SHAPE);
    float *p = malloc(sizeof(float) * n), *ref = malloc(sizeof(float) * n);
    float *p0 = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n);
    random_params(p, n, 11);
    random_params(g, n, 12);
    memcpy(p0, p, sizeof(float) * n), memcpy(ref, p, sizeof(float) * n);
    OptimConfig oc = {.kind = OPT_ADAMW, .schedule = SCHED_CONSTANT, .lr = 0.01, .beta1 = 0.9,
                      .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0, .total_steps = 10};
    Optimizer opt, plain;
    optim_init(&opt, &oc, &SHAPE, n);
    optim_init(&plain, &oc, &SHAPE, n);
    const uint64_t spans[] = {3, 4, 20, 1}, overlap[] = {3, 4, 5, 1}, past[] = {n - 1, 2};
    CHECK(optim_set_boost(&opt, 2, overlap, 10) != 0, "overlapping spans accepted");
    CHECK(optim_set_boost(&opt, 1, past, 10) != 0, "a span past the end accepted");
    CHECK(optim_set_boost(&opt, 2, spans, 0) != 0, "a boost of 0 accepted");
    CHECK(optim_set_boost(&opt, 2, spans, 10) == 0, "good spans refused");
    optim_step(&opt, p, g, 1.0, 0);
    optim_step(&plain, ref, g, 1.0, 0);
    int bad_fast = 0, bad_rest = 0;
    for (size_t i = 0; i < n; i++) {
        const int fast = (i >= 3 && i < 7) || i == 20;
        if (!fast && p[i] != ref[i]) bad_rest++;
        if (fast && fabsf(g[i]) > 1e-3f &&
            fabs(p[i] - (p0[i] - 0.1 * (g[i] > 0 ? 1 : -1))) > 1e-4)
            bad_fast++;
    }
    printf("  boosted spans: 5 values at 10x lr, %zu others bitwise as without spans\n", n - 5);
    CHECK(bad_fast == 0, "%d boosted values did not move by 10 x lr", bad_fast);
    CHECK(bad_rest == 0, "%d values outside the spans differ from an optimizer without", bad_rest);
    optim_free(&opt), optim_free(&plain);
    free(p), free(ref), free(p0), free(g);
}

int main(void) {
    printf("optimizer rules\n");
    check_decay(OPT_ADAMW, "AdamW");
    check_decay(OPT_ADAM, "Adam (L2)");
    check_decay(OPT_SGD, "SGD");
    check_bias_correction(OPT_ADAM, "Adam");
    check_bias_correction(OPT_ADAMW, "AdamW");
    check_schedule();
    check_boost();
    printf(g_failures ? "%d check(s) failed\n" : "all optimizer checks passed\n", g_failures);
    return g_failures ? 1 : 0;
}
