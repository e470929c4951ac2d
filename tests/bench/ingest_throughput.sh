#!/usr/bin/env bash
# ingest_throughput.sh: events/s and peak memory of `trainer data prepare` on a large input.
# A measurement, not a test (not registered with CTest).
#
#   bash tests/bench/ingest_throughput.sh [TRAINER] [USERS] [RUNS]
#
# Generates USERS synthetic users (default 101000) with 80..120 events each (about 10 million
# events, ~500 MB of CSV) in a scratch directory ($BENCH_DIR, default a new temp dir; removed
# at the end unless KEEP=1), then runs `trainer data prepare` RUNS times (default 2) under
# /usr/bin/time -v. Prints, per run, the prepare report's events/s and /usr/bin/time's wall
# time and maximum resident set size. Peak memory should be about one bucket (~16 MiB of input
# as records) plus per-user records and the vocabularies, independent of the input size: run
# with another USERS to compare.
set -euo pipefail
TRAINER=$(readlink -f "${1:-build/trainer}")
USERS=${2:-101000}
RUNS=${3:-2}
. "$(dirname "$0")/bench_lib.sh"
bench_dir ingest

# The embedded default's data settings (synthetic users, content and engagement columns),
# with every output under $DIR.
EXP=$(cd "$(dirname "$0")/../.." && pwd)/configs/default.yaml
SET=(--set run.dir="$DIR/run" --set data.shard_dir="$DIR/shards" --set synth.out_dir="$DIR/synth"
     --set synth.users="$USERS" --set synth.min_events=80 --set synth.max_events=120)

echo "== $(date -u +%FT%TZ) $(uname -n), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== trainer data synth: $USERS users, 80..120 events each"
/usr/bin/time -f 'synth: %e s wall, max RSS %M KiB' "$TRAINER" data synth "$EXP" "${SET[@]}" | grep -E '^synth: [0-9]+ users'
du -cb "$DIR"/synth/*.csv | tail -1 | awk '{ printf "input: %.1f MB of CSV\n", $1 / 1e6 }'
for run in $(seq 1 "$RUNS"); do
  echo "== run $run: trainer data prepare $EXP ${SET[*]}"
  /usr/bin/time -v "$TRAINER" data prepare "$EXP" "${SET[@]}" > "$DIR/prepare.out" 2> "$DIR/time.txt"
  grep -E '^prepared|^  train' "$DIR/prepare.out"
  grep -E 'Elapsed \(wall clock\)|Maximum resident set size|User time|System time|File system outputs' "$DIR/time.txt" | sed 's/^\t*/  /'
done
