// simd_avx2.c: the kernels of kernels.h for AVX2+FMA (compiled with -mavx2 -mfma; called only
// where cpu_isa() says the CPU has both). The vector vocabulary of simd_body.h: 8 floats;
// exp by Cephes' polynomial with 2^n built in the exponent bits, 1/x by vrcpps plus one
// Newton step (relative error ~2^-23). The clamps keep NaN (max/min return their second
// operand when either is NaN).
#include "kernels.h"

#if !defined(MODEL_REAL_DOUBLE) && defined(__x86_64__)
#include <immintrin.h>

typedef __m256 V;
typedef struct {
    __m256d lo, hi;
} VD;
enum { VL = 8, RGEMM_ROWS = 6 };
#define KFN(name) name##_avx2
#define KISA      ISA_AVX2
#define KNAME     "avx2"

static inline V vld(const float *p) {
    return _mm256_loadu_ps(p);
}
static inline void vst(float *p, V x) {
    _mm256_storeu_ps(p, x);
}
static inline V vset1(float x) {
    return _mm256_set1_ps(x);
}
static inline V vzero(void) {
    return _mm256_setzero_ps();
}
static inline V vadd(V a, V b) {
    return _mm256_add_ps(a, b);
}
static inline V vsub(V a, V b) {
    return _mm256_sub_ps(a, b);
}
static inline V vmul(V a, V b) {
    return _mm256_mul_ps(a, b);
}
static inline V vdiv(V a, V b) {
    return _mm256_div_ps(a, b);
}
static inline V vsqrt(V a) {
    return _mm256_sqrt_ps(a);
}
static inline V vmax(V a, V b) {
    return _mm256_max_ps(a, b);
}
static inline V vmin(V a, V b) {
    return _mm256_min_ps(a, b);
}
static inline V vfma(V a, V b, V c) {
    return _mm256_fmadd_ps(a, b, c);
}
static inline V vfnma(V a, V b, V c) {
    return _mm256_fnmadd_ps(a, b, c);
}

static inline V vexp(V x) {
    x = vmax(vset1(-87.0f), x);
    x = vmin(vset1(88.0f), x);
    V n = _mm256_round_ps(vmul(x, vset1(1.44269504088896341f)),
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
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return vmul(p, _mm256_castsi256_ps(e));
}

static inline V vrecip(V d) {
    V r = _mm256_rcp_ps(d);
    return vmul(r, vfnma(d, r, vset1(2.0f)));
}

static inline float vhmax(V x) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline VD vd_zero(void) {
    return (VD){_mm256_setzero_pd(), _mm256_setzero_pd()};
}
static inline VD vd_add(VD z, V x) {
    z.lo = _mm256_add_pd(z.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
    z.hi = _mm256_add_pd(z.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
    return z;
}
static inline double vd_sum(VD z) {
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(z.lo, z.hi));
    return (t[0] + t[1]) + (t[2] + t[3]);
}

#include "simd_body.h"
#endif
