#!/usr/bin/env bash
# drift.sh: synth.drift_kind writes period2/, and `trainer drift` tells each kind from none.
#   (a) data synth with each drift kind writes period2/{train,valid,test}.csv and best.txt;
#       period 1 stays byte for byte what drift_kind=none writes; new_action adds "story".
#   (b) drift on period-1 valid: "no drift", and the same features and verdict on 1 and 2 ranks.
#   (c) drift on each kind's period-2 valid: flagged, with the feature that kind moves
#       (segment_mix: action, new_action: values unseen in training, tempo: gap, habits:
#       the model's action NLL).
#   (d) an input CSV missing a column exits 2 naming the file and the column's key.
. "$(dirname "$0")/../lib/lib.sh"
. "$TESTS_DIR/lib/ckpt_lib.sh"

write_small_exp exp.yaml
E=(--set synth.users=1000)
train_source train.out "${E[@]}" --set train.steps=300

# (a)
for k in segment_mix habits new_action tempo; do
  "$TRAINER" data synth exp.yaml "${E[@]}" --set synth.drift_kind=$k --set synth.out_dir=p_$k \
    > synth_$k.out 2>&1 || { show synth_$k.out; fail "data synth $k"; continue; }
  if [ -f p_$k/period2/valid.csv ] && [ -f p_$k/period2/train.csv ] && grep -q '^split valid' p_$k/period2/best.txt &&
     cmp -s p_$k/valid.csv synth/valid.csv && cmp -s p_$k/train.csv synth/train.csv; then
    pass "$k: period2/ written, period 1 unchanged"
  else
    fail "$k: period2 missing or period 1 changed: $(ls p_$k p_$k/period2 2>&1 | tr '\n' ' ')"
  fi
done
grep -q ',story,' p_new_action/period2/train.csv && ! grep -q ',story,' p_new_action/train.csv \
  && pass "new_action: 'story' appears in period 2 only" || fail "new_action: no story action"

# A prepare that asks for a drift kind after the run's drift-free one regenerates the users
# (the generator's settings include the drift): period2/ appears in the run's synth dir.
"$TRAINER" data prepare exp.yaml "${E[@]}" --set synth.drift_kind=habits --set data.shard_dir=shards_h \
  > prep_h.out 2>&1 || { show prep_h.out; fail "data prepare with drift_kind=habits"; }
[ -f synth/period2/valid.csv ] && cmp -s synth/valid.csv p_habits/valid.csv \
  && pass "drift_kind set after a drift-free run: period2/ generated, period 1 the same bytes" \
  || fail "drift_kind set after a drift-free run: no period2/ in synth/ ($(ls synth | tr '\n' ' '))"

drift() { # drift NP INPUT OUT
  local rc=0
  mpirun_t "$1" "$TRAINER" drift exp.yaml "${E[@]}" --checkpoint run --input "$2" --output "$3.json" \
    > "$3.out" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || { show "$3.out"; fail "drift $2: rc=$rc"; }
}
# (b)
drift 1 synth/valid.csv none1
drift 2 synth/valid.csv none2
grep -q '^verdict: no drift$' none1.out && grep -q '"verdict":"no drift"' none1.json \
  && pass "period-1 valid: no drift" || { show none1.out 20; fail "period-1 valid flagged"; }
# Histograms are counts (exact on any number of ranks); loss sums differ in the last digits.
feat() { sed 's/"valid":.*"verdict"/"verdict"/' "$1"; }
[ "$(feat none1.json)" = "$(feat none2.json)" ] && pass "drift features and verdict the same on 1 and 2 ranks" \
  || fail "drift.json differs between 1 and 2 ranks: $(feat none1.json) / $(feat none2.json)"

# (c)
for k in segment_mix habits new_action tempo; do
  drift 1 p_$k/period2/valid.csv $k
  grep -qE '^verdict: (drift: fine-tune recommended|retrain)$' $k.out \
    && pass "$k: flagged ($(sed -n 's/^verdict: //p' $k.out))" || { show $k.out 20; fail "$k: not flagged"; }
done
grep -qE '^  action .*SHIFTED' segment_mix.out && pass "segment_mix: the action mix shifted" \
  || fail "segment_mix: action mix not shifted"
grep -qE '^  gap .*SHIFTED' tempo.out && pass "tempo: the gap distribution shifted" \
  || fail "tempo: gap not shifted"
grep -qE '^  action .*unseen in training [1-9][0-9.]*%' new_action.out \
  && pass "new_action: values unseen in training counted" || fail "new_action: no unseen values"
grep -qE '^  action NLL \+[3-9]|^  action NLL \+[1-9][0-9]' habits.out \
  && pass "habits: the model's action NLL is worse by more than 3%" || { show habits.out 20; fail "habits NLL"; }

# (d)
cut -d, -f1,2,3,5 synth/valid.csv > nocontent.csv
RC=0
mpirun_t 2 "$TRAINER" drift exp.yaml "${E[@]}" --checkpoint run --input nocontent.csv > bad.out 2>&1 || RC=$?
[ "$RC" -eq 2 ] && grep -q "nocontent.csv:1: missing column 'content' (named by data.categorical_cols" bad.out \
  && pass "a CSV missing a column: exit 2 naming it" || { show bad.out; fail "missing column: rc=$RC"; }
finish
