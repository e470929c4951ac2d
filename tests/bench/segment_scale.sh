# segment_scale.sh TRAINER [USERS] [RANKS]: embed + cluster many synthetic users with
# `trainer segment` and report its time and peak RSS (a benchmark, not a test).
#
# Generates USERS (default 1,000,000) train users of 10..30 events each (fewer than the
# default 20..120, so the data fits a small machine's time budget; say so with the figure),
# trains the default model for 50 steps (enough for a checkpoint of this data: the figure is
# about scale, not quality), then runs `segment --k 5` on the train split on RANKS ranks
# (default 1) under /usr/bin/time. Work files go to ${SCALE_DIR:-out/segment_scale}.
set -euo pipefail
TRAINER=$(readlink -f "$1")
USERS=${2:-1000000}
RANKS=${3:-1}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${SCALE_DIR:-$REPO/out/segment_scale}
mkdir -p "$DIR"
cd "$DIR"
export OPENBLAS_NUM_THREADS=1 TRAINER_KEY_FILE="$DIR/user-id.key"
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Train users = USERS: the synthetic total is USERS / 0.98 (1% valid, 1% test).
TOTAL=$(( (USERS * 100 + 97) / 98 ))
SET=(--set run.dir="$DIR/run" --set synth.users="$TOTAL" --set synth.min_events=10
     --set synth.max_events=30 --set synth.valid_frac=0.01 --set synth.test_frac=0.01
     --set synth.out_dir="$DIR/synth" --set data.shard_dir="$DIR/shards" --set train.steps=50
     --set eval.every=0 --set checkpoint.every=0)
EXP=$REPO/configs/default.yaml
t0=$(date +%s)
"$TRAINER" train "$EXP" "${SET[@]}" > train.log 2>&1 || { tail -20 train.log; exit 1; }
t1=$(date +%s)
echo "data + 50 training steps: $((t1 - t0)) s (log: $DIR/train.log)"
/usr/bin/time -v mpirun --oversubscribe --bind-to none -np "$RANKS" "$TRAINER" segment "$EXP" "${SET[@]}" \
  --checkpoint "$DIR/run" --output "$DIR/segments" --force --k 5 > segment.log 2> time.log \
  || { cat segment.log time.log; exit 1; }
grep -E "^segment:|features|ceiling" segment.log
grep -E "Elapsed|Maximum resident" time.log
echo "users in segments.csv: $(($(wc -l < "$DIR/segments/segments.csv") - 1))"
