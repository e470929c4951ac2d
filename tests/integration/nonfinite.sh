# nonfinite.sh: a non-finite gradient on ONE rank makes every rank skip that step together
# (counted, logged), or, with train.on_nonfinite=stop, ends the job with status 3 and
# leaves the last good checkpoint loadable. TRAINER_FAULT_NAN_STEP=S:R puts a NaN into rank
# R's gradient at step index S (0-based; logs number steps from 1, so the skip event and the
# step line both say "step":S+1).
#
# What shows that BOTH ranks skipped: only rank 0 writes, but the checkpoint also holds the
# h/c state of rank 1's lanes (computed by rank 1's forward, with rank 1's parameters), and
# every later step's gradient sums rank 1's contribution. In reproducible mode a 2-rank run
# with the NaN on rank 1 must therefore equal, bitwise, a 1-rank run with the NaN at the
# same step: a rank that applied the NaN update would have NaN parameters (every later step
# skipped too), a rank that skipped alone would train on other parameters than rank 0.
. "$(dirname "$0")/../lib/lib.sh"
[ -n "$CKPT_COMPARE" ] || { say "usage: nonfinite.sh TRAINER CKPT_COMPARE"; exit 2; }
write_small_exp exp.yaml

# run_np NP NAME FAULT [--set ...]: one run into $WORK/NAME (FAULT "" for none); sets $status.
run_np() {
  local n=$1 name=$2 fault=$3; shift 3
  status=0
  TRAINER_FAULT_NAN_STEP=$fault mpirun_limit 120 "$n" -x TRAINER_FAULT_NAN_STEP "$TRAINER" train exp.yaml \
    --set run.dir="$WORK/$name" --set log.every=1 "$@" > "$name.out" 2>&1 || status=$?
}
ckpt_of() { ls "$WORK/$1"/checkpoints/step-*.ckpt 2>/dev/null | tail -1; }
same_ckpt() { # same_ckpt A B [--tol X] WHAT
  local a=$1 b=$2; shift 2; local what=${*: -1}; set -- "${@:1:$#-1}"
  if [ -n "$(ckpt_of "$a")" ] && "$CKPT_COMPARE" "$(ckpt_of "$a")" "$(ckpt_of "$b")" "$@" > "cmp-$a-$b.txt" 2>&1; then
    pass "$what"
  else
    cat "cmp-$a-$b.txt" 2>/dev/null || true; fail "$what"
  fi
}

# 1. Skip: 2 ranks, NaN on rank 1 at step 5; the run finishes and says so once.
run_np 2 skip2 5:1
if [ "$status" -eq 0 ]; then
  skips=$(grep -c '"event":"skip"' "$WORK/skip2/log.jsonl" || true)
  [ "$skips" = 1 ] && grep -q '"event":"skip","step":6,"reason":"nonfinite"' "$WORK/skip2/log.jsonl" \
    && pass "log.jsonl: one skip event, at step 6 (index 5)" || { cat "$WORK/skip2/log.jsonl"; fail "log.jsonl: $skips skip events, want one at step 6"; }
  grep -q '"event":"step","step":6,.*"grad_norm":0,.*"skipped":1,' "$WORK/skip2/log.jsonl" \
    && pass "the step line after it counts the skip" || fail "step 6 line does not show skipped 1"
  grep -q '"skipped_steps":1,' "$WORK/skip2/metrics.json" && grep -q '"step":20,' "$WORK/skip2/metrics.json" \
    && pass "metrics.json: step 20, skipped_steps 1" || { cat "$WORK/skip2/metrics.json"; fail "metrics.json lacks skipped_steps 1"; }
  grep -q "step 6: non-finite loss or gradient on some rank: every rank skips this step (1 skipped so far)" skip2.out \
    && grep -q "done: 20 steps (1 skipped)" skip2.out && pass "stdout reports the skip" || { cat skip2.out; fail "stdout lacks the skip report"; }
  grep -q '"loss":\(nan\|inf\|-nan\)' "$WORK/skip2/log.jsonl" && fail "a NaN reached the logged losses" || true
else
  cat skip2.out; fail "2-rank run with a NaN on rank 1 exited $status"
fi
# Same, default mode, against one rank with the NaN at the same step (float tolerance, as
# in multirank_equiv.sh).
run_np 1 skip1 5:0
[ "$status" -eq 0 ] || { cat skip1.out; fail "1-rank run with a NaN exited $status"; }
same_ckpt skip1 skip2 --tol 1e-3 "default mode: NaN on rank 1 of 2 == NaN on 1 rank (tol 1e-3)"

# 2. Reproducible mode: bitwise, for 2 and 4 ranks with the NaN on the last rank.
run_np 1 rskip1 5:0 --set train.reproducible=true
[ "$status" -eq 0 ] || { cat rskip1.out; fail "reproducible 1-rank faulty run exited $status"; }
run_np 2 rskip2 5:1 --set train.reproducible=true
[ "$status" -eq 0 ] || { cat rskip2.out; fail "reproducible 2-rank faulty run exited $status"; }
run_np 4 rskip4 5:3 --set train.reproducible=true
[ "$status" -eq 0 ] || { cat rskip4.out; fail "reproducible 4-rank faulty run exited $status"; }
same_ckpt rskip1 rskip2 "reproducible: NaN on rank 1 of 2 == NaN on 1 rank, bitwise (params, moments, both ranks' lane state)"
same_ckpt rskip1 rskip4 "reproducible: NaN on rank 3 of 4 == NaN on 1 rank, bitwise"
# ... and the skip mattered: a clean run agrees up to step 5 and differs after.
run_np 1 rclean1 "" --set train.reproducible=true
steps_of() { sed -n 's/.*"event":"step","step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/p' "$WORK/$1/log.jsonl"; }
if [ "$status" -eq 0 ] && [ -n "$(ckpt_of rclean1)" ]; then
  if cmp -s <(steps_of rclean1 | head -5) <(steps_of rskip2 | head -5) && [ "$(steps_of rskip2 | wc -l)" = 20 ] &&
     ! cmp -s <(steps_of rclean1 | sed -n 7p) <(steps_of rskip2 | sed -n 7p); then
    pass "faulty run logs the clean run's losses for steps 1-5 and differs from step 7 on"
  else
    fail "faulty vs clean per-step losses not as expected"
  fi
  # ckpt_compare exits 1 for "read both, they differ" (2 would be a read error: no proof).
  cmp_status=0
  "$CKPT_COMPARE" "$(ckpt_of rclean1)" "$(ckpt_of rskip2)" > cmp-clean.txt 2>&1 || cmp_status=$?
  if [ "$cmp_status" -eq 1 ] && grep -qE '^params +[0-9]+ values: [1-9][0-9]* differ' cmp-clean.txt; then
    pass "the faulty run's final parameters differ from the clean run's: $(grep -m1 '^params' cmp-clean.txt)"
  else
    cat cmp-clean.txt; fail "clean vs faulty checkpoints: ckpt_compare exit $cmp_status, want 1 with differing params"
  fi
  grep -q "format version .*, step 20 (1 skipped)" <("$TRAINER" checkpoint inspect "$WORK/rskip2" 2>&1) \
    && pass "the checkpoint records 1 skipped step" || fail "checkpoint inspect does not show 1 skipped step"
else
  cat rclean1.out; fail "clean reproducible run failed"
fi

# 3. train.on_nonfinite=stop: exit 3 on every rank, a clear message, no hang; the last good
# checkpoint (step 4; one every 2 steps) still loads and training resumes from it.
t0=$(date +%s)
run_np 2 stop2 5:1 --set train.on_nonfinite=stop --set checkpoint.every=2
t=$(( $(date +%s) - t0 ))
[ "$status" -eq 3 ] && pass "on_nonfinite=stop: exit status 3 after ${t}s" || { cat stop2.out; fail "on_nonfinite=stop: exit $status after ${t}s, want 3"; }
# The fault hits 0-based step 5, the sixth step: "step 6", as the skip message says too, and
# the checkpoint it names is the one on disk.
grep -q "error: step 6: non-finite loss or gradient on some rank; stopping (train.on_nonfinite=stop); the last checkpoint (step-00000004.ckpt) is intact" stop2.out \
  && pass "on_nonfinite=stop: clear message naming step 6 and the intact checkpoint" || { cat stop2.out; fail "on_nonfinite=stop: message missing"; }
grep -q "^step 6: non-finite loss or gradient on some rank: every rank skips" skip2.out \
  && pass "skip mode names the same step (6)" || fail "skip mode does not name step 6"
# A stop before any checkpoint exists says so instead of promising one.
run_np 1 stop0 0:0 --set train.on_nonfinite=stop
grep -q "stopping (train.on_nonfinite=stop); no checkpoint had been written" stop0.out \
  && pass "on_nonfinite=stop at the first step: 'no checkpoint had been written'" \
  || { cat stop0.out; fail "on_nonfinite=stop at the first step: message not true"; }
last=$(ckpt_of stop2); last=${last:-none}
case $(basename "$last") in
  step-00000004.ckpt|step-00000005.ckpt) pass "newest checkpoint: $(basename "$last") (none past the NaN step)" ;;
  *) ls "$WORK/stop2/checkpoints" || true; fail "newest checkpoint is $last, want step 4 (or 5, the state before the NaN update)" ;;
esac
if "$TRAINER" checkpoint inspect "$WORK/stop2" > inspect.txt 2>&1 && grep -q "step [45] (0 skipped)" inspect.txt \
   && ! grep -qiE "nan|inf" inspect.txt && "$CKPT_COMPARE" "$last" "$last" > /dev/null 2>&1; then
  pass "the last good checkpoint loads, finite (checkpoint inspect, ckpt_compare)"
else
  cat inspect.txt 2>/dev/null || true; fail "the last good checkpoint does not load or is not finite"
fi
run_np 2 stop2 "" --set train.on_nonfinite=stop --set checkpoint.every=2
[ "$status" -eq 0 ] && grep -q "resume: continuing from .*$(basename "$last")" stop2.out \
  && [ "$(basename "$(ckpt_of stop2)")" = step-00000020.ckpt ] \
  && pass "the run resumes from step 4 and completes" || { cat stop2.out; fail "resume after the stop failed (exit $status)"; }
finish
