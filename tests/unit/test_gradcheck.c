// test_gradcheck.c: finite-difference check of every gradient the model computes.
//
// Built against the double-precision model (MODEL_REAL_DOUBLE), so central differences are
// accurate to ~1e-9 and the check can be tight. Covers every parameter tensor (embeddings,
// each layer's W_ih, W_hh, bias, the head), the dense input path, every loss term, dropout
// between layers, state carried into the window, lane resets inside the window, padded
// positions without targets, and the explanations' path (input_given + input_grad_only:
// d f / d x0 backpropagated from a given dy, weight gradients untouched). Prints the
// normalised error |a - n| / (|a| + |n|) per tensor (norms over the tensor) and fails above
// 1e-6. Also the initial biases (model_init_params): the forget gate's 1, the other gates' 0;
// the mixture-of-log-normals time head (time_mix.h) and dropout on the layer-0 inputs and the
// top layer's output.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "model.h"

enum { B = 3, T = 6 };

typedef struct {
    int32_t action[T * B], cat[T * B * 2], tgt[T * B];
    real dense[T * B * 3], loggap[T * B], eng[T * B];
    uint8_t keep[T * B];
    uint64_t lane_id[B];
} Data;

static double loss_of(Model *m, const Batch *b, const LaneState *init, LaneState *work,
                      const LossConfig *lc, const DropoutConfig *dc) {
    const ModelShape *s = &m->shape;
    for (int l = 0; l < s->layers; l++) {
        memcpy(work->h[l], init->h[l], sizeof(real) * B * s->hidden);
        memcpy(work->c[l], init->c[l], sizeof(real) * B * s->hidden);
    }
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    model_forward(m, b, work, lc, dc, &sums, 0);
    return sums.loss;
}

// time_mix: components of the time head (model.time_mixture); p_in, p_out: dropout on the
// layer-0 inputs and on the top layer's output.
static int check_case_full(int layers, double dropout, int engagement, int vocab2, int time_mix,
                           double p_in, double p_out, const char *label) {
    // vocab2 decides the layer-0 path: small vocabularies are folded into per-value tables,
    // large ones (more rows than the batch's T*B = 18) go through the plain input GEMM.
    ModelShape s = {.n_actions = 5,
                    .action_embed = 3,
                    .n_cat = 2,
                    .cat_vocab = {4, vocab2},
                    .cat_embed = 2,
                    .n_dense = 3,
                    .hidden = 4,
                    .layers = layers,
                    .engagement = engagement,
                    .time_mix = time_mix,
                    .max_lanes = B,
                    .window = T};
    Model *m = model_create(&s);
    model_init_params(m, 42, 0.5);
    // Non-trivial biases so every gate path is exercised.
    Rng r = rng_make(9, 1);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += (real)(0.1 * rng_normal(&r));

    Data d;
    memset(&d, 0, sizeof d);
    for (int i = 0; i < T * B; i++) {
        d.action[i] = (int32_t)rng_below(&r, 5);
        d.cat[2 * i] = (int32_t)rng_below(&r, 4);
        d.cat[2 * i + 1] = (int32_t)rng_below(&r, 3);
        for (int j = 0; j < 3; j++) d.dense[3 * i + j] = (real)rng_normal(&r);
        d.tgt[i] = (int32_t)rng_below(&r, 5);
        d.loggap[i] = (real)(rng_normal(&r) * 2 + 1);
        d.eng[i] = (real)rng_normal(&r);
        d.keep[i] = 1;
    }
    d.keep[0 * B + 1] = 0; // lane 1 starts a new user at t = 0 (ignores its state)
    d.keep[3 * B + 2] = 0; // lane 2 switches user inside the window
    d.tgt[2 * B + 2] = -1; // ... whose last event has no target
    for (int t = 4; t < T; t++) d.tgt[t * B + 0] = -1, d.keep[t * B + 0] = 0; // lane 0 padded
    for (int i = 0; i < B; i++) d.lane_id[i] = 100 + (uint64_t)i;
    Batch b = {.lanes = B,
               .window = T,
               .action = d.action,
               .cat = d.cat,
               .dense = d.dense,
               .keep = d.keep,
               .tgt_action = d.tgt,
               .tgt_loggap = d.loggap,
               .tgt_eng = d.eng,
               .lane_id = d.lane_id};
    LossConfig lc = {.w_action = 1.0,
                     .w_time = 0.7,
                     .w_eng = 0.4,
                     .loggap_mean = 0.5,
                     .loggap_std = 1.5,
                     .gap_offset = 1e-3,
                     .top_k = 2};
    DropoutConfig dc = {.p = dropout, .seed = 5, .step = 11, .p_input = p_in, .p_output = p_out};

    LaneState init = lane_state_alloc(&s, B), work = lane_state_alloc(&s, B);
    for (int l = 0; l < layers; l++)
        for (int i = 0; i < B * s.hidden; i++) {
            init.h[l][i] = (real)(0.5 * rng_normal(&r));
            init.c[l][i] = (real)(0.5 * rng_normal(&r));
        }

    // Analytic gradients.
    for (int l = 0; l < layers; l++) {
        memcpy(work.h[l], init.h[l], sizeof(real) * B * s.hidden);
        memcpy(work.c[l], init.c[l], sizeof(real) * B * s.hidden);
    }
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    memset(m->grads, 0, sizeof(real) * m->n_params);
    m->want_input_grad = 1;
    model_forward(m, &b, &work, &lc, &dc, &sums, 1);
    model_backward(m, &b, NULL);
    real *ddense = malloc(sizeof(real) * T * B * 3);
    for (int i = 0; i < T * B; i++)
        for (int j = 0; j < 3; j++) ddense[3 * i + j] = m->act.d_dense[(size_t)i * 3 + j];

    const double h = 1e-5, tol = 1e-6;
    int failed = 0;
    double worst = 0;
    TensorInfo ti[MODEL_MAX_TENSORS];
    int nt = model_tensors(&s, ti);
    printf("%s (L=%d, dropout=%.2f in/out %.2f/%.2f, M=%d, engagement head=%d, %s embeddings): "
           "loss %.6f over %.0f targets\n",
           label, layers, dropout, p_in, p_out, model_time_mix(&s), engagement,
           m->act.folded ? "folded" : "unfolded", sums.loss, sums.n_targets);
    for (int k = 0; k < nt; k++) {
        double diff2 = 0, a2 = 0, n2 = 0;
        for (size_t i = 0; i < ti[k].count; i++) {
            real *p = m->params + ti[k].offset + i;
            real saved = *p;
            *p = saved + h;
            double lp = loss_of(m, &b, &init, &work, &lc, &dc);
            *p = saved - h;
            double lm = loss_of(m, &b, &init, &work, &lc, &dc);
            *p = saved;
            double num = (lp - lm) / (2 * h), ana = m->grads[ti[k].offset + i];
            diff2 += (num - ana) * (num - ana), a2 += ana * ana, n2 += num * num;
        }
        double err = sqrt(diff2) / (sqrt(a2) + sqrt(n2) + 1e-30);
        if (a2 == 0 && n2 == 0) err = 0;
        int bad = err > tol || !isfinite(err);
        printf("  %-14s (%4d x %-3d) |grad| %.3e  normalised error %.2e %s\n", ti[k].name,
               ti[k].rows, ti[k].cols, sqrt(a2), err, bad ? "FAIL" : "ok");
        if (sqrt(a2) == 0) {
            printf("    FAIL: gradient is identically zero, the check would prove nothing\n");
            bad = 1;
        }
        failed |= bad;
        worst = err > worst ? err : worst;
    }
    // The dense input path (numeric and time features).
    {
        double diff2 = 0, a2 = 0, n2 = 0;
        for (int i = 0; i < T * B * 3; i++) {
            real saved = d.dense[i];
            d.dense[i] = saved + h;
            double lp = loss_of(m, &b, &init, &work, &lc, &dc);
            d.dense[i] = saved - h;
            double lm = loss_of(m, &b, &init, &work, &lc, &dc);
            d.dense[i] = saved;
            double num = (lp - lm) / (2 * h), ana = ddense[i];
            diff2 += (num - ana) * (num - ana), a2 += ana * ana, n2 += num * num;
        }
        double err = sqrt(diff2) / (sqrt(a2) + sqrt(n2) + 1e-30);
        int bad = err > tol || !isfinite(err) || a2 == 0;
        printf("  %-14s (%4d x %-3d) |grad| %.3e  normalised error %.2e %s\n", "input.dense", T * B,
               3, sqrt(a2), err, bad ? "FAIL" : "ok");
        failed |= bad;
        worst = err > worst ? err : worst;
    }
    printf("  worst normalised error: %.2e (tolerance %.0e)\n", worst, tol);
    free(ddense);
    lane_state_free(&init);
    lane_state_free(&work);
    model_free(m);
    return failed;
}

static int check_case(int layers, double dropout, int engagement, int vocab2, const char *label) {
    return check_case_full(layers, dropout, engagement, vocab2, 1, 0, 0, label);
}

// Explanations' path (model.h: input_given, input_grad_only, backward from a given dy): the
// layer-0 inputs x0 are the caller's (not embedding rows), f = sum of w . y over every
// output row with fixed random w; act.dx0 must be d f / d x0 by central differences, and
// m->grads must stay untouched.
static double f_of(Model *m, const Batch *b, const LaneState *init, LaneState *work,
                   const real *x0, const real *w) {
    const ModelShape *s = &m->shape;
    const size_t n = (size_t)b->lanes * b->window * model_input_width(s);
    for (int l = 0; l < s->layers; l++) {
        memcpy(work->h[l], init->h[l], sizeof(real) * B * s->hidden);
        memcpy(work->c[l], init->c[l], sizeof(real) * B * s->hidden);
    }
    memcpy(m->act.x0, x0, sizeof(real) * n);
    model_forward(m, b, work, NULL, NULL, NULL, 0);
    double f = 0;
    for (size_t i = 0; i < (size_t)b->lanes * b->window * model_outputs(s); i++)
        f += w[i] * m->act.y[i];
    return f;
}

static int check_input_given(int layers) {
    ModelShape s = {.n_actions = 5, .action_embed = 3, .n_cat = 1, .cat_vocab = {4},
                    .cat_embed = 2, .n_dense = 3, .hidden = 4, .layers = layers,
                    .engagement = 1, .max_lanes = B, .window = T};
    Model *m = model_create(&s);
    model_init_params(m, 43, 0.7);
    m->input_given = 1, m->input_grad_only = 1;
    const int I0 = model_input_width(&s), O = model_outputs(&s), n = T * B * I0;
    Rng r = rng_make(10, 2);
    real *x0 = malloc(sizeof(real) * n), *w = malloc(sizeof(real) * T * B * O);
    for (int i = 0; i < n; i++) x0[i] = (real)rng_normal(&r);
    for (int i = 0; i < T * B * O; i++) w[i] = (real)rng_normal(&r);
    int32_t zeros[T * B] = {0};
    uint8_t keep[T * B];
    for (int i = 0; i < T * B; i++) keep[i] = i != 2 * B + 1; // lane 1 resets at t = 2
    Batch b = {.lanes = B, .window = T, .action = zeros, .cat = zeros, .keep = keep};
    LaneState init = lane_state_alloc(&s, B), work = lane_state_alloc(&s, B);
    for (int l = 0; l < layers; l++)
        for (int i = 0; i < B * s.hidden; i++)
            init.h[l][i] = (real)(0.5 * rng_normal(&r)), init.c[l][i] = (real)(0.5 * rng_normal(&r));
    memset(m->grads, 0, sizeof(real) * m->n_params);
    f_of(m, &b, &init, &work, x0, w);
    memcpy(m->act.dy, w, sizeof(real) * T * B * O);
    model_backward(m, &b, NULL);
    real *dx = malloc(sizeof(real) * n);
    memcpy(dx, m->act.dx0, sizeof(real) * n);
    double diff2 = 0, a2 = 0, n2 = 0, h = 1e-5, g2 = 0;
    for (size_t i = 0; i < m->n_params; i++) g2 += m->grads[i] * m->grads[i];
    for (int i = 0; i < n; i++) {
        real saved = x0[i];
        x0[i] = saved + h;
        double fp = f_of(m, &b, &init, &work, x0, w);
        x0[i] = saved - h;
        double fm = f_of(m, &b, &init, &work, x0, w);
        x0[i] = saved;
        double num = (fp - fm) / (2 * h);
        diff2 += (num - dx[i]) * (num - dx[i]), a2 += dx[i] * dx[i], n2 += num * num;
    }
    double err = sqrt(diff2) / (sqrt(a2) + sqrt(n2) + 1e-30);
    int bad = err > 1e-6 || !isfinite(err) || a2 == 0 || g2 != 0;
    printf("input_given, L=%d: d f / d x0 (%d x %d) |grad| %.3e  normalised error %.2e, "
           "|weight grads| %.1e %s\n", layers, T * B, I0, sqrt(a2), err, sqrt(g2),
           bad ? "FAIL" : "ok");
    free(x0), free(w), free(dx);
    lane_state_free(&init), lane_state_free(&work);
    model_free(m);
    return bad;
}

// Gate order i, f, g, o (PyTorch's): bias entries [H, 2H) are the forget gate's.
static int check_init_biases(void) {
    ModelShape s = {.n_actions = 5, .action_embed = 3, .hidden = 4, .layers = 2,
                    .max_lanes = B, .window = T};
    Model *m = model_create(&s);
    model_init_params(m, 42, 0.5);
    int bad = 0;
    for (int l = 0; l < s.layers; l++)
        for (int j = 0; j < 4 * s.hidden; j++)
            bad += m->p.bias[l][j] != (j / s.hidden == 1 ? 1 : 0);
    model_free(m);
    printf("initial biases: %d of %d wrong (forget gate 1, others 0)\n", bad, 8 * s.hidden);
    return bad != 0;
}

int main(void) {
    int failed = 0;
    failed |= check_init_biases();
    failed |= check_input_given(1);
    failed |= check_input_given(2);
    failed |= check_case(1, 0.0, 1, 3, "one layer");
    failed |= check_case(1, 0.0, 1, 40, "one layer");
    failed |= check_case(2, 0.0, 0, 3, "two layers, no engagement head");
    failed |= check_case(3, 0.4, 1, 3, "three layers with dropout");
    failed |= check_case(3, 0.4, 1, 40, "three layers with dropout");
    failed |= check_case_full(1, 0.0, 1, 3, 4, 0, 0, "mixture time head");
    failed |= check_case_full(2, 0.3, 0, 40, 3, 0, 0, "mixture time head, no engagement head");
    failed |= check_case_full(2, 0.2, 1, 3, 2, 0.3, 0.25, "input and output dropout");
    printf(failed ? "FAILED\n" : "all gradient checks passed\n");
    return failed;
}
