# durable_order.sh: the order of the durable-write calls, observed (LD_PRELOAD shim
# tests/tools/fsync_trace.c): for every checkpoint, shard and metrics file, fsync(temp)
# comes before rename(temp, target), and the target's directory is fsynced after the rename.
# A rename without fsync would pass every other test (the data reaches the disk anyway
# unless the machine loses power), so this is where it is caught.
. "$(dirname "$0")/../lib/lib.sh"
SHIM=${2:-}
[ -n "$SHIM" ] && [ -f "$SHIM" ] || { say "usage: durable_order.sh TRAINER CKPT_COMPARE SHIM.so"; exit 2; }
write_small_exp exp.yaml
export FSYNC_TRACE=$WORK/trace.txt
# Under AddressSanitizer the shim is preloaded before the ASan runtime: allowed for this test.
LD_PRELOAD=$SHIM ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 \
  "$TRAINER" train exp.yaml --set checkpoint.every=10 --set train.steps=20 > train.out 2>&1 \
  || { cat train.out; fail "training under the shim failed"; finish; }
unset FSYNC_TRACE
[ -s trace.txt ] || { fail "the shim logged nothing"; finish; }
# Every rename: its source was fsynced before it, its target's directory after it.
report=$(awk '
  $1 == "fsync" { synced[$2] = NR; last_dir_sync[$2] = NR }
  $1 == "rename" { n++; from = $2; to = $3; dir = to; sub(/\/[^\/]*$/, "", dir)
    if (!(from in synced)) { bad = bad "\n  rename " from " without an fsync of it before"; }
    pending[n] = dir; at[n] = NR; what[n] = to }
  END {
    for (i = 1; i <= n; i++) { ok = 0
      # the directory is fsynced after this rename (a later line names the directory)
      if ((pending[i] in last_dir_sync) && last_dir_sync[pending[i]] > at[i]) ok = 1
      if (!ok) bad = bad "\n  no fsync of " pending[i] " after renaming " what[i] }
    printf "%d renames checked%s", n, bad; exit bad != "" }' trace.txt) \
  && pass "fsync(temp) < rename < fsync(dir) for every durable write: $report" \
  || { fail "durable-write order broken: $report"; head -40 trace.txt; }
for kind in '\.ckpt$' '\.shard$' 'metrics\.json$' 'config\.yaml$'; do
  grep -qE "^rename .* .*$kind" trace.txt && pass "renames include ${kind//\\/} files" \
    || fail "no rename of a ${kind//\\/} file was seen"
done
finish
