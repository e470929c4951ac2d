// mathfn.h: exp, sigmoid and tanh for `real` that the compiler can vectorise.
//
// float: range reduction by n = round(x / ln 2) with the 1.5 * 2^23 trick, a degree-6
// polynomial on [-ln2/2, ln2/2] (Cephes expf, a few ulp), then 2^n built in the exponent
// bits; inputs are clamped to where the result is a normal float (NaN passes through).
// double (gradient checks): libm.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "model.h"

#ifdef MODEL_REAL_DOUBLE
static inline real exp_r(real x) {
    return exp(x);
}
#else
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
    // The exponent bits need a number: a NaN input stays NaN through p.
    const float nc = n == n ? n : 0.0f;
    uint32_t bits = (uint32_t)((int32_t)nc + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
#endif

static inline real sigmoid_r(real x) {
    return (real)1 / ((real)1 + exp_r(-x));
}
static inline real tanh_r(real x) {
    return (real)2 / ((real)1 + exp_r((real)-2 * x)) - (real)1;
}
