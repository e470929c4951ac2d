#!/usr/bin/env python3
"""ngram_baseline.py: next-type accuracy of a back-off n-gram of the training split.

A reference for README "Real logs: results": how much of the next-event type is predicted
by the last few types alone. For every target (every event but a sequence's first) the
prediction is the most frequent next type in train.csv after the longest context of at most
ORDER previous types that was seen there at least MIN_COUNT times (ties: the smaller type
id); a context never seen backs off to a shorter one. Reads seq_id,time,type files (the
EasyTPP releases in ../shared/data); stdlib only.

  python3 tests/bench/ngram_baseline.py ../shared/data/taxi [ORDER [MIN_COUNT]]
"""
import collections
import csv
import os
import sys


def load(path):
    seqs = collections.OrderedDict()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            seqs.setdefault(row["seq_id"], []).append((float(row["time"]), int(row["type"])))
    # sorted by time within a sequence, as the trainer reads them (stable for equal times)
    return [[t for _, t in sorted(s, key=lambda e: e[0])] for s in seqs.values()]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    data = sys.argv[1]
    order = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    min_count = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    counts = collections.defaultdict(collections.Counter)
    for types in load(os.path.join(data, "train.csv")):
        for i in range(1, len(types)):
            for o in range(1, order + 1):
                counts[tuple(types[max(0, i - o):i])][types[i]] += 1
    for split in ("dev", "test"):
        hit = n = 0
        for types in load(os.path.join(data, split + ".csv")):
            for i in range(1, len(types)):
                ctx = tuple(types[max(0, i - order):i])
                while len(ctx) > 1 and sum(counts[ctx].values()) < min_count:
                    ctx = ctx[1:]
                c = counts[ctx]
                pred = min(c, key=lambda a: (-c[a], a)) if c else -1
                hit += pred == types[i]
                n += 1
        print(f"{split}: order {order}, min count {min_count}: top-1 {hit / n:.4f} ({n} targets)")


if __name__ == "__main__":
    main()
