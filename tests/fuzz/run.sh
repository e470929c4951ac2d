#!/usr/bin/env bash
# run.sh: builds the libFuzzer harnesses (clang, -fsanitize=fuzzer,address,undefined) and
# fuzzes each target for SECONDS, from seed corpora made of the repo's own configs, sweep
# file, CSVs and a checkpoint, plus the committed regression inputs.
#
#   bash tests/fuzz/run.sh SECONDS [TARGET...]   # targets: config set sweep csv checkpoint
#   bash tests/fuzz/run.sh --regressions         # each committed regression input, once
#
# FUZZ_BUILD_DIR: the clang build (default build-fuzz/ in the repo); the working corpora
# grow in $FUZZ_BUILD_DIR/corpus/TARGET (kept between runs: a long campaign resumes).
# FUZZ_JOBS: parallel fuzzing processes per target (default 1).
# FUZZ_SKIP_BUILD=1: use the harnesses already built there (CTest's fuzz_build made them).
# Exit: 0 no crash; 1 a crash (the input is saved, see the message); 77 no clang/libFuzzer
# and none could be installed.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ=$REPO/tests/fuzz
BUILD=${FUZZ_BUILD_DIR:-$REPO/build-fuzz}
ALL=(config set sweep csv checkpoint)
[ $# -ge 1 ] || { sed -n '2,14p' "$0"; exit 2; }
MODE=fuzz SECONDS_EACH=0
if [ "$1" = --regressions ]; then MODE=regress; shift; else SECONDS_EACH=$1; shift; fi
case "$SECONDS_EACH" in ''|*[!0-9]*) echo "run.sh: SECONDS must be a whole number, got '$SECONDS_EACH'" >&2; exit 2 ;; esac
TARGETS=("$@"); [ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")

have_libfuzzer() {
  command -v clang >/dev/null || return 1
  echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' > "$BUILD/probe.c"
  clang -fsanitize=fuzzer,address,undefined "$BUILD/probe.c" -o "$BUILD/probe" 2>/dev/null
}
mkdir -p "$BUILD"
if ! have_libfuzzer; then
  echo "run.sh: clang with libFuzzer not found; installing it (cluster/install-deps.sh --fuzz)" >&2
  bash "$REPO/cluster/install-deps.sh" --fuzz >&2 || true
  if ! have_libfuzzer; then
    echo "SKIP: clang with -fsanitize=fuzzer is not available and could not be installed" >&2
    exit 77
  fi
fi

# Build (incremental after the first time), unless told it is done.
if [ -z "${FUZZ_SKIP_BUILD:-}" ] || [ ! -x "$BUILD/trainer" ]; then
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    CC=clang cmake -S "$REPO" -B "$BUILD" -DTRAINER_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      > "$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
  fi
  nice cmake --build "$BUILD" -j"${FUZZ_BUILD_JOBS:-2}" --target "${TARGETS[@]/#/fuzz_}" trainer \
    > "$BUILD/build.log" 2>&1 || { tail -40 "$BUILD/build.log"; exit 1; }
fi

# Seed corpora from the repo (added to the working corpus; libFuzzer drops duplicates).
seed() {
  local t=$1 dir=$BUILD/seeds/$t f i=0
  rm -rf "$dir"; mkdir -p "$dir"
  case $t in
    config) cp "$REPO"/configs/*.yaml "$dir/" ;;
    sweep) cp "$REPO"/configs/sweep-example.yaml "$dir/"
      printf 'base: default.yaml\ntrials: 3\nmax_trials: 50\ngrid:\n  model.hidden: [8, 16]\nrandom:\n  train.lr: {dist: loguniform, low: 1e-4, high: 1e-2}\n  train.optimizer: {dist: choice, values: [adam, sgd]}\n  model.layers: {dist: int, low: 1, high: 2}\n' > "$dir/mixed.yaml" ;;
    set) # every key=value of the resolved default experiment, one per file
      "$BUILD/trainer" config show "$REPO/configs/default.yaml" 2>/dev/null | awk '
        /^[a-z]+:$/ { sec = substr($1, 1, length($1) - 1); next }
        /^  [a-z_]+:/ { k = $1; sub(/:$/, "", k); $1 = ""; sub(/^ /, ""); sub(/ *#.*$/, ""); print sec "." k "=" $0 }' |
        while IFS= read -r line; do i=$((i + 1)); printf '%s' "$line" > "$dir/kv-$i"; done
      printf 'data.numeric_cols=[a, b]' > "$dir/list" ;;
    csv) # the example CSV in pieces of 24 rows (header first), and the generator's rows
      for f in "$REPO"/configs/example-events.csv; do
        { head -1 "$f"; sed -n '2,25p' "$f"; } > "$dir/example-a.csv"
        { head -1 "$f"; sed -n '4000,4024p' "$f"; } | tr ',' ',' > "$dir/example-b.csv"
      done
      printf 'user,t,action,c,x\nu1,1700000000,post,video,3\nu1,1700000060,like,text,0\n"u,2",1700000100.5,"share",img,1e3\n' > "$dir/number.csv"
      printf 'user,t,action,c,x\r\nu1,2024-03-01T10:00:00Z,post,v,1\r\nu1,2024-03-01T10:00:00.250+02:00,like,t,2\r\n' > "$dir/iso-crlf.csv" ;;
    checkpoint) # a checkpoint of a tiny model, written by this build's trainer
      local w=$BUILD/seed-run
      rm -rf "$w"; mkdir -p "$w"
      TRAINER_KEY_FILE=$w/key ASAN_OPTIONS=detect_leaks=0 "$BUILD/trainer" train "$REPO/configs/default.yaml" \
        --set run.dir="$w/run" --set synth.users=40 --set synth.max_events=20 --set model.hidden=4 \
        --set model.action_embed=2 --set model.cat_embed=2 --set train.steps=2 --set train.warmup_steps=0 \
        --set train.batch_size=16 --set eval.batch_size=16 > "$w/train.log" 2>&1 || { tail "$w/train.log"; exit 1; }
      cp "$w"/run/checkpoints/step-*.ckpt "$dir/" ;;
  esac
}

status=0
printf '%-11s %8s %12s %10s %8s %s\n' target seconds executions exec/s corpus result
for t in "${TARGETS[@]}"; do
  bin=$BUILD/tests/fuzz/fuzz_$t
  reg=$FUZZ/regressions/$t
  mkdir -p "$reg"
  if [ "$MODE" = regress ]; then
    files=("$reg"/*)
    [ -e "${files[0]}" ] || { printf '%-11s %8s %12s %10s %8s %s\n' "$t" - 0 - - "no regression inputs"; continue; }
    if "$bin" "${files[@]}" > "$BUILD/regress-$t.log" 2>&1; then
      printf '%-11s %8s %12s %10s %8s %s\n' "$t" - "${#files[@]}" - - "ok (each regression input once)"
    else
      tail -30 "$BUILD/regress-$t.log"; printf '%-11s FAILED on a regression input\n' "$t"; status=1
    fi
    continue
  fi
  seed "$t"
  corpus=$BUILD/corpus/$t art=$BUILD/artifacts/$t
  mkdir -p "$corpus" "$art"
  log=$BUILD/fuzz-$t.log
  t0=$(date +%s)
  rc=0
  nice "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -close_fd_mask=2 -artifact_prefix="$art/" ${FUZZ_JOBS:+-jobs=$FUZZ_JOBS -workers=$FUZZ_JOBS} \
    "$corpus" "$BUILD/seeds/$t" "$reg" > "$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - t0 ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{ s += $1 } END { print s + 0 }')
  n=$(ls "$corpus" | wc -l)
  if [ "$rc" -eq 0 ]; then
    result=ok
  else
    status=1
    crash=$(ls -t "$art" 2>/dev/null | head -1)
    result="CRASH: $art/$crash (copy it to tests/fuzz/regressions/$t/ and fix; log $log)"
    grep -E "ERROR: |SUMMARY: |fuzz: |^==|#[0-9]+ " "$log" | head -25 >&2 || true
  fi
  printf '%-11s %8s %12s %10s %8s %s\n' "$t" "$took" "$execs" "$(( execs / (took > 0 ? took : 1) ))" "$n" "$result"
done
exit $status
