// lstm_cell.c: see lstm_cell.h.
#include "lstm_cell.h"

#include <math.h>
#include <string.h>

#if defined(MODEL_REAL_DOUBLE) || defined(__SANITIZE_ADDRESS__) || !defined(__x86_64__)
#define CLONES
#else
// One body, compiled for AVX-512, AVX2+FMA and baseline x86-64; picked at load time.
#define CLONES __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))
#endif

#ifdef MODEL_REAL_DOUBLE
static inline real exp_r(real x) { return exp(x); }
#else
// exp for float that GCC vectorises: range reduction by n = round(x / ln 2) with the
// 1.5 * 2^23 trick, a degree-6 polynomial on [-ln2/2, ln2/2] (Cephes expf), then 2^n by
// building the exponent bits. Inputs are clamped to where the result is a normal float.
static inline float exp_r(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
#endif

static inline real sigmoid_r(real x) { return (real)1 / ((real)1 + exp_r(-x)); }
static inline real tanh_r(real x) { return (real)2 / ((real)1 + exp_r((real)-2 * x)) - (real)1; }

CLONES void vec_sigmoid(real *x, int n) {
    for (int i = 0; i < n; i++) x[i] = sigmoid_r(x[i]);
}

CLONES void lstm_cell_forward(int B, int H, real *g, const real *bias, const real *cprev,
                              const uint8_t *keep, const uint8_t *keep_next, real *c, real *tc,
                              real *h, real *hprev_next) {
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

CLONES void lstm_cell_backward(int B, int H, real *g, const real *cprev, const uint8_t *keep,
                               const real *tc, const real *dh, const real *dh_rec,
                               const uint8_t *keep_next, real *dc) {
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
