#!/usr/bin/env bash
# dp_utility.sh: the utility cost of user-level DP-SGD, measured: validation next-action NLL
# of the same model and steps trained without DP and with DP at epsilon in {1, 2, 4, 8}
# (delta 1e-6, sigma solved from the target), on N synthetic users. A benchmark, not a test.
#
#   bash tests/bench/dp_utility.sh build/trainer [USERS] [STEPS] [BATCH]   (defaults 100000 1000 256)
#
# Results: out/bench/dp_utility.txt (one line per run) and the runs' logs under out/bench/dp/.
# EPS="8 4" runs only those epsilons; NODP=reuse takes the non-DP run from an earlier
# invocation's log (to split the runs over two processes: EPS="2 1" NODP=reuse RES=...).
set -euo pipefail
TRAINER=$(readlink -f "$1")
USERS=${2:-100000}
STEPS=${3:-1000}
BATCH=${4:-256}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/out/bench/dp
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=1 TRAINER_KEY_FILE=$OUT/user-id.key
BASE=(--set synth.users="$USERS" --set synth.out_dir="$OUT/synth" --set data.shard_dir="$OUT/shards"
      --set train.steps="$STEPS" --set train.batch_size="$BATCH" --set eval.every=0
      --set checkpoint.every=0 --set log.every=100 --set eval.batch_size=256)
RES=${RES:-$ROOT/out/bench/dp_utility.txt}
EPS=${EPS:-8 4 2 1}
{
  echo "# dp_utility.sh: $USERS synthetic users, $STEPS steps, batch $BATCH, window 32, H=64 L=1"
  echo "# (configs/default.yaml otherwise); trainer at $(git -C "$ROOT" rev-parse --short HEAD); $(date -u +%FT%TZ)"
  echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>}; 1 rank"
  echo "# epsilon  sigma  valid_action_nll  vs_nonDP  best_achievable  train_s"
} > "$RES"
run() { # run NAME ARGS...
  local name=$1
  shift
  rm -rf "$OUT/$name"
  "$TRAINER" train "$ROOT/configs/default.yaml" --set run.dir="$OUT/$name" "${BASE[@]}" "$@" \
    > "$OUT/$name.log" 2>&1
  sed -n 's/^validation: action_nll \([0-9.]*\).*/\1/p' "$OUT/$name.log"
}
if [ "${NODP:-run}" = reuse ]; then
  nll_inf=$(sed -n 's/^validation: action_nll \([0-9.]*\).*/\1/p' "$OUT/nodp.log")
else
  nll_inf=$(run nodp)
fi
best=$(sed -n "s/.*best achievable .*action_nll \([0-9.]*\).*/\1/p" "$OUT/nodp.log")
secs=$(sed -n 's/^done: .* in \([0-9.]*\) s on.*/\1/p' "$OUT/nodp.log")
[ "${NODP:-run}" = reuse ] || echo "inf  0  $nll_inf  +0.00%  $best  $secs" >> "$RES"
for eps in $EPS; do
  nll=$(run "eps$eps" --set privacy.dp=true --set privacy.target_epsilon=$eps --set privacy.delta=1e-6)
  sigma=$(sed -n 's/.*noise multiplier \([0-9.]*\) (solved).*/\1/p' "$OUT/eps$eps.log")
  secs=$(sed -n 's/^done: .* in \([0-9.]*\) s on.*/\1/p' "$OUT/eps$eps.log")
  rel=$(awk -v a="$nll" -v b="$nll_inf" 'BEGIN { printf "%+.2f%%", 100 * (a / b - 1) }')
  echo "$eps  $sigma  $nll  $rel  $best  $secs" >> "$RES"
done
cat "$RES"
