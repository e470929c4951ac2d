# rundir.sh: the run directory records the resolved experiment and every start's overrides,
# refuses a different experiment unless --resume, and continues its own.
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml
"$TRAINER" train exp.yaml --set train.lr=0.004 > out1.txt 2>&1 || { cat out1.txt; fail "first run failed"; finish; }
[ -f run/config.yaml ] && grep -q "^  lr: 0.004$" run/config.yaml && pass "run/config.yaml holds the resolved experiment" \
  || fail "run/config.yaml missing or without the override"
grep -q -- "--set train.lr=0.004" run/overrides.txt && pass "overrides.txt records --set" || fail "overrides.txt lacks the override"
[ -f run/metrics.json ] && [ -f run/log.jsonl ] && ls run/checkpoints/step-*.ckpt >/dev/null 2>&1 \
  && pass "metrics.json, log.jsonl and a checkpoint written" || fail "run outputs missing"

cp run/config.yaml config.before
status=0; "$TRAINER" train exp.yaml --set train.lr=0.004 --set model.hidden=24 > out2.txt 2>&1 || status=$?
[ "$status" -ne 0 ] && grep -q "holds a different experiment (changed: model.hidden (16 -> 24))" out2.txt \
  && pass "a different experiment is refused, naming what changed" || { cat out2.txt; fail "different experiment not refused clearly"; }
cmp -s config.before run/config.yaml && pass "the refused run changed nothing" || fail "refused run rewrote config.yaml"

"$TRAINER" train exp.yaml --set train.lr=0.004 > out3.txt 2>&1 && pass "same experiment starts again (complete: nothing to do)" \
  || { cat out3.txt; fail "rerun of the same experiment failed"; }

"$TRAINER" train exp.yaml --set train.lr=0.004 --set train.steps=30 --resume > out4.txt 2>&1 \
  && grep -q "continuing .* with changed settings: train.steps (20 -> 30)" out4.txt \
  && grep -q "resume: continuing from .*step-00000020.ckpt" out4.txt \
  && pass "--resume continues the directory with new settings from its checkpoint" || { cat out4.txt; fail "--resume failed"; }
ls run/config.prev-*.yaml >/dev/null 2>&1 && pass "the previous config is kept" || fail "previous config not kept"

"$TRAINER" train exp.yaml --set run.dir="$WORK/run2" --set checkpoint.resume=never > out5a.txt 2>&1 || fail "fresh run with resume=never failed"
status=0; "$TRAINER" train exp.yaml --set run.dir="$WORK/run2" --set checkpoint.resume=never > out5.txt 2>&1 || status=$?
[ "$status" -ne 0 ] && grep -q "holds checkpoints but checkpoint.resume=never" out5.txt \
  && pass "checkpoint.resume=never refuses a directory with checkpoints" || { cat out5.txt; fail "resume=never not enforced"; }
finish
