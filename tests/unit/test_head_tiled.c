// test_head_tiled.c: the tiled action head (head_tiled.h) against the untiled one.
//
// Two models with the same parameters, one model_create(s) and one model_create_head(s, 1),
// train on the same batch: the loss sums (every field) and every parameter gradient must
// agree, and the lane state after the window must be the same. Cases: K = 2500 and 1100 (above
// MODEL_HEAD_TILE_MIN_K, neither a multiple of HEAD_TILE_COLS), T*B = 156 rows (two row
// tiles, the second partial), padded positions without targets, one row tile with none at
// all, the engagement head, the mixture time head, dropout between layers and on the top
// output. Built twice: float (normalised error <= 2e-5, sums <= 1e-5 relative) and double
// (-DMODEL_REAL_DOUBLE: <= 1e-11, where the untiled head is the one test_gradcheck checks
// against finite differences; the double build also checks the tiled model itself by central
// differences at 40 parameters). Counts (targets, top-1, top-k) must match exactly.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "head_tiled.h"
#include "model.h"

#ifdef MODEL_REAL_DOUBLE
static const double TOL_GRAD = 1e-11, TOL_SUM = 1e-11;
#else
static const double TOL_GRAD = 2e-5, TOL_SUM = 1e-5;
#endif

enum { B = 12, T = 13, TB = T * B };

typedef struct {
    int32_t action[TB], tgt[TB];
    real dense[TB], loggap[TB], eng[TB];
    uint8_t keep[TB];
    uint64_t lane_id[B];
} Data;

static void make_data(Data *d, int K, int first_padded_row, Rng *r) {
    for (int i = 0; i < TB; i++) {
        d->action[i] = (int32_t)rng_below(r, (uint64_t)K);
        // Half the targets among the 12 actions whose bias is raised (check_case), so top-1
        // and top-k count something.
        d->tgt[i] = rng_below(r, 7) == 0 ? -1
                    : rng_below(r, 2)    ? (int32_t)rng_below(r, 12)
                                         : (int32_t)rng_below(r, (uint64_t)K);
        d->dense[i] = (real)rng_normal(r);
        d->loggap[i] = (real)(rng_normal(r) * 2 + 1);
        d->eng[i] = (real)rng_normal(r);
        d->keep[i] = rng_below(r, 9) != 0;
    }
    for (int i = first_padded_row; i < TB; i++) d->tgt[i] = -1; // a tile of rows without targets
    d->tgt[5] = K - 1, d->tgt[6] = 0; // the last and first columns
    for (int i = 0; i < B; i++) d->lane_id[i] = 7 + (uint64_t)i;
}

// The batch view of d, and the loss weights every case uses.
static Batch batch_of(Data *d) {
    return (Batch){.lanes = B, .window = T, .action = d->action, .dense = d->dense,
                   .keep = d->keep, .tgt_action = d->tgt, .tgt_loggap = d->loggap,
                   .tgt_eng = d->eng, .lane_id = d->lane_id};
}
static const LossConfig LOSS = {.w_action = 0.9, .w_time = 0.7, .w_eng = 0.4, .loggap_mean = 0.5,
                                .loggap_std = 1.5, .gap_offset = 1e-3, .top_k = 5};

static double rel(double a, double b) {
    return a == b ? 0 : fabs(a - b) / (fabs(a) + fabs(b));
}

// Forward (+ backward) of m on b from state init; sums and the state after into *sums, *st.
static void run(Model *m, const Batch *b, const LaneState *init, LaneState *st,
                const LossConfig *lc, const DropoutConfig *dc, int want_grad, LossSums *sums) {
    for (int l = 0; l < m->shape.layers; l++) {
        memcpy(st->h[l], init->h[l], sizeof(real) * B * (size_t)m->shape.hidden);
        memcpy(st->c[l], init->c[l], sizeof(real) * B * (size_t)m->shape.hidden);
    }
    memset(sums, 0, sizeof *sums);
    memset(m->grads, 0, sizeof(real) * m->n_params);
    model_forward(m, b, st, lc, dc, sums, want_grad);
    if (want_grad) model_backward(m, b, NULL);
}

static int check_sums(const LossSums *a, const LossSums *t, const char *what) {
    const double *x = (const double *)a, *y = (const double *)t;
    static const char *names[LOSS_SUMS_LEN] = {"n_targets", "loss",  "action_nll",
                                               "time_nll",  "eng_se", "top1",
                                               "topk",      "gap_abs_err", "gap_sq_err"};
    int bad = 0;
    for (int i = 0; i < LOSS_SUMS_LEN; i++) {
        const int exact = i == 0 || i == 5 || i == 6;
        const double e = rel(x[i], y[i]);
        if (exact ? x[i] != y[i] : !(e <= TOL_SUM)) { // NaN fails too
            printf("  FAIL %s sums.%s: untiled %.12g tiled %.12g\n", what, names[i], x[i], y[i]);
            bad = 1;
        }
    }
    return bad;
}

static int check_case(int K, int layers, int engagement, int time_mix, double p, double p_out,
                      int first_padded_row) {
    ModelShape s = {.n_actions = K,
                    .action_embed = 4,
                    .n_dense = 1,
                    .hidden = 16,
                    .layers = layers,
                    .engagement = engagement,
                    .time_mix = time_mix,
                    .max_lanes = B,
                    .window = T};
    Model *u = model_create(&s), *t = model_create_head(&s, 1);
    model_init_params(u, 3, 0.5);
    Rng r = rng_make(11, (uint64_t)K);
    for (size_t i = 0; i < u->n_params; i++) u->params[i] += (real)(0.1 * rng_normal(&r));
    for (int k = 0; k < 12; k++) u->p.b_head[k] += (real)(2.5 + 0.25 * k);
    memcpy(t->params, u->params, sizeof(real) * u->n_params);
    Data d;
    make_data(&d, K, first_padded_row, &r);
    Batch b = batch_of(&d);
    LossConfig lc = LOSS;
    DropoutConfig dc = {.p = p, .seed = 5, .step = 2, .p_output = p_out};
    LaneState init = lane_state_alloc(&s, B), su = lane_state_alloc(&s, B),
              st = lane_state_alloc(&s, B);
    for (int l = 0; l < layers; l++)
        for (int i = 0; i < B * s.hidden; i++) {
            init.h[l][i] = (real)(0.5 * rng_normal(&r));
            init.c[l][i] = (real)(0.5 * rng_normal(&r));
        }
    int bad = 0;
    LossSums a, c;
    // Scoring only (validation), then training.
    run(u, &b, &init, &su, &lc, &dc, 0, &a);
    run(t, &b, &init, &st, &lc, &dc, 0, &c);
    bad |= check_sums(&a, &c, "forward");
    run(u, &b, &init, &su, &lc, &dc, 1, &a);
    run(t, &b, &init, &st, &lc, &dc, 1, &c);
    bad |= check_sums(&a, &c, "train");
    for (int l = 0; l < layers; l++)
        if (memcmp(su.h[l], st.h[l], sizeof(real) * B * (size_t)s.hidden) ||
            memcmp(su.c[l], st.c[l], sizeof(real) * B * (size_t)s.hidden))
            printf("  FAIL lane state of layer %d differs\n", l), bad = 1;
    TensorInfo ti[MODEL_MAX_TENSORS];
    const int nt = model_tensors(&s, ti);
    double worst = 0;
    for (int k = 0; k < nt; k++) {
        double num = 0, den = 0;
        for (size_t j = ti[k].offset; j < ti[k].offset + ti[k].count; j++) {
            const double x = u->grads[j], y = t->grads[j];
            num += (x - y) * (x - y), den += x * x + y * y;
        }
        const double e = den > 0 ? sqrt(num) / sqrt(den) : 0;
        if (e > worst) worst = e;
        if (e > TOL_GRAD || !isfinite(e))
            printf("  FAIL gradient of %s: normalised error %.3g\n", ti[k].name, e), bad = 1;
    }
    printf("K=%d L=%d E=%d M=%d dropout %.2f/%.2f: %g targets, loss %.9g vs %.9g, top1 %g top5 %g, "
           "worst gradient error %.3g (tolerance %.0e): %s\n",
           K, layers, engagement, time_mix, p, p_out, a.n_targets, a.loss, c.loss, a.top1, a.topk, worst,
           TOL_GRAD, bad ? "FAIL" : "ok");
    lane_state_free(&init), lane_state_free(&su), lane_state_free(&st);
    model_free(u), model_free(t);
    return bad;
}

#ifdef MODEL_REAL_DOUBLE
// Central differences of the tiled model's loss (forward with sums only) against its
// backward, at 40 parameters: head weights and biases of target and other columns in
// several column tiles, the time head's rows, and LSTM and embedding weights.
static int check_fd(int K) {
    ModelShape s = {.n_actions = K, .action_embed = 4, .n_dense = 1, .hidden = 8, .layers = 1,
                    .engagement = 1, .time_mix = 1, .max_lanes = B, .window = T};
    Model *m = model_create_head(&s, 1);
    model_init_params(m, 4, 0.5);
    Rng r = rng_make(12, (uint64_t)K);
    Data d;
    make_data(&d, K, TB, &r);
    Batch b = batch_of(&d);
    LossConfig lc = LOSS;
    LaneState init = lane_state_alloc(&s, B), st = lane_state_alloc(&s, B);
    memset(init.h[0], 0, sizeof(real) * B * 8), memset(init.c[0], 0, sizeof(real) * B * 8);
    LossSums sums;
    run(m, &b, &init, &st, &lc, NULL, 1, &sums);
    real *g = malloc(sizeof(real) * m->n_params);
    memcpy(g, m->grads, sizeof(real) * m->n_params);
    TensorInfo ti[MODEL_MAX_TENSORS];
    const int nt = model_tensors(&s, ti);
    const TensorInfo *hw = &ti[nt - 2], *hb = &ti[nt - 1];
    size_t idx[40];
    int n = 0;
    int t0 = 0, t1;
    while (d.tgt[t0] < 0) t0++; // two rows' target columns (make_data leaves some at -1)
    for (t1 = t0 + 1; d.tgt[t1] < 0;) t1++;
    const int cols[] = {d.tgt[t0], d.tgt[t1], K - 1, 0, HEAD_TILE_COLS, HEAD_TILE_COLS - 1, K, K + 2};
    for (int c = 0; c < 8; c++) {
        idx[n++] = hw->offset + (size_t)cols[c] * 8 + (size_t)(c % 8);
        idx[n++] = hb->offset + (size_t)cols[c];
    }
    while (n < 40) idx[n++] = (size_t)rng_below(&r, ti[nt - 2].offset); // LSTM, embeddings
    // The normalised error |a - n| / (|a| + |n|) over the 40 entries (norms), as test_gradcheck.
    double dd = 0, aa = 0, nn = 0;
    for (int i = 0; i < n; i++) {
        const real keep = m->params[idx[i]], h = 1e-5;
        m->params[idx[i]] = keep + h;
        run(m, &b, &init, &st, &lc, NULL, 0, &sums);
        const double up = sums.loss;
        m->params[idx[i]] = keep - h;
        run(m, &b, &init, &st, &lc, NULL, 0, &sums);
        m->params[idx[i]] = keep;
        const double num = (up - sums.loss) / (2 * h), a = g[idx[i]];
        dd += (num - a) * (num - a), aa += a * a, nn += num * num;
    }
    const double worst = sqrt(dd) / (sqrt(aa) + sqrt(nn));
    printf("finite differences, tiled head K=%d, %d parameters: normalised error %.3g "
           "(tolerance 1e-6): %s\n", K, n, worst, worst <= 1e-6 ? "ok" : "FAIL");
    free(g);
    lane_state_free(&init), lane_state_free(&st);
    model_free(m);
    return !(worst <= 1e-6); // NaN (e.g. all-zero gradients) fails too
}
#endif

int main(void) {
    int bad = 0;
#ifdef MODEL_REAL_DOUBLE
    bad |= check_fd(2100);
#endif
    bad |= check_case(2500, 1, 1, 1, 0, 0.2, HEAD_TILE_ROWS); // rows 128..155: no targets
    bad |= check_case(1100, 2, 0, 3, 0.3, 0, TB);
    bad |= check_case(MODEL_HEAD_TILE_MIN_K + 1, 1, 1, 2, 0, 0, TB - 3);
    if (bad) {
        printf("FAIL: the tiled head disagrees with the untiled one\n");
        return 1;
    }
    printf("ok: tiled and untiled heads agree\n");
    return 0;
}
