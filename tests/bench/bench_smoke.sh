#!/usr/bin/env bash
# bench_smoke.sh: `trainer bench` runs, on 1 and 2 ranks, prints one parseable JSON line with
# the figures the speed table needs, allocates nothing per step (RSS does not grow with the
# step count), and rejects bad options with status 2. A few seconds; no timing is checked.
# Register with: bash_test(bench_smoke bench/bench_smoke.sh)
. "$(dirname "$0")/../lib/lib.sh"
PY=$(command -v python3) || { say "SKIP: needs python3 to read the JSON"; exit 77; }
SMALL=(--hidden 16 --layers 2 --batch 8 --window 8 --warmup 1 --window-s 0 --max-steps-per-window 3
       --sgemm-n 64 --sgemm-trials 2 --json)

check_json() { # file ranks
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
need = ["events_per_s_med", "events_per_s_min", "events_per_s_max", "gflops_med", "sgemm_gflops_med",
        "peak_share", "comm_share", "peak_rss_mib", "need_mib", "rss_ratio", "flops_per_event",
        "openblas_core", "openblas_threads", "final_loss"]
missing = [k for k in need if k not in r]
assert not missing, f"missing fields {missing}"
assert r["ranks"] == int(sys.argv[2]), r["ranks"]
assert r["events_per_s_min"] <= r["events_per_s_med"] <= r["events_per_s_max"]
assert r["events_per_s_med"] > 0 and r["sgemm_gflops_med"] > 0 and r["final_loss"] == r["final_loss"]
# torch_lstm.py's count for H=16 L=2 K=32 E=32: 3 * (2*(33+16)*64 + 2*(16+16)*64 + 2*16*33)
assert r["flops_per_event"] == 3 * (2 * 49 * 64 + 2 * 32 * 64 + 2 * 16 * 33), r["flops_per_event"]
EOF
}

if "$TRAINER" bench "${SMALL[@]}" > one.json 2> one.err && check_json one.json 1; then
  pass "bench on 1 rank prints the figures"
else
  fail "bench on 1 rank: $(tail -3 one.err one.json)"
fi
if mpirun_n 2 "$TRAINER" bench "${SMALL[@]}" > two.json 2> two.err && check_json two.json 2; then
  pass "bench on 2 ranks prints aggregate figures"
else
  fail "bench on 2 ranks: $(tail -3 two.err two.json)"
fi
# K > 1024: the tiled head by default (no (T*B, K) logits: less memory needed), untiled on
# request; both train (a finite loss).
head_of() { # args...: prints "head need_mib final_loss"
  "$TRAINER" bench "${SMALL[@]}" --types 1500 "$@" 2>/dev/null | "$PY" -c \
    'import json,sys; r=json.load(sys.stdin); print(r["head"], r["need_mib"], r["final_loss"])'; }
read -r ha na la <<< "$(head_of)" || true
read -r hu nu lu <<< "$(head_of --head untiled)" || true
if [ "$ha" = tiled ] && [ "$hu" = untiled ] &&
   "$PY" -c "import sys; sys.exit(0 if $na < $nu and $la == $la and $lu == $lu else 1)"; then
  pass "K=1500: tiled head by default ($na MiB needed), untiled on request ($nu MiB)"
else
  fail "K=1500 heads: auto '$ha' $na MiB loss $la, --head untiled '$hu' $nu MiB loss $lu"
fi
# Nothing allocated per step: 5 x more steps, same peak RSS (within 1 MiB).
rss() { "$TRAINER" bench --hidden 64 --windows "$1" --window-s 100 --max-steps-per-window 10 \
          --sgemm-trials 0 --json 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["peak_rss_mib"])'; }
a=$(rss 1) b=$(rss 5)
if "$PY" -c "import sys; sys.exit(0 if $b - $a < 1.0 else 1)"; then
  pass "peak RSS does not grow with steps ($a -> $b MiB)"
else
  fail "peak RSS grows with steps: $a MiB after 10 steps, $b MiB after 50"
fi
set +e
"$TRAINER" bench --hidden 0 > /dev/null 2> bad.err; st=$?
set -e
if [ "$st" -eq 2 ] && grep -q -- "--hidden" bad.err; then pass "bad option: status 2 naming it"; else fail "bad option: status $st, $(cat bad.err)"; fi
finish
