// rgemm.c: see rgemm.h.
#include "rgemm.h"
#include "cpu.h"

#include <stddef.h>

#include "util.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_KERNEL 1
#else
#define HAVE_KERNEL 0
#endif

enum { PANEL = 32, ROWS = 8 }; // the kernel's tile: 8 rows x 32 columns = 16 zmm accumulators

int rgemm_supported(int M, int N) {
#if HAVE_KERNEL
    const int avx512 = cpu_isa() >= ISA_AVX512;
    return avx512 && M > 0 && N > 0 && M % ROWS == 0 && N % PANEL == 0;
#else
    (void)M, (void)N;
    return 0;
#endif
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

#if HAVE_KERNEL
__attribute__((target("avx512f"))) static void kernel(int M, int N, int K, const float *A, int lda,
                                                      const float *Bp, float *C, int ldc,
                                                      int accumulate) {
    for (int p = 0; p < N / PANEL; p++) {
        const float *bp = Bp + (size_t)p * K * PANEL;
        for (int r0 = 0; r0 < M; r0 += ROWS) {
            __m512 c[ROWS][2];
            float *crow = C + (size_t)r0 * ldc + p * PANEL;
            for (int i = 0; i < ROWS; i++) {
                c[i][0] =
                    accumulate ? _mm512_loadu_ps(crow + (size_t)i * ldc) : _mm512_setzero_ps();
                c[i][1] =
                    accumulate ? _mm512_loadu_ps(crow + (size_t)i * ldc + 16) : _mm512_setzero_ps();
            }
            const float *a = A + (size_t)r0 * lda;
            for (int k = 0; k < K; k++) {
                const __m512 b0 = _mm512_loadu_ps(bp + (size_t)k * PANEL);
                const __m512 b1 = _mm512_loadu_ps(bp + (size_t)k * PANEL + 16);
                for (int i = 0; i < ROWS; i++) {
                    const __m512 av = _mm512_set1_ps(a[(size_t)i * lda + k]);
                    c[i][0] = _mm512_fmadd_ps(av, b0, c[i][0]);
                    c[i][1] = _mm512_fmadd_ps(av, b1, c[i][1]);
                }
            }
            for (int i = 0; i < ROWS; i++) {
                _mm512_storeu_ps(crow + (size_t)i * ldc, c[i][0]);
                _mm512_storeu_ps(crow + (size_t)i * ldc + 16, c[i][1]);
            }
        }
    }
}
#endif

void rgemm(int M, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc,
           int accumulate) {
#if HAVE_KERNEL
    kernel(M, N, K, A, lda, Bp, C, ldc, accumulate);
#else
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)Bp, (void)C, (void)ldc, (void)accumulate;
    fatal("internal: rgemm called where rgemm_supported() is false");
#endif
}
