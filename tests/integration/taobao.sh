# taobao.sh: the public Taobao set ingests as it is and trains, on 2 ranks (skips if absent).
#
# The files (seq_id,time,type; one per split; seq_id restarts at 0 in every file) are read
# through the experiment's column names with time_unit none. Checks: the per-split users,
# events and targets of the prepare report equal the set's README (which also proves that a
# user is (file, seq_id): merging users across files would change every count), no user
# dropped, 17 types in the vocabulary; training a few steps on 2 ranks; `eval --split test`
# scoring the README's number of test targets with finite metrics; `trainer report` of the run
# (constant-predictor reference lines, confusion matrix); `eval --input test.csv`
# scoring the same targets with the same metrics.
. "$(dirname "$0")/../lib/lib.sh"


DATA=""
# $TRAINER_SHARED_DATA, when set, is the only place looked at.
if [ -n "${TRAINER_SHARED_DATA:-}" ]; then places=("$TRAINER_SHARED_DATA/taobao")
else places=("$REPO_DIR/../shared/data/taobao"); fi
for d in "${places[@]}"; do
  if [ -f "$d/train.csv" ] && [ -f "$d/dev.csv" ] && [ -f "$d/test.csv" ] && [ -f "$d/README.md" ]; then DATA=$(cd "$d" && pwd); break; fi
done
if [ -z "$DATA" ]; then say "skip: no taobao data (set TRAINER_SHARED_DATA or provide ../shared/data/taobao)"; exit 77; fi
say "data: $DATA"

cat > "$WORK/exp.yaml" <<YAML
run:
  dir: $WORK/run
data:
  source: csv
  train_path: $DATA/train.csv
  valid_path: $DATA/dev.csv
  test_path: $DATA/test.csv
  user_col: seq_id
  time_col: time
  action_col: type
  time_unit: none      # the set's unit is not documented
  virtual_shards: 8
  shard_dir: $WORK/shards
model:
  hidden: 16
  action_embed: 8
  gap_offset: 0.0001   # gaps are ~0.05 (median 0.009), none is zero
train: {batch_size: 16, window: 16, steps: 4, warmup_steps: 0}
eval: {every: 0, batch_size: 32}
checkpoint: {every: 0}
YAML

mpi mpirun_n 2 "$TRAINER" train "$WORK/exp.yaml" > "$WORK/train.out" 2>&1 || { fail "train failed:"; sed 's/^/    /' "$WORK/train.out"; finish; }

# The README's table: | train.csv | sequences | events | targets | ...
for pair in train:train dev:valid test:test; do
  file=${pair%%:*}; split=${pair##*:}
  read -r users events targets < <(awk -F'|' -v f="$file.csv" '$2 ~ "^ *"f" *$" { gsub(/ /, ""); print $3, $4, $5 }' "$DATA/README.md")
  if [ -z "${targets:-}" ]; then fail "no row for $file.csv in $DATA/README.md"; continue; fi
  if grep -qE "^  $split +$users users +$events events +$targets targets, 0 users dropped" "$WORK/train.out"; then
    pass "$file.csv -> $split: $users users, $events events, $targets targets, as the README says"
  else
    fail "$file.csv: expected $users users, $events events, $targets targets:"; grep -E "^  $split " "$WORK/train.out" | sed 's/^/    /'
  fi
  [ "$file" = test ] && TEST_TARGETS=$targets
done
if grep -qE '^  vocabulary: 17 type values' "$WORK/train.out"; then pass "17 types"
else fail "vocabulary:"; grep vocabulary "$WORK/train.out" | sed 's/^/    /'; fi
grep -q '^done: 4 steps' "$WORK/train.out" && pass "trained 4 steps on 2 ranks" || fail "training did not finish 4 steps"
# The run's page: real data, so the reference lines are the constant predictor's (no generator).
if "$TRAINER" report "$WORK/run" > "$WORK/report.out" 2>&1 && grep -q 'constant predictor (validation)' "$WORK/run/report.html" \
   && grep -q 'id="confusion"' "$WORK/run/report.html" && ! grep -q "generator's best achievable" "$WORK/run/report.html"; then
  pass "trainer report: $(tail -1 "$WORK/report.out")"
else fail "trainer report of the Taobao run:"; sed 's/^/    /' "$WORK/report.out"; fi

# metrics FILE: the numbers eval printed, one "name value" per line.
metrics() { sed -nE 's/^  (targets scored|next-action top-1|next-action NLL|time NLL|time MAE|time RMSE) +([^ ]+).*/\1:\2/p' "$1"; }
check_eval() {
  local what=$1 out=$2 m
  m=$(metrics "$out")
  if ! grep -qE "^  targets scored +${TEST_TARGETS:-x}$" "$out"; then
    fail "$what: not ${TEST_TARGETS:-?} targets:"; sed 's/^/    /' "$out"; return
  fi
  if [ "$(echo "$m" | wc -l)" -ne 6 ] || echo "$m" | grep -qiE ':(-?nan|-?inf)'; then
    fail "$what: missing or non-finite metrics:"; sed 's/^/    /' "$out"; return
  fi
  if ! awk -F: '$1 == "next-action top-1" { exit !($2 > 0 && $2 <= 1) }' <<< "$m"; then fail "$what: top-1 out of range"; return; fi
  pass "$what: $TEST_TARGETS targets, finite metrics ($(echo "$m" | tr '\n' ' '))"
}
mpi mpirun_n 2 "$TRAINER" eval "$WORK/exp.yaml" --checkpoint "$WORK/run" --split test > "$WORK/eval.out" 2>&1 ||
  fail "eval --split test failed"
check_eval "eval --split test (2 ranks)" "$WORK/eval.out"
mpi "$TRAINER" eval "$WORK/exp.yaml" --checkpoint "$WORK/run" --input "$DATA/test.csv" > "$WORK/eval-input.out" 2>&1 ||
  fail "eval --input failed"
check_eval "eval --input test.csv (1 rank)" "$WORK/eval-input.out"
# The same users scored two ways: the same numbers (up to summation order).
if paste -d: <(metrics "$WORK/eval.out") <(metrics "$WORK/eval-input.out") |
   awk -F: '{ d = $2 - $4; if (d < 0) d = -d; s = $2 < 0 ? -$2 : $2; if (d > 1e-3 * (s + 1e-3)) bad = 1 } END { exit bad }'; then
  pass "eval --split test and eval --input test.csv agree"
else fail "the two evals differ:"; paste <(metrics "$WORK/eval.out") <(metrics "$WORK/eval-input.out") | sed 's/^/    /'; fi

finish
