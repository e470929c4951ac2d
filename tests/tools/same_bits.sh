#!/bin/bash
# same_bits.sh: does a commit train bitwise like a reference commit? (issue 12's check that
# a refactor changed no behaviour.) Builds REV in a scratch clone, runs a 1-rank
# train.reproducible=true run of configs/default.yaml for STEPS steps, and compares its last
# checkpoint with REF's at tolerance 0 (params, Adam moments, lane states, data cursor).
#
#   bash tests/tools/same_bits.sh REF REV [STEPS]        # exit 0: identical, 1: differ
#   git bisect start BAD GOOD && git bisect run bash tests/tools/same_bits.sh GOOD HEAD
#
# ckpt_compare comes from this checkout's build (build/tests/ckpt_compare).
set -euo pipefail
REF=$1; REV=$2; STEPS=${3:-60}
REPO=$(git rev-parse --show-toplevel)
CMP=$REPO/build/tests/ckpt_compare
[ -x "$CMP" ] || { echo "same_bits: build $CMP first (cmake --build build)" >&2; exit 125; }
SCRATCH=${SAME_BITS_DIR:-/tmp/same-bits}
mkdir -p "$SCRATCH"
export OPENBLAS_NUM_THREADS=1
ckpt_of() { # REV -> path of its step-STEPS checkpoint (built and trained once per commit)
  local sha dir
  sha=$(git -C "$REPO" rev-parse "$1^{commit}"); dir=$SCRATCH/$sha
  if [ ! -f "$dir/run/checkpoints/step-$(printf %08d "$STEPS").ckpt" ]; then
    rm -rf "$dir"; git clone -q "$REPO" "$dir/src"; git -C "$dir/src" checkout -q "$sha"
    cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release > "$dir/build.log" 2>&1 || return 125
    cmake --build "$dir/build" -j2 --target trainer >> "$dir/build.log" 2>&1 || return 125
    "$dir/build/trainer" train "$dir/src/configs/default.yaml" --set train.steps="$STEPS" \
      --set train.reproducible=true --set run.dir="$dir/run" --set data.shard_dir="$dir/shards" \
      --set synth.out_dir="$dir/synth" > "$dir/train.log" 2>&1 || return 125
  fi
  echo "$dir/run/checkpoints/step-$(printf %08d "$STEPS").ckpt"
}
a=$(ckpt_of "$REF") || exit 125
b=$(ckpt_of "$REV") || exit 125
"$CMP" "$a" "$b"
