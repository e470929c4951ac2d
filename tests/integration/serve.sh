# serve.sh: `trainer serve`, the live scorer, against `trainer score` and across restarts.
#
#   agreement: a time-ordered file fed through serve (micro-batches of 64, and of 1) gives
#       every user the final score `score --input` gives (within 1e-5, relative to
#       max(|a|, |b|, 1 nat)) and the same peak window; every output line is a JSON object
#       with the fields the README lists.
#   restarts: the file in two halves, with --state, served by two processes (the first ends at
#       end of input; then again with the first stopped by SIGTERM while reading a FIFO) gives
#       the same final scores as one process; SIGTERM exits 0 after the snapshot.
#   kill -9 during a snapshot (TRAINER_FAULT_SNAPSHOT=kill:100:2 kills the second one): the
#       state file is the first snapshot, whole, and a restart restores it; a truncated state
#       file is refused with a message naming it.
#   malformed rows on stdin (unknown action or content value, wrong field count, bad time, an
#       unterminated quote, time going backwards): one warning naming the line each, the row
#       skipped, every good row scored, exit 0. Bad options exit 2.
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml
sed -i -e 's/^  users: 200$/  users: 400\n  irregular_frac: 0.1/' -e 's/^  steps: 20$/  steps: 60/' exp.yaml
"$TRAINER" train exp.yaml > train.txt
CK="--checkpoint $WORK/run"
COMPARE="python3 $TESTS_DIR/tools/serve_compare.py"
# Events in time order across users (users interleave, as in a live stream).
(head -1 "$WORK/synth/test.csv"; tail -n +2 "$WORK/synth/test.csv" | sort -t, -k2,2n -s) > stream.csv
rows=$(($(wc -l < stream.csv) - 1))
"$TRAINER" score exp.yaml $CK --input stream.csv --output sc > /dev/null

say "agreement with score"
"$TRAINER" serve exp.yaml $CK --stats st.json < stream.csv > all.jsonl 2> serve.err
[ "$(wc -l < all.jsonl)" -eq "$rows" ] && pass "one line per event ($rows)" || fail "$(wc -l < all.jsonl) lines for $rows rows"
$COMPARE all.jsonl sc/users.csv && pass "serve == score (batches of up to 64)" || fail "serve differs from score"
"$TRAINER" serve exp.yaml $CK --max-batch 1 --max-delay-ms 0 < stream.csv > one.jsonl 2> /dev/null
$COMPARE one.jsonl sc/users.csv && pass "serve == score (batches of 1)" || fail "serve --max-batch 1 differs from score"
python3 - all.jsonl st.json <<'PY' && pass "lines are JSON with every field; stats file" || fail "output fields"
import json, sys
need = {"user_hash", "event", "time", "action", "surprisal", "excess", "score", "flagged", "reason",
        "peak", "next", "next_gap"}
for i, line in enumerate(open(sys.argv[1])):
    r = json.loads(line)
    if set(r) != need:
        sys.exit(f"line {i + 1}: fields {sorted(r)}")
    if r["event"] > 0 and set(r["surprisal"]) != {"action", "timing", "engagement"}:
        sys.exit(f"line {i + 1}: surprisal {r['surprisal']}")
    if len(r["next"]) != 3 or not 0 <= r["next"][0]["p"] <= 1 or r["next_gap"]["median"] < 0:
        sys.exit(f"line {i + 1}: next {r['next']} {r['next_gap']}")
s = json.load(open(sys.argv[2]))
if s["events"] <= 0 or s["latency_ms"]["p99"] < s["latency_ms"]["p50"]:
    sys.exit(f"stats {s}")
PY
# "next": the most likely actions, most likely first: with --top beyond the vocabulary every
# action is listed, the probabilities sum to 1 and fall, and the default top 3 are its head.
head -201 stream.csv | "$TRAINER" serve exp.yaml $CK --top 1000 > every.jsonl 2> /dev/null
python3 - all.jsonl every.jsonl <<'PY' && pass "next: the top actions, most likely first" || fail "next actions"
import json, sys
key = lambda r: (r["user_hash"], r["event"])  # lines come in micro-batch order
top = {key(r): r["next"] for r in map(json.loads, open(sys.argv[1]))}
n = 0
for r in map(json.loads, open(sys.argv[2])):
    p = [x["p"] for x in r["next"]]
    if abs(sum(p) - 1) > 1e-3 * len(p) or any(p[k] < p[k + 1] for k in range(len(p) - 1)):
        sys.exit(f"{key(r)}: probabilities {p} do not fall or do not sum to 1")
    if [x["p"] for x in top[key(r)]] != p[:3]:
        sys.exit(f"{key(r)}: top 3 {top[key(r)]} are not the head of {r['next']}")
    n += 1
sys.exit(0 if n == 200 else f"{n} lines, want 200")
PY

say "restart from --state"
half=$((rows / 2))
(head -1 stream.csv; sed -n "2,$((half + 1))p" stream.csv) > h1.csv
(head -1 stream.csv; tail -n +$((half + 2)) stream.csv) > h2.csv
"$TRAINER" serve exp.yaml $CK --state s1.bin < h1.csv > a.jsonl 2> a.err
"$TRAINER" serve exp.yaml $CK --state s1.bin < h2.csv > b.jsonl 2> b.err
grep -q "restored" b.err && pass "second process restored the state ($(grep restored b.err))" || fail "no restore: $(cat b.err)"
cat a.jsonl b.jsonl > ab.jsonl
$COMPARE ab.jsonl sc/users.csv && pass "two processes with --state == one" || fail "restart changed the scores"
# SIGTERM while reading a FIFO.
mkfifo in.fifo
"$TRAINER" serve exp.yaml $CK --state s2.bin --input in.fifo > c.jsonl 2> c.err &
pid=$!
exec 3> in.fifo
cat h1.csv >&3
for i in $(seq 1 300); do [ "$(wc -l < c.jsonl)" -ge "$half" ] && break; sleep 0.1; done
kill -TERM $pid
set +e
wait $pid; rc=$?
set -e
exec 3>&-
[ $rc -eq 0 ] && pass "SIGTERM: exit 0" || fail "SIGTERM: exit $rc ($(tail -2 c.err))"
grep -q "stopped by a signal; state saved" c.err && pass "SIGTERM: state saved" || fail "SIGTERM: $(tail -1 c.err)"
"$TRAINER" serve exp.yaml $CK --state s2.bin < h2.csv > d.jsonl 2> d.err
cat c.jsonl d.jsonl > cd.jsonl
$COMPARE cd.jsonl sc/users.csv && pass "SIGTERM + restart == one process" || fail "SIGTERM + restart changed the scores"

say "kill -9 during a snapshot"
set +e
TRAINER_FAULT_SNAPSHOT=kill:100:2 "$TRAINER" serve exp.yaml $CK --state s3.bin --snapshot-every 200 < stream.csv > e.jsonl 2> e.err
rc=$?
set -e
[ $rc -eq 137 ] && pass "killed during the second snapshot (exit 137)" || fail "fault did not kill (exit $rc)"
[ -f s3.bin.tmp ] && pass "the partial snapshot is the temp file" || fail "no partial temp file"
head -1 stream.csv > header.csv
"$TRAINER" serve exp.yaml $CK --state s3.bin < header.csv > /dev/null 2> f.err
ev=$(sed -n 's/.*restored [0-9]* users (\([0-9]*\) events).*/\1/p' f.err)
if [ -n "$ev" ] && [ "$ev" -ge 200 ] && [ "$ev" -lt 400 ]; then pass "the first snapshot loads ($ev events)"
else fail "restore after kill -9: $(cat f.err)"; fi
head -c 1000 s3.bin > trunc.bin
set +e
"$TRAINER" serve exp.yaml $CK --state trunc.bin < header.csv > /dev/null 2> g.err; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "trunc.bin: truncated" g.err && pass "truncated state refused: $(grep trunc.bin g.err)" \
  || fail "truncated state: exit $rc $(cat g.err)"

say "malformed rows"
{
  head -1 stream.csv
  sed -n 2,4p stream.csv                                  # lines 2-4: good
  echo "u9999999,1767571300.000,zap,text,1.000"           # 5: unknown action
  echo "u9999999,1767571300.000,like,text"                # 6: a field missing
  echo "u9999999,abc,like,text,1.000"                     # 7: bad time
  echo "u9999999,1767571300.000,like,hologram,1.000"      # 8: unknown content
  echo '"u9999999,1767571300.000,like,text,1.000'         # 9: unterminated quote
  echo "u9999998,1767571300.000,like,text,1.000"          # 10: good
  echo "u9999998,1767571200.000,like,text,1.000"          # 11: before its previous event
  echo "u9999998,1767571400.000,view,video,2.000"         # 12: good
} > bad.csv
set +e
"$TRAINER" serve exp.yaml $CK < bad.csv > bad.jsonl 2> bad.err; rc=$?
set -e
[ $rc -eq 0 ] && pass "exit 0" || fail "exit $rc"
[ "$(wc -l < bad.jsonl)" -eq 5 ] && pass "the 5 good rows scored" || fail "$(wc -l < bad.jsonl) lines"
for l in 5 6 7 8 9 11; do
  grep -q "warning: stdin:$l: .*row skipped" bad.err && pass "line $l: $(grep "stdin:$l:" bad.err)" || fail "no warning for line $l"
done
for a in "--max-batch 0" "--max-delay-ms -1" "--snapshot-every x" "--bogus"; do
  set +e
  "$TRAINER" serve exp.yaml $CK $a < header.csv > /dev/null 2> opt.err; rc=$?
  set -e
  [ $rc -eq 2 ] && pass "serve $a: exit 2" || fail "serve $a: exit $rc"
done
finish
