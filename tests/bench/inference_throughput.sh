#!/usr/bin/env bash
# inference_throughput.sh: events per CPU second of training next to eval, predict and score on
# the same model and the same synthetic users, one process, one OpenBLAS thread. A measurement,
# not a test.
#
#   bash tests/bench/inference_throughput.sh [TRAINER] [HIDDEN] [USERS]
#
# Trains HIDDEN (default 128) units, B=64 lanes x T=64 events, for STEPS (default 200) steps on
# USERS (default 20000) synthetic users of configs/default.yaml, then runs `eval --split test`,
# `predict --input test.csv` and `score --split test` on its checkpoint. Each command runs
# under /usr/bin/time; "events/CPU s" is the events it read (training: steps x B x T; the
# others: the test split's events) over its user + system time, set-up included (config,
# checkpoint, the shards or the CSV). score runs the model five times over as many events as
# it scores (its calibration: three passes over the validation split, the same size here; then
# two over the scored split: fresh-state change-point segments and the pass proper), and says so
# in its line. ISA and CORETYPE set LSTM_TRAINER_ISA and
# OPENBLAS_CORETYPE (both printed). The work dir ($BENCH_DIR, default a new temp dir) is
# removed at the end unless KEEP=1.
set -euo pipefail
TRAINER=$(readlink -f "${1:-build/trainer}")
H=${2:-128}
USERS=${3:-20000}
STEPS=${STEPS:-200}
. "$(dirname "$0")/bench_lib.sh"
bench_dir infer
[ -n "${ISA:-}" ] && export LSTM_TRAINER_ISA=$ISA
[ -n "${CORETYPE:-}" ] && export OPENBLAS_CORETYPE=$CORETYPE
export OPENBLAS_NUM_THREADS=1
EXP=$(cd "$(dirname "$0")/../.." && pwd)/configs/default.yaml
SET=(--set run.dir="$DIR/run" --set data.shard_dir="$DIR/shards" --set synth.out_dir="$DIR/synth"
     --set synth.users="$USERS" --set model.hidden="$H" --set train.batch_size=64
     --set train.window=64 --set train.steps="$STEPS" --set eval.every=0)
echo "== $(date -u +%FT%TZ) $(uname -n), $(nproc) cores, H=$H, ISA=${LSTM_TRAINER_ISA:-auto}," \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}; load: $(uptime | sed 's/.*load average/load average/')"
"$TRAINER" data synth "$EXP" "${SET[@]}" > "$DIR/synth.out"
"$TRAINER" data prepare "$EXP" "${SET[@]}" > "$DIR/prepare.out"
test_events=$(awk '$1 == "test" { print $4; exit }' "$DIR/prepare.out")
[ -n "$test_events" ] || { echo "no test split line in $DIR/prepare.out" >&2; exit 1; }

# cmd NAME EVENTS ARGS...: one command under /usr/bin/time, its events per CPU second.
cmd() {
  local name=$1 events=$2
  shift 2
  /usr/bin/time -o "$DIR/time" -f '%U %S %e %M' "$TRAINER" "$@" > "$DIR/$name.out" 2>&1 ||
    { echo "$name failed:" >&2; tail -5 "$DIR/$name.out" >&2; exit 1; }
  read -r u s e m < "$DIR/time"
  awk -v n="$name" -v ev="$events" -v u="$u" -v s="$s" -v e="$e" -v m="$m" 'BEGIN {
    printf "%-7s %10d events  %6.2f s cpu  %6.2f s wall  %9.0f events/CPU s  peak RSS %d MiB\n",
      n, ev, u + s, e, ev / (u + s), m / 1024 }'
}
cmd train $((STEPS * 64 * 64)) train "$EXP" "${SET[@]}"
RUN="$DIR/run"
cmd eval "$test_events" eval "$EXP" --checkpoint "$RUN" --split test --output "$DIR/eval.json" "${SET[@]}"
cmd predict "$test_events" predict "$EXP" --checkpoint "$RUN" --input "$DIR/synth/test.csv" \
  --output "$DIR/pred.csv" "${SET[@]}"
cmd score "$test_events" score "$EXP" --checkpoint "$RUN" --split test --output "$DIR/score" "${SET[@]}"
echo "  (score: 5 model passes per scored event, 3 of them its calibration on the validation split)"
grep -m1 -E 'top1' "$DIR/eval.out" | sed 's/^/  eval: /' || true
echo "== load after: $(uptime | sed 's/.*load average/load average/')"
