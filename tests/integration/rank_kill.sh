# rank_kill.sh: no rank ever waits forever for one that has died.
#  1. SIGKILL of rank 1 in the middle of a long 2-rank run: mpirun exits non-zero within
#     30 s and no trainer process of the job is left.
#  2. A fatal error on one rank only (a corrupt shard that only rank 1 loads): the job ends
#     non-zero quickly, with a message naming the rank and the cause.
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml
LIMIT=30 # seconds the job may take to go away

# Trainer processes started by this test: they carry this test's private key file in their
# environment (lib.sh exports it), so other tests' trainers running alongside are not seen.
our_trainers() {
  local e pid
  for e in /proc/[0-9]*/environ; do
    pid=${e#/proc/}; pid=${pid%/environ}
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = trainer ] || continue
    grep -qxF "TRAINER_KEY_FILE=$TRAINER_KEY_FILE" < <(tr '\0' '\n' < "$e" 2>/dev/null) && echo "$pid"
  done
  return 0
}
children_of() { # children_of PID: direct children, from /proc/*/stat (pgrep may be missing)
  local s
  for s in /proc/[0-9]*/stat; do
    awk -v p="$1" '{ sub(/^.*\) /, ""); if ($2 == p) { split(FILENAME, f, "/"); print f[3] } }' "$s" 2>/dev/null
  done
  return 0
}
rank_of() { { tr '\0' '\n' < "/proc/$1/environ"; } 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# wait_gone PID SECS: waits for the background job PID to exit; sets $status (its exit
# status, 124 if it outlived SECS and was killed) and $took (seconds).
wait_gone() {
  local pid=$1 secs=$2 t0
  t0=$(now)
  while kill -0 "$pid" 2>/dev/null && awk -v t="$(elapsed "$t0")" -v s="$secs" 'BEGIN { exit !(t < s) }'; do
    sleep 0.1
  done
  took=$(elapsed "$t0")
  if kill -0 "$pid" 2>/dev/null; then
    status=124; kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  else
    status=0; wait "$pid" 2>/dev/null || status=$?
  fi
}
cleanup_ours() { local p; for p in $(our_trainers); do kill -9 "$p" 2>/dev/null || true; done; }

# 1. SIGKILL of rank 1 mid-run.
mpirun --oversubscribe --bind-to none -np 2 "$TRAINER" train exp.yaml --set run.dir="$WORK/kill" \
  --set train.steps=1000000 --set log.every=1 > kill.out 2>&1 &
mpid=$!
t0=$SECONDS
until grep -q '"event":"step"' "$WORK/kill/log.jsonl" 2>/dev/null || [ $((SECONDS - t0)) -gt 60 ] || ! kill -0 $mpid 2>/dev/null; do
  sleep 0.1
done
victim=""
for p in $(children_of $mpid); do [ "$(rank_of "$p")" = 1 ] && victim=$p; done
ranks_before=$(our_trainers | wc -l)
if ! grep -q '"event":"step"' "$WORK/kill/log.jsonl" 2>/dev/null || [ -z "$victim" ]; then
  cat kill.out; fail "training did not start on 2 ranks (rank 1 pid '${victim}')"
  kill -9 $mpid 2>/dev/null || true; cleanup_ours
else
  pass "training started (2 trainer processes; rank 1 is pid $victim, a child of mpirun $mpid)"
  kill -9 "$victim"
  wait_gone $mpid $LIMIT
  sleep 0.5 # let mpirun's own SIGKILLs land before looking
  left=$(our_trainers | tr '\n' ' ')
  if [ "$status" -ne 124 ] && [ "$status" -ne 0 ]; then
    pass "rank 1 SIGKILLed: mpirun exited with status $status after ${took}s (limit ${LIMIT}s)"
  else
    tail -20 kill.out; fail "rank 1 SIGKILLed: mpirun status $status after ${took}s (want non-zero within ${LIMIT}s)"
  fi
  [ -z "$left" ] && pass "no trainer process left (there were $ranks_before)" || { fail "trainer processes left: $left"; cleanup_ours; }
  # mpirun's notice naming the killed rank: reported, not required (Open MPI's wording).
  grep -q "exited on signal 9" kill.out && say "note: $(grep -m1 'exited on signal 9' kill.out)" \
    || say "note: mpirun did not print which rank was killed"
fi

# 2. A fatal error on rank 1 only: corrupt a train shard that only rank 1 (shards 4-7 of 8)
# loads. Rank 0 prepares nothing (the meta file is intact) and reaches its next collective.
"$TRAINER" data prepare exp.yaml --set run.dir="$WORK/fatal" > prepare.out 2>&1 || { cat prepare.out; fail "data prepare failed"; }
shard="$WORK/shards/train-0007.shard"
if [ -f "$shard" ]; then
  printf 'XXXXXXXXXXXXXXXX' | dd of="$shard" bs=1 seek=200 conv=notrunc status=none
  mpirun --oversubscribe --bind-to none -np 2 "$TRAINER" train exp.yaml --set run.dir="$WORK/fatal" > fatal.out 2>&1 &
  mpid=$!
  wait_gone $mpid $LIMIT
  sleep 0.5
  if [ "$status" -ne 124 ] && [ "$status" -ne 0 ]; then
    pass "fatal error on rank 1: job exited with status $status after ${took}s"
  else
    cat fatal.out; fail "fatal error on rank 1: status $status after ${took}s (want non-zero within ${LIMIT}s)"
  fi
  if grep -q "^\[rank 1\] error: .*train-0007.shard: payload checksum mismatch (corrupt file)" fatal.out; then
    pass "the message names the rank and the cause: $(grep -m1 '^\[rank 1\] error' fatal.out)"
  else
    cat fatal.out; fail "no message naming rank 1 and the corrupt shard"
  fi
  # Open MPI's own "MPI_ABORT was invoked on rank 1" notice is sometimes lost (its help
  # forwarding fails with "Data unpack would read past end of buffer"): reported, not required.
  grep -q "MPI_ABORT was invoked on rank 1" fatal.out || say "note: Open MPI's MPI_ABORT notice is missing this time"
  grep -q "^\[rank 0\] error" fatal.out && fail "rank 0 reported an error of its own" || true
  left=$(our_trainers | tr '\n' ' ')
  [ -z "$left" ] && pass "no trainer process left" || { fail "trainer processes left: $left"; cleanup_ours; }
else
  ls "$WORK/shards" || true; fail "no shard $shard to corrupt"
fi
finish
