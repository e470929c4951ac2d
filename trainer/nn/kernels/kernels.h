// kernels.h: the one dispatch table of the hand-written kernels, set once from cpu_isa().
//
// Every kernel that is not a BLAS call (the LSTM cell forward with its fused gates, the cell
// backward, the softmax row of the action head, the optimizer update, the packed recurrent
// GEMM, the folded layer 0's row sums) exists in three versions: generic C (any CPU, and the double build used by the
// gradient checks), AVX2+FMA and AVX-512. kernels() returns the table of the path cpu_isa()
// picks (the best the CPU has, or LSTM_TRAINER_ISA=generic|avx2|avx512); it is resolved on
// first use and never changes. The ISA versions are compiled from one body (simd_body.h) in
// files built with -mavx2 -mfma and -mavx512f, so no ifunc or target_clones is needed (Clang
// and GCC both build and link them).
//
// Agreement between paths (tests/unit/test_kernels.c): the gate activations, c, tanh(c) and
// h within 2e-6 absolute of the generic path (vector exp and 1/x differ in the last bits),
// the backward and the optimizer update within a few float ulps, the softmax's log-sum
// within 1e-6 relative. Results of one path do not depend on the number of lanes or ranks.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "model.h"

// One optimizer update (see optim.c): adam = 0 is SGD with momentum, 1 Adam/AdamW.
//   SGD:  g' = g gs + wd p; m = mom m + g'; p -= lr m
//   Adam: g' = g gs + l2 p; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
//         p = p shrink - step_size m / (sqrt(v) inv_sqrt_bc2 + eps)
typedef struct {
    int adam;
    float gs, lr, mom, wd;
    float b1, b2, eps, l2, shrink, step_size, inv_sqrt_bc2;
} OptimUpdate;

typedef struct {
    Isa isa;
    const char *name; // "generic", "avx2", "avx512"
    // See lstm_cell.h for the contracts of these three.
    void (*cell_forward)(int B, int H, real *restrict g, const real *restrict bias,
                         const real *restrict cprev, const uint8_t *keep, const uint8_t *keep_next,
                         real *restrict c, real *restrict tc, real *restrict h,
                         real *restrict hprev_next);
    void (*cell_backward)(int B, int H, real *restrict g, const real *restrict cprev,
                          const uint8_t *keep, const real *restrict tc, const real *restrict dh,
                          const real *restrict dh_rec, const uint8_t *keep_next, real *restrict dc);
    double (*softmax_row)(const real *restrict y, real *restrict e, int K, double *inv_sum);
    // p, m, v, g (n) float; v unused by SGD.
    void (*optim_update)(const OptimUpdate *u, size_t n, float *restrict p, float *restrict m,
                         float *restrict v, const float *restrict g);
    // The packed recurrent GEMM's micro-kernel (rgemm.h), NULL where BLAS is used instead.
    void (*rgemm)(int M, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc,
                  int accumulate);
    // The same over two sources, C (+)= A1 Bp1 + A2 Bp2 (rgemm.h), NULL with rgemm.
    void (*rgemm2)(int M, int N, int K1, const float *A1, int lda1, const float *Bp1, int K2,
                   const float *A2, int lda2, const float *Bp2, float *C, int ldc, int accumulate);
    // Folded layer 0 (model.c), one input row: its n table rows and D dense values v with the
    // dense weights w (D, N), N = 4H.
    //   fold_row:          g = rows[0] (+ v[0] w[0] when D > 0) + rows[1] + .. + rows[n-1]
    //                      + v[1] w[1] + .. + v[D-1] w[D-1], added in that order;
    //   fold_rows_backward: for the B rows d_b of dG (B, N) in order, rows[b n + k] += d_b
    //                      for each k and acc[q] += v[b D + q] d_b (acc (D, N), v (B, D)).
    // Each element is a multiply then an add per term, never fused, in the generic order: every
    // path gives the generic path's bits (test_kernels checks them bitwise).
    void (*fold_row)(int N, real *restrict g, const real *const *rows, int n, const real *v,
                     const real *w, int D);
    void (*fold_rows_backward)(int N, int B, const real *restrict dG, real *const *rows, int n,
                               const real *v, real *acc, int D);
} Kernels;

// The table of the path cpu_isa() selects (resolved once).
const Kernels *kernels(void);
// The table of one path (tests compare them); a path the CPU lacks, or any path in the
// double build, gives the generic table.
const Kernels *kernels_for(Isa isa);
// Tests only: makes kernels() return kernels_for(isa) from now on (to compare whole models
// across paths in one process). Never called by the trainer.
void kernels_use(Isa isa);

// The generic versions (lstm_cell.c, optim.c), and the ISA ones (simd_avx2.c, simd_avx512.c).
void fold_row_generic(int N, real *restrict g, const real *const *rows, int n, const real *v,
                      const real *w, int D);
void fold_rows_backward_generic(int N, int B, const real *restrict dG, real *const *rows, int n,
                                const real *v, real *acc, int D);
void optim_update_generic(const OptimUpdate *u, size_t n, float *restrict p, float *restrict m,
                          float *restrict v, const float *restrict g);
#if !defined(MODEL_REAL_DOUBLE) && defined(__x86_64__)
extern const Kernels kernels_avx2, kernels_avx512;
#endif
