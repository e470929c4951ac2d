// test_lane_grad.c: per-lane gradient norms (nn/lane_grad.c, both methods) against each
// lane's gradient computed on its own: a 1-lane forward + backward of that lane's rows from
// its own state, with its global lane id (so dropout draws the same mask), whose gradient is
// summed in double. Double-precision model (MODEL_REAL_DOUBLE), so the match must be ~1e-12.
// Covers folded and unfolded embeddings, 1 and 2 layers with dropout, a lane reset inside
// the window, padded positions without targets, a repeated id (rows summed per id).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "lane_grad.h"
#include "model.h"

#include "check.h"

enum { B = 4, T = 7, NCAT = 2, D = 3 };

typedef struct {
    int32_t action[T * B], cat[T * B * NCAT], tgt[T * B];
    real dense[T * B * D], loggap[T * B], eng[T * B];
    uint8_t keep[T * B];
    uint64_t lane_id[B];
} Data;

static Batch view(Data *d, int lanes) {
    Batch b = {.lanes = lanes, .window = T, .action = d->action, .cat = d->cat,
               .dense = d->dense, .keep = d->keep, .tgt_action = d->tgt,
               .tgt_loggap = d->loggap, .tgt_eng = d->eng, .lane_id = d->lane_id};
    return b;
}

// Lane `lane` of d as a 1-lane batch.
static void one_lane(const Data *d, int lane, Data *o) {
    memset(o, 0, sizeof *o);
    for (int t = 0; t < T; t++) {
        int r = t * B + lane;
        o->action[t] = d->action[r], o->tgt[t] = d->tgt[r], o->keep[t] = d->keep[r];
        o->loggap[t] = d->loggap[r], o->eng[t] = d->eng[r];
        for (int c = 0; c < NCAT; c++) o->cat[t * NCAT + c] = d->cat[r * NCAT + c];
        for (int j = 0; j < D; j++) o->dense[t * D + j] = d->dense[r * D + j];
    }
    o->lane_id[0] = d->lane_id[lane];
}

static void run_case(int layers, double dropout, int vocab2, LaneGradMethod method) {
    ModelShape s = {.n_actions = 5, .action_embed = 3, .n_cat = NCAT, .cat_vocab = {4, vocab2},
                    .cat_embed = 2, .n_dense = D, .hidden = 5, .layers = layers,
                    .engagement = 1, .max_lanes = B, .window = T};
    Model *m = model_create(&s);
    model_init_params(m, 7, 0.6);
    Rng r = rng_make(11, (uint64_t)layers * 7 + (uint64_t)vocab2);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += (real)(0.1 * rng_normal(&r));
    Data d;
    memset(&d, 0, sizeof d);
    for (int i = 0; i < T * B; i++) {
        d.action[i] = (int32_t)rng_below(&r, 5);
        d.cat[NCAT * i] = (int32_t)rng_below(&r, 4);
        d.cat[NCAT * i + 1] = (int32_t)rng_below(&r, (uint64_t)vocab2);
        for (int j = 0; j < D; j++) d.dense[D * i + j] = (real)rng_normal(&r);
        d.tgt[i] = (int32_t)rng_below(&r, 5);
        d.loggap[i] = (real)(rng_normal(&r) + 1);
        d.eng[i] = (real)rng_normal(&r);
        d.keep[i] = 1;
    }
    for (int l = 0; l < B; l++) d.keep[l] = 0, d.lane_id[l] = 40 + 3 * (uint64_t)l;
    d.keep[3 * B + 2] = 0; // lane 2 resets inside the window
    for (int t = 5; t < T; t++) d.tgt[t * B + 1] = -1, d.keep[t * B + 1] = 0; // lane 1 padded
    d.action[1 * B + 3] = d.action[4 * B + 3]; // lane 3 sees one action id twice
    LossConfig lc = {.w_action = 1, .w_time = 0.7, .w_eng = 0.4, .loggap_mean = 0.5,
                     .loggap_std = 1.5, .gap_offset = 1e-3, .top_k = 2};
    DropoutConfig dc = {.p = dropout, .seed = 3, .step = 9};
    LaneState st = lane_state_alloc(&s, B);
    for (int l = 0; l < layers; l++) memset(st.h[l], 0, sizeof(real) * B * s.hidden),
                                       memset(st.c[l], 0, sizeof(real) * B * s.hidden);
    Batch b = view(&d, B);
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    memset(m->grads, 0, sizeof(real) * m->n_params);
    model_forward(m, &b, &st, &lc, &dc, &sums, 1);
    model_backward(m, &b, NULL);
    const int folded = m->act.folded;
    // The sum of the per-lane gradients is the batch gradient: keep it to check that too.
    real *batch_grad = malloc(sizeof(real) * m->n_params);
    memcpy(batch_grad, m->grads, sizeof(real) * m->n_params);
    LaneGrad lg;
    lane_grad_init(&lg, &s, method);
    double sq[B];
    lane_grad_norms_sq(m, &b, &lg, sq);
    real *sum = calloc(m->n_params, sizeof(real));
    double worst = 0;
    for (int lane = 0; lane < B; lane++) {
        Data o;
        one_lane(&d, lane, &o);
        Batch b1 = view(&o, 1);
        LaneState s1 = lane_state_alloc(&s, 1);
        for (int l = 0; l < layers; l++) memset(s1.h[l], 0, sizeof(real) * s.hidden),
                                           memset(s1.c[l], 0, sizeof(real) * s.hidden);
        memset(m->grads, 0, sizeof(real) * m->n_params);
        model_forward(m, &b1, &s1, &lc, &dc, NULL, 1);
        model_backward(m, &b1, NULL);
        double ref = 0;
        for (size_t i = 0; i < m->n_params; i++) {
            ref += (double)m->grads[i] * m->grads[i];
            sum[i] += m->grads[i];
        }
        double rel = fabs(sq[lane] - ref) / (ref > 0 ? ref : 1);
        worst = rel > worst ? rel : worst;
        CHECK(rel < 1e-10, "lane %d: norm^2 %.15g, its own backward gives %.15g", lane, sq[lane],
              ref);
        lane_state_free(&s1);
    }
    double d2 = 0, n2 = 0;
    for (size_t i = 0; i < m->n_params; i++)
        d2 += (sum[i] - batch_grad[i]) * (sum[i] - batch_grad[i]), n2 += batch_grad[i] * batch_grad[i];
    CHECK(sqrt(d2) <= 1e-12 * sqrt(n2), "per-lane gradients do not add up to the batch's");
    // The clipped sum: sum_lane scale[lane] * g_lane, from the stored activations, against a
    // backward whose dy rows were scaled per lane (one lane with scale 0, one above 1).
    double scale[B] = {0.3, 0, 1.7, 0.05};
    for (int l = 0; l < layers; l++) memset(st.h[l], 0, sizeof(real) * B * s.hidden),
                                       memset(st.c[l], 0, sizeof(real) * B * s.hidden);
    const int O = model_outputs(&s);
    model_forward(m, &b, &st, &lc, &dc, NULL, 1);
    for (int row = 0; row < T * B; row++)
        for (int k = 0; k < O; k++) m->act.dy[row * O + k] *= (real)scale[row % B];
    memset(m->grads, 0, sizeof(real) * m->n_params);
    model_backward(m, &b, NULL);
    real *want = malloc(sizeof(real) * m->n_params);
    memcpy(want, m->grads, sizeof(real) * m->n_params);
    // Again from the same state (backward overwrote the gates with dG), unscaled, with the
    // DP step's backward (dG only: it must leave the gradient buffer alone).
    for (int l = 0; l < layers; l++) memset(st.h[l], 0, sizeof(real) * B * s.hidden),
                                       memset(st.c[l], 0, sizeof(real) * B * s.hidden);
    model_forward(m, &b, &st, &lc, &dc, NULL, 1);
    for (size_t i = 0; i < m->n_params; i++) m->grads[i] = (real)1.5;
    m->skip_param_grads = 1;
    model_backward(m, &b, NULL);
    m->skip_param_grads = 0;
    int untouched = 1;
    for (size_t i = 0; i < m->n_params; i++) untouched &= m->grads[i] == (real)1.5;
    CHECK(untouched, "backward with skip_param_grads changed the gradient buffer");
    memset(m->grads, 0, sizeof(real) * m->n_params);
    lane_grad_norms_sq(m, &b, &lg, sq);
    lane_grad_clipped_sum(m, &b, &lg, scale);
    d2 = 0, n2 = 0;
    for (size_t i = 0; i < m->n_params; i++)
        d2 += (m->grads[i] - want[i]) * (m->grads[i] - want[i]), n2 += want[i] * want[i];
    CHECK(n2 > 0 && sqrt(d2) <= 1e-12 * sqrt(n2),
          "clipped sum differs from the scaled backward: |diff| %.3g of %.3g", sqrt(d2), sqrt(n2));
    printf("  clipped sum vs scaled-dy backward: relative difference %.2e\n", sqrt(d2 / n2));
    free(want);
    printf("L=%d dropout=%.1f %s embeddings, %s: worst relative error of norm^2 %.2e\n", layers,
           dropout, folded ? "folded" : "unfolded",
           method == LANE_GRAD_GHOST ? "ghost" : "explicit", worst);
    free(sum), free(batch_grad);
    lane_grad_free(&lg);
    lane_state_free(&st);
    model_free(m);
}

int main(void) {
    for (int method = 0; method < 2; method++) {
        run_case(1, 0, 3, (LaneGradMethod)method);      // folded (9 + ... rows <= 28)
        run_case(2, 0.4, 3, (LaneGradMethod)method);    // dropout between layers
        run_case(2, 0.3, 40, (LaneGradMethod)method);   // unfolded: vocabularies > T*B rows
    }
    if (g_failures) printf("%d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}
