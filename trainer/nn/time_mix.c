// time_mix.c: see time_mix.h. y (3M) = [logits | mu | ls], all of it read in double.
#include "time_mix.h"

#include <math.h>

#define HALF_LOG_2PI 0.9189385332046727

// log w (M) = logits - logsumexp(logits).
static void log_weights(int M, const real *y, double *logw) {
    double mx = (double)y[0], sum = 0;
    for (int m = 1; m < M; m++) mx = (double)y[m] > mx ? (double)y[m] : mx;
    for (int m = 0; m < M; m++) sum += exp((double)y[m] - mx);
    const double lse = mx + log(sum);
    for (int m = 0; m < M; m++) logw[m] = (double)y[m] - lse;
}

double time_mix_nll(int M, const real *y, double u, double *post) {
    const real *mu = y + M, *ls = y + 2 * M;
    double a[TIME_MIX_MAX], mx = -INFINITY, sum = 0;
    log_weights(M, y, a);
    for (int m = 0; m < M; m++) { // a_m = log(w_m N(u; mu_m, s_m))
        const double z = (u - (double)mu[m]) * exp(-(double)ls[m]);
        a[m] += -(double)ls[m] - 0.5 * z * z - HALF_LOG_2PI;
        mx = a[m] > mx ? a[m] : mx;
    }
    for (int m = 0; m < M; m++) sum += exp(a[m] - mx);
    const double logp = mx + log(sum);
    for (int m = 0; m < M; m++) post[m] = exp(a[m] - logp);
    return -logp;
}

void time_mix_backward(int M, const real *y, double u, const double *post, double scale, real *dy) {
    const real *mu = y + M, *ls = y + 2 * M;
    double logw[TIME_MIX_MAX];
    log_weights(M, y, logw);
    for (int m = 0; m < M; m++) {
        const double inv_s = exp(-(double)ls[m]), z = (u - (double)mu[m]) * inv_s;
        dy[m] = (real)(scale * (exp(logw[m]) - post[m]));
        dy[M + m] = (real)(scale * (-post[m] * z * inv_s));
        dy[2 * M + m] = (real)(scale * post[m] * (1.0 - z * z));
    }
}

double time_mix_mean_gap(int M, const real *y, double loggap_mean, double loggap_std,
                         double gap_offset) {
    const real *mu = y + M, *ls = y + 2 * M;
    double logw[TIME_MIX_MAX], mean = 0;
    log_weights(M, y, logw);
    for (int m = 0; m < M; m++) {
        const double sd = loggap_std * exp((double)ls[m]); // in log(gap + delta)
        mean += exp(logw[m] + loggap_mean + loggap_std * (double)mu[m] + 0.5 * sd * sd);
    }
    mean -= gap_offset;
    return mean > 0 ? mean : 0;
}

// F(u) - q and F'(u) of the mixture (w (M) the weights).
static double cdf_minus(int M, const double *w, const real *mu, const real *ls, double u, double q,
                        double *pdf) {
    double F = 0, f = 0;
    for (int m = 0; m < M; m++) {
        const double inv_s = exp(-(double)ls[m]), z = (u - (double)mu[m]) * inv_s;
        F += w[m] * 0.5 * erfc(-z * 0.7071067811865476);
        f += w[m] * inv_s * exp(-0.5 * z * z - HALF_LOG_2PI);
    }
    *pdf = f;
    return F - q;
}

double time_mix_cdf(int M, const real *y, double u) {
    double w[TIME_MIX_MAX], f;
    log_weights(M, y, w);
    for (int m = 0; m < M; m++) w[m] = exp(w[m]);
    return cdf_minus(M, w, y + M, y + 2 * M, u, 0, &f);
}

double time_mix_quantile(int M, const real *y, double q) {
    const real *mu = y + M, *ls = y + 2 * M;
    double w[TIME_MIX_MAX], lo = INFINITY, hi = -INFINITY, u = 0;
    log_weights(M, y, w);
    for (int m = 0; m < M; m++) {
        w[m] = exp(w[m]);
        const double s = exp((double)ls[m]);
        lo = (double)mu[m] - 9 * s < lo ? (double)mu[m] - 9 * s : lo;
        hi = (double)mu[m] + 9 * s > hi ? (double)mu[m] + 9 * s : hi;
        u += w[m] * (double)mu[m];
    }
    for (int it = 0; it < 200 && hi - lo > 1e-12; it++) {
        double f, g = cdf_minus(M, w, mu, ls, u, q, &f);
        if (g == 0) break;
        if (g < 0)
            lo = u;
        else
            hi = u;
        double next = f > 0 ? u - g / f : 0.5 * (lo + hi);
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi); // outside the bracket: bisect
        if (fabs(next - u) < 1e-12) return next;
        u = next;
    }
    return u;
}

double time_mix_median_gap(int M, const real *y, double loggap_mean, double loggap_std,
                           double gap_offset) {
    const double u = time_mix_quantile(M, y, 0.5);
    const double g = exp(loggap_mean + loggap_std * u) - gap_offset;
    return g > 0 ? g : 0;
}
