# readme_examples.sh: the README's examples stay true (issue "Tried as a new user would",
# item 15). Every command of a fenced ```sh block that runs build/trainer is checked: its
# command exists, every --option is one `trainer --help` lists for that command, every
# configs/ file exists, every --set (also those quoted in the text) is valid against its
# experiment. The newcomer's path (train the default experiment, inspect, eval, predict,
# explain, segment, report, config) is then run verbatim in a scratch copy of configs/
# (train.steps cut to 40 so it takes seconds); each must exit 0. The README's sample step
# line must have the fields a real step line has.
. "$(dirname "$0")/../lib/lib.sh"
README=$REPO_DIR/README.md
mkdir -p build configs && ln -sf "$TRAINER" build/trainer && cp -r "$REPO_DIR"/configs/. configs/
sed -i 's/^  steps: 400$/  steps: 40/' configs/default.yaml
"$TRAINER" --help > help.txt 2>&1 || true
# Commands: fenced sh lines with build/trainer, comments cut, from build/trainer on.
awk '/^```sh/ { f = 1; next } /^```/ { f = 0 } f' "$README" | grep 'build/trainer' \
  | sed -e 's/ \{2,\}#.*$//' -e 's/^.*build\/trainer /build\/trainer /' -e 's/ *&&.*$//' > cmds.txt
[ "$(wc -l < cmds.txt)" -ge 20 ] || fail "only $(wc -l < cmds.txt) README commands found"
bad=0
while read -r line; do
  read -r -a w <<< "$line"
  sub=${w[1]}
  case "$sub" in config|data|checkpoint|sweep|audit) sub="${w[1]} ${w[2]}" ;; esac
  usage=$(awk -v s="  $sub " 'index($0, s) == 1 { f = 1; print; next } /^  [a-z]/ { f = 0 } f' help.txt)
  [ -n "$usage" ] || { fail "README: '$line': no command '$sub' in trainer --help"; bad=1; continue; }
  for o in $(grep -oE -- '--[a-z][a-z-]*' <<< "$line" | sort -u); do
    [ "$o" = --set ] || grep -qF -- "$o" <<< "$usage" || { fail "README: '$line': $o is not an option of '$sub'"; bad=1; }
  done
  for f in $(grep -oE 'configs/[a-zA-Z0-9_./-]+' <<< "$line"); do
    [ -f "$REPO_DIR/$f" ] || { fail "README: '$line': $f does not exist"; bad=1; }
  done
done < cmds.txt
[ "$bad" = 0 ] && pass "$(wc -l < cmds.txt) README commands: each a command of trainer --help, options and files exist"
# Every --set example of the README (in commands, or quoted alone as `--set k=v`).
{ grep -oE -- '`--set [a-z_]+\.[a-z_]+=[^ `]+`' "$README" | tr -d '`'; grep -oE -- '--set [a-z_]+\.[a-z_]+=[^ ]+' cmds.txt; } \
  | sort -u | while read -r _ kv; do
  if "$TRAINER" config show configs/default.yaml --set "$kv" > set.out 2> set.err; then pass "README --set $kv is valid"
  else fail "README --set $kv: $(head -c 300 set.err)"; fi
done
# The newcomer's path, verbatim.
run_readme() { # PATTERN: the README command matching PATTERN runs and exits 0
  local line rc=0
  line=$(grep -m1 -F -- "$1" cmds.txt) || { fail "README has no command '$1'"; return; }
  bash -c "$line" > run.out 2>&1 || rc=$?
  [ "$rc" = 0 ] && pass "README: $line" || { tail -5 run.out; fail "README: '$line': exit $rc"; }
}
# One awk, no early-exiting reader: under pipefail a `grep -m1` after awk lets awk die of
# SIGPIPE and the script stop silently (a clean-clone CI run did).
awk '/^```sh/ { f = 1; next } /^```/ { f = 0 } f && !done && /^mpirun -np 2 build\/trainer train configs\/default.yaml/ {
  sub(/ {2,}#.*$/, ""); print; done = 1 }' "$README" > train_cmd.txt
[ -s train_cmd.txt ] || fail "README: no 'mpirun -np 2 build/trainer train configs/default.yaml'"
rc=0; bash -c "$(sed 's/^mpirun /mpirun --oversubscribe --bind-to none /' train_cmd.txt)" > train.out 2>&1 || rc=$?
[ "$rc" = 0 ] && pass "README: $(cat train_cmd.txt)" || { tail -5 train.out; fail "README train: exit $rc"; finish; }
head -200 runs/default/synth/test.csv > recent.csv && cp recent.csv held-out.csv
for c in "config schema" "config show configs/default.yaml --set" "checkpoint inspect runs/default" \
         "eval configs/default.yaml --checkpoint runs/default --split test" "--input held-out.csv --output m.json" \
         "--input recent.csv --output next.csv" "--target gap" "--output next.csv --explain" "segment configs/default.yaml" "--segments runs/default/segments" \
         "report runs/default"; do
  run_readme "$c"
done
# The sample step line: the same words (numbers aside) as a real one of the same run.
real=$(grep -m1 -E '^step +[0-9]+/' train.out | sed -E 's/[-0-9.]+%?//g; s/ +/ /g')
sample=$(grep -m1 -E '^step +[0-9]+/[0-9]+ ' "$README" | sed -E 's/[-0-9.]+%?//g; s/ +/ /g')
[ -n "$real" ] && [ "$real" = "$sample" ] && pass "the README's sample step line has the real fields ($real)" \
  || fail "README step line '$sample' vs real '$real'"
finish
