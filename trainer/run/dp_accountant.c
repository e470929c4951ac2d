// dp_accountant.c: see dp_accountant.h. Everything in log space, float64.
//
// One step at order a of the sampled Gaussian (rate q, noise multiplier s) has RDP
// log(A_a) / (a - 1). For integer a, A_a = sum_k C(a,k) (1-q)^(a-k) q^k e^((k^2-k)/(2s^2)).
// For fractional a, A_a = A0 + A1, two series with erfc factors (Mironov et al. 2019,
// Section 3.3; z0 = s^2 log(1/q - 1) + 1/2), summed until both terms are below e^-30.
#include "dp_accountant.h"

#include <math.h>
#include <stddef.h>

static double g_orders[DP_N_ORDERS];
static int g_orders_ready;

const double *dp_orders(void) {
    if (!g_orders_ready) {
        int n = 0;
        for (int x = 1; x < 100; x++) g_orders[n++] = 1.0 + x / 10.0;
        for (int a = 12; a < 64; a++) g_orders[n++] = a;
        static const double extra[] = {64, 80, 96, 128, 160, 192, 256};
        for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) g_orders[n++] = extra[i];
        g_orders_ready = 1;
    }
    return g_orders;
}

static double log_add(double a, double b) {
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    double hi = a > b ? a : b, lo = a > b ? b : a;
    return hi + log1p(exp(lo - hi));
}

static double log_sub(double a, double b) { // log(e^a - e^b), a >= b
    if (b == -INFINITY) return a;
    if (a <= b) return -INFINITY;
    return a + log1p(-exp(b - a));
}

static double log_erfc(double x) {
    double v = erfc(x);
    if (v > 0) return log(v);
    // erfc(x) ~ e^(-x^2) / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - 15/(8x^6)) for large x.
    double x2 = x * x;
    return -x2 - log(x) - 0.5 * log(M_PI) +
           log1p(-1 / (2 * x2) + 3 / (4 * x2 * x2) - 15 / (8 * x2 * x2 * x2));
}

static double log_a_int(double q, double s, int a) {
    double out = -INFINITY, lq = log(q), l1q = log1p(-q);
    for (int k = 0; k <= a; k++) {
        double lc = lgamma(a + 1.0) - lgamma(k + 1.0) - lgamma(a - k + 1.0);
        out = log_add(out, lc + k * lq + (a - k) * l1q + (double)(k * (double)k - k) / (2 * s * s));
    }
    return out;
}

static double log_a_frac(double q, double s, double a) {
    double a0 = -INFINITY, a1 = -INFINITY, lq = log(q), l1q = log1p(-q);
    const double z0 = s * s * log(1 / q - 1) + 0.5;
    int sign = 1; // sign of C(a, i) = prod_{m<i} (a - m) / i!
    for (int i = 0;; i++) {
        if (i > 0 && a - (i - 1) < 0) sign = -sign;
        const double j = a - i;
        // |C(a, i)| through lgamma of |...|: lgamma returns log|Gamma|.
        const double lc = lgamma(a + 1) - lgamma(i + 1.0) - lgamma(a - i + 1);
        const double t0 = lc + i * lq + j * l1q, t1 = lc + j * lq + i * l1q;
        const double e0 = log(0.5) + log_erfc((i - z0) / (M_SQRT2 * s));
        const double e1 = log(0.5) + log_erfc((z0 - j) / (M_SQRT2 * s));
        const double s0 = t0 + (i * (double)i - i) / (2 * s * s) + e0;
        const double s1 = t1 + (j * j - j) / (2 * s * s) + e1;
        if (sign > 0)
            a0 = log_add(a0, s0), a1 = log_add(a1, s1);
        else
            a0 = log_sub(a0, s0), a1 = log_sub(a1, s1);
        if ((s0 > s1 ? s0 : s1) < -30 || i > 100000) break;
    }
    return log_add(a0, a1);
}

double dp_rdp_order(double q, double sigma, double alpha) {
    if (q <= 0) return 0;
    if (!(sigma > 0)) return INFINITY;
    if (isinf(sigma)) return 0;
    if (q >= 1) return alpha / (2 * sigma * sigma);
    double la = alpha == floor(alpha) ? log_a_int(q, sigma, (int)alpha) : log_a_frac(q, sigma, alpha);
    return la / (alpha - 1);
}

void dp_rdp_step(double q, double sigma, double *out) {
    const double *a = dp_orders();
    for (int i = 0; i < DP_N_ORDERS; i++) out[i] = dp_rdp_order(q, sigma, a[i]);
}

double dp_epsilon(const double *rdp, double delta, DpConversion conv, double *best_order) {
    const double *a = dp_orders();
    double best = INFINITY, at = 0;
    for (int i = 0; i < DP_N_ORDERS; i++) {
        double e = conv == DP_CONVERT_CLASSIC
                       ? rdp[i] - log(delta) / (a[i] - 1)
                       : rdp[i] + log1p(-1 / a[i]) - (log(delta) + log(a[i])) / (a[i] - 1);
        if (e < best) best = e, at = a[i];
    }
    if (best < 0) best = 0;
    if (best_order) *best_order = at;
    return best;
}

double dp_epsilon_after(double q, double sigma, int64_t steps, double delta, DpConversion conv) {
    if (steps <= 0 || q <= 0 || isinf(sigma)) return 0;
    double rdp[DP_N_ORDERS];
    dp_rdp_step(q, sigma, rdp);
    for (int i = 0; i < DP_N_ORDERS; i++) rdp[i] *= (double)steps;
    return dp_epsilon(rdp, delta, conv, NULL);
}

double dp_solve_sigma(double q, int64_t steps, double delta, double target_eps,
                      DpConversion conv) {
    if (!(target_eps > 0)) return -1;
    if (steps <= 0 || q <= 0) return 0.3; // nothing is released: any noise meets it
    if (dp_epsilon_after(q, DP_SIGMA_MAX, steps, delta, conv) > target_eps) return -1;
    // epsilon falls as sigma grows: bisect on log sigma.
    double lo = log(0.05), hi = log(DP_SIGMA_MAX);
    if (dp_epsilon_after(q, exp(lo), steps, delta, conv) <= target_eps) return exp(lo);
    while (hi - lo > 1e-4) {
        double mid = 0.5 * (lo + hi);
        if (dp_epsilon_after(q, exp(mid), steps, delta, conv) <= target_eps)
            hi = mid;
        else
            lo = mid;
    }
    return exp(hi);
}

double dp_default_delta(uint64_t n_users) {
    // The smallest 10^k >= n gives 10^-k = 1/n rounded down to a power of ten.
    uint64_t p = 1;
    while (p < n_users && p <= UINT64_MAX / 10) p *= 10;
    double d = 1.0 / (double)p;
    return d < 0.1 ? d : 0.1;
}
