// time_mix.h: the next-gap head as a mixture of M log-normals (Shchur et al. 2020,
// "Intensity-free learning of temporal point processes", LogNormMix).
//
// The head models u = (log(gap + delta) - loggap_mean) / loggap_std (normalised units) as
//   p(u) = sum_m w_m N(u; mu_m, s_m^2),  w = softmax(logits), s_m = exp(ls_m),
// so the gap itself is a mixture of log-normals. Head rows (3M values, at y + K):
//   [logits (M) | mu (M) | ls (M)].
// M = 1 is NOT laid out this way: the single log-normal keeps its two outputs (mu, ls) and
// its own code in model.c (head_loss_row), so that model.time_mixture 1 is the old model
// bit for bit. These functions are for M >= 2 (they are also correct for M = 1 with a
// constant logit, which the tests use to compare the two).
//
// Point predictions of the gap g = exp(loggap_mean + loggap_std * u) - delta (time units):
//   mean:   sum_m w_m exp(mean + std mu_m + (std s_m)^2 / 2) - delta   (closed form)
//   median: exp(mean + std u*) - delta with F(u*) = 1/2, F the mixture CDF; a mixture's
//           median has no closed form, so u* is found by safeguarded Newton steps inside a
//           bracket [min_m mu_m - 9 s_m, max_m mu_m + 9 s_m] (F is monotone; 1e-12 in u).
// Both are clamped at 0 (a gap is never negative). Everything is in double.
#pragma once
#include "model.h"

#define TIME_MIX_MAX 32 // most components (model.time_mixture)

// -log p(u) of the mixture of y (3M); post (M) receives the responsibilities
// r_m = w_m N(u; mu_m, s_m) / p(u) (what the gradient needs).
double time_mix_nll(int M, const real *y, double u, double *post);

// dy (3M) = scale * d(-log p(u)) / dy, from y, u and time_mix_nll's responsibilities:
//   d/d logit_m = w_m - r_m,  d/d mu_m = -r_m z_m / s_m,  d/d ls_m = r_m (1 - z_m^2),
// z_m = (u - mu_m) / s_m.
void time_mix_backward(int M, const real *y, double u, const double *post, double scale, real *dy);

// The mean and median of the mixture's gap, time units (see above).
double time_mix_mean_gap(int M, const real *y, double loggap_mean, double loggap_std,
                         double gap_offset);
double time_mix_median_gap(int M, const real *y, double loggap_mean, double loggap_std,
                           double gap_offset);

// The mixture's CDF F(u) in normalised units, and its quantile u with F(u) = q (0 < q < 1;
// the median is q = 1/2), by the same safeguarded Newton steps.
double time_mix_cdf(int M, const real *y, double u);
double time_mix_quantile(int M, const real *y, double q);
