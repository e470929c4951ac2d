#!/usr/bin/env python3
"""make_change_reference.py: an independent float64 reference for the change-point channel of
`trainer score` / `trainer serve` (trainer/run/surprise.h, CH_CHANGE), written from its
documented definition, not from the C.

Pure Python (no numpy). A small model on fixed weights (drawn from a seed, rounded to float32
so that C and Python start from the same numbers) and one user's sequence of model input rows
and next events; tests/unit/test_irregular.c runs the same rows through the C model
(model_forward, float32) and the scoring core and compares, after every event, the channel's
evidence and, at the end, its peak window.

The model (trainer/nn/model.h):
    x_t = [action_emb[a_t] | cat_emb[c_t] | dense_t]                 (layer-0 input row)
    gates = x W_ih^T + (keep_t h_{t-1}) W_hh^T + bias                 rows ordered i, f, g, o
    c_t = sigmoid(f) keep_t c_{t-1} + sigmoid(i) tanh(g),  h_t = sigmoid(o) tanh(c_t)
    y = h_top W_head^T + b_head,  O = K + 2 + E outputs (logits, mu, log sigma, engagement)
dense_t = [engagement, log gap, first-event flag, sin/cos time of day, sin/cos day of week].

Surprisal of event i (1 <= i < n) against the prediction y after row i - 1, per part:
    action      -log softmax(y[:K])[a_i]
    timing      log sd + u^2 / 2 + log sqrt(2 pi), u = (loggap_i - mu) / sd,
                mu = LOGGAP_MEAN + LOGGAP_STD y[K], sd = LOGGAP_STD exp(y[K + 1])
    engagement  r^2 / 2 + log ENG_SIGMA + log sqrt(2 pi), r = (eng_i - y[K + 2]) / ENG_SIGMA

The change point (W = score.window): from every event t = W, 2W, ... (t <= n - 2) a fresh
state (zero, as for a new user) is fed rows t, t + 1, ..., t + 4W - 1 (row t as a user's first
event: log gap 0, first-event flag 1); event t + j (1 <= j < 4W) then has a surprisal per part
under the fresh state too (from its row t + j - 1). From j = burn-in (max(1, W / 4)) on, each
event adds to the segment's ratio, per part, min(carried - fresh, CLIP) with CLIP = 0.5 nats.
The evidence after event e is the largest ratio so far over the segments that have started
adding (a segment's sum through min(e, t + 4W - 1)), less log(max(1, floor((e - burn) / W)));
before any: -1e300. Its peak window: events t + burn .. min(e, t + 4W - 1) of that segment.

usage (from the repository root):
    python3 tests/tools/make_change_reference.py > tests/fixtures/change_reference.txt
"""
import math
import random

from fixture_f32 import draw as fixture_draw, f32

K, EA, V1, EC, NNUM, H, L, E = 4, 3, 3, 2, 1, 6, 2, 1
D = NNUM + 6
I0 = EA + EC + D
O = K + 2 + E
W, N = 4, 44
SEG = 4 * W
BURN = max(1, W // 4)
CLIP = 0.5
LOGGAP_MEAN, LOGGAP_STD, ENG_SIGMA = 5.5, 1.25, 0.8
NO_EVIDENCE = -1e300
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

rng = random.Random(20261203)


def draw(n, scale):
    return fixture_draw(rng, n, scale)


def weights():
    w = {"action_emb": [f32(rng.gauss(0, 1)) for _ in range(K * EA)],
         "cat_emb": [f32(rng.gauss(0, 1)) for _ in range(V1 * EC)]}
    for l in range(L):
        inw = I0 if l == 0 else H
        w["w_ih%d" % l] = draw(4 * H * inw, 0.8)
        w["w_hh%d" % l] = draw(4 * H * H, 0.8)
        b = draw(4 * H, 0.3)
        for j in range(H):  # a forget gate mostly open: the carried state remembers
            b[H + j] = f32(b[H + j] + 2.0)
        w["bias%d" % l] = b
    w["w_head"] = draw(O * H, 1.2)
    w["b_head"] = draw(O, 0.2)
    return w


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def outputs(w, rows):
    """y (O) after every row, from the zero state (keep 0 at row 0, 1 after)."""
    h = [[0.0] * H for _ in range(L)]
    c = [[0.0] * H for _ in range(L)]
    ys = []
    for (a, cat, dense) in rows:
        inp = w["action_emb"][a * EA:(a + 1) * EA] + w["cat_emb"][cat * EC:(cat + 1) * EC] + dense
        for l in range(L):
            inw = len(inp)
            wi, wh, b = w["w_ih%d" % l], w["w_hh%d" % l], w["bias%d" % l]
            g = [b[r] + sum(wi[r * inw + j] * inp[j] for j in range(inw))
                 + sum(wh[r * H + j] * h[l][j] for j in range(H)) for r in range(4 * H)]
            for j in range(H):
                i_, f_ = sigmoid(g[j]), sigmoid(g[H + j])
                g_, o_ = math.tanh(g[2 * H + j]), sigmoid(g[3 * H + j])
                c[l][j] = f_ * c[l][j] + i_ * g_
                h[l][j] = o_ * math.tanh(c[l][j])
            inp = list(h[l])
        ys.append([w["b_head"][o] + sum(w["w_head"][o * H + j] * inp[j] for j in range(H))
                   for o in range(O)])
    return ys


def surprisal(y, action, loggap, eng):
    mx = max(y[:K])
    logz = mx + math.log(sum(math.exp(v - mx) for v in y[:K]))
    s_a = logz - y[action]
    mu = LOGGAP_MEAN + LOGGAP_STD * y[K]
    log_sd = math.log(LOGGAP_STD) + y[K + 1]
    u = (loggap - mu) / math.exp(log_sd)
    s_t = log_sd + 0.5 * u * u + LOG_SQRT_2PI
    r = (eng - y[K + 2]) / ENG_SIGMA
    s_e = 0.5 * r * r + math.log(ENG_SIGMA) + LOG_SQRT_2PI
    return [s_a, s_t, s_e]


def first_row(row):
    a, cat, dense = row
    d = list(dense)
    d[NNUM], d[NNUM + 1] = 0.0, 1.0
    return (a, cat, d)


def main():
    w = weights()
    # One user: a first habit (actions 0/1, gaps ~ e^6, low engagement), then from event 22 on
    # another one (actions 2/3, gaps ~ e^2.5, high engagement): a takeover-like change.
    events = []
    for i in range(N):
        late = i >= 22
        a = rng.choice([2, 3] if late else [0, 1, 0])
        cat = rng.randrange(1, V1)
        loggap = f32((2.5 if late else 6.0) + rng.gauss(0, 0.6))
        eng = f32((1.5 if late else -0.5) + rng.gauss(0, 0.4))
        tod, dow = rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi)
        gap_in = 0.0 if i == 0 else f32((loggap - LOGGAP_MEAN) / LOGGAP_STD)
        dense = [eng, gap_in, 1.0 if i == 0 else 0.0,
                 f32(math.sin(tod)), f32(math.cos(tod)), f32(math.sin(dow)), f32(math.cos(dow))]
        events.append(((a, cat, dense), loggap, eng))
    rows = [e[0] for e in events]
    carried = outputs(w, rows)
    segs = {}
    for t in range(W, N - 1, W):
        seg_rows = [first_row(rows[t])] + rows[t + 1:min(t + SEG, N)]
        segs[t] = outputs(w, seg_rows)
    sums = {t: 0.0 for t in segs}
    started = {t: False for t in segs}
    peak_of = {}
    clipped = unclipped = 0
    print("# change-point reference (tests/tools/make_change_reference.py, float64)")
    print("params %d %d %d %d %d %d %d %d %d %r %r %r %r" % (
        K, EA, V1, EC, NNUM, H, L, E, W, LOGGAP_MEAN, LOGGAP_STD, ENG_SIGMA, CLIP))
    for name in (["action_emb", "cat_emb"] + ["%s%d" % (p, l) for l in range(L)
                                             for p in ("w_ih", "w_hh", "bias")] +
                 ["w_head", "b_head"]):
        print("tensor %s %d %s" % (name, len(w[name]), " ".join(repr(v) for v in w[name])))
    for i, ((a, cat, dense), loggap, eng) in enumerate(events):
        line = "event %d %d %d %s %r %r" % (i, a, cat, " ".join(repr(v) for v in dense), loggap, eng)
        if i == 0:
            print(line + " 0 0 0 %r" % NO_EVIDENCE)
            continue
        s = surprisal(carried[i - 1], a, loggap, eng)
        for t, ys in segs.items():
            j = i - t
            if not (1 <= j < SEG) or j < BURN:
                continue
            fs = surprisal(ys[j - 1], a, loggap, eng)
            for p in range(3):
                d = s[p] - fs[p]
                clipped += d > CLIP
                unclipped += d <= CLIP
                sums[t] += min(d, CLIP)
            started[t] = True
            peak_of[t] = (t + BURN, i)
        best = None
        for t in segs:
            if started[t] and (best is None or sums[t] > sums[best]):
                best = t
        ev = NO_EVIDENCE
        if best is not None:
            ev = sums[best] - math.log(max(1, (i - BURN) // W))
        print(line + " %r %r %r %r" % (s[0], s[1], s[2], ev))
    print("peak %d %d" % peak_of[best])
    print("# %d part contributions clipped at %g nats, %d not" % (clipped, CLIP, unclipped))


main()
