// test_kernels.c: every kernel path of kernels.h the CPU supports (generic, AVX2+FMA, AVX-512)
// against the generic one, kernel by kernel and inside the whole model, plus a float
// finite-difference gradient check of the model on each path.
//
// Tolerances (the ISA paths use a vector exp and an approximate 1/x with one Newton step,
// and fuse multiply-adds; nothing else differs):
//   cell forward (gates, c, tanh c, h, next h): max abs difference 2e-6, inputs up to +-1000
//   cell backward (dG, dc):                     max abs difference 1e-6 relative to max |out|
//   softmax row: log-sum 1e-6 relative; numerators max abs 2e-6; K = 1 .. 10003
//   optimizer update (SGD, Adam, AdamW):        max abs difference 1e-6 relative to max |p|
//   rgemm against cblas_sgemm:                  relative (Frobenius) 1e-6
//   folded layer 0's row sums (fold_row, fold_rows_backward): bitwise equal
//   whole model, loss and all gradients vs the generic path: relative 1e-5
//   float gradient check (central differences, h = 1e-2, 48 parameters): normalised error
//       |a - n| / (|a| + |n|) below 2e-3 (measured ~1e-4; a wrong term in a backward gives
//       1e-2 and more)
// Prints each figure; returns 1 on any failure. Paths the CPU lacks are reported as skipped.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "kernels.h"
#include "lstm_cell.h"
#include "model.h"
#include "rgemm.h"
#include "util.h"

static int failures = 0;

static void check(const char *path, const char *what, double err, double tol) {
    printf("  %-7s %-52s %.2e %s\n", path, what, err, err <= tol ? "ok" : "FAIL");
    if (!(err <= tol)) failures++;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double w = 0; // NaN where the other is not: infinitely different; both NaN: equal
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            if (isnan(a[i]) != isnan(b[i])) w = INFINITY;
            continue;
        }
        w = fmax(w, fabs((double)a[i] - (double)b[i]));
    }
    return w;
}

static double max_abs(const float *a, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i]));
    return w;
}

static float *randv(Rng *r, size_t n, double scale) {
    float *x = xmalloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * rng_normal(r));
    return x;
}

// Cell forward then backward on path k and on the generic path, same inputs.
static void cell_case(const Kernels *k, int B, int H) {
    const Kernels *g0 = kernels_for(ISA_GENERIC);
    Rng r = rng_make(6, (uint64_t)(B * 1000 + H));
    const size_t n4 = (size_t)B * 4 * H, n = (size_t)B * H;
    float *g1 = randv(&r, n4, 4), *g2 = xmalloc(sizeof(float) * n4);
    g1[3] = 1000, g1[5 % n4] = -1000, g1[7 % n4] = 90, g1[9 % n4] = -90;
    memcpy(g2, g1, sizeof(float) * n4);
    float *bias = randv(&r, 4 * (size_t)H, 1), *cp = randv(&r, n, 2);
    float *o1 = xcalloc(4 * n, sizeof(float)), *o2 = xcalloc(4 * n, sizeof(float));
    uint8_t *keep = xmalloc((size_t)B), *keep_next = xmalloc((size_t)B);
    for (int i = 0; i < B; i++)
        keep[i] = (uint8_t)(i % 3 != 0), keep_next[i] = (uint8_t)(i % 4 != 0);
    k->cell_forward(B, H, g1, bias, cp, keep, keep_next, o1, o1 + n, o1 + 2 * n, o1 + 3 * n);
    g0->cell_forward(B, H, g2, bias, cp, keep, keep_next, o2, o2 + n, o2 + 2 * n, o2 + 3 * n);
    char what[96];
    snprintf(what, sizeof what, "cell forward B=%d H=%d (max abs)", B, H);
    check(k->name, what, fmax(max_abs_diff(g1, g2, n4), max_abs_diff(o1, o2, 4 * n)), 2e-6);
    // Backward from the generic activations, with and without the recurrent gradient.
    for (int rec = 0; rec < 2; rec++) {
        float *a1 = xmalloc(sizeof(float) * n4), *a2 = xmalloc(sizeof(float) * n4);
        memcpy(a1, g2, sizeof(float) * n4), memcpy(a2, g2, sizeof(float) * n4);
        float *dh = randv(&r, n, 1), *dr = randv(&r, n, 1), *dc1 = randv(&r, n, 1);
        float *dc2 = xmalloc(sizeof(float) * n);
        memcpy(dc2, dc1, sizeof(float) * n);
        k->cell_backward(B, H, a1, cp, keep, o2 + n, dh, rec ? dr : NULL, keep_next, dc1);
        g0->cell_backward(B, H, a2, cp, keep, o2 + n, dh, rec ? dr : NULL, keep_next, dc2);
        double scale = fmax(max_abs(a2, n4), max_abs(dc2, n));
        snprintf(what, sizeof what, "cell backward B=%d H=%d%s (max abs / max)", B, H,
                 rec ? " +dh_rec" : "");
        check(k->name, what, fmax(max_abs_diff(a1, a2, n4), max_abs_diff(dc1, dc2, n)) / scale,
              1e-6);
        free(a1), free(a2), free(dh), free(dr), free(dc1), free(dc2);
    }
    // A NaN pre-activation reaches c and h on every path.
    g1[0] = NAN;
    k->cell_forward(B, H, g1, bias, cp, keep, keep_next, o1, o1 + n, o1 + 2 * n, o1 + 3 * n);
    if (!isnan(o1[0]) || !isnan(o1[2 * n]))
        printf("  %-7s FAIL: NaN input did not reach c and h\n", k->name), failures++;
    free(g1), free(g2), free(bias), free(cp), free(o1), free(o2), free(keep), free(keep_next);
}

static void softmax_case(const Kernels *k, int K) {
    Rng r = rng_make(8, (uint64_t)K);
    float *y = randv(&r, (size_t)K, 5), *e1 = xmalloc(sizeof(float) * K);
    float *e2 = xmalloc(sizeof(float) * K);
    y[K / 2] = 6; // one logit well above the rest
    double s1, s2;
    double z1 = k->softmax_row(y, e1, K, &s1),
           z2 = kernels_for(ISA_GENERIC)->softmax_row(y, e2, K, &s2);
    char what[96];
    snprintf(what, sizeof what, "softmax K=%d: log-sum, 1/sum (rel), e (abs)", K);
    double err = fmax(fabs(z1 - z2) / fabs(z2), fabs(s1 - s2) / s2);
    check(k->name, what, fmax(err, max_abs_diff(e1, e2, (size_t)K)), 2e-6);
    free(y), free(e1), free(e2);
}

static void optim_case(const Kernels *k, int adam, int decoupled) {
    const size_t n = 1000 + 7;
    Rng r = rng_make(9, (uint64_t)(adam * 2 + decoupled));
    float *p[2], *m[2], *v[2], *g = randv(&r, n, 1);
    p[0] = randv(&r, n, 1), m[0] = randv(&r, n, 0.1), v[0] = randv(&r, n, 0.1);
    for (size_t i = 0; i < n; i++) v[0][i] = v[0][i] * v[0][i];
    for (int c = 1; c < 2; c++) {
        p[c] = xmalloc(sizeof(float) * n), m[c] = xmalloc(sizeof(float) * n);
        v[c] = xmalloc(sizeof(float) * n);
        memcpy(p[c], p[0], sizeof(float) * n), memcpy(m[c], m[0], sizeof(float) * n);
        memcpy(v[c], v[0], sizeof(float) * n);
    }
    OptimUpdate u = {.adam = adam,
                     .gs = 0.5f,
                     .lr = 1e-2f,
                     .mom = 0.9f,
                     .wd = 0.1f,
                     .b1 = 0.9f,
                     .b2 = 0.999f,
                     .eps = 1e-8f,
                     .l2 = decoupled ? 0 : 0.1f,
                     .shrink = decoupled ? 1 - 1e-3f : 1,
                     .step_size = 1e-2f / 0.19f,
                     .inv_sqrt_bc2 = 1 / sqrtf(0.002f)};
    k->optim_update(&u, n, p[0], m[0], v[0], g);
    kernels_for(ISA_GENERIC)->optim_update(&u, n, p[1], m[1], v[1], g);
    char what[96];
    snprintf(what, sizeof what, "optimizer update %s n=%zu (max abs / max |p|)",
             !adam       ? "SGD"
             : decoupled ? "AdamW"
                         : "Adam",
             n);
    double err = fmax(max_abs_diff(p[0], p[1], n), max_abs_diff(m[0], m[1], n));
    check(k->name, what, fmax(err, max_abs_diff(v[0], v[1], n)) / max_abs(p[1], n), 1e-6);
    for (int c = 0; c < 2; c++) free(p[c]), free(m[c]), free(v[c]);
    free(g);
}

static void rgemm_case(const Kernels *k, int M, int N, int K, int accumulate) {
    Rng r = rng_make(3, (uint64_t)(M * 1000003 + N * 1009 + K));
    float *A = randv(&r, (size_t)M * K, 1), *W = randv(&r, (size_t)N * K, 1);
    float *Bp = xmalloc(sizeof(float) * (size_t)N * K), *C1 = randv(&r, (size_t)M * N, 1);
    float *C2 = xmalloc(sizeof(float) * (size_t)M * N);
    memcpy(C2, C1, sizeof(float) * (size_t)M * N);
    rgemm_pack_transposed(N, K, W, Bp);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, A, K, W, K, accumulate ? 1 : 0,
                C1, N);
    k->rgemm(M, N, K, A, K, Bp, C2, N, accumulate);
    double d2 = 0, n2 = 0;
    for (size_t i = 0; i < (size_t)M * N; i++)
        d2 += ((double)C2[i] - C1[i]) * ((double)C2[i] - C1[i]), n2 += (double)C1[i] * C1[i];
    char what[96];
    snprintf(what, sizeof what, "rgemm M=%d N=%d K=%d%s vs sgemm (rel)", M, N, K,
             accumulate ? " accumulate" : "");
    check(k->name, what, sqrt(d2 / n2), 1e-6);
    free(A), free(W), free(Bp), free(C1), free(C2);
}

// fold_row and fold_rows_backward on path k and on the generic path, same inputs: the bits
// must be equal (kernels.h: the same operations in the same order), counted as differing
// floats. B rows, n fields of 3 table rows each; rows share table rows (the same value), so
// the order of their adds matters; D > 8 takes the backward's second group of sums.
static void fold_case(const Kernels *k, int N, int B, int n, int D) {
    const Kernels *g0 = kernels_for(ISA_GENERIC);
    Rng r = rng_make(5, (uint64_t)(N * 1009 + n * 31 + D));
    const size_t nt = (size_t)3 * n * N, na = (size_t)(D ? D : 1) * N;
    float *tab = randv(&r, nt, 1), *w = randv(&r, na, 1);
    float *v = randv(&r, (size_t)B * (D ? D : 1), 2), *dG = randv(&r, (size_t)B * N, 1);
    float *g[2], *t2[2], *acc[2];
    for (int c = 0; c < 2; c++) {
        g[c] = xmalloc(sizeof(float) * (size_t)N);
        t2[c] = xmalloc(sizeof(float) * nt);
        memcpy(t2[c], tab, sizeof(float) * nt);
        acc[c] = xmalloc(sizeof(float) * na);
        // acc starts from products, so its adds round (zeros would hide a fused multiply-add).
        for (size_t i = 0; i < na; i++) acc[c][i] = w[i] * 0.37f;
    }
    const float *rows[8];
    float **rw[2];
    for (int c = 0; c < 2; c++) rw[c] = xmalloc(sizeof(float *) * (size_t)B * n);
    for (int q = 0; q < n; q++) rows[q] = tab + (size_t)(3 * q + 1) * N;
    for (int b = 0; b < B; b++)
        for (int q = 0; q < n; q++)
            for (int c = 0; c < 2; c++)
                rw[c][b * n + q] = t2[c] + (size_t)(3 * q + (b * (q + 1)) % 3) * N;
    const float *vv = D ? v : NULL;
    k->fold_row(N, g[0], rows, n, vv, w, D);
    g0->fold_row(N, g[1], rows, n, vv, w, D);
    k->fold_rows_backward(N, B, dG, rw[0], n, vv, acc[0], D);
    g0->fold_rows_backward(N, B, dG, rw[1], n, vv, acc[1], D);
    size_t differ = 0;
    for (int i = 0; i < N; i++) differ += memcmp(&g[0][i], &g[1][i], sizeof(float)) != 0;
    for (size_t i = 0; i < nt; i++) differ += memcmp(&t2[0][i], &t2[1][i], sizeof(float)) != 0;
    for (int i = 0; i < D * N; i++) differ += memcmp(&acc[0][i], &acc[1][i], sizeof(float)) != 0;
    char what[96];
    snprintf(what, sizeof what, "fold rows N=%d B=%d fields=%d D=%d: floats not bitwise", N, B,
             n, D);
    check(k->name, what, (double)differ, 0);
    for (int c = 0; c < 2; c++) free(g[c]), free(t2[c]), free(acc[c]), free(rw[c]);
    free(tab), free(w), free(v), free(dG);
}

// ---------------------------------------------------------------- the whole model

enum { MB = 8, MT = 5, MH = 24 }; // H = 24: whole vectors and a tail on both ISA paths

typedef struct {
    ModelShape s;
    Model *m;
    LaneState init, work;
    Batch b;
    LossConfig lc;
    DropoutConfig dc;
    int32_t action[MT * MB], cat[MT * MB], tgt[MT * MB];
    float dense[MT * MB * 2], loggap[MT * MB], eng[MT * MB];
    uint8_t keep[MT * MB];
    uint64_t lane_id[MB];
} Case;

static void case_make(Case *c, int layers) {
    memset(c, 0, sizeof *c);
    c->s = (ModelShape){.n_actions = 11,
                        .action_embed = 5,
                        .n_cat = 1,
                        .cat_vocab = {40},
                        .cat_embed = 3,
                        .n_dense = 2,
                        .hidden = MH,
                        .layers = layers,
                        .engagement = 1,
                        .max_lanes = MB,
                        .window = MT};
    c->m = model_create(&c->s);
    model_init_params(c->m, 17, 0.4);
    Rng r = rng_make(5, (uint64_t)layers);
    for (size_t i = 0; i < c->m->n_params; i++) c->m->params[i] += (float)(0.05 * rng_normal(&r));
    for (int i = 0; i < MT * MB; i++) {
        c->action[i] = (int32_t)rng_below(&r, 11), c->cat[i] = (int32_t)rng_below(&r, 40);
        c->tgt[i] = i % 7 == 3 ? -1 : (int32_t)rng_below(&r, 11);
        c->dense[2 * i] = (float)rng_normal(&r), c->dense[2 * i + 1] = (float)rng_normal(&r);
        c->loggap[i] = (float)rng_normal(&r), c->eng[i] = (float)rng_normal(&r);
        c->keep[i] = rng_uniform(&r) > 0.15;
    }
    for (int i = 0; i < MB; i++) c->lane_id[i] = 7 + (uint64_t)i;
    c->b = (Batch){.lanes = MB,
                   .window = MT,
                   .action = c->action,
                   .cat = c->cat,
                   .dense = c->dense,
                   .keep = c->keep,
                   .tgt_action = c->tgt,
                   .tgt_loggap = c->loggap,
                   .tgt_eng = c->eng,
                   .lane_id = c->lane_id};
    c->lc = (LossConfig){.w_action = 1,
                         .w_time = 0.7,
                         .w_eng = 0.5,
                         .loggap_mean = 0.1,
                         .loggap_std = 1.3,
                         .gap_offset = 1e-3,
                         .top_k = 3};
    c->dc = (DropoutConfig){.p = 0.2, .seed = 3, .step = 1};
    c->init = lane_state_alloc(&c->s, MB), c->work = lane_state_alloc(&c->s, MB);
    for (int l = 0; l < layers; l++)
        for (int i = 0; i < MB * MH; i++)
            c->init.h[l][i] = (float)(0.3 * rng_normal(&r)),
            c->init.c[l][i] = (float)rng_normal(&r);
}

static void case_free(Case *c) {
    lane_state_free(&c->init), lane_state_free(&c->work);
    model_free(c->m);
}

// Loss of one forward from the initial state; with grads, also the backward into m->grads.
static double case_loss(Case *c, int grads) {
    for (int l = 0; l < c->s.layers; l++) {
        memcpy(c->work.h[l], c->init.h[l], sizeof(float) * MB * MH);
        memcpy(c->work.c[l], c->init.c[l], sizeof(float) * MB * MH);
    }
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    model_forward(c->m, &c->b, &c->work, &c->lc, &c->dc, &sums, grads);
    if (grads) {
        memset(c->m->grads, 0, sizeof(float) * c->m->n_params);
        model_backward(c->m, &c->b, NULL);
    }
    return sums.loss;
}

// The model on path k against the generic path: loss and every gradient.
static void model_case(const Kernels *k, int layers) {
    Case c;
    case_make(&c, layers);
    const size_t n = c.m->n_params;
    float *g0 = xmalloc(sizeof(float) * n);
    kernels_use(ISA_GENERIC);
    double l0 = case_loss(&c, 1);
    memcpy(g0, c.m->grads, sizeof(float) * n);
    kernels_use(k->isa);
    double l1 = case_loss(&c, 1), d2 = 0, n2 = 0;
    for (size_t i = 0; i < n; i++)
        d2 += ((double)c.m->grads[i] - g0[i]) * ((double)c.m->grads[i] - g0[i]),
            n2 += (double)g0[i] * g0[i];
    char what[96];
    snprintf(what, sizeof what, "model L=%d vs generic: loss, all gradients (rel)", layers);
    check(k->name, what, fmax(fabs(l1 - l0) / fabs(l0), sqrt(d2 / n2)), 1e-5);
    free(g0);
    case_free(&c);
}

// Central differences of the float loss on path k at 48 parameters spread over the buffer.
static void gradcheck_case(const Kernels *k, int layers) {
    kernels_use(k->isa);
    Case c;
    case_make(&c, layers);
    case_loss(&c, 1);
    const size_t n = c.m->n_params;
    float *ga = xmalloc(sizeof(float) * n);
    memcpy(ga, c.m->grads, sizeof(float) * n);
    double dn = 0, an = 0, nn = 0;
    for (int q = 0; q < 48; q++) {
        size_t i = (size_t)((q * 2654435761u) % n);
        const float x = c.m->params[i], h = 1e-2f;
        c.m->params[i] = x + h;
        double lp = case_loss(&c, 0);
        c.m->params[i] = x - h;
        double lm = case_loss(&c, 0);
        c.m->params[i] = x;
        double num = (lp - lm) / (2.0 * h);
        dn += (ga[i] - num) * (ga[i] - num), an += (double)ga[i] * ga[i], nn += num * num;
    }
    char what[96];
    snprintf(what, sizeof what, "gradcheck L=%d, 48 params (|a-n|/(|a|+|n|))", layers);
    check(k->name, what, sqrt(dn) / (sqrt(an) + sqrt(nn)), 2e-3);
    free(ga);
    case_free(&c);
}

int main(void) {
    const Isa best = cpu_isa_detected();
    printf("kernel paths against the generic one (this CPU: up to %s):\n", cpu_isa_name(best));
    for (int isa = ISA_GENERIC; isa <= ISA_AVX512; isa++) {
        if (isa > (int)best) {
            printf("  %-7s skipped: this CPU lacks it\n", cpu_isa_name((Isa)isa));
            continue;
        }
        const Kernels *k = kernels_for((Isa)isa);
        if (k->isa != (Isa)isa) {
            printf("  %-7s FAIL: kernels_for gave the %s table\n", cpu_isa_name((Isa)isa), k->name);
            failures++;
            continue;
        }
        if (isa != ISA_GENERIC) {
            const int shapes[][2] = {{8, 16}, {64, 128}, {5, 48}, {3, 13}, {4, 100}};
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
                cell_case(k, shapes[i][0], shapes[i][1]);
            const int ks[] = {1, 7, 32, 35, 1000, 10003};
            for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) softmax_case(k, ks[i]);
            for (int o = 0; o < 3; o++) optim_case(k, o > 0, o == 2);
            rgemm_case(k, 8, 32, 1, 0), rgemm_case(k, 64, 512, 128, 1);
            rgemm_case(k, 24, 96, 37, 1), rgemm_case(k, 16, 64, 256, 0);
            const int folds[][4] = {{512, 8, 2, 7}, {256, 5, 1, 1}, {96, 3, 3, 0},
                                    {52, 4, 2, 3},  {4, 2, 1, 2},   {2048, 6, 4, 17}};
            for (size_t i = 0; i < sizeof folds / sizeof folds[0]; i++)
                fold_case(k, folds[i][0], folds[i][1], folds[i][2], folds[i][3]);
            for (int layers = 1; layers <= 2; layers++) model_case(k, layers);
        }
        for (int layers = 1; layers <= 2; layers++) gradcheck_case(k, layers);
    }
    printf(failures ? "FAILED\n" : "every path agrees with the generic one\n");
    return failures ? 1 : 0;
}
