# bench_lib.sh: the scratch set-up the bench scripts share (sourced, not run).
#
#   bench_dir NAME: needs /usr/bin/time; DIR is $BENCH_DIR or a new temp dir NAME-bench.XXXXXX,
#   removed at exit unless KEEP=1; the user-id key file lives in it.
bench_dir() {
  [ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
  DIR=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/$1-bench.XXXXXX")}
  mkdir -p "$DIR"
  [ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$DIR"' EXIT
  export TRAINER_KEY_FILE="$DIR/user-id.key"
}
