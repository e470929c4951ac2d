#!/usr/bin/env python3
"""check_report.py: the validation numbers of a `trainer report` page against independent ones.

    check_report.py RUNDIR VALID.csv GAP_OFFSET

Reads the page's <script id="validation-data"> block and RUNDIR/metrics.json, and recomputes
in float64 from the validation CSV (columns user,time,action as the synthetic generator
writes them; time in seconds): each user's events in time order, the targets being every
event after the user's first. Requires:
  - the confusion matrix counts every target once: its sum = the targets of metrics.json;
  - its diagonal share = metrics.json's top-1 accuracy (same model, same users), to 1e-3;
  - the row sums = the targets of each action in the CSV, exactly;
  - the constant predictor: action NLL = entropy of the target actions, majority accuracy =
    the largest share (1e-8: the page prints 9 digits), time NLL = the best single log-normal of gap + GAP_OFFSET
    (mean log + log sd + 1/2 + log sqrt(2 pi); 1e-4: the trainer holds log gaps in float32);
  - the reliability bins count every target, their accuracy sums add up to the diagonal;
  - the gap coverage rises with the quantile level, within [0, 1].
Exit 0, or 1 naming each failed check.
"""
import collections
import csv
import json
import math
import re
import sys


def main():
    run_dir, valid_csv, gap_offset = sys.argv[1], sys.argv[2], float(sys.argv[3])
    page = open(run_dir + "/report.html", encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="validation-data">(.*?)</script>', page, re.S)
    if not m:
        sys.exit("check_report: no validation-data block in the page")
    vd = json.loads(m.group(1))
    metrics = json.load(open(run_dir + "/metrics.json"))["valid"]
    users = collections.defaultdict(list)
    with open(valid_csv, newline="") as f:
        for row in csv.DictReader(f):
            users[row["user"]].append((float(row["time"]), row["action"]))
    actions, loggaps = [], []
    for evs in users.values():
        evs.sort(key=lambda e: e[0])  # the trainer orders by time (ties keep file order)
        for (t0, _), (t1, a) in zip(evs, evs[1:]):
            actions.append(a)
            loggaps.append(math.log(max(t1 - t0, 0.0) + gap_offset))
    n = len(actions)
    fails = []

    def check(ok, what):
        print(("ok: " if ok else "FAIL: ") + what)
        if not ok:
            fails.append(what)

    K, labels, conf = len(vd["labels"]), vd["labels"], vd["confusion"]
    total = sum(conf)
    diag = sum(conf[i * K + i] for i in range(K))
    check(total == metrics["n_targets"] == n == vd["n_targets"],
          "targets: confusion %d, metrics.json %d, CSV %d" % (total, metrics["n_targets"], n))
    check(abs(diag / total - metrics["top1"]) < 1e-3,
          "confusion diagonal %.6f vs metrics.json top1 %.6f" % (diag / total, metrics["top1"]))
    counts = collections.Counter(actions)
    rows = {labels[i]: sum(conf[i * K:(i + 1) * K]) for i in range(K)}
    check(all(rows.get(a, 0) == c for a, c in counts.items()) and sum(rows.values()) == n,
          "confusion rows = targets per action in the CSV (%s)"
          % ", ".join("%s %d" % (a, c) for a, c in sorted(counts.items())))
    h = -sum(c / n * math.log(c / n) for c in counts.values())
    check(abs(vd["const_action_nll"] - h) < 1e-8 * max(1, h),
          "constant action NLL %.9f vs entropy %.9f" % (vd["const_action_nll"], h))
    maj = max(counts.values()) / n
    check(abs(vd["majority_acc"] - maj) < 1e-8, "majority %.9f vs %.9f" % (vd["majority_acc"], maj))
    mu = sum(loggaps) / n
    var = sum((x - mu) ** 2 for x in loggaps) / n
    t_nll = mu + 0.5 * math.log(var) + 0.5 + 0.5 * math.log(2 * math.pi)
    check(abs(vd["const_time_nll"] - t_nll) < 1e-4 * max(1, abs(t_nll)),
          "constant time NLL %.6f vs log-normal fit %.6f" % (vd["const_time_nll"], t_nll))
    rel = vd["reliability"]
    check(sum(b[0] for b in rel) == n and sum(b[2] for b in rel) == diag,
          "reliability bins: %d targets, %d correct" % (sum(b[0] for b in rel), sum(b[2] for b in rel)))
    cov = vd["gap_coverage"]
    check(all(0 <= a <= b <= 1 for a, b in zip(cov, cov[1:])), "gap coverage rises within [0, 1]")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
