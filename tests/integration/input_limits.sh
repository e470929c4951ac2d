#!/usr/bin/env bash
# input_limits.sh: sizes that used to slip through.
#   1. A grid of 2^64+ trials (31 axes x 5 values) and one of 16.7M (4^12): `sweep plan`
#      exits 2 naming the count, its factors and max_trials, in well under a second, and
#      writes nothing. max_trials raises the limit; a negative or zero one is refused.
#   2. A --set value longer than the key's limit exits 2 naming the key and the limit
#      (not 1 with an internal "string too long"); one that fits is accepted.
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml

grid() { # grid N_AXES N_VALUES: a grid: section of N_AXES distinct keys
  # Keys whose range holds 2..6, so only the count can be wrong.
  local keys=(model.hidden model.action_embed model.cat_embed model.layers train.window
    train.batch_size train.steps train.warmup_steps train.lr train.weight_decay train.clip_norm
    loss.action loss.time loss.engagement eval.every eval.top_k eval.batch_size log.every
    checkpoint.every checkpoint.keep comm.bucket_mb comm.timeout_s run.seed data.max_bad_rows
    data.virtual_shards data.min_events synth.min_events synth.max_events synth.seed
    model.gap_offset model.init_scale)
  echo "grid:"
  for ((a = 0; a < $1; a++)); do
    printf '  %s: [' "${keys[$a]}"
    for ((v = 1; v <= $2; v++)); do printf '%s%d' "$([ $v -gt 1 ] && echo ', ')" $((v + 1)); done
    echo "]"
  done
}
{ echo "base: exp.yaml"; grid 31 5; } > huge.yaml
{ echo "base: exp.yaml"; grid 12 4; } > big.yaml
{ echo "base: exp.yaml"; echo "max_trials: 20"; grid 2 4; echo "random:"; echo "  train.lr: {dist: uniform, low: 0.001, high: 0.01}"; echo "trials: 2"; } > ok.yaml
{ echo "base: exp.yaml"; echo "max_trials: 10"; grid 2 4; } > small.yaml
{ echo "base: exp.yaml"; echo "max_trials: 0"; } > zero.yaml

expect2() { # expect2 NAME REGEX CMD...: exit 2, message matches, within 10 s
  local name=$1 re=$2 rc=0; shift 2
  timeout 10 "$@" > "$name.out" 2>&1 || rc=$?
  if [ "$rc" -eq 2 ] && grep -qE "$re" "$name.out"; then pass "$name: exit 2: $(grep -m1 -E "$re" "$name.out" | cut -c1-230)"
  else head -c 2000 "$name.out"; fail "$name: exit $rc, expected 2 and /$re/"; fi
}
expect2 huge "error: huge.yaml:3:3: the sweep defines more than 9223372036854775807 trials \(5 \(model.hidden\) x 5 \(model.action_embed\) x .* x 5 \(model.init_scale\)\), more than max_trials=10000" \
  "$TRAINER" sweep plan huge.yaml sw-huge
expect2 big "error: big.yaml:3:3: the sweep defines 16777216 trials \(4 \(model.hidden\) x .*\), more than max_trials=10000" \
  "$TRAINER" sweep plan big.yaml sw-big
expect2 small "the sweep defines 16 trials \(4 \(model.hidden\) x 4 \(model.action_embed\)\), more than max_trials=10" \
  "$TRAINER" sweep plan small.yaml sw-small
expect2 zero "zero.yaml:2:13: max_trials: expected a positive integer" "$TRAINER" sweep plan zero.yaml sw-zero
[ ! -e sw-huge ] && [ ! -e sw-big ] && [ ! -e sw-small ] && pass "refused sweeps wrote nothing" || fail "a refused sweep wrote its directory"
rc=0; "$TRAINER" sweep plan ok.yaml sw-ok > ok.out 2>&1 || rc=$?
if [ "$rc" -eq 2 ] && grep -q "defines 32 trials" ok.out; then pass "grid 4x4 x 2 random trials = 32 > max_trials 20: refused with the count"
else cat ok.out; fail "ok.yaml: exit $rc"; fi
sed -i 's/max_trials: 20/max_trials: 32/' ok.yaml
rc=0; "$TRAINER" sweep plan ok.yaml sw-ok > ok.out 2>&1 || rc=$?
[ "$rc" -eq 0 ] && grep -q "^planned 32 trials" ok.out && pass "max_trials: 32 plans the 32 trials" || { cat ok.out; fail "max_trials 32: exit $rc"; }

long=$(printf 'a%.0s' $(seq 600))
expect2 set-long "error: --set run.dir=$WORK/a+\.\.\. \([0-9]+ characters\): run.dir: string longer than 511 characters" \
  "$TRAINER" config show exp.yaml --set "run.dir=$WORK/$long"
mid=$(printf 'b%.0s' $(seq 505))
grep -v "shard_dir\|out_dir" exp.yaml > exp-derive.yaml
expect2 set-derive "run.dir: [0-9]+ characters is too long to derive data.shard_dir \(at most 503; or set data.shard_dir\)" \
  "$TRAINER" config show exp-derive.yaml --set "run.dir=/$mid"
expect2 set-long-train "run.dir: string longer than 511 characters" "$TRAINER" train exp.yaml --set "run.dir=$WORK/$long"
cols=$(seq -f 'c%.0f' 1 9 | paste -sd,)
expect2 set-list "data.numeric_cols" "$TRAINER" config show exp.yaml --set "data.numeric_cols=[$cols]"
rc=0; "$TRAINER" config show exp.yaml --set "run.dir=$WORK/$(printf 'c%.0s' $(seq 200))/$(printf 'd%.0s' $(seq 200))" > fits.out 2>&1 || rc=$?
[ "$rc" -eq 0 ] && pass "a 430-character run.dir is accepted" || { head -c 600 fits.out; fail "a run.dir within the limit: exit $rc"; }
finish
