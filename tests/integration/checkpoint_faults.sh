#!/usr/bin/env bash
# checkpoint_faults.sh: a checkpoint write that fails (EIO, ENOSPC) or is killed part-way
# never costs the previous checkpoint, never leaves a temp file or partial step file that
# passes for a checkpoint, and is reported. Faults come from TRAINER_FAULT_CKPT
# (mode:after_bytes:step, see setup_fault in trainer/checkpoint.c).
#
# Policy checked here: a failed PERIODIC checkpoint is an error message naming the step, the
# file and the reason; training goes on (the next checkpoint may succeed) and the run exits 0
# if its final checkpoint is written. A failed FINAL checkpoint makes the run exit 1.
# Retention: checkpoint.keep files remain, the newest good one among them.
CMP=$(readlink -f "$2")
. "$(dirname "$0")/../lib/lib.sh"
. "$TESTS_DIR/lib/ckpt_lib.sh"

S=30
write_small_exp exp.yaml
BASE=(train "$WORK/exp.yaml" --set train.steps=$S --set checkpoint.every=5)

# run NAME [ARGS...]: a 2-rank run in run dir NAME (stdout NAME.out, stderr NAME.err); sets RC.
run() {
  local name=$1
  shift
  RC=0
  mpirun_t 2 "$TRAINER" "${BASE[@]}" --set run.dir="$WORK/$name" "$@" > "$name.out" 2> "$name.err" || RC=$?
}

# The checkpoint files (best.json, checkpoint.keep_best's pointer, is not one).
ckpts() { ls "$1/checkpoints" | grep -v '^best\.json$' | tr '\n' ' ' | sed 's/ $//'; }

# valid NAME STEP: `checkpoint inspect NAME` (the run dir) picks step STEP, without warnings.
valid() {
  local txt rc=0
  txt=$(inspect "$1" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] || ! grep -q "^  format version 1, step $2 " <<< "$txt" || grep -q warning <<< "$txt"; then
    fail "$1: 'checkpoint inspect' should pick step $2 cleanly (exit $rc)"; say "$txt" | head -5
    return 1
  fi
}

no_tmp() {
  if ls "$1/checkpoints" | grep -q '\.tmp'; then fail "$1: temp file left: $(ckpts "$1")"; return 1; fi
}

# The reference (also prepares the data): retention keeps exactly checkpoint.keep=3 files.
run ref --set checkpoint.keep=3
[ "$RC" -eq 0 ] || { fail "reference run exited $RC"; show ref.err; finish; }
if [ "$(ckpts ref)" = "step-00000020.ckpt step-00000025.ckpt step-00000030.ckpt" ]; then
  pass "retention: keep=3 leaves exactly steps 20, 25, 30"
else
  fail "retention: keep=3 left: $(ckpts ref)"
fi

# Failed periodic checkpoints (step 15): eio with the synchronous writer, enospc with the
# asynchronous one. The failure is reported, training goes on, the final checkpoint is
# written and equals the reference's, the run exits 0.
for fault in eio:async=false enospc:async=true; do
  mode=${fault%%:*}
  name=periodic_$mode
  reason=$([ "$mode" = eio ] && echo "Input/output error" || echo "No space left on device")
  TRAINER_FAULT_CKPT=$mode:5000:15 run "$name" --set checkpoint.keep=100 --set checkpoint.${fault#*:}
  msg="error: checkpoint at step 15 not written: .*/$name/checkpoints/step-00000015.ckpt.tmp: write failed ($reason) \[injected\]; the previous checkpoint (step-00000010.ckpt) is intact"
  if [ "$RC" -eq 0 ] && grep -q "$msg" "$name.err" &&
     [ "$(ckpts "$name")" = "step-00000005.ckpt step-00000010.ckpt step-00000020.ckpt step-00000025.ckpt step-00000030.ckpt" ] &&
     "$CMP" "$(ckpt_path "$name" 30)" "$(ckpt_path ref 30)" > cmp.txt &&
     inspect "$(ckpt_path "$name" 10)" > /dev/null; then
    pass "$mode on the periodic checkpoint (${fault#*:}): reported, step 10 intact, no step-15 file, training went on, exit 0"
  else
    fail "$mode on the periodic checkpoint (${fault#*:}): exit $RC, files: $(ckpts "$name")"
    show "$name.err"; cat cmp.txt 2>/dev/null || true
  fi
  no_tmp "$name" || true
done

# Failed final checkpoints: exit 1 with a clear message; the newest periodic one is intact.
for fault in enospc:async=true eio:async=false; do
  mode=${fault%%:*}
  name=final_$mode
  TRAINER_FAULT_CKPT=$mode:5000:$S run "$name" --set checkpoint.${fault#*:}
  if [ "$RC" -eq 1 ] && grep -q "checkpoint at step $S not written: .*\[injected\]" "$name.err" &&
     grep -q "^error: the final checkpoint could not be written" "$name.err" &&
     ! grep -q "^done:" "$name.out" && valid "$name" 25; then
    pass "$mode on the final checkpoint (${fault#*:}): exit 1, reported, step 25 intact"
  else
    fail "$mode on the final checkpoint (${fault#*:}): exit $RC, files: $(ckpts "$name")"; show "$name.err"
  fi
  no_tmp "$name" || true
done

# SIGKILL in the middle of writing step 15 (rank 0 dies; mpirun ends the job). The partial
# temp file is not taken for a checkpoint; resume continues from step 10 and ends exactly as
# the reference. The writer removes the stale temp file when the run starts again.
TRAINER_FAULT_CKPT=kill:5000:15 run killed --set checkpoint.keep=100
if [ "$RC" -ne 0 ] && [ ! -e "$(ckpt_path killed 15)" ] && [ ! -e "$(ckpt_path killed $S)" ]; then
  pass "kill while writing step 15: the job died (exit $RC), no step-15 file ($(ckpts killed))"
else
  fail "kill while writing step 15: exit $RC, files: $(ckpts killed)"; show killed.err
fi
valid killed 10 && pass "after the kill, 'checkpoint inspect RUNDIR' picks step 10"
run killed --set checkpoint.keep=100
if [ "$RC" -eq 0 ] && grep -q "^resume: continuing from .*/step-00000010.ckpt (step 10," killed.out &&
   "$CMP" "$(ckpt_path killed $S)" "$(ckpt_path ref $S)" > cmp.txt; then
  pass "resume after the kill: from step 10, final checkpoint == reference (bitwise)"
else
  fail "resume after the kill: exit $RC"; show killed.out; cat cmp.txt
fi
no_tmp killed || true

# keep=1 with a corrupt checkpoint numbered above every real one: the newest good checkpoint
# (the one just written) is never deleted, and resume skips the corrupt file.
run keep1 --set checkpoint.keep=1 --set train.steps=20
head -c 100 "$(ckpt_path keep1 20)" > "$(ckpt_path keep1 99)"
run keep1 --set checkpoint.keep=1 --resume
if [ "$RC" -eq 0 ] && [ "$(ckpts keep1)" = "step-00000030.ckpt step-00000099.ckpt" ] &&
     grep -q "warning: .*step-00000099.ckpt: truncated" keep1.err &&
     grep -q "^resume: continuing from .*/step-00000020.ckpt" keep1.out; then
  pass "keep=1 + corrupt step 99: resumed from 20 (99 reported), the good step 30 kept"
else
  fail "keep=1 + corrupt step 99: exit $RC, files: $(ckpts keep1)"; show keep1.err; show keep1.out 5
fi
finish
