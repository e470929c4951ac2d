#!/usr/bin/python3
"""make_time_mix_reference.py: an independent float64 reference for the mixture-of-log-normals
time head (trainer/nn/time_mix.c), in pure Python (no numpy), from Shchur et al. (2020),
"Intensity-Free Learning of Temporal Point Processes" (LogNormMix):

  u = (log(gap + delta) - mean) / std  ~  sum_m w_m N(mu_m, s_m^2),
  w = softmax(logits), s_m = exp(ls_m); head row y = [logits (M) | mu (M) | ls (M)].

For each case it writes -log p(u); the gradient of -log p(u) with respect to y, by the
chain rule through the softmax written out as a Jacobian (not the C code's responsibility
form); the mean gap E[exp(mean + std u)] - delta, from the moment generating function of
each Gaussian; and the median gap, by 200 steps of plain bisection on the mixture CDF
(math.erf), clamped at 0 like the C code.

Regenerate from the repository root:

    python3 tests/tools/make_time_mix_reference.py tests/fixtures/time_mix_reference.txt
"""
import math
import random
import sys


def softmax(v):
    mx = max(v)
    e = [math.exp(x - mx) for x in v]
    s = sum(e)
    return [x / s for x in e]


def normal_pdf(u, mu, s):
    z = (u - mu) / s
    return math.exp(-0.5 * z * z) / (s * math.sqrt(2 * math.pi))


def case(M, y, u, mean, std, delta):
    logits, mu, ls = y[:M], y[M:2 * M], y[2 * M:]
    w = softmax(logits)
    s = [math.exp(x) for x in ls]
    comp = [normal_pdf(u, mu[m], s[m]) for m in range(M)]
    p = sum(w[m] * comp[m] for m in range(M))
    nll = -math.log(p)
    # d(-log p)/d logit_j = -(1/p) sum_m comp_m dw_m/dlogit_j, dw_m/dlogit_j = w_m (d_mj - w_j)
    g_logit = [-sum(comp[m] * w[m] * ((m == j) - w[j]) for m in range(M)) / p for j in range(M)]
    # d comp/d mu = comp (u - mu)/s^2 ; d comp/d ls = comp ((u - mu)^2/s^2 - 1)
    g_mu = [-w[m] * comp[m] * (u - mu[m]) / s[m] ** 2 / p for m in range(M)]
    g_ls = [-w[m] * comp[m] * ((u - mu[m]) ** 2 / s[m] ** 2 - 1) / p for m in range(M)]
    mean_gap = sum(w[m] * math.exp(mean + std * mu[m] + 0.5 * (std * s[m]) ** 2)
                   for m in range(M)) - delta
    cdf = lambda x: sum(w[m] * 0.5 * (1 + math.erf((x - mu[m]) / (s[m] * math.sqrt(2))))
                        for m in range(M))
    lo, hi = min(mu) - 40, max(mu) + 40
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if cdf(mid) < 0.5:
            lo = mid
        else:
            hi = mid
    median_gap = math.exp(mean + std * 0.5 * (lo + hi)) - delta
    return nll, g_logit + g_mu + g_ls, max(mean_gap, 0.0), max(median_gap, 0.0)


def main():
    out = open(sys.argv[1], "w") if len(sys.argv) > 1 else sys.stdout
    rng = random.Random(20)
    out.write("# time_mix reference (tests/tools/make_time_mix_reference.py); per case:\n")
    out.write("# case M u mean std delta / y (3M) / nll mean_gap median_gap / grad (3M)\n")
    for M in (1, 2, 3, 5, 8):
        for k in range(3):
            y = [rng.gauss(0, 1) for _ in range(M)] + [rng.gauss(0, 1) for _ in range(M)] + \
                [rng.uniform(-1.5, 0.7) for _ in range(M)]
            u, mean, std, delta = rng.gauss(0, 1.5), rng.uniform(-5, 3), rng.uniform(0.3, 2), 1e-4
            nll, g, mg, md = case(M, y, u, mean, std, delta)
            out.write("case %d %.17g %.17g %.17g %.17g\n" % (M, u, mean, std, delta))
            out.write(" ".join("%.17g" % v for v in y) + "\n")
            out.write("%.17g %.17g %.17g\n" % (nll, mg, md))
            out.write(" ".join("%.17g" % v for v in g) + "\n")


if __name__ == "__main__":
    main()
