// simd_body.h: the kernels of kernels.h written once over a small vector vocabulary, included
// by simd_avx2.c and simd_avx512.c after they define it for their ISA (float only):
//   V, VL (floats per vector), VD (a pair of double vectors), KFN(name) (name with the ISA
//   suffix), RGEMM_ROWS (rows of the recurrent GEMM's tile, at most 8; M % 8 == 0 leaves
//   0, 2, 4 or 6 rows after the full tiles), and
//   vld vst vset1 vzero vadd vsub vmul vmax vmin vfma(a, b, c) = a b + c,
//   vfnma(a, b, c) = c - a b, vsqrt vdiv vexp vrecip (1/x to ~2^-23 or better),
//   vhmax (largest lane), vd_zero vd_add (adds the lanes of a V in double) vd_sum.
// Elements past the last whole vector go through the scalar formulas of mathfn.h, so any H
// and K work. The formulas are the generic path's (lstm_cell.c, optim.c), term for term.
#include <math.h>
#include <string.h>

#include "mathfn.h"

static inline V vsigmoid(V x) {
    return vrecip(vadd(vset1(1.0f), vexp(vsub(vzero(), x))));
}

static inline V vtanh(V x) {
    V s = vrecip(vadd(vset1(1.0f), vexp(vmul(x, vset1(-2.0f)))));
    return vsub(vmul(s, vset1(2.0f)), vset1(1.0f));
}

// The gates of one lane, columns [j0, H): pre-activations gi..go, in place.
static void KFN(cell_tail)(int j0, int H, float *gi, const float *bias, const float *cp, float k,
                           float kn, float *cb, float *tcb, float *hb, float *hn) {
    float *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
    for (int j = j0; j < H; j++) {
        float i_ = sigmoid_r(gi[j] + bias[j]), f_ = sigmoid_r(gf[j] + bias[H + j]);
        float g_ = tanh_r(gg[j] + bias[2 * H + j]), o_ = sigmoid_r(go[j] + bias[3 * H + j]);
        float c_ = f_ * (k * cp[j]) + i_ * g_, t_ = tanh_r(c_);
        gi[j] = i_, gf[j] = f_, gg[j] = g_, go[j] = o_;
        cb[j] = c_, tcb[j] = t_, hb[j] = o_ * t_;
        if (hn) hn[j] = kn * hb[j];
    }
}

// g (B, 4H), bias (4H), cprev c tc h hprev_next (B, H): see lstm_cell.h.
static void KFN(cell_forward)(int B, int H, float *restrict g, const float *restrict bias,
                              const float *restrict cprev, const uint8_t *keep,
                              const uint8_t *keep_next, float *restrict c, float *restrict tc,
                              float *restrict h, float *restrict hprev_next) {
    for (int b = 0; b < B; b++) {
        float *gi = g + (size_t)b * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const float *cp = cprev + (size_t)b * H;
        float *cb = c + (size_t)b * H, *tcb = tc + (size_t)b * H, *hb = h + (size_t)b * H;
        float *hn = hprev_next ? hprev_next + (size_t)b * H : NULL;
        const float ks = keep[b] ? 1.0f : 0.0f, kns = hn && keep_next[b] ? 1.0f : 0.0f;
        const V k = vset1(ks), kn = vset1(kns);
        int j = 0;
        for (; j + VL <= H; j += VL) {
            V i_ = vsigmoid(vadd(vld(gi + j), vld(bias + j)));
            V f_ = vsigmoid(vadd(vld(gf + j), vld(bias + H + j)));
            V g_ = vtanh(vadd(vld(gg + j), vld(bias + 2 * H + j)));
            V o_ = vsigmoid(vadd(vld(go + j), vld(bias + 3 * H + j)));
            V c_ = vfma(f_, vmul(k, vld(cp + j)), vmul(i_, g_));
            V t_ = vtanh(c_), h_ = vmul(o_, t_);
            vst(gi + j, i_), vst(gf + j, f_), vst(gg + j, g_), vst(go + j, o_);
            vst(cb + j, c_), vst(tcb + j, t_), vst(hb + j, h_);
            if (hn) vst(hn + j, vmul(kn, h_));
        }
        if (j < H) KFN(cell_tail)(j, H, gi, bias, cp, ks, kns, cb, tcb, hb, hn);
    }
}

// g (B, 4H) activations in, dG out; dh dh_rec dc (B, H): see lstm_cell.h.
static void KFN(cell_backward)(int B, int H, float *restrict g, const float *restrict cprev,
                               const uint8_t *keep, const float *restrict tc,
                               const float *restrict dh, const float *restrict dh_rec,
                               const uint8_t *keep_next, float *restrict dc) {
    const V one = vset1(1.0f);
    for (int b = 0; b < B; b++) {
        float *gi = g + (size_t)b * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const float *cp = cprev + (size_t)b * H, *tcb = tc + (size_t)b * H;
        const float *dhb = dh + (size_t)b * H;
        float *dcb = dc + (size_t)b * H;
        const float ks = keep[b] ? 1.0f : 0.0f, kns = (dh_rec && keep_next[b]) ? 1.0f : 0.0f;
        const float *dr = dh_rec ? dh_rec + (size_t)b * H : dhb; // dhb * 0 when absent
        const V k = vset1(ks), kn = vset1(kns);
        int j = 0;
        for (; j + VL <= H; j += VL) {
            V i_ = vld(gi + j), f_ = vld(gf + j), g_ = vld(gg + j), o_ = vld(go + j);
            V t_ = vld(tcb + j);
            V dh_ = vfma(kn, vld(dr + j), vld(dhb + j));
            V dc_ = vfma(vmul(dh_, o_), vfnma(t_, t_, one), vld(dcb + j));
            V cpj = vmul(k, vld(cp + j));
            vst(gi + j, vmul(vmul(vmul(dc_, g_), i_), vsub(one, i_)));
            vst(gf + j, vmul(vmul(vmul(dc_, cpj), f_), vsub(one, f_)));
            vst(gg + j, vmul(vmul(dc_, i_), vfnma(g_, g_, one)));
            vst(go + j, vmul(vmul(vmul(dh_, t_), o_), vsub(one, o_)));
            vst(dcb + j, vmul(vmul(k, dc_), f_));
        }
        for (; j < H; j++) {
            float i_ = gi[j], f_ = gf[j], g_ = gg[j], o_ = go[j], t_ = tcb[j];
            float dh_ = dhb[j] + kns * dr[j];
            float dc_ = dcb[j] + dh_ * o_ * (1.0f - t_ * t_);
            float cpj = ks * cp[j];
            gi[j] = dc_ * g_ * i_ * (1.0f - i_);
            gf[j] = dc_ * cpj * f_ * (1.0f - f_);
            gg[j] = dc_ * i_ * (1.0f - g_ * g_);
            go[j] = dh_ * t_ * o_ * (1.0f - o_);
            dcb[j] = ks * dc_ * f_;
        }
    }
}

// y, e (K): see lstm_cell.h. Sums in double, as the generic path.
static double KFN(softmax_row)(const float *restrict y, float *restrict e, int K, double *inv_sum) {
    int k = 0;
    float mx = y[0];
    if (K >= VL) {
        V m = vld(y);
        for (k = VL; k + VL <= K; k += VL) m = vmax(vld(y + k), m);
        mx = vhmax(m);
    }
    for (; k < K; k++) mx = y[k] > mx ? y[k] : mx;
    const V vm = vset1(mx);
    VD z = vd_zero();
    double zt = 0;
    for (k = 0; k + VL <= K; k += VL) {
        V x = vexp(vsub(vld(y + k), vm));
        vst(e + k, x);
        z = vd_add(z, x);
    }
    for (; k < K; k++) zt += (double)(e[k] = exp_r(y[k] - mx));
    const double zs = vd_sum(z) + zt;
    *inv_sum = 1.0 / zs;
    return log(zs) + (double)mx;
}

// p, m, v, g (n): see kernels.h.
static void KFN(optim_update)(const OptimUpdate *u, size_t n, float *restrict p, float *restrict m,
                              float *restrict v, const float *restrict g) {
    size_t i = 0;
    if (!u->adam) {
        const V gs = vset1(u->gs), wd = vset1(u->wd), mom = vset1(u->mom), lr = vset1(u->lr);
        for (; i + VL <= n; i += VL) {
            V pi = vld(p + i), gi = vfma(vld(g + i), gs, vmul(wd, pi));
            V mi = vfma(mom, vld(m + i), gi);
            vst(m + i, mi), vst(p + i, vfnma(lr, mi, pi));
        }
    } else {
        const V gs = vset1(u->gs), l2 = vset1(u->l2), b1 = vset1(u->b1), b2 = vset1(u->b2);
        const V c1 = vset1(1.0f - u->b1), c2 = vset1(1.0f - u->b2), eps = vset1(u->eps);
        const V shrink = vset1(u->shrink), ss = vset1(u->step_size);
        const V ib = vset1(u->inv_sqrt_bc2);
        for (; i + VL <= n; i += VL) {
            V pi = vld(p + i), gi = vfma(vld(g + i), gs, vmul(l2, pi));
            V mi = vfma(b1, vld(m + i), vmul(c1, gi));
            V vi = vfma(b2, vld(v + i), vmul(vmul(c2, gi), gi));
            V denom = vfma(vsqrt(vi), ib, eps);
            vst(m + i, mi), vst(v + i, vi);
            vst(p + i, vsub(vmul(pi, shrink), vdiv(vmul(ss, mi), denom)));
        }
    }
    if (i < n) optim_update_generic(u, n - i, p + i, m + i, v + i, g + i);
}

// One tile of the recurrent GEMM: rows [0, R) of C (ldc) (+)= A1 (R, K1) (lda1) times a
// 2 VL-column strip of a panel (bp1, K1 rows of 32 floats), then + A2 (R, K2) times the strip
// of bp2 (K2 rows; K2 = 0: none), in 2 R vector registers. Inlined with a constant R, so the
// loops over i unroll and the accumulators stay in registers.
static inline __attribute__((always_inline)) void
KFN(rgemm_tile)(const int R, int K1, const float *a1, int lda1, const float *bp1, int K2,
                const float *a2, int lda2, const float *bp2, float *crow, int ldc, int accumulate) {
    V c0[8], c1[8];
    for (int i = 0; i < R; i++) {
        c0[i] = accumulate ? vld(crow + (size_t)i * ldc) : vzero();
        c1[i] = accumulate ? vld(crow + (size_t)i * ldc + VL) : vzero();
    }
    for (int k = 0; k < K1; k++) {
        const V b0 = vld(bp1 + (size_t)k * 32), b1 = vld(bp1 + (size_t)k * 32 + VL);
        for (int i = 0; i < R; i++) {
            const V av = vset1(a1[(size_t)i * lda1 + k]);
            c0[i] = vfma(av, b0, c0[i]);
            c1[i] = vfma(av, b1, c1[i]);
        }
    }
    for (int k = 0; k < K2; k++) {
        const V b0 = vld(bp2 + (size_t)k * 32), b1 = vld(bp2 + (size_t)k * 32 + VL);
        for (int i = 0; i < R; i++) {
            const V av = vset1(a2[(size_t)i * lda2 + k]);
            c0[i] = vfma(av, b0, c0[i]);
            c1[i] = vfma(av, b1, c1[i]);
        }
    }
    for (int i = 0; i < R; i++) {
        vst(crow + (size_t)i * ldc, c0[i]);
        vst(crow + (size_t)i * ldc + VL, c1[i]);
    }
}

// The recurrent GEMM's micro-kernel (rgemm.h): C (M, N) (+)= A1 (M, K1) Bp1 + A2 (M, K2) Bp2,
// each Bp in panels of 32 columns (K rows of 32 floats each); M % 8 == 0, N % 32 == 0.
// Tiles of RGEMM_ROWS rows (8 on AVX-512: 16 of its 32 registers; 6 on AVX2: 12 of 16,
// enough independent FMAs to cover their latency), then 4 or 2 rows; each output element
// sums its products in order (source 1's k = 0.., then source 2's) onto C or 0, so a row's
// result does not depend on M nor on the tile it falls in.
static void KFN(rgemm2)(int M, int N, int K1, const float *A1, int lda1, const float *Bp1, int K2,
                        const float *A2, int lda2, const float *Bp2, float *C, int ldc,
                        int accumulate) {
    enum { PANEL = 32, R = RGEMM_ROWS };
    for (int p = 0; p < N / PANEL; p++)
        for (int s = 0; s < PANEL; s += 2 * VL) {
            const float *b1 = Bp1 + (size_t)p * K1 * PANEL + s;
            const float *b2 = K2 ? Bp2 + (size_t)p * K2 * PANEL + s : NULL;
            float *cp = C + p * PANEL + s;
            int r0 = 0;
#define RG_TILE(rows)                                                                              \
    KFN(rgemm_tile)                                                                                \
    ((rows), K1, A1 + (size_t)r0 * lda1, lda1, b1, K2, K2 ? A2 + (size_t)r0 * lda2 : NULL, lda2,   \
     b2, cp + (size_t)r0 * ldc, ldc, accumulate)
            for (; r0 + R <= M; r0 += R) RG_TILE(R);
            if (M - r0 >= 4) {
                RG_TILE(4);
                r0 += 4;
            }
            if (M - r0 >= 2) RG_TILE(2);
#undef RG_TILE
        }
}

// fold_row (kernels.h): columns [j, j + W VL) of g, W vectors at once, the terms in the
// generic order (a multiply and an add each, so the bits are the generic path's).
static inline __attribute__((always_inline)) void
KFN(fold_cols)(const int W, int j, int N, float *restrict g, const float *const *rows, int n,
               const float *v, const float *w, int D) {
    V a[4];
    for (int u = 0; u < W; u++) a[u] = vld(rows[0] + j + u * VL);
    int q = 0;
    if (D) {
        const V s = vset1(v[0]);
        for (int u = 0; u < W; u++) a[u] = vadd(a[u], vmul(s, vld(w + j + u * VL)));
        q = 1;
    }
    for (int k = 1; k < n; k++)
        for (int u = 0; u < W; u++) a[u] = vadd(a[u], vld(rows[k] + j + u * VL));
    for (; q < D; q++) {
        const V s = vset1(v[q]);
        const float *wq = w + (size_t)q * N + j;
        for (int u = 0; u < W; u++) a[u] = vadd(a[u], vmul(s, vld(wq + u * VL)));
    }
    for (int u = 0; u < W; u++) vst(g + j + u * VL, a[u]);
}

static void KFN(fold_row)(int N, float *restrict g, const float *const *rows, int n,
                          const float *v, const float *w, int D) {
    int j = 0;
    for (; j + 4 * VL <= N; j += 4 * VL) KFN(fold_cols)(4, j, N, g, rows, n, v, w, D);
    for (; j + VL <= N; j += VL) KFN(fold_cols)(1, j, N, g, rows, n, v, w, D);
    for (; j < N; j++) { // the tail: the generic formula
        float x = D ? rows[0][j] + v[0] * w[j] : rows[0][j];
        for (int k = 1; k < n; k++) x += rows[k][j];
        for (int q = 1; q < D; q++) x += v[q] * w[(size_t)q * N + j];
        g[j] = x;
    }
}

// fold_rows_backward (kernels.h): per vector of columns, the rows in order; up to 8 of the
// dense sums at a time stay in registers over all B rows (stored once, not once per row).
static void KFN(fold_rows_backward)(int N, int B, const float *restrict dG, float *const *rows,
                                    int n, const float *v, float *acc, int D) {
    int j = 0;
    for (; j + VL <= N; j += VL)
        for (int q0 = 0; q0 < (D > 0 ? D : 1); q0 += 8) { // the table rows with the first group
            const int nq = D - q0 < 8 ? D - q0 : 8;
            V a[8];
            for (int q = 0; q < nq; q++) a[q] = vld(acc + (size_t)(q0 + q) * N + j);
            for (int b = 0; b < B; b++) {
                const V dj = vld(dG + (size_t)b * N + j);
                for (int k = 0; q0 == 0 && k < n; k++) {
                    float *t = rows[(size_t)b * n + k] + j;
                    vst(t, vadd(vld(t), dj));
                }
                const float *vb = v + (size_t)b * D + q0;
                for (int q = 0; q < nq; q++) a[q] = vadd(a[q], vmul(vset1(vb[q]), dj));
            }
            for (int q = 0; q < nq; q++) vst(acc + (size_t)(q0 + q) * N + j, a[q]);
        }
    for (; j < N; j++)
        for (int b = 0; b < B; b++) {
            const float d = dG[(size_t)b * N + j];
            for (int k = 0; k < n; k++) rows[(size_t)b * n + k][j] += d;
            for (int q = 0; q < D; q++) acc[(size_t)q * N + j] += v[(size_t)b * D + q] * d;
        }
}

static void KFN(rgemm)(int M, int N, int K, const float *A, int lda, const float *Bp, float *C,
                       int ldc, int accumulate) {
    KFN(rgemm2)(M, N, K, A, lda, Bp, 0, NULL, 0, NULL, C, ldc, accumulate);
}

const Kernels KFN(kernels) = {.isa = KISA,
                              .name = KNAME,
                              .cell_forward = KFN(cell_forward),
                              .cell_backward = KFN(cell_backward),
                              .softmax_row = KFN(softmax_row),
                              .optim_update = KFN(optim_update),
                              .rgemm = KFN(rgemm),
                              .rgemm2 = KFN(rgemm2),
                              .fold_row = KFN(fold_row),
                              .fold_rows_backward = KFN(fold_rows_backward)};
