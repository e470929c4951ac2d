#!/usr/bin/env bash
# dp_train.sh: user-level DP-SGD end to end (privacy.*).
#   (a) bad privacy settings exit 2 naming the key: noise multiplier 0 or negative, delta >= 1,
#       clip 0, both sigma and a target, an impossible target epsilon, more expected users
#       per step than there are; nothing is trained.
#   (b) reproducible mode: 1 and 2 ranks train the same DP model bit for bit (the noise is
#       added by both ranks, each its slice, on 2 ranks: every coordinate's draw is a
#       function of seed, step and coordinate only); a run stopped after 10 steps and resumed
#       ends bit for bit where the 20-step run does (noise and sampling across resume); the
#       same holds for the fast mode on 2 ranks.
#   (c) epsilon: solved sigma meets privacy.target_epsilon; epsilon in log.jsonl at every
#       eval, at the end, in `checkpoint inspect`; the value agrees with the Python reference
#       (tests/tools/make_dp_reference.py) for the run's q, sigma, steps and delta.
CMP=$(readlink -f "$2")
. "$(dirname "$0")/../lib/lib.sh"
. "$TESTS_DIR/lib/ckpt_lib.sh"
# Each command still runs under a limit (a hang fails the test), but a longer one than
# ckpt_lib's 60 s: these runs train hundreds of steps, on a loaded machine too.
limit() { timeout -k 5 300 "$@"; }

write_small_exp exp.yaml
# Constant LR without warm-up: a 10-step run resumed to 20 is the 20-step run.
DP=(--set privacy.dp=true --set privacy.noise_multiplier=1.1 --set privacy.clip=0.5
    --set model.layers=2 --set model.dropout=0.1 --set train.schedule=constant
    --set train.warmup_steps=0 --set log.every=1)

# (a) ------------------------------------------------------------------ bad settings
N_BAD=0
bad() { # bad KEY ARGS...: exit 2 and an error line naming KEY
  local key=$1 rc=0
  shift
  N_BAD=$((N_BAD + 1))
  limit "$TRAINER" train exp.yaml --set run.dir=bad$N_BAD "$@" > bad.out 2>&1 || rc=$?
  if [ "$rc" -eq 2 ] && grep -q "error: .*$key" bad.out; then
    pass "bad config ($*) -> exit 2 naming $key"
  else
    fail "bad config ($*): exit $rc, output: $(head -c 400 bad.out)"
  fi
}
bad privacy.noise_multiplier --set privacy.dp=true
bad privacy.noise_multiplier --set privacy.dp=true --set privacy.noise_multiplier=-1
bad privacy.delta --set privacy.dp=true --set privacy.noise_multiplier=1 --set privacy.delta=1
bad privacy.delta --set privacy.dp=true --set privacy.noise_multiplier=1 --set privacy.delta=2
bad privacy.clip --set privacy.dp=true --set privacy.noise_multiplier=1 --set privacy.clip=0
bad privacy.target_epsilon --set privacy.dp=true --set privacy.noise_multiplier=1 \
    --set privacy.target_epsilon=2
bad privacy.target_epsilon --set privacy.dp=true --set privacy.target_epsilon=0.0001
bad train.batch_size --set privacy.dp=true --set privacy.noise_multiplier=1 \
    --set train.batch_size=400 --set eval.batch_size=16
[ -z "$(ls bad*/checkpoints 2>/dev/null)" ] && pass "nothing trained" ||
  fail "a bad config left checkpoints"

# (b) ------------------------------------------------------------------ same model
train() { # train DIR NP ARGS...
  local dir=$1 np=$2 rc=0
  shift 2
  mpirun_t "$np" "$TRAINER" train exp.yaml --set run.dir="$dir" "${DP[@]}" "$@" \
    > "$dir.out" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || fail "$dir: exit $rc: $(tail -5 "$dir.out")"
}
last() { ls "$1"/checkpoints/step-*.ckpt | tail -1; }
same() { # same A B LABEL
  if "$CMP" "$(last "$1")" "$(last "$2")" > cmp.out 2>&1; then pass "$3: bitwise identical"
  else fail "$3: $(cat cmp.out)"; fi
}
REPRO=(--set train.reproducible=true)
train r1 1 "${REPRO[@]}"
train r2 2 "${REPRO[@]}"
same r1 r2 "reproducible DP, 1 vs 2 ranks"
grep -q "privacy: user-level DP-SGD" r1.out && pass "DP announced" || fail "no DP line in r1.out"
train r2half 2 "${REPRO[@]}" --set train.steps=10
train r2half 2 "${REPRO[@]}" --set train.steps=20 --resume
grep -q "resume: continuing" r2half.out && same r1 r2half "reproducible DP, 10 + resumed 10 vs 20" ||
  fail "r2half did not resume"
train f2 2
train f2half 2 --set train.steps=10
train f2half 2 --set train.steps=20 --resume
same f2 f2half "fast-mode DP on 2 ranks, 10 + resumed 10 vs 20"
# A different noise multiplier must give a different model (the noise is really there).
train f2s 2 --set privacy.noise_multiplier=3
if "$CMP" "$(last f2)" "$(last f2s)" > /dev/null 2>&1; then fail "sigma has no effect"
else pass "sigma changes the model"; fi

# (c) ------------------------------------------------------------------ epsilon
train t1 1 --set privacy.noise_multiplier=0 --set privacy.target_epsilon=3 --set eval.every=5
eps_end=$(sed -n 's/^privacy: user-level .* epsilon \([0-9.e+-]*\) at delta \([0-9.e+-]*\) after.*/\1 \2/p' t1.out)
line=$(grep '^privacy: user-level DP-SGD:' t1.out || true)
q=$(sed -n 's/.*sampled at q=\([0-9.e+-]*\) .*/\1/p' <<< "$line")
sigma=$(sed -n 's/.*noise multiplier \([0-9.e+-]*\) (solved).*/\1/p' <<< "$line")
set -- $eps_end
eps=${1:-}; delta=${2:-}
if [ -n "$eps" ] && awk -v e="$eps" 'BEGIN { exit !(e <= 3 && e > 2.9) }'; then
  pass "solved sigma $sigma meets target 3: epsilon $eps at delta $delta"
else fail "epsilon at the end: '$eps' (target 3): $(tail -8 t1.out)"; fi
n_eps=$(grep -c '"event":"valid".*"epsilon"' t1/log.jsonl || true)
[ "$n_eps" -ge 4 ] && pass "epsilon in log.jsonl at every eval ($n_eps)" || fail "epsilon logged $n_eps times"
inspect t1 > inspect.out 2>&1 || true
grep -q "privacy: user-level DP-SGD, epsilon $eps at delta" inspect.out &&
  pass "checkpoint inspect shows epsilon $eps" || fail "inspect: $(grep privacy inspect.out)"
inspect r1 > inspect_r1.out 2>&1 || true
grep -q "epsilon" inspect_r1.out && pass "inspect of a fixed-sigma run shows epsilon" || fail "r1 inspect"
# The Python reference for the printed q and sigma (rounded to 4 digits: compare loosely).
ref=$(cd "$TESTS_DIR/tools" && python3 -c "
import make_dp_reference as r, math
q, s, d = $q, $sigma, $delta
rdp = [20 * r.rdp_step(q, s, a) for a in r.ORDERS]
print('%.4f' % r.eps_balle(rdp, d))")
awk -v a="$eps" -v b="$ref" 'BEGIN { exit !(a - b < 0.02 && b - a < 0.02) }' &&
  pass "epsilon $eps agrees with the Python reference $ref" || fail "epsilon $eps vs reference $ref"
"$TRAINER" train exp.yaml --set run.dir=plain > plain.out 2>&1 || fail "plain run"
grep -q "privacy: not differentially private (epsilon unbounded)" plain.out &&
  pass "a plain run says epsilon unbounded" || fail "plain run: no epsilon inf line"
finish
