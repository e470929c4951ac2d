#!/usr/bin/env python3
"""scaling_model.py: an alpha-beta model of one data-parallel training step.

    python3 tests/bench/scaling_model.py [DIR] [--bucket-mb MB] [--lanes B] [--markdown]
                                         [--events-per-s H=EV,H=EV,...]

DIR (default out/scaling) holds what tests/bench/scaling_measure.sh measured:
  bench.jsonl           `trainer bench --json` per H on 1 rank (compute: forward, backward,
                        optimizer per step of B=64 lanes x T=64), and on 2 ranks over shared
                        memory ("shm") and TCP ("tcp"), the points the model is checked on;
  allreduce-shm.jsonl,  allreduce_bench: time of one gradient bucket + the step header
  allreduce-tcp.jsonl   through comm/ on 2 ranks, 4 B .. 64 MiB.

--events-per-s replaces the 1-rank compute (events/s of one rank at 64 lanes; the split into
forward, backward and optimizer stays the measured one): on a loaded machine `trainer bench`
runs several times slower than idle, which hides communication.

The model. One allreduce of n bytes on P ranks costs the cheapest of a ring,
2(P-1) (alpha + n/P beta), recursive doubling, ceil(log2 P) (alpha + n beta), and
Rabenseifner's reduce-scatter + allgather, 2 ceil(log2 P) alpha + 2 (P-1)/P n beta (what a
tuned MPI picks, roughly). alpha (s per message) and beta (s per byte) are fitted to the
2-rank measurements (where each makes about one exchange of n bytes): alpha the median time
of messages <= 1 KiB, beta the least-squares slope over 64 KiB .. 4 MiB (the bucket sizes a
step uses), both from each size's fastest repetition (the machine is shared: the fastest is
the link, the rest is other load).
Links: "shm" and "tcp" as measured here (TCP between two network namespaces: the kernel's
TCP stack, no wire), "10G" (alpha of the measured TCP, 10 Gb/s at 90%) and "100G" (alpha
3 us, 100 Gb/s at 90%: an RDMA-class network; over plain TCP use the 10G alpha).

The step as implemented (run/step.c, run/gradsync.c): gradients are grouped by layer in the
order backward finishes them (head, layer L-1 .. 0, embeddings), cut into buckets of at
most comm.bucket_mb, and each bucket's allreduce starts when its group is done; the link
carries one bucket at a time; the step header (a few doubles) is reduced after backward.
A group is done at the share of backward time its parameters' FLOPs take (dense ops: FLOPs
~ parameters x lanes x steps). Exposed communication = when the last reduction ends minus
the end of backward. step(P) = forward + backward + exposed + optimizer; weak scaling
(lanes per rank fixed, as `trainer bench` and `mpirun -np P trainer train` with
train.batch_size = P x lanes): events/s = P x B x T / step(P), efficiency = step(1) /
step(P). Not modelled: rank skew (a slow rank makes the others wait: on a loaded machine
this dominates measured comm wait), contention of P ranks for one NIC, and the progress of
non-blocking collectives only inside MPI calls (Open MPI has no progress thread).
"""
import glob
import json
import math
import os
import sys

RANKS = [2 ** k for k in range(0, 11)]  # 1 .. 1024
HEADER_BYTES = 8 * 16                  # StepHeader: loss sums + flags (doubles)


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]


def fit_link(rows):
    """(alpha s, beta s/byte) from allreduce_bench rows of 2 ranks."""
    small = sorted(r["us_min"] for r in rows if 0 < r["bytes"] <= 1024)
    alpha = small[len(small) // 2] * 1e-6
    pts = [(r["bytes"], r["us_min"] * 1e-6) for r in rows if (64 << 10) <= r["bytes"] <= (4 << 20)]
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    beta = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return alpha, max(beta, 1e-12)


def allreduce_s(n_bytes, P, alpha, beta):
    if P == 1:
        return 0.0
    ring = 2 * (P - 1) * (alpha + n_bytes / P * beta)
    steps = math.ceil(math.log2(P))
    rd = steps * (alpha + n_bytes * beta)
    rab = 2 * steps * alpha + 2 * (P - 1) / P * n_bytes * beta
    return min(ring, rd, rab)


def groups(h, params, layers=1, types=32, emb=32):
    """[(n_params, done_at share of backward)] in backward order: head, layers, embeddings."""
    lstm = []
    for l in range(layers):
        inp = emb + 2 if l == 0 else h  # action embedding + time features; then h
        lstm.append(4 * h * (inp + h) + 8 * h)
    embed = types * emb
    head = max(params - sum(lstm) - embed, 0)
    total = head + sum(lstm)
    out, done = [], 0.0
    for n in [head] + lstm:
        done += n / total
        out.append((n, done))
    out.append((embed, 1.0))
    return out


def n_messages(comp, bucket_mb):
    cap = max(int(bucket_mb * (1 << 20) / 4), 1)
    return sum((n + cap - 1) // cap for n, _ in comp["groups"] if n) + 1  # + the header


def latency_share(comp, P, link, bucket_mb):
    """Share of the step's allreduce time that is latency (alpha terms), at P ranks."""
    alpha, beta = link
    full = step_s(comp, P, link, bucket_mb)[1]
    no_alpha = step_s(comp, P, (0.0, beta), bucket_mb)[1]
    return 1 - no_alpha / full if full > 0 else 0.0


def step_s(comp, P, link, bucket_mb):
    """Modelled step seconds and the exposed communication."""
    alpha, beta = link
    t_f, t_b, t_o = comp["t_f"], comp["t_b"], comp["t_o"]
    cap = max(int(bucket_mb * (1 << 20) / 4), 1)
    free_at = 0.0
    for n, done in comp["groups"]:
        for off in range(0, n, cap):
            nb = 4 * min(cap, n - off)
            free_at = max(free_at, done * t_b) + allreduce_s(nb, P, alpha, beta)
    end = max(free_at, t_b) + allreduce_s(HEADER_BYTES, P, alpha, beta) if P > 1 else t_b
    exposed = end - t_b
    return t_f + t_b + exposed + t_o, exposed


def compute_of(bench_rows, events_per_s):
    comp = {}
    for r in bench_rows:
        if r["ranks"] != 1:
            continue
        s = r["step_ms_med"] * 1e-3
        if r["hidden"] in events_per_s:
            s = r["batch"] * r["seq"] / events_per_s[r["hidden"]]
        t_f, t_b = s * r["forward_share"], s * r["backward_share"]
        comp[r["hidden"]] = {"t_f": t_f, "t_b": t_b, "t_o": max(s - t_f - t_b, 0.0), "step": s,
                             "events": r["batch"] * r["seq"], "params": r["params"],
                             "groups": groups(r["hidden"], r["params"], r["layers"], r["types"], r["emb"])}
    return comp


def scaled(comp, lanes):
    """The compute of `lanes` lanes per rank (GEMM time taken as linear in the lanes)."""
    f = lanes / 64.0
    c = dict(comp)
    for k in ("t_f", "t_b", "t_o", "step"):
        c[k] = comp[k] * f
    c["events"] = comp["events"] * f
    return c


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    opt = lambda name, dflt: float(argv[argv.index(name) + 1]) if name in argv else dflt
    bucket_mb, lanes, md = opt("--bucket-mb", 4.0), opt("--lanes", 64.0), "--markdown" in argv
    eps = {}
    for name in ("--bucket-mb", "--lanes", "--events-per-s"):
        if name in argv:
            args.remove(argv[argv.index(name) + 1])
    if "--events-per-s" in argv:
        for kv in argv[argv.index("--events-per-s") + 1].split(","):
            h, ev = kv.split("=")
            eps[int(h)] = float(ev)
    d = args[0] if args else os.path.join(os.path.dirname(__file__), "../../out/scaling")
    bench = read_jsonl(os.path.join(d, "bench.jsonl"))
    links = {}
    for name in ("shm", "tcp"):
        rows = read_jsonl(os.path.join(d, "allreduce-%s.jsonl" % name))
        if rows:
            links[name] = fit_link(rows)
    if not bench or "shm" not in links:
        sys.exit("scaling_model: no measurements in %s (run tests/bench/scaling_measure.sh)" % d)
    tcp_alpha = links.get("tcp", (30e-6, 0))[0]
    links["10G"] = (max(tcp_alpha, 20e-6), 1 / (0.9 * 10e9 / 8))
    links["100G"] = (3e-6, 1 / (0.9 * 100e9 / 8))
    base = compute_of(bench, eps)
    comp = {h: scaled(c, lanes) for h, c in base.items()}

    print("links (fitted on 2 ranks; alpha per message, bandwidth 1/beta):")
    for name, (a, b) in links.items():
        print("  %-5s alpha %6.1f us  bandwidth %6.2f GB/s" % (name, a * 1e6, 1e-9 / b))
    print("compute per step, %d lanes x T=64 per rank, from `trainer bench` on 1 rank:" % lanes)
    for h, c in sorted(comp.items()):
        print("  H=%-4d params %8d  step %7.2f ms (forward %.2f, backward %.2f, optimizer %.2f)"
              % (h, c["params"], 1e3 * c["step"], 1e3 * c["t_f"], 1e3 * c["t_b"], 1e3 * c["t_o"]))

    print("\ncheck against the measured 2-rank points (events/s aggregate; comm ms per step):")
    print("  %-5s %-4s %12s %12s %10s %10s" % ("H", "link", "measured", "model", "comm meas", "comm model"))
    for r in bench:
        if r["ranks"] != 2 or r["hidden"] not in comp or r.get("link") not in links:
            continue
        c = compute_of(bench, {})[r["hidden"]]  # the measured compute of that run's time
        s, exp = step_s(c, 2, links[r["link"]], bucket_mb)
        print("  %-5d %-4s %12.0f %12.0f %10.2f %10.2f" % (
            r["hidden"], r["link"], r["events_per_s_med"], 2 * c["events"] / s,
            r["comm_share"] * r["step_ms_med"], 1e3 * exp))

    # Measured on an idle machine (README "Speed", 2026-11-26): H=128, 2 ranks over shared
    # memory, 721,797 events/s aggregate, 1.86x one rank, 3.2% of the step in communication.
    if 128 in base and "--events-per-s" in argv:
        c = base[128]
        s, exp = step_s(c, 2, links["shm"], bucket_mb)
        print("  idle point (README Speed): H=128 shm 2 ranks 721797 events/s, comm 3.2%% = %.2f ms;"
              " model %.0f events/s, comm %.2f ms (%.1f%%)" % (
                  0.032 * 2 * c["events"] / 721797 * 1e3, 2 * c["events"] / s, 1e3 * exp, 100 * exp / s))

    for lname in ("10G", "100G", "tcp", "shm"):
        if lname not in links:
            continue
        print("\n%s: events/s (efficiency) by ranks, comm.bucket_mb=%g, %d lanes per rank" % (lname, bucket_mb, lanes))
        hdr = "  %-5s" % "H" + "".join("%16s" % P for P in RANKS[1:])
        print(hdr if not md else "| H | " + " | ".join(str(P) for P in RANKS[1:]) + " | first P < 90% |")
        if md:
            print("|---" * (len(RANKS) + 1) + "|")
        for h, c in sorted(comp.items()):
            cells, first = [], None
            for P in RANKS[1:]:
                s, _ = step_s(c, P, links[lname], bucket_mb)
                eff = c["step"] / s
                if eff < 0.9 and first is None:
                    first = P
                cells.append("%.3gM (%2.0f%%)" % (P * c["events"] / s / 1e6, 100 * eff))
            why = ""
            if first:
                s, exp = step_s(c, first, links[lname], bucket_mb)
                why = " (P=%d: %.2f of %.2f ms exposed, %d messages, %.0f%% latency)" % (
                    first, 1e3 * exp, 1e3 * s, n_messages(c, bucket_mb),
                    100 * latency_share(c, first, links[lname], bucket_mb))
            if md:
                print("| %d | %s | %s%s |" % (h, " | ".join(cells), first or "> 1024", why))
            else:
                print("  %-5d" % h + "".join("%16s" % x for x in cells) +
                      "   <90%% from P=%s%s" % (first or ">1024", why))


if __name__ == "__main__":
    main(sys.argv[1:])
