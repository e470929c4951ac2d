# lib.sh: helpers for the bash tests. Source it: `. "$(dirname "$0")/../lib/lib.sh"`.
#
# Every test gets the trainer binary as $1 and works in a private temp directory ($WORK)
# that is removed at exit; the user-id key lives there too (never in ~/.config).
set -euo pipefail
TRAINER=$(readlink -f "$1"); shift || true
# The second argument, when CTest passes it: tests/tools/ckpt_compare (resolved before the cd below).
CKPT_COMPARE=${1:+$(readlink -f "$1")}
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(dirname "$TESTS_DIR")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/trainer-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export TRAINER_KEY_FILE="$WORK/user-id.key"
export OPENBLAS_NUM_THREADS=1
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
cd "$WORK"
FAILS=0
. "$TESTS_DIR/lib/common.sh"

say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { say "ok: $*"; }

# mpirun for N ranks on any machine: more ranks than cores are allowed.
mpirun_n() { local n=$1; shift; mpirun --oversubscribe --bind-to none -np "$n" "$@"; }
# The same under a time limit in seconds: a hang fails the test instead of the whole suite.
mpirun_limit() { local secs=$1 n=$2; shift 2; timeout -k 5 "$secs" mpirun --oversubscribe --bind-to none -np "$n" "$@"; }

# A small, fast experiment on synthetic users; extra lines are appended as overrides file.
write_small_exp() {
  local path=$1
  cat > "$path" <<YAML
run:
  dir: $WORK/run
  seed: 3
data:
  source: synth
  categorical_cols: [content]
  numeric_cols: [engagement]
  engagement_col: engagement
  numeric_transform: log1p
  virtual_shards: 8
  shard_dir: $WORK/shards
synth:
  users: 200
  min_events: 10
  max_events: 40
  out_dir: $WORK/synth
model:
  hidden: 16
  action_embed: 8
  cat_embed: 4
train:
  batch_size: 16
  window: 8
  steps: 20
  warmup_steps: 2
eval:
  every: 0
  batch_size: 16
log:
  every: 5
checkpoint:
  every: 0
YAML
}

# Ends the test: prints a summary and sets the exit status.
finish() {
  if [ "$FAILS" -ne 0 ]; then say "$FAILS check(s) failed"; exit 1; fi
  say "all checks passed"; exit 0
}
