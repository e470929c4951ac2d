// rgemm.h: the recurrent GEMM of one time step, with the weights packed once per window.
//
// Each time step multiplies the B lanes' (B, K) rows by the same recurrent weights; a
// general GEMM re-packs those weights on every call, which at B = 64 costs as much as a
// third of the product. Here the weights are packed once per forward (and once per
// backward) into panels of 32 columns, and the micro-kernel of kernels.h's path (AVX-512: 8
// rows x 32 columns per tile; AVX2: 4 rows x 16 columns) computes straight from the lanes'
// rows. Used on the AVX2 and AVX-512 paths when the shape fits (rows a multiple of 8,
// columns of 32); otherwise (and on the generic path) the caller uses BLAS. Float only.
#pragma once

// Whether rgemm() can compute an (M, N) result on this CPU.
int rgemm_supported(int M, int N);
// Packs B (K, N) = W^T for W (N, K) row-major (the forward's W_hh^T). Bp holds N * K floats.
void rgemm_pack_transposed(int N, int K, const float *W, float *Bp);
// Packs B (K, N) = W for W (K, N) row-major (the backward's W_hh).
void rgemm_pack(int K, int N, const float *W, float *Bp);
// C (M, N) = (accumulate ? C : 0) + A (M, K) B, with B packed; lda, ldc in floats.
void rgemm(int M, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc,
           int accumulate);
// C (M, N) = (accumulate ? C : 0) + A1 (M, K1) B1 + A2 (M, K2) B2, both B packed: one pass
// over C (the forward's x_t W_ih^T + h_{t-1} W_hh^T). Each element sums source 1's products
// in order, then source 2's.
void rgemm2(int M, int N, int K1, const float *A1, int lda1, const float *Bp1, int K2,
            const float *A2, int lda2, const float *Bp2, float *C, int ldc, int accumulate);
