#!/usr/bin/env bash
# disk_full.sh: a full disk (a real ENOSPC, from a small tmpfs mounted for the test) leaves
# no temporary file or directory behind, and a lock left by a dead preparer is taken over.
#   1. synth into a 1 MiB tmpfs: exit 1 naming "No space left on device", no *.csv.tmp.
#   2. prepare into tmpfs of several sizes, by `trainer data prepare` and by a 2-rank
#      `train`, also with data.prepare_mem_mb=1 (both ranks' buckets on disk): each either succeeds or exits
#      non-zero with the ENOSPC message; none leaves a shard set, .prepare-PID or *.shard.tmp
#      (2-rank train: the failing rank stops the other before it removes the shared
#      .prepare-PID, comm_agree_on_fatal); at least one size fails; after the failures a
#      prepare on a roomy disk works.
#   3. A stale shards/.lock naming a dead process, with its .prepare-PID dir and a partial
#      shard: the next prepare says it takes the lock over and removes them.
# Skips (77) where no tmpfs can be mounted (not root / no CAP_SYS_ADMIN).
. "$(dirname "$0")/../lib/lib.sh"
MNT=$WORK/full
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=1m tmpfs "$MNT" 2>/dev/null; then say "SKIP: cannot mount a tmpfs (needs root)"; exit 77; fi
trap 'umount "$MNT" 2>/dev/null || true; rm -rf "$WORK"' EXIT
# The ranks of a failed parallel prepare may still be exiting (and hold files there) for a
# moment after mpirun returns, above all under ASan: umount is retried for up to 10 s.
remount() {
  local i
  for i in $(seq 100); do umount "$MNT" 2>/dev/null && break; sleep 0.1; done
  mountpoint -q "$MNT" && { umount "$MNT"; return 1; }
  mount -t tmpfs -o "size=$1" tmpfs "$MNT"
}
leftovers() { find "$MNT" \( -name '.prepare-*' -o -name '*.tmp' \) 2>/dev/null | tr '\n' ' '; }
write_small_exp exp.yaml
cat >> exp.yaml <<'YAML'
YAML
sed -i 's/users: 200/users: 2000/' exp.yaml

# 1. synth on a full disk.
rc=0; "$TRAINER" data synth exp.yaml --set synth.out_dir="$MNT/synth" > synth.out 2>&1 || rc=$?
if [ "$rc" -eq 1 ] && grep -q "No space left on device" synth.out && [ -z "$(leftovers)" ] && [ ! -e "$MNT/synth/best.txt" ]; then
  pass "synth on a full 1 MiB disk: exit 1, '$(grep -m1 -o 'error: .*' synth.out | cut -c1-120)', no *.csv.tmp left"
else
  cat synth.out; ls -la "$MNT/synth" 2>/dev/null; fail "synth on a full disk: exit $rc, leftovers: $(leftovers)"
fi

# 2. prepare on disks of several sizes (CSV input on the roomy disk).
"$TRAINER" data synth exp.yaml > synth2.out 2>&1 || { cat synth2.out; fail "synth"; }
failed=0
for size in 64k 1m 2300k 2600k 3200k 3500k 8m; do
  for how in prepare train train-spill; do
    remount "$size"
    rc=0
    if [ "$how" = prepare ]; then
      timeout 60 "$TRAINER" data prepare exp.yaml --set data.shard_dir="$MNT/shards" > p.out 2>&1 || rc=$?
    else # train-spill: both ranks write their buckets to disk too (data.prepare_mem_mb=1)
      mem=1024; [ "$how" = train-spill ] && mem=1
      timeout 60 mpirun --oversubscribe --bind-to none -np 2 "$TRAINER" train exp.yaml --set train.steps=2 \
        --set run.dir="$WORK/run-$size-$how" --set data.shard_dir="$MNT/shards" --set data.prepare_mem_mb=$mem > p.out 2>&1 || rc=$?
      [ "$how" = train-spill ] && [ $rc = 0 ] && ! grep -q "buckets sorted on disk by 2 of 2 ranks" p.out &&
        fail "train-spill on $size: the buckets were not spilled to disk"
    fi
    left=$(leftovers)
    if [ "$rc" -ne 0 ]; then
      failed=$((failed + 1))
      if grep -q "No space left on device" p.out && [ -z "$left" ] && [ "$rc" -ne 124 ]; then
        pass "$how, shard_dir on a full $size disk: exit $rc, ENOSPC named, nothing left behind"
      else
        tail -5 p.out; fail "$how on $size: exit $rc, leftovers: '$left'"
      fi
    else
      [ -z "$left" ] && pass "$how on $size: fits (exit 0), nothing left behind" || fail "$how on $size: exit 0 but leftovers '$left'"
    fi
  done
done
[ "$failed" -gt 0 ] && pass "$failed of the runs hit ENOSPC" || fail "no size was small enough to fill the disk"
umount "$MNT"
rc=0; "$TRAINER" data prepare exp.yaml --set data.shard_dir="$WORK/shards-ok" > ok.out 2>&1 || rc=$?
[ "$rc" -eq 0 ] && pass "prepare on a roomy disk works afterwards" || { cat ok.out; fail "prepare afterwards: exit $rc"; }

# 3. A dead preparer's lock and leftovers.
mkdir -p shards/.prepare-999999
printf 'pid 999999 on host gone-node\n' > shards/.lock
echo junk > shards/.prepare-999999/bucket-0000
echo partial > shards/train-0003.shard.tmp
rc=0; "$TRAINER" data prepare exp.yaml > stale.out 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && grep -q "taking over the lock of pid 999999 on host gone-node, which ended without releasing it" stale.out \
   && [ ! -e shards/.prepare-999999 ] && [ ! -e shards/train-0003.shard.tmp ] && [ ! -s shards/.lock ]; then
  pass "stale lock of a dead preparer: taken over with a message, its .prepare dir and partial shard removed, lock emptied"
else
  cat stale.out; ls -la shards; fail "stale lock takeover: exit $rc"
fi
finish
