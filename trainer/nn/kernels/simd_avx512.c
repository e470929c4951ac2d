// simd_avx512.c: the kernels of kernels.h for AVX-512F (compiled with -mavx512f; called only
// where cpu_isa() says the CPU has it). The vector vocabulary of simd_body.h: 16 floats;
// exp by Cephes' polynomial with 2^n by vscalefps, 1/x by vrcp14ps plus one Newton step
// (relative error ~2^-28): together about twice as fast as the compiler's vectorisation of
// the scalar formulas. The clamps keep NaN (max/min return their second operand when either
// is NaN).
#include "kernels.h"

#if !defined(MODEL_REAL_DOUBLE) && defined(__x86_64__)
#include <immintrin.h>

typedef __m512 V;
typedef struct {
    __m512d lo, hi;
} VD;
enum { VL = 16, RGEMM_ROWS = 8 };
#define KFN(name) name##_avx512
#define KISA      ISA_AVX512
#define KNAME     "avx512"

static inline V vld(const float *p) {
    return _mm512_loadu_ps(p);
}
static inline void vst(float *p, V x) {
    _mm512_storeu_ps(p, x);
}
static inline V vset1(float x) {
    return _mm512_set1_ps(x);
}
static inline V vzero(void) {
    return _mm512_setzero_ps();
}
static inline V vadd(V a, V b) {
    return _mm512_add_ps(a, b);
}
static inline V vsub(V a, V b) {
    return _mm512_sub_ps(a, b);
}
static inline V vmul(V a, V b) {
    return _mm512_mul_ps(a, b);
}
static inline V vdiv(V a, V b) {
    return _mm512_div_ps(a, b);
}
static inline V vsqrt(V a) {
    return _mm512_sqrt_ps(a);
}
static inline V vmax(V a, V b) {
    return _mm512_max_ps(a, b);
}
static inline V vmin(V a, V b) {
    return _mm512_min_ps(a, b);
}
static inline V vfma(V a, V b, V c) {
    return _mm512_fmadd_ps(a, b, c);
}
static inline V vfnma(V a, V b, V c) {
    return _mm512_fnmadd_ps(a, b, c);
}

static inline V vexp(V x) {
    x = vmax(vset1(-87.0f), x);
    x = vmin(vset1(88.0f), x);
    V n = _mm512_roundscale_ps(vmul(x, vset1(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = vfnma(n, vset1(0.693359375f), x);
    r = vfnma(n, vset1(-2.12194440e-4f), r);
    V p = vset1(1.9875691500e-4f);
    p = vfma(p, r, vset1(1.3981999507e-3f));
    p = vfma(p, r, vset1(8.3334519073e-3f));
    p = vfma(p, r, vset1(4.1665795894e-2f));
    p = vfma(p, r, vset1(1.6666665459e-1f));
    p = vfma(p, r, vset1(5.0000001201e-1f));
    p = vfma(vmul(p, r), r, vadd(r, vset1(1.0f)));
    return _mm512_scalef_ps(p, n);
}

static inline V vrecip(V d) {
    V r = _mm512_rcp14_ps(d);
    return vmul(r, vfnma(d, r, vset1(2.0f)));
}

static inline float vhmax(V x) {
    return _mm512_reduce_max_ps(x);
}

static inline VD vd_zero(void) {
    return (VD){_mm512_setzero_pd(), _mm512_setzero_pd()};
}
static inline VD vd_add(VD z, V x) {
    z.lo = _mm512_add_pd(z.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(x)));
    z.hi = _mm512_add_pd(
        z.hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))));
    return z;
}
static inline double vd_sum(VD z) {
    double t[8];
    _mm512_storeu_pd(t, _mm512_add_pd(z.lo, z.hi));
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

#include "simd_body.h"
#endif
