// rgemm.c: see rgemm.h.
#include "rgemm.h"

#include "kernels.h"

#include <stddef.h>

#include "util.h"

// Panels of 32 columns; the kernels' tiles (8 or 4 rows, see simd_body.h) divide 8 rows.
enum { PANEL = 32, ROWS = 8 };

int rgemm_supported(int M, int N) {
    return kernels()->rgemm && M > 0 && N > 0 && M % ROWS == 0 && N % PANEL == 0;
}

// Panel p holds columns [32p, 32p + 32) of B as K rows of 32 floats.
void rgemm_pack_transposed(int N, int K, const float *W, float *Bp) {
    for (int p = 0; p < N / PANEL; p++)
        for (int k = 0; k < K; k++)
            for (int j = 0; j < PANEL; j++)
                Bp[((size_t)p * K + k) * PANEL + j] = W[(size_t)(p * PANEL + j) * K + k];
}

void rgemm_pack(int K, int N, const float *W, float *Bp) {
    for (int p = 0; p < N / PANEL; p++)
        for (int k = 0; k < K; k++)
            for (int j = 0; j < PANEL; j++)
                Bp[((size_t)p * K + k) * PANEL + j] = W[(size_t)k * N + p * PANEL + j];
}

void rgemm(int M, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc,
           int accumulate) {
    const Kernels *k = kernels();
    if (!k->rgemm) fatal("internal: rgemm called where rgemm_supported() is false");
    k->rgemm(M, N, K, A, lda, Bp, C, ldc, accumulate);
}

void rgemm2(int M, int N, int K1, const float *A1, int lda1, const float *Bp1, int K2,
            const float *A2, int lda2, const float *Bp2, float *C, int ldc, int accumulate) {
    const Kernels *k = kernels();
    if (!k->rgemm2) fatal("internal: rgemm2 called where rgemm_supported() is false");
    k->rgemm2(M, N, K1, A1, lda1, Bp1, K2, A2, lda2, Bp2, C, ldc, accumulate);
}
