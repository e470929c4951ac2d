#!/usr/bin/python3
"""make_reference.py: an independent PyTorch reference for the C model, on fixed weights.

What it builds: the same next-event model as trainer/model.c (action and categorical
embeddings + dense inputs -> L stacked LSTM layers -> one head with K action logits,
(mu, log sigma) of the log-normal next gap and one engagement value), written from the
model's documented definition with plain torch ops in float64, NOT translated from the C:

    gates = x_t W_ih^T + (keep_t * h_{t-1}) W_hh^T + bias      rows ordered i, f, g, o
    c_t = sigmoid(f) * keep_t * c_{t-1} + sigmoid(i) * tanh(g),  h_t = sigmoid(o) * tanh(c_t)

(one bias = PyTorch's b_ih + b_hh; keep_t = 0 resets a lane before step t). Autograd gives
the gradients. Per target position (target action >= 0) the loss is

    w_action * CE(next action) + w_time * NLL_time + w_eng * 0.5 * (y_eng - target)^2
    NLL_time = loggap + log(std) + y_ls + 0.5 * (u - y_mu)^2 * exp(-2 y_ls) + 0.5 log(2 pi),
    u = (loggap - mean) / std

(the log-normal density of the gap per time unit), and the fixture's loss is the MEAN over
targets. The C model returns sums; tests/unit/test_reference.c divides them by the target count.

The reference checks itself before writing anything: the hand-written recurrence is
compared with torch.nn.LSTM segment by segment (a segment = the events between two resets,
where the recurrence is a plain LSTM from either the carried state or zeros), and NLL_time
with torch.distributions.LogNormal.

It then runs 5 steps of SGD with momentum, Adam and AdamW (torch.optim, weight decay on
matrices and embeddings only, global-norm clipping by torch.nn.utils.clip_grad_norm_ with a
threshold that clips on some steps and not on others), each step a forward/backward on
the same inputs from the same initial state, and records every loss and gradient norm.

Weights and inputs are drawn once, rounded to float32 and written out explicitly, so the
float32 C model and the float64 reference start from bit-identical values and only the
arithmetic differs. The fixture is plain text: `name count` then count numbers.

Regenerate (PyTorch is needed only here, never by the tests), from the repository root:

    /usr/bin/python3 tests/tools/make_reference.py tests/fixtures/reference.txt

Debian's python3-torch (1.13) lives in /usr/bin/python3. Output is deterministic.
"""
import math
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(20240611)

# ---------------------------------------------------------------- shape and settings
K, EA = 7, 4                 # actions (id 0 = unknown), action embedding width
CAT_VOCAB, EC = [5, 4], 3    # two categorical fields, their embedding width
D, H, L, E = 3, 8, 2, 1      # dense inputs, hidden width, layers, engagement head on
B, T = 3, 6                  # lanes, window
I0 = EA + len(CAT_VOCAB) * EC + D
O = K + 2 + E
LOSS = dict(w_action=1.0, w_time=0.7, w_eng=0.4, loggap_mean=0.5, loggap_std=1.5,
            gap_offset=1e-3)
OPT_STEPS = 5
OPT_COMMON = dict(beta1=0.9, beta2=0.999, eps=1e-8, momentum=0.9)
# Per optimizer: lr and weight decay. The clip threshold is shared; see the check below.
OPT_RUNS = [("sgd", dict(lr=0.3, weight_decay=0.05)),
            ("adam", dict(lr=0.02, weight_decay=0.1)),
            ("adamw", dict(lr=0.02, weight_decay=0.5))]
CLIP_NORM = 0.6


def f32(x):
    """Round to float32 and back: the C model reads exactly these values."""
    return x.float().double()


def uniform(shape, k):
    return f32((2 * torch.rand(shape, generator=gen) - 1) * k)


def normal(shape, std=1.0):
    return f32(torch.randn(shape, generator=gen) * std)


# ---------------------------------------------------------------- weights
# Names and order are trainer/model.c's model_tensors(); decay = 1 for matrices/embeddings.
params = {}   # name -> (tensor, decay)
params["action_emb"] = (normal((K, EA)), 1)
for c, v in enumerate(CAT_VOCAB):
    params["cat_emb.%d" % c] = (normal((v, EC)), 1)
for l in range(L):
    n_in = I0 if l == 0 else H
    params["lstm.%d.w_ih" % l] = (uniform((4 * H, n_in), 0.5), 1)
    params["lstm.%d.w_hh" % l] = (uniform((4 * H, H), 0.5), 1)
    bias = normal((4 * H,), 0.3)
    bias[H:2 * H] += 1.0  # forget-gate bias 1, as model_init_params
    params["lstm.%d.bias" % l] = (f32(bias), 0)
params["head.w"] = (uniform((O, H), 0.6), 1)
params["head.b"] = (normal((O,), 0.2), 0)
NAMES = list(params)

# ---------------------------------------------------------------- inputs (time-major (T, B))
action = torch.randint(0, K, (T, B), generator=gen)
cat = torch.stack([torch.randint(0, v, (T, B), generator=gen) for v in CAT_VOCAB], dim=-1)
dense = normal((T, B, D))
keep = torch.ones(T, B, dtype=torch.long)
tgt_action = torch.randint(0, K, (T, B), generator=gen)
tgt_loggap = f32(torch.randn((T, B), generator=gen) * 2 + 1)
tgt_eng = normal((T, B))
h0 = [normal((B, H), 0.5) for _ in range(L)]
c0 = [normal((B, H), 0.5) for _ in range(L)]
# Lane 0: one user throughout, state carried in, a target everywhere (a plain LSTM).
# Lane 1: a new user at t = 0 (carried state ignored), whose last event t = 2 has no next
#         event in the data; another user from t = 3.
# Lane 2: state carried in; the user's last event is t = 3 (no target) and t = 4, 5 are
#         padding (reset, no target), as the batcher fills an exhausted lane.
keep[0, 1] = 0
tgt_action[2, 1] = -1
keep[3, 1] = 0
tgt_action[3, 2] = -1
keep[4:, 2] = 0
tgt_action[4:, 2] = -1
action[4:, 2] = 0


# ---------------------------------------------------------------- the model
def embed_inputs(p, dense_in):
    parts = [p["action_emb"][action]]
    parts += [p["cat_emb.%d" % c][cat[:, :, c]] for c in range(len(CAT_VOCAB))]
    parts.append(dense_in)
    return torch.cat(parts, dim=-1)  # (T, B, I0)


def lstm_layer(x, w_ih, w_hh, bias, h, c, keep_f):
    """x (T, B, In), h, c (B, H) carried state, keep_f (T, B) in {0, 1}. Returns (T, B, H)."""
    outs = []
    for t in range(x.shape[0]):
        k = keep_f[t].unsqueeze(1)
        hp, cp = k * h, k * c
        gates = x[t] @ w_ih.T + hp @ w_hh.T + bias
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * cp + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs), h, c


def forward(p, dense_in):
    """Returns (y (T, B, O), per-layer outputs, final h, final c)."""
    x = embed_inputs(p, dense_in)
    keep_f = keep.double()
    layer_out, h_n, c_n = [], [], []
    for l in range(L):
        x, h, c = lstm_layer(x, p["lstm.%d.w_ih" % l], p["lstm.%d.w_hh" % l],
                             p["lstm.%d.bias" % l], h0[l], c0[l], keep_f)
        layer_out.append(x)
        h_n.append(h)
        c_n.append(c)
    y = x @ p["head.w"].T + p["head.b"]
    return y, layer_out, h_n, c_n


def time_nll(y_mu, y_ls, loggap):
    u = (loggap - LOSS["loggap_mean"]) / LOSS["loggap_std"]
    return (loggap + math.log(LOSS["loggap_std"]) + y_ls + 0.5 * (u - y_mu) ** 2 * torch.exp(-2 * y_ls)
            + 0.5 * math.log(2 * math.pi))


def loss_terms(y):
    """Mean loss over target positions and its three (unweighted) parts."""
    sel = tgt_action >= 0
    ys = y[sel]  # (N, O)
    ce = F.cross_entropy(ys[:, :K], tgt_action[sel], reduction="none")
    nll = time_nll(ys[:, K], ys[:, K + 1], tgt_loggap[sel])
    se = 0.5 * (ys[:, K + 2] - tgt_eng[sel]) ** 2
    total = LOSS["w_action"] * ce + LOSS["w_time"] * nll + LOSS["w_eng"] * se
    return total.mean(), ce.mean(), nll.mean(), se.mean(), int(sel.sum())


# ---------------------------------------------------------------- self-checks of the reference
def check_against_nn_lstm(p):
    """Every segment between resets must match torch.nn.LSTM with the same weights."""
    ref = torch.nn.LSTM(I0, H, num_layers=L)
    with torch.no_grad():
        for l in range(L):
            getattr(ref, "weight_ih_l%d" % l).copy_(p["lstm.%d.w_ih" % l])
            getattr(ref, "weight_hh_l%d" % l).copy_(p["lstm.%d.w_hh" % l])
            getattr(ref, "bias_ih_l%d" % l).copy_(p["lstm.%d.bias" % l])
            getattr(ref, "bias_hh_l%d" % l).zero_()
        x = embed_inputs(p, dense)
        _, layer_out, h_n, c_n = forward(p, dense)
        worst, n_segments = 0.0, 0
        for b in range(B):
            starts = [t for t in range(T) if t == 0 or keep[t, b] == 0] + [T]
            for s, e in zip(starts[:-1], starts[1:]):
                carried = keep[s, b] == 1  # only possible at s = 0
                hx = torch.stack([h0[l][b] if carried else torch.zeros(H) for l in range(L)])
                cx = torch.stack([c0[l][b] if carried else torch.zeros(H) for l in range(L)])
                out, (hn, cn) = ref(x[s:e, b:b + 1], (hx.unsqueeze(1), cx.unsqueeze(1)))
                worst = max(worst, (out[:, 0] - layer_out[-1][s:e, b]).abs().max().item())
                for l in range(L):
                    worst = max(worst, (hn[l, 0] - layer_out[l][e - 1, b]).abs().max().item())
                    if e == T:  # the state handed to the next window
                        worst = max(worst, (hn[l, 0] - h_n[l][b]).abs().max().item(),
                                    (cn[l, 0] - c_n[l][b]).abs().max().item())
                n_segments += 1
    assert n_segments == 6 and worst < 1e-12, (n_segments, worst)
    print("self-check: hand-written LSTM == torch.nn.LSTM on %d segments (max diff %.1e)"
          % (n_segments, worst))


def check_time_nll():
    y_mu, y_ls = torch.randn(20, generator=gen), torch.randn(20, generator=gen) * 0.5
    loggap = torch.randn(20, generator=gen) * 2
    std = LOSS["loggap_std"]
    dist = torch.distributions.LogNormal(LOSS["loggap_mean"] + std * y_mu, std * torch.exp(y_ls))
    diff = (time_nll(y_mu, y_ls, loggap) + dist.log_prob(torch.exp(loggap))).abs().max().item()
    assert diff < 1e-12, diff
    print("self-check: NLL_time == -LogNormal.log_prob (max diff %.1e)" % diff)


# ---------------------------------------------------------------- runs
def leaf_params():
    return {n: params[n][0].clone().requires_grad_(True) for n in NAMES}


def gradients():
    p = leaf_params()
    d = dense.clone().requires_grad_(True)
    y, _, h_n, c_n = forward(p, d)
    loss, ce, nll, se, n = loss_terms(y)
    loss.backward()
    return dict(loss=loss.item(), action_nll=ce.item(), time_nll=nll.item(), eng_se=se.item(),
                n_targets=n, grads={k: p[k].grad for k in NAMES}, grad_dense=d.grad,
                h_n=h_n, c_n=c_n)


def optimizer_run(kind, lr, weight_decay):
    p = leaf_params()
    groups = [{"params": [p[n] for n in NAMES if params[n][1]], "weight_decay": weight_decay},
              {"params": [p[n] for n in NAMES if not params[n][1]], "weight_decay": 0.0}]
    betas = (OPT_COMMON["beta1"], OPT_COMMON["beta2"])
    if kind == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=OPT_COMMON["momentum"])
    elif kind == "adam":
        opt = torch.optim.Adam(groups, lr=lr, betas=betas, eps=OPT_COMMON["eps"])
    else:
        opt = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=OPT_COMMON["eps"])
    losses, norms, clips = [], [], []
    for _ in range(OPT_STEPS):
        opt.zero_grad()
        loss = loss_terms(forward(p, dense)[0])[0]  # the same inputs and initial state
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p[n] for n in NAMES], CLIP_NORM).item()
        # The C side decides with `norm > clip_norm`, torch with max_norm / (norm + 1e-6) < 1:
        # keep every norm well away from the threshold so both make the same choice.
        assert abs(norm - CLIP_NORM) > 1e-3 * CLIP_NORM, (kind, norm)
        losses.append(loss.item())
        norms.append(norm)
        clips.append(min(1.0, CLIP_NORM / (norm + 1e-6)))
        opt.step()
    with torch.no_grad():
        losses.append(loss_terms(forward(p, dense)[0])[0].item())  # after the last step
    return losses, norms, clips


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/reference.txt"
    p0 = {n: params[n][0] for n in NAMES}
    check_against_nn_lstm(p0)
    check_time_nll()
    ref = gradients()
    runs = [(kind, cfg, optimizer_run(kind, **cfg)) for kind, cfg in OPT_RUNS]
    n_clipped = sum(c < 1 for _, _, (_, _, clips) in runs for c in clips)
    n_steps = len(runs) * OPT_STEPS
    assert 0 < n_clipped < n_steps, (n_clipped, n_steps)  # both branches of the clip
    # Adam moves every parameter by ~lr * sign(g) on its first step: a gradient element
    # within float32 noise of zero could move either way in C. None is that small here.
    smallest = min((g.abs()[g != 0].min() / g.abs().max()).item() for g in ref["grads"].values())
    assert smallest > 1e-5, smallest

    lines = []

    def put(name, values, fmt="%.9g", per_line=8):
        values = [v for v in values]
        lines.append("%s %d" % (name, len(values)))
        for i in range(0, len(values), per_line):
            lines.append(" ".join(fmt % v for v in values[i:i + per_line]))

    def put_ints(name, t):
        put(name, [int(v) for v in t.reshape(-1).tolist()], "%d", 24)

    def put_reals(name, t):
        put(name, t.reshape(-1).tolist())

    lines.append("# Reference for tests/unit/test_reference.c, written by tests/tools/make_reference.py")
    lines.append("# (torch %s, float64). Regenerate: /usr/bin/python3 tests/tools/make_reference.py"
                 " tests/fixtures/reference.txt" % torch.__version__)
    lines.append("# Format: `name count` then count numbers. Arrays are row-major; inputs are")
    lines.append("# time-major (T, B, ...). Losses and gradients are of the MEAN over targets.")
    put("shape.n_actions", [K], "%d")
    put("shape.action_embed", [EA], "%d")
    put("shape.cat_vocab", CAT_VOCAB, "%d")
    put("shape.cat_embed", [EC], "%d")
    put("shape.n_dense", [D], "%d")
    put("shape.hidden", [H], "%d")
    put("shape.layers", [L], "%d")
    put("shape.engagement", [E], "%d")
    put("shape.lanes", [B], "%d")
    put("shape.window", [T], "%d")
    for k, v in LOSS.items():
        put("loss." + k, [v], "%.17g")
    lines.append("# inputs")
    put_ints("input.action", action)
    put_ints("input.cat", cat)
    put_reals("input.dense", dense)
    put_ints("input.keep", keep)
    put_ints("input.tgt_action", tgt_action)
    put_reals("input.tgt_loggap", tgt_loggap)
    put_reals("input.tgt_eng", tgt_eng)
    for l in range(L):
        put_reals("input.h0.%d" % l, h0[l])
        put_reals("input.c0.%d" % l, c0[l])
    lines.append("# parameters, in model_tensors() order")
    for n in NAMES:
        put_reals("param." + n, params[n][0])
    lines.append("# forward: mean loss and its parts over n_targets, state after the window")
    put("out.n_targets", [ref["n_targets"]], "%d")
    for k in ("loss", "action_nll", "time_nll", "eng_se"):
        put("out." + k, [ref[k]], "%.17g")
    for l in range(L):
        put_reals("out.h.%d" % l, ref["h_n"][l].detach())
        put_reals("out.c.%d" % l, ref["c_n"][l].detach())
    lines.append("# gradients of the mean loss")
    for n in NAMES:
        put_reals("grad." + n, ref["grads"][n])
    put_reals("grad.input.dense", ref["grad_dense"])
    lines.append("# optimizer runs: loss[k] before update k (k < %d) and after the last;"
                 " grad_norm = global norm of the mean-loss gradient before clipping;"
                 " clip = factor applied" % OPT_STEPS)
    put("optim.steps", [OPT_STEPS], "%d")
    put("optim.clip_norm", [CLIP_NORM], "%.17g")
    for k, v in OPT_COMMON.items():
        put("optim." + k, [v], "%.17g")
    for kind, cfg, (losses, norms, clips) in runs:
        put(kind + ".lr", [cfg["lr"]], "%.17g")
        put(kind + ".weight_decay", [cfg["weight_decay"]], "%.17g")
        put(kind + ".loss", losses, "%.17g")
        put(kind + ".grad_norm", norms, "%.17g")
        put(kind + ".clip", clips, "%.17g")
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("loss %.9f over %d targets; %d of %d optimizer steps clipped" %
          (ref["loss"], ref["n_targets"], n_clipped, n_steps))
    for kind, _, (losses, norms, _) in runs:
        print("  %-5s losses %s" % (kind, " ".join("%.6f" % v for v in losses)))
        print("  %-5s norms  %s" % (kind, " ".join("%.4f" % v for v in norms)))
    print("wrote %s" % out_path)


if __name__ == "__main__":
    main()
