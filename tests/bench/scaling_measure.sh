# scaling_measure.sh: the measured inputs of tests/bench/scaling_model.py, as JSON lines.
#
#   bash tests/bench/scaling_measure.sh build/trainer build/tests/allreduce_bench [OUT_DIR]
#
# Writes into OUT_DIR (default out/scaling): allreduce-shm.jsonl and allreduce-tcp.jsonl
# (allreduce_bench over shared memory, and over TCP between two network namespaces as in
# tests/integration/multihost.sh; skipped where namespaces are not allowed), and bench.jsonl
# (`trainer bench --json` for H in $SIZES, default "64 128 256 512", on 1 rank, 2 ranks over
# shared memory and 2 ranks over TCP). --bind-to none everywhere. About 2-3 minutes.
. "$(dirname "$0")/../lib/lib.sh"
AR_BENCH=${CKPT_COMPARE:?usage: scaling_measure.sh TRAINER ALLREDUCE_BENCH [OUT_DIR]} # lib.sh resolved it
OUT_DIR=$(cd "$OLDPWD" && mkdir -p "${2:-$REPO_DIR/out/scaling}" && readlink -f "${2:-$REPO_DIR/out/scaling}")
SIZES=${SIZES:-"64 128 256 512"}
BENCH_FLAGS=(--windows 3 --window-s 1 --sgemm-trials 0 --json)
. "$TESTS_DIR/lib/netns.sh"
NETNS_EXIT_ALSO='rm -rf "$WORK"'
have_tcp=1
netns_up || { say "no TCP link: $NETNS_WHY"; have_tcp=0; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
say "load before: $(load)"
: > "$OUT_DIR/bench.jsonl"
mpirun -np 2 --bind-to none "$AR_BENCH" > "$OUT_DIR/allreduce-shm.jsonl"
[ $have_tcp = 0 ] || on_hosts 300 --bind-to none "$AR_BENCH" > "$OUT_DIR/allreduce-tcp.jsonl"
for h in $SIZES; do
  "$TRAINER" bench --hidden "$h" "${BENCH_FLAGS[@]}" 2> /dev/null | sed 's/^{/{"link":"none",/' >> "$OUT_DIR/bench.jsonl"
  mpirun -np 2 --bind-to none "$TRAINER" bench --hidden "$h" "${BENCH_FLAGS[@]}" 2> /dev/null |
    sed 's/^{/{"link":"shm",/' >> "$OUT_DIR/bench.jsonl"
  [ $have_tcp = 0 ] || on_hosts 300 --bind-to none "$TRAINER" bench --hidden "$h" "${BENCH_FLAGS[@]}" 2> /dev/null |
    sed 's/^{/{"link":"tcp",/' >> "$OUT_DIR/bench.jsonl"
  say "H=$h done (load $(load))"
done
say "load after: $(load); results in $OUT_DIR"
