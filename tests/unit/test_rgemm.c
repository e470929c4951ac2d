// test_rgemm.c: the fast paths of the kernel path in use (kernels.h: AVX-512, or AVX2 under
// LSTM_TRAINER_ISA=avx2) against the portable ones: the packed recurrent GEMM (rgemm.h)
// against BLAS, alone and inside the model (forward and backward with and without it give
// the same loss and gradients to float rounding), the fused two-source rgemm2 against
// BLAS, and the gate kernel against the generic
// loop, including extreme inputs and NaN. Skips (77) on the generic path (no rgemm there).
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "lstm_cell.h"
#include "model.h"
#include "kernels.h"
#include "rgemm.h"
#include "util.h"

static int failures = 0;

static double rel_diff(const float *a, const float *b, size_t n) {
    double d2 = 0, n2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        d2 += d * d, n2 += (double)b[i] * b[i];
    }
    return sqrt(d2 / (n2 > 0 ? n2 : 1));
}

static void check(const char *what, double err, double tol) {
    printf("  %-48s relative difference %.2e %s\n", what, err, err <= tol ? "ok" : "FAIL");
    if (!(err <= tol)) failures++;
}

static void gemm_case(int M, int N, int K, int transposed, int accumulate) {
    Rng r = rng_make(3, (uint64_t)(M * 1000003 + N * 1009 + K));
    float *A = xmalloc(sizeof(float) * (size_t)M * K), *W = xmalloc(sizeof(float) * (size_t)N * K);
    float *Bp = xmalloc(sizeof(float) * (size_t)N * K),
          *C1 = xmalloc(sizeof(float) * (size_t)M * N);
    float *C2 = xmalloc(sizeof(float) * (size_t)M * N);
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < (size_t)N * K; i++) W[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < (size_t)M * N; i++) C1[i] = C2[i] = (float)rng_normal(&r);
    // transposed: B = W^T with W (N, K); else B = W with W (K, N).
    if (transposed)
        rgemm_pack_transposed(N, K, W, Bp);
    else
        rgemm_pack(K, N, W, Bp);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, transposed ? CblasTrans : CblasNoTrans, M, N, K, 1, A,
                K, W, transposed ? K : N, accumulate ? 1 : 0, C1, N);
    rgemm(M, N, K, A, K, Bp, C2, N, accumulate);
    char what[96];
    snprintf(what, sizeof what, "rgemm M=%d N=%d K=%d %s%s", M, N, K, transposed ? "W^T" : "W",
             accumulate ? " accumulate" : "");
    check(what, rel_diff(C2, C1, (size_t)M * N), 1e-6);
    free(A), free(W), free(Bp), free(C1), free(C2);
}

// rgemm2: C (+)= A1 W1^T + A2 W2^T (the fused forward) against two BLAS calls.
static void gemm2_case(int M, int N, int K1, int K2, int accumulate) {
    Rng r = rng_make(5, (uint64_t)(M * 1000003 + N * 1009 + K1 * 31 + K2));
    const size_t mn = (size_t)M * N;
    float *A1 = xmalloc(sizeof(float) * (size_t)M * K1),
          *A2 = xmalloc(sizeof(float) * (size_t)M * K2);
    float *W1 = xmalloc(sizeof(float) * (size_t)N * K1),
          *W2 = xmalloc(sizeof(float) * (size_t)N * K2);
    float *B1 = xmalloc(sizeof(float) * (size_t)N * K1),
          *B2 = xmalloc(sizeof(float) * (size_t)N * K2);
    float *C1 = xmalloc(sizeof(float) * mn), *C2 = xmalloc(sizeof(float) * mn);
    for (size_t i = 0; i < (size_t)M * K1; i++) A1[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < (size_t)M * K2; i++) A2[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < (size_t)N * K1; i++) W1[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < (size_t)N * K2; i++) W2[i] = (float)rng_normal(&r);
    for (size_t i = 0; i < mn; i++) C1[i] = C2[i] = (float)rng_normal(&r);
    rgemm_pack_transposed(N, K1, W1, B1), rgemm_pack_transposed(N, K2, W2, B2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K1, 1, A1, K1, W1, K1,
                accumulate ? 1 : 0, C1, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K2, 1, A2, K2, W2, K2, 1, C1, N);
    rgemm2(M, N, K1, A1, K1, B1, K2, A2, K2, B2, C2, N, accumulate);
    char what[96];
    snprintf(what, sizeof what, "rgemm2 M=%d N=%d K1=%d K2=%d%s", M, N, K1, K2,
             accumulate ? " accumulate" : "");
    check(what, rel_diff(C2, C1, mn), 1e-6);
    free(A1), free(A2), free(W1), free(W2), free(B1), free(B2), free(C1), free(C2);
}

// Loss and every gradient of one forward/backward of a small model, with or without rgemm.
static void model_run(int use_rgemm, int layers, float *grads_out, double *loss_out) {
    enum { B = 16, T = 8 };
    ModelShape s = {.n_actions = 9,
                    .action_embed = 8,
                    .n_dense = 3,
                    .hidden = 64,
                    .layers = layers,
                    .max_lanes = B,
                    .window = T};
    Model *m = model_create(&s);
    model_init_params(m, 11, 0);
    m->use_rgemm = use_rgemm;
    Rng r = rng_make(4, 4);
    int32_t action[B * T], tgt[B * T];
    float dense[B * T * 3], loggap[B * T], eng[B * T];
    uint8_t keep[B * T];
    uint64_t lane_id[B];
    for (int i = 0; i < B * T; i++) {
        action[i] = (int32_t)rng_below(&r, 9), tgt[i] = (int32_t)rng_below(&r, 9);
        for (int j = 0; j < 3; j++) dense[3 * i + j] = (float)rng_normal(&r);
        loggap[i] = (float)rng_normal(&r), eng[i] = 0;
        keep[i] = rng_uniform(&r) > 0.1;
    }
    for (int i = 0; i < B; i++) lane_id[i] = (uint64_t)i;
    Batch b = {.lanes = B,
               .window = T,
               .action = action,
               .dense = dense,
               .keep = keep,
               .tgt_action = tgt,
               .tgt_loggap = loggap,
               .tgt_eng = eng,
               .lane_id = lane_id};
    LossConfig lc = {.w_action = 1,
                     .w_time = 1,
                     .w_eng = 0,
                     .loggap_mean = 0,
                     .loggap_std = 1,
                     .gap_offset = 1e-3,
                     .top_k = 3};
    LaneState st = lane_state_alloc(&s, B);
    for (int l = 0; l < layers; l++)
        for (int i = 0; i < B * 64; i++) st.h[l][i] = (float)(0.3 * rng_normal(&r));
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    memset(m->grads, 0, sizeof(float) * m->n_params);
    model_forward(m, &b, &st, &lc, NULL, &sums, 1);
    model_backward(m, &b, NULL);
    memcpy(grads_out, m->grads, sizeof(float) * m->n_params);
    *loss_out = sums.loss;
    lane_state_free(&st);
    model_free(m);
}

// The forward gate kernel: dispatching (AVX-512 for H % 16 == 0) vs the portable loop.
static void cell_case(int B, int H) {
    Rng r = rng_make(6, (uint64_t)H);
    size_t n4 = (size_t)B * 4 * H, n = (size_t)B * H;
    float *g1 = xmalloc(sizeof(float) * n4), *g2 = xmalloc(sizeof(float) * n4);
    float *bias = xmalloc(sizeof(float) * 4 * (size_t)H), *cp = xmalloc(sizeof(float) * n);
    float *out1 = xcalloc(4 * n, sizeof(float)), *out2 = xcalloc(4 * n, sizeof(float));
    uint8_t *keep = xmalloc((size_t)B), *keep_next = xmalloc((size_t)B);
    for (size_t i = 0; i < n4; i++) g1[i] = g2[i] = (float)(4 * rng_normal(&r));
    g1[3] = g2[3] = 1000, g1[5] = g2[5] = -1000, g1[7] = g2[7] = 90, g1[9] = g2[9] = -90;
    for (int j = 0; j < 4 * H; j++) bias[j] = (float)rng_normal(&r);
    for (size_t i = 0; i < n; i++) cp[i] = (float)(2 * rng_normal(&r));
    for (int i = 0; i < B; i++)
        keep[i] = (uint8_t)(i % 3 != 0), keep_next[i] = (uint8_t)(i % 4 != 0);
    lstm_cell_forward(B, H, g1, bias, cp, keep, keep_next, out1, out1 + n, out1 + 2 * n,
                      out1 + 3 * n);
    lstm_cell_forward_generic(B, H, g2, bias, cp, keep, keep_next, out2, out2 + n, out2 + 2 * n,
                              out2 + 3 * n);
    double worst = 0;
    for (size_t i = 0; i < n4; i++) worst = fmax(worst, fabs((double)g1[i] - g2[i]));
    for (size_t i = 0; i < 4 * n; i++) worst = fmax(worst, fabs((double)out1[i] - out2[i]));
    char what[64];
    snprintf(what, sizeof what, "gate kernel B=%d H=%d (max abs difference)", B, H);
    check(what, worst, 2e-6);
    // A NaN pre-activation stays NaN in the fast path too.
    g1[0] = NAN;
    lstm_cell_forward(B, H, g1, bias, cp, keep, keep_next, out1, out1 + n, out1 + 2 * n,
                      out1 + 3 * n);
    if (!isnan(out1[0]) || !isnan(out1[2 * n]))
        printf("  FAIL: NaN input did not reach c and h\n"), failures++;
    free(g1), free(g2), free(bias), free(cp), free(out1), free(out2), free(keep), free(keep_next);
}

int main(void) {
    if (!rgemm_supported(8, 32)) {
        printf("SKIP: the %s kernel path has no rgemm; the trainer uses BLAS for every step\n",
               kernels()->name);
        return 77;
    }
    printf("rgemm against cblas_sgemm:\n");
    const int shapes[][3] = {
        {8, 32, 1}, {64, 256, 64}, {16, 64, 256}, {64, 512, 128}, {24, 96, 37}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int tr = 0; tr < 2; tr++)
            for (int acc = 0; acc < 2; acc++)
                gemm_case(shapes[i][0], shapes[i][1], shapes[i][2], tr, acc);
    if (!rgemm_supported(64, 256) || rgemm_supported(63, 256) || rgemm_supported(64, 100))
        printf("  FAIL: rgemm_supported answers wrongly\n"), failures++;
    gemm2_case(8, 32, 1, 1, 0), gemm2_case(64, 512, 128, 128, 0), gemm2_case(24, 96, 37, 5, 1);
    gemm2_case(16, 64, 11, 64, 1);
    printf("the %s gate kernel against the generic loop:\n", kernels()->name);
    cell_case(8, 16);
    cell_case(64, 128);
    cell_case(5, 48);
    printf("the model with and without rgemm:\n");
    for (int layers = 1; layers <= 2; layers++) {
        ModelShape s = {.n_actions = 9,
                        .action_embed = 8,
                        .n_dense = 3,
                        .hidden = 64,
                        .layers = layers,
                        .max_lanes = 16,
                        .window = 8};
        size_t n = model_param_count(&s);
        float *g1 = xmalloc(sizeof(float) * n), *g0 = xmalloc(sizeof(float) * n);
        double l1, l0;
        model_run(1, layers, g1, &l1);
        model_run(0, layers, g0, &l0);
        char what[64];
        snprintf(what, sizeof what, "L=%d loss", layers);
        check(what, fabs(l1 - l0) / fabs(l0), 1e-6);
        snprintf(what, sizeof what, "L=%d all gradients", layers);
        check(what, rel_diff(g1, g0, n), 1e-5);
        free(g1), free(g0);
    }
    printf(failures ? "FAILED\n" : "all rgemm checks passed\n");
    return failures ? 1 : 0;
}
