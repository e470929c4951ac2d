#!/usr/bin/env python3
"""sweep_seed_mean.py: a sweep's validation figures per setting, averaged over run.seed.

For sweeps whose grid includes run.seed (configs/sweeps/taxi_2.yaml .. taxi_4.yaml): reads
DIR/plan.txt and each DONE trial's metrics.json, groups the trials by their overrides other
than run.seed, and prints per setting the mean and standard deviation of valid.top1 and the
mean valid action NLL and time NLL, best mean top-1 first. Trials not done are left out (the
count n says how many seeds a row has). Stdlib only.

  python3 tests/bench/sweep_seed_mean.py runs/sweep-taxi-2
"""
import collections
import json
import math
import os
import sys


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    rows = collections.defaultdict(list)
    with open(os.path.join(d, "plan.txt")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            trial, *overrides = line.rstrip("\n").split("\t")
            key = " ".join(o for o in overrides if not o.startswith("run.seed="))
            path = os.path.join(d, trial, "metrics.json")
            if not os.path.exists(os.path.join(d, trial, "DONE")) or not os.path.exists(path):
                continue
            with open(path) as m:
                v = json.load(m)["valid"]
            rows[key].append((v["top1"], v["action_nll"], v["time_nll"]))
    out = []
    for key, v in rows.items():
        n = len(v)
        top1 = [x[0] for x in v]
        mean = sum(top1) / n
        sd = math.sqrt(sum((x - mean) ** 2 for x in top1) / (n - 1)) if n > 1 else 0.0
        out.append((mean, sd, sum(x[1] for x in v) / n, sum(x[2] for x in v) / n, n, key))
    print("| valid top1 (mean ± sd) | action NLL | time NLL | seeds | setting |")
    print("|---|---|---|---|---|")
    for mean, sd, anll, tnll, n, key in sorted(out, key=lambda r: -r[0]):
        print(f"| {mean:.4f} ± {sd:.4f} | {anll:.4f} | {tnll:.3f} | {n} | {key or '(base)'} |")


if __name__ == "__main__":
    main()
