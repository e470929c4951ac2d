#!/usr/bin/env python3
"""Writes tests/fixtures/irregular.txt: an independent float64 reference of the scoring core
(trainer/run/surprise.h) for test_irregular.c.

For a few users of made-up model outputs y (K actions, mu, log sigma, engagement; values
exactly representable in float32, as the model's are) and made-up next events it computes,
per event, the surprisal parts, their excess and the action part's variance, and, per user,
the zwindow evidence of both sides after every event, the (uncalibrated) score and its peak window (scales W/4, W, 4W; the ring holds
float32 excesses, as the C code does). Pure Python (no numpy); deterministic.

usage: python3 tests/tools/make_irregular_fixture.py > tests/fixtures/irregular.txt
"""
import math
import random
import struct

K, W = 5, 8
LOGGAP_MEAN, LOGGAP_STD, GAP_OFFSET, ENG_SIGMA = 6.5, 1.4, 0.001, 0.9
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def parts(y, action, loggap, eng):
    mx = max(y[:K])
    z = sum(math.exp(v - mx) for v in y[:K])
    logp = [v - mx - math.log(z) for v in y[:K]]
    p = [math.exp(v) for v in logp]
    ent = -sum(pi * li for pi, li in zip(p, logp))
    s_a = -logp[action]
    var_a = sum(pi * li * li for pi, li in zip(p, logp)) - ent * ent
    mu = LOGGAP_MEAN + LOGGAP_STD * y[K]
    log_sd = math.log(LOGGAP_STD) + y[K + 1]
    u = (loggap - mu) / math.exp(log_sd)
    s_t = log_sd + 0.5 * u * u + LOG_SQRT_2PI
    r = (eng - y[K + 2]) / ENG_SIGMA
    s_e = 0.5 * r * r + math.log(ENG_SIGMA) + LOG_SQRT_2PI
    return [s_a, s_t, s_e], [s_a - ent, 0.5 * (u * u - 1), 0.5 * (r * r - 1)], max(var_a, 1e-6)


def log_upper_tail(z):  # log Phi(-z)
    if z < 8:
        return math.log(0.5 * math.erfc(z / math.sqrt(2)))
    return -0.5 * z * z - math.log(z) - LOG_SQRT_2PI


def zwindow(hist):
    """hist: list of (x[3] float32, v_action float32, event). Returns, after every event, the
    raw evidence of both sides (surprise: largest Z; regularity: largest -Z over every window
    each scale has seen), the score (uncalibrated: the larger) and that side's peak window."""
    scales = [max(W // 4, 1), W, 4 * W]
    out, best = [], [None] * 2  # per side: (value, z, part, first, len)
    for n in range(1, len(hist) + 1):
        m = 0.0
        for k, w in enumerate(scales):
            ln = min(n, w)
            m += 3 * (n / w if n > w else 1.0)
            first = n - ln
            win = hist[first:n]
            for p in range(3):
                sx = sum(e[0][p] for e in win)
                sv = sum(e[1] for e in win) if p == 0 else 0.5 * ln
                z = sx / math.sqrt(sv)
                for side in (0, 1):
                    v = -z if side else z
                    if (n == 1 and k == 0 and p == 0) or v > best[side][0]:
                        best[side] = (v, z, p, first, ln)
        ev = [-math.log(m) - log_upper_tail(best[c][0]) for c in range(2)]
        c = 0 if ev[0] >= ev[1] else 1
        first, ln = best[c][3], best[c][4]
        out.append((ev, max(ev), hist[first][2], hist[first + ln - 1][2], best[c][2]))
    return out


def main():
    rng = random.Random(14)
    print(f"# irregular scoring fixture: K {K} W {W} (make_irregular_fixture.py)")
    print(f"params {K} {W} {LOGGAP_MEAN!r} {LOGGAP_STD!r} {GAP_OFFSET!r} {ENG_SIGMA!r}")
    for user in range(3):
        n = [12, 40, 70][user]
        hist = []
        rows = []
        for i in range(n):
            y = [rng.randint(-2048, 2048) / 1024 for _ in range(K)]
            y += [rng.randint(-1024, 1024) / 1024, rng.randint(-512, 256) / 1024,
                  rng.randint(-1024, 1024) / 1024]
            action = rng.randrange(K)
            # every user has a stretch of odd events: very short gaps, big engagement
            odd = user > 0 and 20 <= i < 30
            loggap = (rng.randint(0, 300) if odd else rng.randint(1000, 2400)) / 256
            eng = (rng.randint(512, 1024) if odd else rng.randint(-512, 512)) / 256
            s, x, v = parts(y, action, loggap, eng)
            hist.append(([f32(t) for t in x], f32(v), i + 1))
            rows.append((y, action, loggap, eng, s, x, v))
        scores = zwindow(hist)
        print(f"user {user} {n}")
        for (y, action, loggap, eng, s, x, v), (ev, score, ps, pe, part) in zip(rows, scores):
            print("event " + " ".join(repr(t) for t in y) + f" {action} {loggap!r} {eng!r} " +
                  " ".join(repr(t) for t in s + x + [v] + ev) + f" {score!r} {ps} {pe} {part}")


main()
