#!/usr/bin/env python3
"""Writes tests/fixtures/irregular.txt: an independent float64 reference of the scoring core
(trainer/run/surprise.h) for test_irregular.c.

For a few users of made-up model outputs y (K actions, mu, log sigma, engagement; values
exactly representable in float32, as the model's are) and made-up next events it computes,
per event, the surprisal parts, their excess and the action part's variance, and, per user,
the zwindow evidence of every channel after every event (both sides of the excess, scales
W/4, W, 4W; the shift of the mean prediction in action mix and engagement; the levels of the
predicted gap and engagement), the (uncalibrated) score and its peak window (the ring holds
float32 excesses and predictions, as the C code does). Pure Python (no numpy); deterministic.

usage: python3 tests/tools/make_irregular_fixture.py > tests/fixtures/irregular.txt
"""
import math
import random

from fixture_f32 import f32

K, W = 5, 8
PRED_MAX_K = 8  # predictions: mu, engagement, PRED_MAX_K action probabilities
NO_EVIDENCE = -1e300
LOGGAP_MEAN, LOGGAP_STD, GAP_OFFSET, ENG_SIGMA = 6.5, 1.4, 0.001, 0.9
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


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
    pred = [f32(y[K]), f32(y[K + 2])] + [f32(pi) for pi in p] + [0.0] * (PRED_MAX_K - K)
    return ([s_a, s_t, s_e], [s_a - ent, 0.5 * (u * u - 1), 0.5 * (r * r - 1)], max(var_a, 1e-6),
            pred)


def log_upper_tail(z):  # log Phi(-z)
    if z < 8:
        return math.log(0.5 * math.erfc(z / math.sqrt(2)))
    return -0.5 * z * z - math.log(z) - LOG_SQRT_2PI


def fsum(values):  # sequential double sum, as the C loops add
    t = 0.0
    for v in values:
        t += v
    return t


def predictions(hist, n):
    """The prediction channels after n events: (value, part, first, len) or None each, for the
    action shift, engagement shift, gap level and engagement level."""
    skip, a = W, max(W // 2, 1)
    out = [None] * 4
    nb = n - a - skip
    if nb >= (W + 1) // 2:
        d = []
        for k in range(2 + PRED_MAX_K):
            total = fsum(hist[j][3][k] for j in range(skip, n))
            after = fsum(hist[j][3][k] for j in range(n - a, n))
            d.append(after / a - (total - after) / nb)
        tv = fsum(0.5 * abs(t) for t in d[2:])
        out[0] = (tv, 0, n - a, a)
        out[1] = (abs(d[1]), 2, n - a, a)
    if n >= W:
        m = [fsum(hist[j][3][k] for j in range(n - W, n)) for k in range(2)]
        out[2] = (-m[0] / W, 1, n - W, W)
        out[3] = (m[1] / W, 2, n - W, W)
    return out


def zwindow(hist):
    """hist: list of (x[3] float32, v_action float32, event, pred float32). Returns, after
    every event, the raw evidence of every channel (surprise: largest Z; regularity: largest -Z
    over every window each scale has seen, of each part and of all three; the prediction channels' largest values), the score
    (uncalibrated: log sum exp of the evidence) and the largest channel's peak window and part."""
    scales = [max(W // 4, 1), W, 4 * W]
    out, best = [], [None] * 6  # per channel: (value, part, first, len)
    for n in range(1, len(hist) + 1):
        m = 0.0
        for k, w in enumerate(scales):
            ln = min(n, w)
            m += 4 * (n / w if n > w else 1.0)
            first = n - ln
            win = hist[first:n]
            sxs = [fsum(e[0][p] for e in win) for p in range(3)]
            svs = [fsum(e[1] for e in win), 0.5 * ln, 0.5 * ln]
            # the three parts, then all three together (independent under the model)
            for p in range(4):
                sx = sxs[p] if p < 3 else fsum(sxs)
                sv = svs[p] if p < 3 else fsum(svs)
                z = sx / math.sqrt(sv)
                for side in (0, 1):
                    v = -z if side else z
                    if (n == 1 and k == 0 and p == 0) or v > best[side][0]:
                        part = p
                        if p == 3:  # the part that contributed most to this side
                            part = (min if side else max)(range(3), key=lambda q: sxs[q])
                        best[side] = (v, part, first, ln)
        for c, cand in enumerate(predictions(hist, n)):
            if cand is not None and (best[2 + c] is None or cand[0] > best[2 + c][0]):
                best[2 + c] = cand
        ev = [-math.log(m) - log_upper_tail(best[c][0]) for c in range(2)]
        ev += [b[0] if b is not None else NO_EVIDENCE for b in best[2:]]
        c = max(range(6), key=lambda i: (ev[i], -i))
        score = ev[c] + math.log(sum(math.exp(e - ev[c]) for e in ev))  # -log sum of tails
        first, ln = best[c][2], best[c][3]
        out.append((ev, score, hist[first][2], hist[first + ln - 1][2], best[c][1]))
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
            s, x, v, pred = parts(y, action, loggap, eng)
            hist.append(([f32(t) for t in x], f32(v), i + 1, pred))
            rows.append((y, action, loggap, eng, s, x, v))
        scores = zwindow(hist)
        print(f"user {user} {n}")
        for (y, action, loggap, eng, s, x, v), (ev, score, ps, pe, part) in zip(rows, scores):
            print("event " + " ".join(repr(t) for t in y) + f" {action} {loggap!r} {eng!r} " +
                  " ".join(repr(t) for t in s + x + [v] + ev) + f" {score!r} {ps} {pe} {part}")


main()
