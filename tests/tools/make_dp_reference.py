#!/usr/bin/python3
"""make_dp_reference.py: an independent float64 reference for the RDP accountant of
trainer/run/dp_accountant.c, in pure Python (no numpy, no scipy), written from the papers:

  Mironov, Talwar, Zhang (2019), "Renyi Differential Privacy of the Sampled Gaussian
  Mechanism": for Poisson sampling with rate q and noise multiplier sigma, the RDP of one
  step at order alpha is log(A_alpha) / (alpha - 1), with
    integer alpha:    A = sum_k C(alpha,k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2))
    fractional alpha: A = A0 + A1, the two series of their Section 3.3 with
        z0 = sigma^2 log(1/q - 1) + 1/2,
        A0 = sum_i C(alpha,i) q^i (1-q)^(alpha-i) exp((i^2-i)/(2s^2)) erfc((i-z0)/(sqrt2 s))/2
        A1 = sum_i C(alpha,i) q^(alpha-i) (1-q)^i exp((j^2-j)/(2s^2)) erfc((z0-j)/(sqrt2 s))/2
      (j = alpha - i), summed until both terms are below e^-30.
  RDP composes additively over steps.
  (eps, delta) conversions, minimised over the orders:
    classic (Mironov 2017, Prop. 3):  eps = rdp - log(delta) / (alpha - 1)
    Balle et al. (2020, Thm. 21):     eps = rdp + log1p(-1/alpha)
                                            - (log(delta) + log(alpha)) / (alpha - 1)

Everything is computed in log space with math.lgamma / math.erfc; nothing is shared with
the C code. The fixture lists cases (q, sigma, steps, delta) and, for each, the RDP at a few
orders and both epsilons. It also lists the published values of TF Privacy's MNIST
tutorial (q = 256/60000, delta = 1e-5), which tests/test_dp.c checks too.

Regenerate from the repository root:

    python3 tests/tools/make_dp_reference.py tests/fixtures/dp_accountant.txt
"""
import math
import sys

ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + \
    [64, 80, 96, 128, 160, 192, 256]


def log_add(a, b):
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


def log_sub(a, b):  # log(exp(a) - exp(b)), a >= b
    if b == -math.inf:
        return a
    if a == b:
        return -math.inf
    return a + math.log1p(-math.exp(b - a))


def log_binom(n, k):  # log |C(n, k)| for real n, integer k (n may be fractional)
    # C(n, k) = Gamma(n+1) / (Gamma(k+1) Gamma(n-k+1)); its sign for n-k+1 < 0 alternates.
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def binom_sign(n, k):
    # Sign of C(n, k) = prod_{m=0}^{k-1} (n - m) / k!
    s = 1
    for m in range(k):
        if n - m < 0:
            s = -s
    return s


def log_erfc(x):
    v = math.erfc(x)
    if v > 0:
        return math.log(v)
    # Asymptotic expansion for large x: erfc(x) ~ exp(-x^2) / (x sqrt(pi)) (1 - 1/(2x^2) ...)
    return -x * x - math.log(x) - 0.5 * math.log(math.pi) + \
        math.log1p(-1 / (2 * x * x) + 3 / (4 * x ** 4) - 15 / (8 * x ** 6))


def log_a_int(q, s, alpha):
    a = int(alpha)
    out = -math.inf
    for k in range(a + 1):
        lc = math.lgamma(a + 1) - math.lgamma(k + 1) - math.lgamma(a - k + 1)
        term = lc + k * math.log(q) + (a - k) * math.log(1 - q) + (k * k - k) / (2 * s * s)
        out = log_add(out, term)
    return out


def log_a_frac(q, s, alpha):
    a0, a1 = -math.inf, -math.inf
    z0 = s * s * math.log(1 / q - 1) + 0.5
    i = 0
    while True:
        j = alpha - i
        lc = log_binom(alpha, i)
        sign = binom_sign(alpha, i)
        t0 = lc + i * math.log(q) + j * math.log(1 - q)
        t1 = lc + j * math.log(q) + i * math.log(1 - q)
        e0 = math.log(0.5) + log_erfc((i - z0) / (math.sqrt(2) * s))
        e1 = math.log(0.5) + log_erfc((z0 - j) / (math.sqrt(2) * s))
        s0 = t0 + (i * i - i) / (2 * s * s) + e0
        s1 = t1 + (j * j - j) / (2 * s * s) + e1
        if sign > 0:
            a0, a1 = log_add(a0, s0), log_add(a1, s1)
        else:
            a0, a1 = log_sub(a0, s0), log_sub(a1, s1)
        i += 1
        if max(s0, s1) < -30:
            break
    return log_add(a0, a1)


def rdp_step(q, s, alpha):
    if q == 0:
        return 0.0
    if q == 1.0:
        return alpha / (2 * s * s)
    la = log_a_int(q, s, alpha) if float(alpha).is_integer() else log_a_frac(q, s, alpha)
    return la / (alpha - 1)


def eps_classic(rdp, delta):
    return min(r - math.log(delta) / (a - 1) for a, r in zip(ORDERS, rdp))


def eps_balle(rdp, delta):
    best = math.inf
    for a, r in zip(ORDERS, rdp):
        e = r + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
        best = min(best, e)
    return max(best, 0.0)


CASES = [  # q, sigma, steps, delta
    (256 / 60000, 1.12, math.ceil(60 * 60000 / 256), 1e-5),
    (256 / 60000, 0.6, math.ceil(30 * 60000 / 256), 1e-5),
    (256 / 60000, 1.2, math.ceil(10 * 60000 / 256), 1e-5),
    (0.01, 1.0, 1000, 1e-6),
    (0.001, 0.8, 5000, 1e-6),
    (0.05, 2.5, 300, 1e-5),
    (0.2, 4.0, 100, 1e-3),
    (1.0, 10.0, 50, 1e-5),
    (0.003, 0.55, 20000, 1e-7),
]
PUBLISHED = [  # TF Privacy MNIST tutorial: q = 256/60000, delta = 1e-5, classic conversion
    (1.12, 60, 2.92), (0.6, 30, 9.74), (1.2, 10, 1.20)]


def main():
    out = sys.argv[1]
    lines = ["# Reference for tests/test_dp.c, written by tests/tools/make_dp_reference.py (pure Python,",
             "# float64). Regenerate: python3 tests/tools/make_dp_reference.py " + out,
             "# orders: %d values, TF Privacy's and Opacus's default plus 64..256" % len(ORDERS),
             "# case q sigma steps delta eps_classic eps_balle rdp@2 rdp@2.5 rdp@8 rdp@32",
             "# (rdp values are of all steps)"]
    probe = [2, 2.5, 8, 32]
    for q, s, steps, delta in CASES:
        rdp1 = [rdp_step(q, s, a) for a in ORDERS]
        rdp = [steps * r for r in rdp1]
        pr = [steps * rdp_step(q, s, a) for a in probe]
        lines.append("case %.17g %.17g %d %.17g %.17g %.17g %s" % (
            q, s, steps, delta, eps_classic(rdp, delta), eps_balle(rdp, delta),
            " ".join("%.17g" % v for v in pr)))
    for s, epochs, eps in PUBLISHED:
        lines.append("published %.17g %.17g %d %.17g %.2f" % (
            256 / 60000, s, math.ceil(epochs * 60000 / 256), 1e-5, eps))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    for l in lines:
        print(l)


if __name__ == "__main__":
    main()
