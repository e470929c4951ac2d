#!/usr/bin/env bash
# runlock.sh: one trainer per run directory.
#   1. While a training run holds run.dir, a second `train` on it (1 rank, and 2 ranks under
#      mpirun) exits 2 naming the holder's host and pid, and changes nothing in run.dir.
#   2. eval, predict and checkpoint inspect still work on the locked run.
#   3. Stale-safe: after the holder is SIGKILLed, `train --resume` takes the lock at once.
. "$(dirname "$0")/../lib/lib.sh"
. "$TESTS_DIR/lib/ckpt_lib.sh"
write_small_exp exp.yaml
"$TRAINER" data prepare exp.yaml > prep.out 2>&1 || { cat prep.out; fail "data prepare"; finish; }
host=$(hostname)

# The holder and every second trainer run the same command, as a requeued job would.
# Checkpoints far apart: readers (inspect, eval) must not race the rotation of files written
# every few milliseconds on an idle machine.
SAME=(train exp.yaml --set train.steps=100000000 --set log.every=1000 --set checkpoint.every=20000)
"$TRAINER" "${SAME[@]}" > holder.out 2>&1 &
JOB=$!
holder=$JOB
trap 'kill -9 $holder 2>/dev/null || true; rm -rf "$WORK"' EXIT
# Any checkpoint will do: on an idle machine step 5's is rotated away before a poll sees it.
started=0
for _ in $(seq 1200); do
  ls "$WORK"/run/checkpoints/step-*.ckpt > /dev/null 2>&1 && { started=1; break; }
  sleep 0.1
done
if [ "$started" = 0 ] || ! kill -0 "$holder"; then
  show holder.out; fail "the first run did not start"; kill -9 "$holder" 2>/dev/null; finish
fi
before=$(cd run && ls -l --time-style=+%s.%N config.yaml overrides.txt | md5sum)
for np in 1 2; do
  rc=0
  if [ "$np" = 1 ]; then
    timeout -k 2 10 "$TRAINER" "${SAME[@]}" > second$np.out 2>&1 || rc=$?
  else
    timeout -k 2 10 mpirun --oversubscribe --bind-to none -np 2 "$TRAINER" "${SAME[@]}" > second$np.out 2>&1 || rc=$?
  fi
  want="error: $WORK/run/lock: run directory in use by another trainer \(pid $holder on host $host, since [0-9T:Z-]+\)"
  if [ "$rc" -eq 2 ] && grep -qE "$want" second$np.out; then
    pass "second train on $np rank(s): exit 2, $(grep -m1 -oE 'run directory in use[^;]*' second$np.out)"
  else
    show second$np.out; fail "second train on $np rank(s): exit $rc, expected 2 and /$want/"
  fi
done
after=$(cd run && ls -l --time-style=+%s.%N config.yaml overrides.txt | md5sum)
[ "$before" = "$after" ] && pass "the refused trainers wrote nothing into run.dir" || fail "run.dir changed by a refused trainer"

rc=0; timeout -k 5 60 "$TRAINER" eval exp.yaml --checkpoint run --split valid > eval.out 2>&1 || rc=$?
[ "$rc" -eq 0 ] && grep -q "next-action NLL" eval.out && pass "eval works on the locked run" || { show eval.out; fail "eval on a locked run: exit $rc"; }
rc=0; mpirun_t 2 "$TRAINER" predict exp.yaml --checkpoint run --input "$WORK/synth/test.csv" --output next.csv > predict.out 2>&1 || rc=$?
[ "$rc" -eq 0 ] && [ -s next.csv ] && pass "predict (2 ranks) works on the locked run" || { show predict.out; fail "predict on a locked run: exit $rc"; }
rc=0; "$TRAINER" checkpoint inspect run > inspect.out 2>&1 || rc=$?
[ "$rc" -eq 0 ] && pass "checkpoint inspect works on the locked run" || { show inspect.out; fail "inspect on a locked run: exit $rc"; }

kill -9 "$holder"; wait "$holder" 2>/dev/null || true
last=$(cd run/checkpoints && ls step-*.ckpt | tail -1); last=$(ckpt_step "$last")
rc=0; timeout -k 5 60 "$TRAINER" train exp.yaml --resume --set train.steps=$((last + 5)) > after.out 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && grep -q "^done:" after.out && ! grep -q "pid $holder " run/lock; then
  pass "after SIGKILL of the holder the lock is free: train --resume runs (exit 0)"
else
  show after.out; fail "train after the holder's death: exit $rc"
fi
finish
