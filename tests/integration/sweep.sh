# sweep.sh: sweeps on one machine: plan (one directory per trial, idempotent, refuses another
# plan), run (DONE/FAILED markers with metrics or the reason; a rerun skips DONE trials and
# retries the rest), summary (sorted by the metric, best config), and sweep-file errors.
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml
cat > sweep.yaml <<'YAML'
base: exp.yaml
metric: valid.action_nll
seed: 5
trials: 2
set:
  train.steps: 12
grid:
  train.on_nonfinite: [skip, stop]
random:
  train.lr: {dist: loguniform, low: 0.001, high: 0.01}
  model.hidden: {dist: int, low: 8, high: 16}
YAML
"$TRAINER" sweep plan sweep.yaml sw > plan.out 2>&1 || { cat plan.out; fail "sweep plan"; finish; }
[ "$(ls -d sw/trial-* | wc -l)" = 4 ] && [ -f sw/trial-003/config.yaml ] && grep -q "train.on_nonfinite=stop" sw/plan.txt \
  && pass "plan: 4 trial directories (2 grid points x 2 random draws) with resolved configs" || { cat plan.out; fail "plan layout"; }
grep -q "^  dir: \"$WORK/sw/trial-002\"$" sw/trial-002/config.yaml && grep -q "shard_dir: \"$WORK/shards\"" sw/trial-002/config.yaml \
  && pass "each trial is its own run directory; trials keep the base's prepared data" || fail "trial run.dir / shard_dir"
# (output to a file first: with pipefail, grep -q closing the pipe early could fail the trainer)
"$TRAINER" sweep plan sweep.yaml sw > replan.out 2>&1 || true
grep -q "plan unchanged" replan.out && pass "planning again is a no-op" || { cat replan.out; fail "replan"; }
sed 's/seed: 5/seed: 6/' sweep.yaml > other.yaml
"$TRAINER" sweep plan other.yaml sw > other.out 2>&1 && fail "another plan into the same directory was accepted" \
  || { grep -q "already holds another sweep plan" other.out && pass "another plan in the same directory is refused"; }

# A NaN at step 3 on every trial: on_nonfinite=skip trials finish, =stop trials fail (exit 3).
status=0; TRAINER_FAULT_NAN_STEP=3:0 "$TRAINER" sweep run sw > run1.out 2>&1 || status=$?
[ "$status" = 1 ] && [ "$(ls sw/trial-*/DONE | wc -l)" = 2 ] && [ "$(ls sw/trial-*/FAILED | wc -l)" = 2 ] \
  && pass "run: 2 DONE, 2 FAILED, exit 1" || { cat run1.out; fail "sweep run markers (exit $status)"; }
grep -q '"action_nll"' sw/trial-000/DONE && grep -q "exit status 3" sw/trial-002/FAILED \
  && pass "DONE holds the metrics, FAILED the exit status and the log's end" || fail "marker contents"
TRAINER_FAULT_NAN_STEP=3:0 "$TRAINER" sweep run sw > run2.out 2>&1 || true
grep -q "trial-000: DONE already, skipped" run2.out && grep -q "trial-002: running" run2.out \
  && grep -q "trial-002: FAILED" run2.out && pass "rerun skips DONE trials and retries the failed ones" \
  || { cat run2.out; fail "rerun"; }
"$TRAINER" sweep summary sw > summary1.out
grep -q "4 trials, 2 done, 2 failed, 0 pending" summary1.out && grep -q "^best: trial-00[01]" summary1.out \
  && grep -q "^| 1 | trial-00[01] | DONE |" summary1.out && grep -q "| FAILED |" summary1.out \
  && pass "summary: DONE trials first, the best trial's config, FAILED listed" || { cat summary1.out; fail "summary"; }
"$TRAINER" sweep run sw --trial 2 > run3.out 2>&1 && [ -f sw/trial-002/DONE ] && [ ! -f sw/trial-002/FAILED ] \
  && pass "--trial 2 without the fault: retried and DONE" || { cat run3.out; fail "--trial retry"; }
"$TRAINER" sweep summary sw > summary.out
# Sorted by the metric: the DONE rows' values ascend.
vals=$(grep "| DONE |" summary.out | awk -F'|' '{print $5}' | tr -d ' ')
[ "$(printf '%s\n' $vals | wc -l)" = 3 ] || fail "expected 3 DONE rows, got: $vals"
[ "$vals" = "$(printf '%s\n' $vals | sort -g)" ] && pass "rows ordered by valid.action_nll" || fail "rows not ordered: $vals"

# Sweep-file errors name file:line:column and the key, like experiment errors.
cat > bad.yaml <<'YAML'
base: exp.yaml
grid:
  model.hiden: [8, 16]
random:
  train.lr: {dist: lognormal, low: 0.001, high: 0.01}
YAML
status=0; "$TRAINER" sweep plan bad.yaml badsw > bad.out 2>&1 || status=$?
[ "$status" = 2 ] && grep -q "bad.yaml:3:17: model.hiden=8: model.hiden: unknown key (did you mean 'model.hidden'?)" bad.out \
  && grep -q "bad.yaml:5:13: random.train.lr: unknown dist 'lognormal'" bad.out && [ ! -e badsw/plan.txt ] \
  && pass "bad sweep file: exit 2, file:line:column errors, nothing planned" || { cat bad.out; fail "bad sweep file"; }
finish
