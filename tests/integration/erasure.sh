#!/usr/bin/env bash
# erasure.sh: erasure lists (data.exclude_users) and consent (data.consent_col) everywhere.
# Data: the synthetic users' CSVs with a consent column added: users whose id ends in 7 said
# no on every row, users ending in 3 on every other row, everyone else yes. The exclusion
# list names 4 training users: 2 by raw id, 2 by keyed hash (got from `predict` of a model
# trained without the list on a CSV of that user alone). Checked:
#   - prepare reports 4 of 4 listed users removed and the rows without consent dropped;
#   - the checkpoint records the list's digest (`checkpoint inspect` = the prepare report);
#   - `data verify-excluded` proves it (exit 0), and refuses (exit 1) for the model trained
#     without the list and for a list of users that were trained on; it prints no raw id;
#   - predict and eval --input drop excluded users and rows without consent: the excluded
#     users' hashes and the no-consent user's hash appear in no output of the run (run dir,
#     predictions, eval output, logs), nor does any raw id of theirs;
#   - a consent value that is not yes/no is a bad row naming file:line and the column only.
CMP=$(readlink -f "$2")
. "$(dirname "$0")/../lib/lib.sh"
. "$TESTS_DIR/lib/ckpt_lib.sh"
# Each command still runs under a limit (a hang fails the test), but a longer one than
# ckpt_lib's 60 s: these runs train hundreds of steps, on a loaded machine too.
limit() { timeout -k 5 300 "$@"; }

write_small_exp synth.yaml
limit "$TRAINER" data synth synth.yaml > synth.out 2>&1 || { cat synth.out; fail "data synth"; finish; }
for s in train valid test; do
  awk -F, 'NR == 1 { print $0 ",consent"; next }
           { c = "yes"; last = substr($1, length($1)); n[$1]++
             if (last == "7") c = "no"; else if (last == "3" && n[$1] % 2 == 0) c = "0"
             print $0 "," c }' "$WORK/synth/$s.csv" > "$s.csv"
done
exp() { # exp NAME EXTRA...: a csv experiment over the consent CSVs
  local name=$1
  shift
  cat > "$name.yaml" <<YAML
run: {dir: $WORK/$name, seed: 3}
data:
  source: csv
  train_path: $WORK/train.csv
  valid_path: $WORK/valid.csv
  test_path: $WORK/test.csv
  categorical_cols: [content]
  numeric_cols: [engagement]
  engagement_col: engagement
  numeric_transform: log1p
  virtual_shards: 8
  shard_dir: $WORK/$name-shards
$(for l in "$@"; do echo "  $l"; done)
model: {hidden: 16, action_embed: 8, cat_embed: 4}
train: {batch_size: 16, window: 8, steps: 4, warmup_steps: 1}
eval: {every: 0, batch_size: 16}
checkpoint: {every: 0}
YAML
}
# Four training users without a 7 or 3 at the end, and one no-consent user.
mapfile -t PICK < <(awk -F, 'NR > 1 && $1 !~ /[37]$/ && !s[$1]++ { print $1 }' train.csv | head -4)
NOC=$(awk -F, 'NR > 1 && $1 ~ /7$/ { print $1; exit }' train.csv)
[ "${#PICK[@]}" -eq 4 ] && [ -n "$NOC" ] || { fail "no users to pick"; finish; }

exp base
limit "$TRAINER" train base.yaml > base.out 2>&1 || { tail base.out; fail "base train"; finish; }
hash_of() { # the keyed hash of raw id $1, from predict of the base model on its rows alone
  awk -F, -v u="$1" 'NR == 1 || $1 == u' train.csv > one.csv
  limit "$TRAINER" predict base.yaml --checkpoint base --input one.csv --output one.out > /dev/null 2>&1
  sed -n '2s/,.*//p' one.out
}
H=()
for u in "${PICK[@]}" "$NOC"; do H+=("$(hash_of "$u")"); done
for h in "${H[@]}"; do [[ $h =~ ^[0-9a-f]{16}$ ]] || fail "no hash from predict: '$h'"; done
printf '# erasure requests\n%s\n%s\n\n%s\n%s\n' "${PICK[0]}" "${PICK[1]}" "${H[2]}" "${H[3]}" > erase.txt

exp ex "exclude_users: $WORK/erase.txt" "consent_col: consent"
limit "$TRAINER" data prepare ex.yaml > prep.out 2>&1 || { cat prep.out; fail "prepare"; }
digest=$(sed -n 's/.*erasure: 4 of the 4 users of data.exclude_users (list digest \([0-9a-f]*\)) found.*/\1/p' prep.out)
[ -n "$digest" ] && pass "prepare: 4 of 4 listed users removed (digest $digest)" || fail "prepare report: $(grep -E 'erasure|consent' prep.out)"
crow=$(sed -n 's/.*consent: \([0-9]*\) rows without consent (consent) dropped, from \([0-9]*\) users.*/\1 \2/p' prep.out)
set -- $crow
want_rows=$(awk -F, 'NR > 1 && ($NF == "no" || $NF == "0")' train.csv valid.csv test.csv | wc -l)
[ "${1:-x}" = "$want_rows" ] && pass "prepare: $1 rows without consent dropped, from $2 users" ||
  fail "consent rows: report '${crow}', CSVs have $want_rows"
limit "$TRAINER" train ex.yaml > ex.out 2>&1 || { tail ex.out; fail "ex train"; }
inspect ex > inspect.out 2>&1 || true
grep -q "erasure: honoured an exclusion list of 4 users, digest $digest" inspect.out &&
  pass "checkpoint records the list digest" || fail "inspect: $(grep -i erasure inspect.out)"

rc=0; limit "$TRAINER" data verify-excluded ex.yaml --checkpoint ex --ids erase.txt > v1.out 2>&1 || rc=$?
[ "$rc" -eq 0 ] && grep -q "^VERIFIED" v1.out && grep -q "honoured this very list" v1.out &&
  pass "verify-excluded: verified" || fail "verify-excluded (exit $rc): $(cat v1.out)"
rc=0; limit "$TRAINER" data verify-excluded base.yaml --checkpoint base --ids erase.txt > v2.out 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "found: 4 in training" v2.out &&
  pass "verify-excluded: the model trained without the list is refused" || fail "v2 (exit $rc): $(cat v2.out)"
awk -F, 'NR > 1 && $1 !~ /[37]$/ && !s[$1]++ { print $1 }' train.csv | sed -n '10,11p' > present.txt
rc=0; limit "$TRAINER" data verify-excluded ex.yaml --checkpoint ex --ids present.txt > v3.out 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "^NOT VERIFIED" v3.out && pass "verify-excluded: trained-on users are found" ||
  fail "v3 (exit $rc): $(cat v3.out)"

limit "$TRAINER" predict ex.yaml --checkpoint ex --input train.csv --output pred.csv > pred.out 2>&1 ||
  fail "predict: $(tail -3 pred.out)"
limit "$TRAINER" eval ex.yaml --checkpoint ex --input train.csv --output eval.json > evalin.out 2>&1 ||
  fail "eval --input: $(tail -3 evalin.out)"
limit "$TRAINER" eval ex.yaml --checkpoint ex --split test > evaltest.out 2>&1 || fail "eval --split"
limit "$TRAINER" predict base.yaml --checkpoint base --input train.csv --output basepred.csv > /dev/null 2>&1
for h in "${H[@]}"; do
  grep -q "^$h," basepred.csv || fail "hash $h missing from the base predictions (bad test)"
done
leaks=0
for h in "${H[@]}"; do
  if grep -rqs "$h" pred.csv eval.json ex ex.out prep.out pred.out evalin.out evaltest.out inspect.out v1.out; then
    fail "excluded or no-consent user $h appears in an output: $(grep -rls "$h" pred.csv eval.json ex *.out)"
    leaks=1
  fi
done
[ "$leaks" -eq 0 ] && pass "no output names an excluded or no-consent user (5 hashes)"
raw=0
for u in "${PICK[@]}" "$NOC" $(cat present.txt); do
  if grep -rqsw "$u" ex pred.csv eval.json *.out; then fail "raw id $u printed"; raw=1; fi
done
[ "$raw" -eq 0 ] && pass "no raw id in any output or message"
nb=$(($(wc -l < basepred.csv) - $(wc -l < pred.csv)))
[ "$nb" -ge 5 ] && pass "predict --input: $nb fewer users than without the list and consent" ||
  fail "predict --input dropped only $nb users"

# A bad consent value: a bad row naming file:line and the column, no id.
awk -F, 'BEGIN { OFS = "," } NR == 5 { $NF = "maybe" } { print }' train.csv > badc.csv
sed "s|$WORK/train.csv|$WORK/badc.csv|; s|$WORK/ex-shards|$WORK/badc-shards|; s|dir: $WORK/ex|dir: $WORK/badc|" ex.yaml > badc.yaml
rc=0; limit "$TRAINER" data prepare badc.yaml > badc.out 2>&1 || rc=$?
u5=$(sed -n '5s/,.*//p' badc.csv)
[ "$rc" -ne 0 ] && grep -q "badc.csv:5: consent: consent value \"maybe\"" badc.out && ! grep -qw "$u5" badc.out &&
  pass "bad consent value: file:line and column, no id (exit $rc)" || fail "bad consent (exit $rc): $(cat badc.out)"
finish
