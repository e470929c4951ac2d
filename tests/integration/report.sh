# report.sh: `trainer report` and the TensorBoard files without a browser: the page of a
# 2-rank run holds its charts and the validation pass; the TensorBoard events of a run and of
# its resume decode (tests/tools/tb_read.py: framing, CRC32C, TensorFlow's Event message) to exactly
# the scalars of log.jsonl; bad command lines exit 2, bad directories and unwritable outputs
# exit 1 with a message and leave no file; damaged log lines are reported in the page, not
# fatal; a run whose data is gone still gets its page, saying why the validation charts are
# missing; an output directory (summary.json + CSV) gets a score histogram with its threshold.
# The confusion matrix, reliability bins and constant-predictor baselines agree with a float64
# recomputation from the validation CSV and metrics.json (tests/tools/check_report.py).
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml
cat >> exp.yaml <<'YAML'
YAML
sed -i 's/^  every: 0$/  every: 5/' exp.yaml   # eval.every and checkpoint.every: 5

if mpirun_limit 120 2 "$TRAINER" train exp.yaml > train.out 2>&1; then pass "2-rank run"; else cat train.out; fail "2-rank run"; fi
if "$TRAINER" report "$WORK/run" > report.out 2>&1 && [ -s "$WORK/run/report.html" ]; then
  pass "report of the run: $(cat report.out | tail -1)"
else cat report.out; fail "report of the run"; fi
page="$WORK/run/report.html"
n=$(grep -o '<figure class="chart"' "$page" | wc -l)
[ "$n" -ge 18 ] && pass "$n charts with data" || fail "$n charts with data (want >= 18)"
grep -q 'From one pass over the validation users' "$page" && grep -q 'id="confusion"' "$page" \
  && pass "validation pass: confusion matrix and calibration" || fail "no validation pass in the page"
# The validation numbers against a float64 recomputation from the validation CSV and metrics.json.
if python3 "$TESTS_DIR/tools/check_report.py" "$WORK/run" "$WORK/synth/valid.csv" 0.001 > chk.out 2>&1; then
  pass "validation charts agree with an independent recomputation ($(grep -c '^ok' chk.out) checks)"
else cat chk.out; fail "validation numbers"; fi
mkdir -p tampered && cp "$WORK/run/metrics.json" tampered/
sed 's/"confusion":\[\([0-9]*\),/"confusion":[\1 + 1,/; s/"confusion":\[0,/"confusion":[1,/' "$page" > tampered/report.html
python3 "$TESTS_DIR/tools/check_report.py" tampered "$WORK/synth/valid.csv" 0.001 > chk2.out 2>&1 \
  && fail "a tampered confusion matrix passed the check" || pass "a tampered confusion matrix fails the check"
grep -q '"event":"start","ranks":2' "$WORK/run/log.jsonl" && grep -q '"rank_comm_s":\[[0-9.]*,[0-9.]*\]' "$WORK/run/log.jsonl" \
  && pass "log.jsonl: start line and per-rank seconds" || fail "log.jsonl lacks the start line or per-rank seconds"
grep -q '<script src\|<link \|https\?://' "$page" && fail "the page refers to something outside itself" || pass "self-contained (no src=, link, URL)"

# TensorBoard: one file per start; every scalar equals its log line.
if python3 "$TESTS_DIR/tools/tb_read.py" "$WORK/run" > tb1.out 2>&1; then pass "$(cat tb1.out)"; else cat tb1.out; fail "tb_read after the first start"; fi
sleep 1
if mpirun_limit 120 2 "$TRAINER" train exp.yaml --set train.steps=30 --resume > train2.out 2>&1; then pass "resumed to step 30"; else cat train2.out; fail "resume"; fi
if python3 "$TESTS_DIR/tools/tb_read.py" "$WORK/run" > tb2.out 2>&1 && grep -q '^tb_read: 2 files' tb2.out; then pass "$(cat tb2.out)"; else cat tb2.out; fail "tb_read after the resume (want 2 files)"; fi
# A flipped byte in an event file is caught by the reader's CRC check (the test can fail).
cp -r "$WORK/run/tb" tb-copy
f=$(ls tb-copy/events.out.tfevents.* | head -1)
printf '\x00' | dd of="$f" bs=1 seek=40 conv=notrunc status=none
mkdir -p bad-run && cp "$WORK/run/log.jsonl" bad-run/ && mv tb-copy bad-run/tb
python3 "$TESTS_DIR/tools/tb_read.py" bad-run > tb3.out 2>&1 && fail "a corrupted event file passed the reader" \
  || { grep -q 'CRC' tb3.out && pass "corruption caught: $(tail -1 tb3.out)" || { cat tb3.out; fail "corruption not reported as a CRC error"; }; }
"$TRAINER" report "$WORK/run" > /dev/null 2>&1
grep -q 'resumed from step 20' "$page" && pass "resume marked in the page" || fail "no resume mark"

# Command line and directories.
expect_status() { # expect_status CODE WHAT CMD...
  local want=$1 what=$2; shift 2; local st=0
  "$@" > err.out 2>&1 || st=$?
  if [ "$st" = "$want" ] && grep -q 'error:' err.out; then pass "$what: status $st, $(head -1 err.out)"; else cat err.out; fail "$what: status $st (want $want)"; fi
}
expect_status 2 "no directory" "$TRAINER" report
expect_status 2 "unknown option" "$TRAINER" report "$WORK/run" --bogus
expect_status 2 "--output without a file" "$TRAINER" report "$WORK/run" --output
expect_status 1 "missing directory" "$TRAINER" report "$WORK/nothing-here"
st=0; mpirun_limit 60 2 "$TRAINER" report "$WORK/run" --output mpi.html > mpi.out 2>&1 || st=$?
[ "$st" != 0 ] && grep -q 'runs as one process' mpi.out && [ ! -e mpi.html ] \
  && pass "under mpirun -np 2: refused (status $st), no page" || { cat mpi.out; fail "report under mpirun (status $st)"; }
mkdir -p empty
expect_status 1 "directory of nothing" "$TRAINER" report empty
expect_status 1 "unwritable output" "$TRAINER" report "$WORK/run" --output "$WORK/no/such/dir/r.html"
[ ! -e "$WORK/no" ] && pass "no partial output" || fail "output left behind"

# Damaged log lines: reported, not fatal.
mkdir -p damaged && cp "$WORK/run/config.yaml" damaged/
{ head -3 "$WORK/run/log.jsonl"; echo '{"time":1,"event":"step","step":'; echo 'garbage'; tail -2 "$WORK/run/log.jsonl" | head -c 60; } > damaged/log.jsonl
if "$TRAINER" report damaged > d.out 2>&1 && grep -q '3 unreadable lines skipped' damaged/report.html; then pass "damaged log: page says 3 unreadable lines"; else cat d.out; grep -o 'unreadable[^<]*' damaged/report.html; fail "damaged log"; fi

# The data gone: the page still comes, saying why there is no validation pass.
mv "$WORK/shards" "$WORK/shards.away"
if "$TRAINER" report "$WORK/run" --output nodata.html > nd.out 2>&1 && grep -q 'prepared data .* is not here' nodata.html; then pass "no data: page explains the missing validation charts"; else cat nd.out; fail "no data"; fi
mv "$WORK/shards.away" "$WORK/shards"

# An output directory of another command.
mkdir -p scored
printf '{"command":"score","threshold":0.8,"users":6,"flagged":2,"by_group":{"time":0.4,"action":0.6}}\n' > scored/summary.json
printf 'user,score,flagged\n00aa,0.1,0\n00ab,0.2,0\n00ac,0.5,0\n00ad,0.85,1\n00ae,0.9,1\n00af,0.3,0\n' > scored/scores.csv
if "$TRAINER" report scored > s.out 2>&1 && grep -q 'id="scores.csv-score"' scored/report.html && grep -q 'threshold (summary.json)' scored/report.html; then
  pass "output directory: score histogram with its threshold"; else cat s.out; fail "output directory"; fi
# A segment-style directory: no summary.json, a CSV and another JSON (an array of objects).
mkdir -p segs
printf '{"k":3,"segments":[{"id":0,"size":3,"share":0.5},{"id":1,"size":2,"share":0.33},{"id":2,"size":1,"share":0.17}]}\n' > segs/profiles.json
printf 'user_hash,segment,distance\n00aa,0,0.1\n00ab,0,0.2\n00ac,0,0.5\n00ad,1,0.85\n00ae,1,0.9\n00af,2,0.3\n' > segs/segments.csv
if "$TRAINER" report segs > g.out 2>&1 && grep -q 'segments\[2\].size' segs/report.html && grep -q 'id="segments.csv-segment"' segs/report.html; then
  pass "segment-style directory: profiles.json table and segment sizes"; else cat g.out; fail "segment-style directory"; fi
finish
