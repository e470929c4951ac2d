// gemm.h: the one row-major BLAS GEMM call of the nn layer, in the model's precision, and the
// column sums that go with it for biases.
//
// gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
//   C (M, N) = alpha * op(A) (M, K) op(B) (K, N) + beta * C, op(X) = X^T when its flag is set.
// float (cblas_sgemm) by default; double (cblas_dgemm) where MODEL_REAL_DOUBLE builds the
// float64 twin used by the gradient checks. Include after the header that defines `real`.
#ifndef NN_GEMM_H
#define NN_GEMM_H

#include <cblas.h>

#ifdef MODEL_REAL_DOUBLE
#define NN_GEMM cblas_dgemm
#else
#define NN_GEMM cblas_sgemm
#endif

static inline void gemm(int trans_a, int trans_b, int M, int N, int K, real alpha, const real *A,
                        int lda, const real *B, int ldb, real beta, real *C, int ldc) {
    NN_GEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
            M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// out (N) += the column sums of x (M, N), row by row (the bias gradient of a dense layer).
static inline void add_column_sums(real *out, const real *x, int M, int N) {
    for (int r = 0; r < M; r++) {
        const real *row = x + (size_t)r * N;
        for (int j = 0; j < N; j++) out[j] += row[j];
    }
}

#endif
