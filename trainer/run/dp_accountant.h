// dp_accountant.h: the privacy accountant of user-level DP-SGD: Renyi differential privacy
// (RDP) of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019) over a
// fixed range of orders, composed over steps, and converted to (epsilon, delta).
//
// Two conversions: classic (Mironov 2017, Prop. 3: eps = rdp - log(delta) / (a - 1)), as TF
// Privacy's published tables use, and the tighter one of Balle et al. 2020 (Thm. 21), as
// Opacus uses. The trainer reports DP_CONVERT_BALLE by default (privacy.accountant).
// Pure functions: no files, MPI or allocation beyond the caller's arrays. A float64
// reference (tests/make_dp_reference.py) and TF Privacy's MNIST values test it.
#pragma once
#include <stdint.h>

#define DP_N_ORDERS 158 // 1.1, 1.2, ..., 10.9, 12..63 (TF Privacy's, Opacus's), 64..256

typedef enum { DP_CONVERT_BALLE = 0, DP_CONVERT_CLASSIC = 1 } DpConversion;

// The orders, ascending.
const double *dp_orders(void);
// RDP of ONE step at each order (out: DP_N_ORDERS values) for sampling rate q in [0, 1]
// and noise multiplier sigma > 0.
void dp_rdp_step(double q, double sigma, double *out);
// RDP at one order of one step (for tests).
double dp_rdp_order(double q, double sigma, double alpha);
// epsilon of an RDP curve (all steps composed) at delta in (0, 1); *best_order (may be
// NULL) gets the order that attains it.
double dp_epsilon(const double *rdp, double delta, DpConversion conv, double *best_order);
// epsilon after `steps` steps at (q, sigma, delta). sigma <= 0 or q > 0 with steps > 0 and
// sigma = inf handled: sigma = INFINITY gives 0.
double dp_epsilon_after(double q, double sigma, int64_t steps, double delta, DpConversion conv);
// The smallest noise multiplier (to 1e-4 relative) that keeps epsilon <= target after
// `steps` steps; returns -1 when even sigma = DP_SIGMA_MAX does not (the target is below
// what the orders can show, or needs more noise than any useful model tolerates).
#define DP_SIGMA_MAX 100.0
double dp_solve_sigma(double q, int64_t steps, double delta, double target_eps,
                      DpConversion conv);
// The default delta for n users: 1/n rounded down to a power of ten (n = 1..: 1e-1 at most).
double dp_default_delta(uint64_t n_users);
