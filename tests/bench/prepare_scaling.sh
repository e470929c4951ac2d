#!/usr/bin/env bash
# prepare_scaling.sh: `trainer data prepare` on 1 rank and on P ranks (mpirun): wall time,
# events/s, speedup, CPU time and peak RSS per rank. A measurement, not a test.
#
#   bash tests/bench/prepare_scaling.sh [TRAINER] [USERS] [RANKS...]
#
# Generates USERS synthetic users (default 101000) with 80..120 events each (about 10 million
# events, ~420 MB of CSV; the generator of ingest_throughput.sh) in $BENCH_DIR (default a new
# temp dir, removed at the end unless KEEP=1), then prepares it with each rank count (default
# "1 2"), every rank under /usr/bin/time. Extra settings: PREPARE_SET="--set data.prepare_mem_mb=64".
# Prints per run: wall s, events/s, speedup vs the first rank count, and per rank user+sys CPU s
# and max RSS; "cpu speedup" is the first run's CPU time over the largest rank's CPU time of this
# run (what the wall speedup would be with a free core per rank). The machine's load comes first.
set -euo pipefail
TRAINER=$(readlink -f "${1:-build/trainer}")
USERS=${2:-101000}
shift 2 || true
RANKS=("${@:-1 2}")
[ $# -gt 0 ] && RANKS=("$@") || RANKS=(1 2)
. "$(dirname "$0")/bench_lib.sh"
bench_dir prepare
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
EXP=$(cd "$(dirname "$0")/../.." && pwd)/configs/default.yaml
SET=(--set run.dir="$DIR/run" --set data.shard_dir="$DIR/shards" --set synth.out_dir="$DIR/synth"
     --set synth.users="$USERS" --set synth.min_events=80 --set synth.max_events=120)
# shellcheck disable=SC2206
EXTRA=(${PREPARE_SET:-})

echo "== $(date -u +%FT%TZ) $(uname -n), $(nproc) cores; load: $(uptime | sed 's/.*load average/load average/')"
if [ ! -e "$DIR/synth/train.csv" ]; then
  "$TRAINER" data synth "$EXP" "${SET[@]}" | grep -E '^synth: [0-9]+ users' || true
fi
du -cb "$DIR"/synth/*.csv | tail -1 | awk '{ printf "input: %.1f MB of CSV\n", $1 / 1e6 }'
base_wall="" base_cpu=""
for p in "${RANKS[@]}"; do
  rm -rf "$DIR/shards" "$DIR"/time.*
  t0=$(date +%s.%N)
  if [ "$p" = 1 ]; then
    /usr/bin/time -o "$DIR/time.0" -f '%U %S %M' "$TRAINER" data prepare "$EXP" "${SET[@]}" "${EXTRA[@]}" > "$DIR/prepare.out"
  else
    mpirun --oversubscribe --bind-to none -np "$p" bash -c \
      '/usr/bin/time -o "$0.$OMPI_COMM_WORLD_RANK" -f "%U %S %M" "$@"' "$DIR/time" \
      "$TRAINER" data prepare "$EXP" "${SET[@]}" "${EXTRA[@]}" > "$DIR/prepare.out"
  fi
  t1=$(date +%s.%N)
  events=$(grep -m1 -oE '[0-9]+ events of' "$DIR/prepare.out" | cut -d' ' -f1)
  per_rank="" max_cpu=0
  for r in $(seq 0 $((p - 1))); do
    read -r u s m < "$DIR/time.$r"
    cpu=$(echo "$u + $s" | bc)
    per_rank="$per_rank rank $r: ${cpu} s cpu, $((m / 1024)) MiB;"
    max_cpu=$(echo "if ($cpu > $max_cpu) $cpu else $max_cpu" | bc)
  done
  wall=$(echo "$t1 - $t0" | bc)
  [ -z "$base_wall" ] && base_wall=$wall && base_cpu=$max_cpu
  printf 'P=%s: %.2f s wall, %.0f events/s, speedup %.2fx (cpu speedup %.2fx);%s\n' "$p" "$wall" \
    "$(echo "$events / $wall" | bc -l)" "$(echo "$base_wall / $wall" | bc -l)" \
    "$(echo "$base_cpu / $max_cpu" | bc -l)" "$per_rank"
  grep -E '^prepared|peak RSS per rank|phases' "$DIR/prepare.out" | sed 's/^/    /'
done
echo "== load after: $(uptime | sed 's/.*load average/load average/')"
