#!/usr/bin/env bash
# serve_throughput.sh: `trainer serve` against `trainer score` on the same events (README,
# "Irregular activity"). A benchmark, not a test.
#
#   bash tests/bench/serve_throughput.sh build/trainer configs/irregular.yaml runs/irregular [RATE [ROWS]]
#
# 1. The experiment's test users, their events in time order (users interleaved, as a live
#    stream), scored by `score --input` (events/s of its pass over users) and fed through
#    `serve` from a file as fast as it reads (events/s from the first row to the last line);
#    the final per-user scores compared (serve_compare.py).
# 2. Latency: the same stream (its first ROWS rows; 0: all) paced at RATE rows/s (default
#    20000) into a FIFO, --max-delay-ms 5: p50 / p99 / max from a row's read to its line
#    being written. (A rate the server cannot keep up with measures its queue instead.)
# Results in out/bench/serve/. One OpenBLAS thread; set OPENBLAS_CORETYPE to name the kernels.
set -euo pipefail
TRAINER=$(readlink -f "$1") EXP=$2 CK=$3 RATE=${4:-20000} PACED_ROWS=${5:-0}
OUT=out/bench/serve
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=1
synth_dir=$("$TRAINER" config show "$EXP" | awk '/^synth:/ { s = 1 } s && /out_dir:/ { gsub(/"/, "", $2); print $2; exit }')
(head -1 "$synth_dir/test.csv"; tail -n +2 "$synth_dir/test.csv" | sort -t, -k2,2n -s) > "$OUT/stream.csv"
rows=$(($(wc -l < "$OUT/stream.csv") - 1))
echo "stream: $rows events of the test users, in time order ($OUT/stream.csv)"
"$TRAINER" score "$EXP" --checkpoint "$CK" --input "$OUT/stream.csv" --output "$OUT/score" | grep '^score: [0-9]'
"$TRAINER" serve "$EXP" --checkpoint "$CK" --stats "$OUT/serve-file.json" < "$OUT/stream.csv" > "$OUT/serve-file.jsonl" 2> "$OUT/serve-file.err"
tail -1 "$OUT/serve-file.err"
python3 "$(dirname "$0")/../tools/serve_compare.py" "$OUT/serve-file.jsonl" "$OUT/score/users.csv"
python3 - "$OUT/score/summary.json" "$OUT/serve-file.json" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(f"throughput (wall clock): score {a['events_per_second']:.0f} events/s, serve {b['events_per_second']:.0f} "
      f"events/s: serve / score = {b['events_per_second'] / a['events_per_second']:.2f}")
PY
# The same in CPU time (robust on a shared machine): each command's user+sys seconds on the
# stream less those of the same command on one user's events (set-up, calibration).
cpu() { /usr/bin/time -f "%U %S" -o "$OUT/cpu.txt" "$@" > /dev/null 2>&1; awk '{ print $1 + $2 }' "$OUT/cpu.txt"; }
(head -1 "$OUT/stream.csv"; tail -n +2 "$OUT/stream.csv" | awk -F, 'NR == 1 { u = $1 } $1 == u') > "$OUT/one.csv"
c_score=$(cpu "$TRAINER" score "$EXP" --checkpoint "$CK" --input "$OUT/stream.csv" --output "$OUT/score-cpu")
c_score0=$(cpu "$TRAINER" score "$EXP" --checkpoint "$CK" --input "$OUT/one.csv" --output "$OUT/score-cpu0")
c_serve=$(cpu sh -c "'$TRAINER' serve '$EXP' --checkpoint '$CK' < '$OUT/stream.csv'")
c_serve0=$(cpu sh -c "'$TRAINER' serve '$EXP' --checkpoint '$CK' < '$OUT/one.csv'")
awk -v n="$rows" -v a="$c_score" -v a0="$c_score0" -v b="$c_serve" -v b0="$c_serve0" 'BEGIN {
  sa = n / (a - a0); sb = n / (b - b0)
  printf "throughput (CPU time less set-up): score %.0f events/s (%.2f - %.2f s), serve %.0f events/s (%.2f - %.2f s): serve / score = %.2f\n", sa, a, a0, sb, b, b0, sb / sa }' 
rm -f "$OUT/in.fifo" && mkfifo "$OUT/in.fifo"
"$TRAINER" serve "$EXP" --checkpoint "$CK" --max-delay-ms 5 --input "$OUT/in.fifo" --stats "$OUT/serve-paced.json" > "$OUT/serve-paced.jsonl" 2> "$OUT/serve-paced.err" &
pid=$!
python3 - "$OUT/stream.csv" "$OUT/in.fifo" "$RATE" "$PACED_ROWS" <<'PY'
import sys, time
lines = open(sys.argv[1]).read().splitlines(True)
if int(sys.argv[4]) > 0:
    lines = lines[:1 + int(sys.argv[4])]
rate, out = float(sys.argv[3]), open(sys.argv[2], "w")
out.write(lines[0]); out.flush()
t0, chunk = time.monotonic(), max(1, int(rate / 1000))  # a write every millisecond
for i in range(1, len(lines), chunk):
    wait = t0 + (i - 1) / rate - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    out.write("".join(lines[i:i + chunk])); out.flush()
out.close()
PY
wait $pid
tail -1 "$OUT/serve-paced.err"
python3 - "$OUT/serve-paced.json" "$RATE" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
l = s["latency_ms"]
print(f"paced at {sys.argv[2]} rows/s, --max-delay-ms 5: latency p50 {l['p50']:.2f} ms, p99 {l['p99']:.2f} ms, "
      f"max {l['max']:.2f} ms over {s['events']} events (mean batch {s['mean_batch']:.1f})")
PY
