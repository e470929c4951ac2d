#!/usr/bin/env python3
"""Compares trainer serve's last score per user (JSON lines) with trainer score's users.csv.

usage: serve_compare.py SCORES.jsonl USERS.csv [TOL]
Prints the users compared and the largest relative difference; exits 1 if any user differs
by more than TOL (default 1e-5) relative to max(|a|, |b|, 1 nat), or a user is missing.
"""
import csv
import json
import sys


def last_scores(path):
    last = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r["score"] is not None:
                last[r["user_hash"]] = (r["score"], r["peak"], r["reason"])
    return last


def main():
    served = last_scores(sys.argv[1])
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
    # Scores are excess nats and cross zero: differences are relative to max(|a|, |b|, 1 nat).
    floor = 1.0
    worst, worst_user, n, bad, peaks = 0.0, None, 0, 0, 0
    with open(sys.argv[2]) as f:
        for row in csv.DictReader(f):
            u = row["user_hash"]
            if u not in served:
                print(f"user {u}: in users.csv, not in the served scores")
                bad += 1
                continue
            a, b = float(row["score"]), served[u][0]
            rel = abs(a - b) / max(abs(a), abs(b), floor)
            peaks += served[u][1] == [int(row["peak_start"]), int(row["peak_end"])]
            n += 1
            if rel > worst:
                worst, worst_user = rel, u
            if rel > tol:
                bad += 1
    print(f"compared {n} users: largest relative difference {worst:.3g} (user {worst_user}); "
          f"same peak window for {peaks}; {bad} beyond {tol:g} or missing")
    sys.exit(1 if bad or n == 0 else 0)


main()
