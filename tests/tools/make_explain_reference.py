#!/usr/bin/env python3
"""make_explain_reference.py: an independent float64 reference for `trainer explain`.

Pure Python (no numpy, no torch). It writes the integrated-gradients attributions of a small
model on fixed weights, which tests/unit/test_explain.c recomputes with the float32 C code
(run/attribution.c through the model's own backward) and compares.

The model is written here from its documented definition (trainer/nn/model.h), not from
the C:

    x_t = [action_emb[a_t] | cat_emb[c_t] | dense_t]                 (layer-0 input row)
    gates = x W_ih^T + (keep_t h_{t-1}) W_hh^T + bias                 rows ordered i, f, g, o
    c_t = sigmoid(f) keep_t c_{t-1} + sigmoid(i) tanh(g),  h_t = sigmoid(o) tanh(c_t)
    y = h_top W_head^T + b_head,  O = K + 2 + E outputs

and the explained output of the prediction after the window's last event is
    predicted / action:  f = y[cls] - log sum_k exp(y[k])       (log p of the class)
    gap:                 f = loggap_mean + loggap_std * y[K]     (predicted median log gap)

Integrated gradients (Sundararajan et al. 2017), as documented in run/attribution.h:
baseline x' = per row, the mean of each embedding over ids 1..V-1 and 0 for every dense
column; path x(a) = x' + a (x - x'), a = k/m, k = 0..m, trapezoid weights;
attr = (x - x') * mean_trapezoid(df/dx), summed per feature group
[action, gap, time_of_day, day_of_week, content, engagement]. The state carried into the
window is the same for input and baseline.

Gradients df/dx come from the complex-step derivative Im f(x + i h e_j) / h (h = 1e-30),
exact to float64 rounding and independent of any hand-written backward.

Weights and inputs are drawn from a fixed seed and rounded to float32, so C and Python start
from identical numbers. Output: `name count` then count numbers per entry (the format of
tests/fixtures/reference.txt). Regenerate from the repository root:

    python3 tests/tools/make_explain_reference.py tests/fixtures/explain_reference.txt
"""
import cmath
import math
import random

from fixture_f32 import draw as fixture_draw, f32
import sys

K, EA, V1, EC, NNUM, H, L, E, N = 4, 2, 3, 2, 1, 4, 2, 1, 4
D = NNUM + 2 + 4                      # numerics, log gap, first flag, sin/cos tod, sin/cos dow
I0 = EA + EC + D
O = K + 2 + E
STEPS = 32
LOGGAP_MEAN, LOGGAP_STD = 1.25, 0.75
GROUPS = ["action", "gap", "time_of_day", "day_of_week", "content", "engagement"]
COL_GROUP = ([0] * EA + [4] * EC + [5] * NNUM + [1, 1] + [2, 2] + [3, 3])
assert len(COL_GROUP) == I0

rng = random.Random(20261202)


def draw(n, scale):
    return fixture_draw(rng, n, scale)


def weights():
    w = {"action_emb": [f32(rng.gauss(0, 1)) for _ in range(K * EA)],
         "cat_emb": [f32(rng.gauss(0, 1)) for _ in range(V1 * EC)]}
    for l in range(L):
        inw = I0 if l == 0 else H
        w["w_ih%d" % l] = draw(4 * H * inw, 1.0)
        w["w_hh%d" % l] = draw(4 * H * H, 0.6)
        w["bias%d" % l] = draw(4 * H, 0.3)
    w["w_head"] = draw(O * H, 1.5)
    w["b_head"] = draw(O, 0.2)
    return w


def sigmoid(z):
    return 1 / (1 + cmath.exp(-z))


def output(w, rows, keep0, h0, c0):
    """y (O) after the last row; rows: n lists of I0 (complex) values."""
    h = [list(h0[l * H:(l + 1) * H]) for l in range(L)]
    c = [list(c0[l * H:(l + 1) * H]) for l in range(L)]
    top = None
    for t, x in enumerate(rows):
        keep = keep0 if t == 0 else 1
        inp = x
        for l in range(L):
            inw = len(inp)
            wi, wh, b = w["w_ih%d" % l], w["w_hh%d" % l], w["bias%d" % l]
            hp = [keep * v for v in h[l]]
            g = [b[r] + sum(wi[r * inw + j] * inp[j] for j in range(inw))
                 + sum(wh[r * H + j] * hp[j] for j in range(H)) for r in range(4 * H)]
            cn, hn = [], []
            for j in range(H):
                i_, f_, g_, o_ = sigmoid(g[j]), sigmoid(g[H + j]), cmath.tanh(g[2 * H + j]), sigmoid(g[3 * H + j])
                cj = f_ * keep * c[l][j] + i_ * g_
                cn.append(cj)
                hn.append(o_ * cmath.tanh(cj))
            c[l], h[l] = cn, hn
            inp = hn
        top = inp
    return [w["b_head"][o] + sum(w["w_head"][o * H + j] * top[j] for j in range(H)) for o in range(O)]


def target(y, kind, cls):
    if kind == 1:
        return LOGGAP_MEAN + LOGGAP_STD * y[K]
    return y[cls] - cmath.log(sum(cmath.exp(v) for v in y[:K]))


def input_rows(w, action, cat, dense):
    rows = []
    for t in range(N):
        r = w["action_emb"][action[t] * EA:(action[t] + 1) * EA] + w["cat_emb"][cat[t] * EC:(cat[t] + 1) * EC]
        rows.append(r + dense[t * D:(t + 1) * D])
    return rows


def baseline_row(w):
    ea = [sum(w["action_emb"][v * EA + j] for v in range(1, K)) / (K - 1) for j in range(EA)]
    ec = [sum(w["cat_emb"][v * EC + j] for v in range(1, V1)) / (V1 - 1) for j in range(EC)]
    return ea + ec + [0.0] * D


def explain(w, x, base, keep0, h0, c0, kind, cls):
    f = lambda rows: target(output(w, rows, keep0, h0, c0), kind, cls)
    hstep = 1e-30
    gsum = [[0.0] * I0 for _ in range(N)]
    for k in range(STEPS + 1):
        a = k / STEPS
        wk = 0.5 if k in (0, STEPS) else 1.0
        pt = [[base[j] + a * (x[t][j] - base[j]) for j in range(I0)] for t in range(N)]
        for t in range(N):
            for j in range(I0):
                rows = [list(r) for r in pt]
                rows[t][j] += 1j * hstep
                gsum[t][j] += wk * f(rows).imag / hstep
    attr = [[0.0] * len(GROUPS) for _ in range(N)]
    for t in range(N):
        for j in range(I0):
            attr[t][COL_GROUP[j]] += (x[t][j] - base[j]) * gsum[t][j] / STEPS
    fx = f([list(r) for r in x]).real
    fb = f([list(base) for _ in range(N)]).real
    return attr, fx, fb


def main():
    out = open(sys.argv[1], "w")
    put = lambda name, vals: out.write("%s %d\n%s\n" % (name, len(vals), " ".join(repr(float(v)) for v in vals)))
    out.write("# written by tests/tools/make_explain_reference.py (float64 integrated gradients)\n")
    put("shape", [K, EA, V1, EC, NNUM, H, L, E, N, STEPS])
    put("loggap", [LOGGAP_MEAN, LOGGAP_STD])
    w = weights()
    for name in ["action_emb", "cat_emb"] + ["%s%d" % (p, l) for l in range(L) for p in ("w_ih", "w_hh", "bias")] + ["w_head", "b_head"]:
        put(name, w[name])
    base = baseline_row(w)
    # Case 0: the predicted class, state carried into the window. Case 1: the gap, a user's
    # first events (no carried state; row 0 has the first-event flag).
    for case, (kind, keep0) in enumerate([(0, 1), (1, 0)]):
        action = [rng.randrange(1, K) for _ in range(N)]
        cat = [rng.randrange(1, V1) for _ in range(N)]
        dense = [f32(rng.gauss(0, 1)) for _ in range(N * D)]
        if keep0 == 0:
            dense[NNUM], dense[NNUM + 1] = 0.0, 1.0   # first event: gap 0, flag 1
        for t in range(N):
            dense[t * D + NNUM + 1] = 1.0 if (keep0 == 0 and t == 0) else 0.0
        h0 = [f32(rng.gauss(0, 0.5)) for _ in range(L * H)]
        c0 = [f32(rng.gauss(0, 0.5)) for _ in range(L * H)]
        x = input_rows(w, action, cat, dense)
        y = [v.real for v in output(w, [list(r) for r in x], keep0, h0, c0)]
        cls = max(range(K), key=lambda k: y[k])
        attr, fx, fb = explain(w, x, base, keep0, h0, c0, kind, cls)
        total = sum(sum(r) for r in attr)
        rel = abs(total - (fx - fb)) / max(abs(fx - fb), 1e-2)
        p = "case%d." % case
        put(p + "setup", [kind, keep0, cls])
        put(p + "action", action)
        put(p + "cat", cat)
        put(p + "dense", dense)
        put(p + "h0", h0)
        put(p + "c0", c0)
        put(p + "attr", [v for r in attr for v in r])
        put(p + "f", [fx, fb, total, rel])
        print("case %d: f(x) %.6f f(baseline) %.6f sum %.6f completeness error %.2e" % (case, fx, fb, total, rel))
    out.close()


if __name__ == "__main__":
    main()
