#!/bin/bash
# explain_faithfulness.sh: the figures of README "Explanations", reproduced.
#
#   tests/bench/explain_faithfulness.sh build/trainer [OUT_DIR] [SHARED_DATA_DIR]
#
# Trains configs/default.yaml (synthetic users) and configs/taobao.yaml (Taobao from
# SHARED_DATA_DIR/taobao, default ../shared/data) on 2 ranks, then explains the test split:
# 4 predictions per user (synthetic) / 2 (Taobao), --target predicted and --target gap, each
# with --sanity, on 2 ranks; prints the headline figures of each summary.json, and the
# speed of explaining against training (CPU seconds, as the machine may be shared).
set -euo pipefail
TRAINER=$(readlink -f "$1")
OUT=$(mkdir -p "${2:-out/explain}" && cd "${2:-out/explain}" && pwd)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
DATA=$(cd "${3:-$REPO/../shared/data}" && pwd)
export OPENBLAS_NUM_THREADS=1 TRAINER_KEY_FILE="$OUT/user-id.key"
: "${OPENBLAS_CORETYPE:=$(grep -q avx512f /proc/cpuinfo && echo SkylakeX || echo Haswell)}"
export OPENBLAS_CORETYPE
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mp() { mpirun --oversubscribe --bind-to none -np 2 "$@"; }
SYN="--set run.dir=$OUT/synth --set data.shard_dir=$OUT/synth_shards --set synth.out_dir=$OUT/synth_data"
TB="--set run.dir=$OUT/taobao --set data.shard_dir=$OUT/taobao_shards"
TB="$TB --set data.train_path=$DATA/taobao/train.csv --set data.valid_path=$DATA/taobao/dev.csv --set data.test_path=$DATA/taobao/test.csv"
echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE; outputs in $OUT"
mp "$TRAINER" train "$REPO/configs/default.yaml" $SYN > "$OUT/synth_train.out" 2>&1
mp "$TRAINER" train "$REPO/configs/taobao.yaml" $TB > "$OUT/taobao_train.out" 2>&1
num() { grep -o "\"$2\":[-0-9.e]*" "$1" | sed -n 1p | cut -d: -f2; }
for run in "synth default 4" "taobao taobao 2"; do
  set -- $run
  args=$SYN; [ "$1" = taobao ] && args=$TB
  for target in predicted gap; do
    dir="$OUT/$1_$target"
    mp "$TRAINER" explain "$REPO/configs/$2.yaml" $args --checkpoint "$OUT/$1" --split test \
      --per-user "$3" --target "$target" --sanity --output "$dir" > "$dir.out" 2>&1
    j="$dir/summary.json"
    printf '%-7s %-9s targets %s  within 1%%: %s  completeness median %s max %s  deletion top>random %s  spearman trained/random %s  top cell %s  groups %s\n' \
      "$1" "$target" "$(num "$j" targets)" "$(num "$j" within_1pct)" "$(num "$j" median)" "$(num "$j" max)" \
      "$(num "$j" top_beats_random)" "$(num "$j" spearman_mean)" \
      "$(grep -o '"top_cells":\[{"offset":[0-9]*,"group":"[a-z_]*"' "$j" | sed 's/.*"offset"://; s/,"group":/ /')" \
      "$(grep -o '"group_shares":{[^}]*}' "$j" | head -1 | sed 's/"group_shares"://')"
  done
done
# Speed, like for like on one rank: training events vs explaining's path points x time steps,
# both forward+backward, per CPU-second of the whole process.
cpu() { /usr/bin/env time -f "%U %S" "$@" 2> "$OUT/time.err" > "$OUT/time.out" || { cat "$OUT/time.err"; exit 1; }; tail -1 "$OUT/time.err" | awk '{ print $1 + $2 }'; }
steps=400; events=$((steps * 32 * 32))
ct=$(cpu "$TRAINER" train "$REPO/configs/default.yaml" $SYN --set run.dir="$OUT/synth_speed" --set eval.every=0 --set checkpoint.every=0)
ce=$(cpu "$TRAINER" explain "$REPO/configs/default.yaml" $SYN --checkpoint "$OUT/synth" --split test --per-user 4 --output "$OUT/synth_speed_explain")
grep -E "targets/s|path points" "$OUT/time.out"
awk -v e="$events" -v c="$ct" 'BEGIN { printf "training: %d events in %.2f CPU-s = %.0f events per CPU-second (whole process)\n", e, c, e / c }'
echo "explaining: whole process $ce CPU-s for $(($(wc -l < "$OUT/synth_speed_explain/targets.csv") - 1)) targets"
