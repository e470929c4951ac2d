// lstm_cell.c: see lstm_cell.h.
#include "lstm_cell.h"
#include "cpu.h"

#include <math.h>

#include "mathfn.h"

#if defined(MODEL_REAL_DOUBLE) || defined(__SANITIZE_ADDRESS__) || defined(TRAINER_NO_CLONES) || \
    !defined(__x86_64__)
#define CLONES
#else
// One body, compiled for AVX-512, AVX2 and baseline x86-64; picked at load time. (GCC 12
// does not vectorise these loops in an "arch=" clone, hence the feature names; and this file
// is compiled with -fno-trapping-math so the clamps in exp_r become vector selects.)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

CLONES double softmax_row(const real *restrict y, real *restrict e, int K, double *inv_sum) {
    real mx = y[0];
    for (int k = 1; k < K; k++) mx = y[k] > mx ? y[k] : mx;
    for (int k = 0; k < K; k++) e[k] = exp_r(y[k] - mx);
    double z = 0;
    for (int k = 0; k < K; k++) z += (double)e[k];
    *inv_sum = 1.0 / z;
    return log(z) + (double)mx;
}

CLONES void lstm_cell_forward_portable(int B, int H, real *restrict g, const real *restrict bias,
                                       const real *restrict cprev, const uint8_t *keep,
                                       const uint8_t *keep_next, real *restrict c,
                                       real *restrict tc, real *restrict h,
                                       real *restrict hprev_next) {
    for (int b = 0; b < B; b++) {
        real *gi = g + (size_t)b * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const real *cp = cprev + (size_t)b * H;
        real *cb = c + (size_t)b * H, *tcb = tc + (size_t)b * H, *hb = h + (size_t)b * H;
        const real k = keep[b] ? (real)1 : (real)0;
        for (int j = 0; j < H; j++) {
            real i_ = sigmoid_r(gi[j] + bias[j]);
            real f_ = sigmoid_r(gf[j] + bias[H + j]);
            real g_ = tanh_r(gg[j] + bias[2 * H + j]);
            real o_ = sigmoid_r(go[j] + bias[3 * H + j]);
            real c_ = f_ * (k * cp[j]) + i_ * g_;
            real t_ = tanh_r(c_);
            gi[j] = i_, gf[j] = f_, gg[j] = g_, go[j] = o_;
            cb[j] = c_, tcb[j] = t_, hb[j] = o_ * t_;
        }
        if (hprev_next) {
            real *hn = hprev_next + (size_t)b * H;
            const real kn = keep_next[b] ? (real)1 : (real)0;
            for (int j = 0; j < H; j++) hn[j] = kn * hb[j];
        }
    }
}

#if !defined(MODEL_REAL_DOUBLE) && defined(__x86_64__)
#include <immintrin.h>
// The forward gate math with AVX-512 intrinsics: the same formulas as the portable loop, but
// 2^n by vscalefps and 1 / x by vrcp14ps plus one Newton step (relative error ~2^-28), which
// together make it about twice as fast as the compiler's vectorisation (5 exps and 5 divisions
// per unit are most of the step outside the GEMMs). The clamps keep NaN (max/min return their
// second operand when either is NaN).
__attribute__((target("avx512f"))) static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) static inline __m512 recip512(__m512 d) {
    __m512 r = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}

__attribute__((target("avx512f"))) static inline __m512 sigmoid512(__m512 x) {
    return recip512(
        _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

__attribute__((target("avx512f"))) static inline __m512 tanh512(__m512 x) {
    __m512 s = recip512(
        _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_mul_ps(x, _mm512_set1_ps(-2.0f)))));
    return _mm512_fmsub_ps(s, _mm512_set1_ps(2.0f), _mm512_set1_ps(1.0f));
}

__attribute__((target("avx512f"))) static void
forward_avx512(int B, int H, float *restrict g, const float *restrict bias,
               const float *restrict cprev, const uint8_t *keep, const uint8_t *keep_next,
               float *restrict c, float *restrict tc, float *restrict h,
               float *restrict hprev_next) {
    for (int b = 0; b < B; b++) {
        float *gi = g + (size_t)b * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const float *cp = cprev + (size_t)b * H;
        float *cb = c + (size_t)b * H, *tcb = tc + (size_t)b * H, *hb = h + (size_t)b * H;
        float *hn = hprev_next ? hprev_next + (size_t)b * H : NULL;
        const __m512 k = _mm512_set1_ps(keep[b] ? 1.0f : 0.0f);
        const __m512 kn = _mm512_set1_ps(hn && keep_next[b] ? 1.0f : 0.0f);
        for (int j = 0; j < H; j += 16) {
            __m512 i_ =
                sigmoid512(_mm512_add_ps(_mm512_loadu_ps(gi + j), _mm512_loadu_ps(bias + j)));
            __m512 f_ =
                sigmoid512(_mm512_add_ps(_mm512_loadu_ps(gf + j), _mm512_loadu_ps(bias + H + j)));
            __m512 g_ =
                tanh512(_mm512_add_ps(_mm512_loadu_ps(gg + j), _mm512_loadu_ps(bias + 2 * H + j)));
            __m512 o_ = sigmoid512(
                _mm512_add_ps(_mm512_loadu_ps(go + j), _mm512_loadu_ps(bias + 3 * H + j)));
            __m512 c_ = _mm512_fmadd_ps(f_, _mm512_mul_ps(k, _mm512_loadu_ps(cp + j)),
                                        _mm512_mul_ps(i_, g_));
            __m512 t_ = tanh512(c_);
            __m512 h_ = _mm512_mul_ps(o_, t_);
            _mm512_storeu_ps(gi + j, i_), _mm512_storeu_ps(gf + j, f_);
            _mm512_storeu_ps(gg + j, g_), _mm512_storeu_ps(go + j, o_);
            _mm512_storeu_ps(cb + j, c_), _mm512_storeu_ps(tcb + j, t_),
                _mm512_storeu_ps(hb + j, h_);
            if (hn) _mm512_storeu_ps(hn + j, _mm512_mul_ps(kn, h_));
        }
    }
}
#endif

void lstm_cell_forward(int B, int H, real *restrict g, const real *restrict bias,
                       const real *restrict cprev, const uint8_t *keep, const uint8_t *keep_next,
                       real *restrict c, real *restrict tc, real *restrict h,
                       real *restrict hprev_next) {
#if !defined(MODEL_REAL_DOUBLE) && defined(__x86_64__)
    const int avx512 = cpu_isa() >= ISA_AVX512;
    if (avx512 && H % 16 == 0) {
        forward_avx512(B, H, g, bias, cprev, keep, keep_next, c, tc, h, hprev_next);
        return;
    }
#endif
    lstm_cell_forward_portable(B, H, g, bias, cprev, keep, keep_next, c, tc, h, hprev_next);
}

CLONES void lstm_cell_backward(int B, int H, real *restrict g, const real *restrict cprev,
                               const uint8_t *keep, const real *restrict tc,
                               const real *restrict dh, const real *restrict dh_rec,
                               const uint8_t *keep_next, real *restrict dc) {
    for (int b = 0; b < B; b++) {
        real *gi = g + (size_t)b * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const real *cp = cprev + (size_t)b * H, *tcb = tc + (size_t)b * H;
        const real *dhb = dh + (size_t)b * H;
        real *dcb = dc + (size_t)b * H;
        const real k = keep[b] ? (real)1 : (real)0;
        const real kn = (dh_rec && keep_next[b]) ? (real)1 : (real)0;
        const real *dr = dh_rec ? dh_rec + (size_t)b * H : dhb; // dhb * 0 when absent
        for (int j = 0; j < H; j++) {
            real i_ = gi[j], f_ = gf[j], g_ = gg[j], o_ = go[j], t_ = tcb[j];
            real dh_ = dhb[j] + kn * dr[j];
            real dc_ = dcb[j] + dh_ * o_ * ((real)1 - t_ * t_);
            real cpj = k * cp[j];
            gi[j] = dc_ * g_ * i_ * ((real)1 - i_);
            gf[j] = dc_ * cpj * f_ * ((real)1 - f_);
            gg[j] = dc_ * i_ * ((real)1 - g_ * g_);
            go[j] = dh_ * t_ * o_ * ((real)1 - o_);
            dcb[j] = k * dc_ * f_;
        }
    }
}
