#!/usr/bin/env bash
# warmstart.sh: train.init_from on a later period's data (synth.drift_kind's period2/).
#   (a) new_action data with one action removed, on 2 ranks: vocabularies matched by value
#       ("5 kept, 1 new, 1 dropped" actions) and the run trains.
#   (b) train.init_stats=keep on tempo data (other gap statistics, same vocabularies): at
#       step 0 the warm-started model scores exactly what the source scores on those events
#       (eval --input); refit differs.
#   (c) train.init_optimizer=true continues the step count of the source.
#   (d) another architecture (model.hidden, model.layers) exits 2 naming the file and keys;
#       a missing checkpoint exits 2 too.
#   (e) (a)'s warm start stopped by SIGUSR1 and resumed ends bitwise where an uninterrupted
#       one does: the rows of new values keep their faster rate across the resume (the
#       checkpoint carries them; a resume that lost them trains those rows at 1x).
. "$(dirname "$0")/../lib/lib.sh"
. "$TESTS_DIR/lib/ckpt_lib.sh"

write_small_exp exp.yaml
E=(--set synth.users=400)
train_source src.out "${E[@]}" --set train.steps=100
for k in new_action tempo; do
  "$TRAINER" data synth exp.yaml "${E[@]}" --set synth.drift_kind=$k --set synth.out_dir=p_$k > /dev/null 2>&1
done
grep -v ',follow,' p_new_action/period2/train.csv > nofollow_train.csv
# exp_for NAME TRAIN VALID: an experiment reading those CSVs
exp_for() {
  sed -e "s|source: synth|source: csv\n  train_path: $WORK/$2\n  valid_path: $WORK/$3\n  test_path: $WORK/$3|" \
      -e "s|$WORK/run|$WORK/run_$1|" -e "s|$WORK/shards|$WORK/shards_$1|" exp.yaml > exp_$1.yaml
}
exp_for na nofollow_train.csv p_new_action/period2/valid.csv
exp_for tempo p_tempo/period2/train.csv p_tempo/period2/valid.csv
W=(--set train.init_from=$WORK/run --set train.steps=20)

# (a)
RC=0
mpirun_t 2 "$TRAINER" train exp_na.yaml "${W[@]}" > na.out 2>&1 || RC=$?
if [ "$RC" -eq 0 ] && grep -q '^init_from: action: 5 values kept, 1 new, 1 dropped$' na.out &&
   grep -q '^init_from: content: 4 values kept, 0 new, 0 dropped$' na.out && grep -q '^done: 20 steps' na.out &&
   grep -qE '^init_from: the rows of new values \([1-9][0-9]* parameters\) learn at 10 times train.lr$' na.out; then
  pass "new and removed actions matched by value (5 kept, 1 new, 1 dropped) on 2 ranks, new rows at 10x lr"
else
  show na.out; fail "new_action warm start: rc=$RC"
fi

# (b)
"$TRAINER" eval exp.yaml "${E[@]}" --checkpoint run --input p_tempo/period2/valid.csv > ev.out 2>&1
REF=$(sed -n 's/^  next-action NLL *\([0-9.]*\).*/\1/p' ev.out)
for st in keep refit; do
  RC=0
  mpirun_t 1 "$TRAINER" train exp_tempo.yaml "${W[@]}" --set train.steps=0 --set train.warmup_steps=0 \
    --set train.init_stats=$st --set run.dir=run_t_$st > t_$st.out 2>&1 || RC=$?
  eval "NLL_$st=\$(sed -n 's/^valid  step      0  action_nll \([0-9.]*\).*/\1/p' t_$st.out)"
done
[ -n "$REF" ] && [ "$NLL_keep" = "$REF" ] && [ "$NLL_refit" != "$REF" ] \
  && pass "init_stats=keep scores exactly as the source ($REF), refit does not ($NLL_refit)" \
  || { show t_keep.out; fail "init_stats: keep '$NLL_keep' refit '$NLL_refit' source '$REF'"; }

# (c)
RC=0
mpirun_t 1 "$TRAINER" train exp_tempo.yaml "${W[@]}" --set train.steps=110 --set train.init_optimizer=true \
  --set run.dir=run_t_opt > opt.out 2>&1 || RC=$?
[ "$RC" -eq 0 ] && grep -q 'optimizer and step kept' opt.out && grep -q '^done: 110 steps' opt.out &&
  ! grep -q '^step +5/' opt.out && pass "init_optimizer continues from step 100" \
  || { show opt.out; fail "init_optimizer: rc=$RC"; }

# (d)
RC=0
mpirun_t 2 "$TRAINER" train exp_tempo.yaml "${W[@]}" --set model.hidden=32 --set model.layers=2 \
  --set run.dir=run_t_arch > arch.out 2>&1 || RC=$?
[ "$RC" -eq 2 ] && grep -q "^error: exp_tempo.yaml: train.init_from=.*architecture differs: model.hidden (16 there, 32 here), model.layers (1 there, 2 here)" arch.out \
  && [ "$(grep -c '^error' arch.out)" -eq 1 ] && pass "another architecture: exit 2 naming model.hidden, model.layers" \
  || { show arch.out; fail "architecture mismatch: rc=$RC"; }
RC=0
"$TRAINER" train exp_tempo.yaml --set train.init_from=$WORK/nowhere --set run.dir=run_t_none > none.out 2>&1 || RC=$?
[ "$RC" -eq 2 ] && grep -q "train.init_from=$WORK/nowhere: --checkpoint $WORK/nowhere: no such file" none.out \
  && pass "a missing init_from: exit 2" || { show none.out; fail "missing init_from: rc=$RC"; }

# (e)
R=(--set train.reproducible=true --set train.steps=300 --set log.every=1)
mpirun_t 1 "$TRAINER" train exp_na.yaml "${W[@]}" "${R[@]}" --set run.dir=run_e_full > e_full.out 2>&1 || true
K=""
for try in 1 2 3; do
  rm -rf run_e_half
  start_job 1 e_half.out train exp_na.yaml "${W[@]}" "${R[@]}" --set run.dir=run_e_half
  pid=$(wait_rank_pid 0)
  wait_grep e_half.out '^step +2/' && [ -n "$pid" ] && kill -USR1 "$pid" || true
  job_wait
  K=$(sed -n 's/^stop requested by a signal: checkpointing at step \([0-9]*\) .*/\1/p' e_half.out)
  [ "$JOB_RC" -eq 75 ] && [ -n "$K" ] && break
  say "(e): the run ended before the signal landed (attempt $try)"
done
RC=0
mpirun_t 1 "$TRAINER" train exp_na.yaml "${W[@]}" "${R[@]}" --set run.dir=run_e_half > e_resume.out 2>&1 || RC=$?
if [ -n "$K" ] && [ "$RC" -eq 0 ] && grep -q "^resume: continuing from" e_resume.out &&
   "$CKPT_COMPARE" "$(ckpt_path run_e_full 300)" "$(ckpt_path run_e_half 300)" > e_cmp.txt 2>&1; then
  pass "a warm start stopped at step $K and resumed ends bitwise as an uninterrupted one ($(grep -o 'params.*' e_cmp.txt))"
else
  show e_resume.out; cat e_cmp.txt 2>/dev/null; fail "(e): stop step '$K', resume rc=$RC"
fi
finish
