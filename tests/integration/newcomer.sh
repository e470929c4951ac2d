# newcomer.sh: what a new user trips over first (issue "Tried as a new user would"): usage
# errors exit 2 with one clean line (no MPI abort banner, no ORTE_ERROR_LOG), an evaluation
# with nothing to score is refused instead of printing a perfect-looking 0, --top is
# validated, numbers too large for 64 bits are "out of range" with the range, and a default
# value that breaks a rule says it is the default.
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml
"$TRAINER" train exp.yaml > train.out 2>&1 || { cat train.out; fail "training the small experiment"; finish; }

# expect STATUS NAME GREP -- CMD...: exit STATUS, stderr has GREP, no MPI noise.
expect() {
  local want=$1 name=$2 pattern=$3 status=0; shift 4
  "$@" > "$name.out" 2> "$name.err" || status=$?
  if [ "$status" -eq "$want" ] && grep -q -- "$pattern" "$name.err" &&
     ! grep -qE "MPI_ABORT|ORTE_ERROR_LOG|mpirun has exited" "$name.err"; then
    pass "$name: exit $status, $(grep -m1 -- "$pattern" "$name.err")"
  else
    fail "$name: exit $status (want $want), stderr: $(head -c 400 "$name.err")"
  fi
}
expect 2 eval_no_ckpt "error: trainer eval: --checkpoint FILE|RUNDIR is required" -- \
  "$TRAINER" eval exp.yaml
expect 2 predict_no_input "error: trainer predict: --input FILE.csv is required" -- \
  "$TRAINER" predict exp.yaml --checkpoint "$WORK/run"
# A fatal error of a one-process run: one line, exit 1, no abort banner.
expect 1 missing_ckpt "error: --checkpoint $WORK/nope" -- \
  "$TRAINER" eval exp.yaml --checkpoint "$WORK/nope"

# Nothing to score: every user of the input has one event.
printf 'user,time,action,content,engagement\nu1,100,like,text,1\nu2,200,post,image,2\n' > one.csv
expect 2 eval_no_targets "nothing to score in one.csv" -- \
  "$TRAINER" eval exp.yaml --checkpoint "$WORK/run" --input one.csv
head -30 "$WORK/synth/test.csv" > few.csv
expect 2 top_zero "--top 0: must be 1.." -- \
  "$TRAINER" predict exp.yaml --checkpoint "$WORK/run" --input few.csv --top 0
expect 2 top_huge "--top 99: must be 1.." -- \
  "$TRAINER" predict exp.yaml --checkpoint "$WORK/run" --input few.csv --top 99
if "$TRAINER" predict exp.yaml --checkpoint "$WORK/run" --input few.csv --top 2 --output p.csv > p.out 2>&1; then
  cols=$(head -1 p.csv | tr ',' '\n' | grep -c '^action_')
  [ "$cols" = 2 ] && ! cut -d, -f5,7 p.csv | grep -q '<unk>' \
    && pass "--top 2 writes 2 action columns, none of them <unk>" || fail "--top 2: $(head -2 p.csv)"
else cat p.out; fail "predict --top 2"; fi

expect 2 huge_int "train.steps: value 99999999999999999999 is out of range (allowed: >= 0)" -- \
  "$TRAINER" config show exp.yaml --set train.steps=99999999999999999999
printf 'run: {dir: %s/r}\ntrain: {steps: 5}\n' "$WORK" > short.yaml
expect 2 default_warmup "train.warmup_steps: 20 (the default value) is more than train.steps (5)" -- \
  "$TRAINER" config show short.yaml

# The resolved experiment `config show` prints (and train saves as RUNDIR/config.yaml) loads
# again: every schema section is written once (a key added at the end of the schema table
# once split the comm section in two, and the run's own config.yaml no longer loaded).
"$TRAINER" config show "$REPO_DIR/configs/default.yaml" > resolved.yaml 2> resolved.err \
  && "$TRAINER" config show resolved.yaml > again.yaml 2> again.err \
  && pass "config show output loads again ($(grep -c '^[a-z]' resolved.yaml) sections)" \
  || fail "config show output does not load again: $(head -c 300 again.err)"

# One rule for paths (issue item 14): relative paths in an experiment file are relative to the
# file's directory (as a sweep's base: is), in --set values to the working directory, and a
# resolved file (config show, RUNDIR/config.yaml) keeps them as resolved.
mkdir -p sub
printf 'run: {dir: runs/x}\ndata: {source: csv, path: ev.csv, key_file: ../k.key}\n' > sub/rel.yaml
"$TRAINER" config show sub/rel.yaml > rel.out 2>&1 || true
grep -q '^  dir: "sub/runs/x"$' rel.out && grep -q '^  path: "sub/ev.csv"$' rel.out && grep -q '^  key_file: "k.key"$' rel.out \
  && grep -q '^  shard_dir: "sub/runs/x/shards"$' rel.out \
  && pass "paths in sub/rel.yaml are relative to sub/ (run.dir sub/runs/x, data.path sub/ev.csv, key_file k.key)" \
  || fail "file-relative paths: $(grep -E '^  (dir|path|key_file|shard_dir):' rel.out | tr '\n' ' ')"
"$TRAINER" config show sub/rel.yaml --set data.path=other.csv > set.out 2>&1 || true
grep -q '^  path: "other.csv"$' set.out && pass "--set data.path=other.csv stays relative to the working directory" \
  || fail "--set path: $(grep '^  path:' set.out)"
grep -v '^# config hash' rel.out > sub/resolved.yaml
"$TRAINER" config show sub/resolved.yaml > again.out 2>&1 || true
grep -q '^  path: "sub/ev.csv"$' again.out && pass "a resolved file in sub/ keeps its paths (not joined again)" \
  || fail "resolved file re-joined: $(grep '^  path:' again.out)"
finish
