#!/usr/bin/env bash
# preempt_signal.sh: SIGTERM / SIGUSR1 on any rank stops every rank at the same step after
# rank 0 has checkpointed; the job exits 75 (requeue) and says so on stdout.
#   1. SIGTERM to rank 0 (async writer)          2. SIGUSR1 to rank 1 (checkpoint.async=false)
#   3. SIGUSR1 to mpirun (it forwards SIGUSR1 to the ranks, as `sbatch --signal=B:USR1` needs)
#   4. a storm of SIGTERM/SIGUSR1 to both ranks from the first signal until exit, with a
#      model whose checkpoint takes a while to write: the second and later signals land
#      during the write and do no harm (one valid checkpoint, exit 75, resume works).
# Note: SIGTERM to mpirun itself makes Open MPI kill the job (exit 1, no checkpoint): on
# Slurm signal the ranks (srun) or send SIGUSR1 to mpirun.
. "$(dirname "$0")/../lib/lib.sh"
. "$TESTS_DIR/lib/ckpt_lib.sh"

S=2000
write_small_exp exp.yaml
BASE=(train "$WORK/exp.yaml" --set train.steps=$S --set log.every=1 --set checkpoint.every=0)

# check_stop NAME: the job $JOB (outputs NAME.out / NAME.err, run dir NAME) stopped cleanly.
check_stop() {
  local name=$1 k ck txt
  if [ "$JOB_RC" -ne 75 ]; then
    fail "$name: exit status $JOB_RC, expected 75"; show "$name.out"; show "$name.err"; return 1
  fi
  k=$(sed -n 's/^stop requested by a signal: checkpointing at step \([0-9]*\) and exiting with status 75 (requeue to resume)$/\1/p' "$name.out")
  if [ -z "$k" ] || [ "$k" -ge "$S" ]; then
    fail "$name: stdout does not say 'stop requested ... checkpointing at step K ... status 75'"
    show "$name.out"; return 1
  fi
  ck=$(ckpt_path "$name" "$k")
  txt=$(inspect "$ck" 2>&1) || true
  if ! grep -q "step $k " <<< "$txt"; then fail "$name: no valid checkpoint at step $k"; say "$txt"; return 1; fi
  if [ "$(ls "$name/checkpoints" | grep -v '^best\.json$')" != "$(basename "$ck")" ]; then
    fail "$name: expected only $(basename "$ck") (and best.json), found: $(ls "$name/checkpoints" | tr '\n' ' ')"
    return 1
  fi
  if grep -qiE "error|warning|not written" "$name.out" "$name.err"; then
    fail "$name: errors reported"; grep -iE "error|warning|not written" "$name.out" "$name.err"; return 1
  fi
  STOP_STEP=$k
  pass "$name: exit 75, stdout names the stop step $k, checkpoint step-$k is valid and alone"
}

# signal_run NAME RANK SIG [ARGS...]: SIG to rank RANK (or to mpirun if RANK is "mpirun")
# once step 5 is logged. A run that ends before the signal lands (a loaded machine) is tried
# again, 3 times.
signal_run() {
  local name=$1 rank=$2 sig=$3 pid try
  shift 3
  for try in 1 2 3; do
    rm -rf "$name"
    mpirun_t 2 "$TRAINER" "${BASE[@]}" --set run.dir="$WORK/$name" "$@" > "$name.out" 2> "$name.err" &
    JOB=$!
    pid=$(wait_rank_pid "$rank")
    wait_grep "$name.out" '^step +5/' && [ -n "$pid" ] && kill -"$sig" "$pid" || true
    job_wait
    [ "$JOB_RC" -eq 0 ] || break
    say "$name: the run ended before the signal landed (attempt $try)"
  done
}

# A job that hit the time limit (124) means ranks that do not agree: stop there.
signal_run term0 0 TERM
check_stop term0 || { [ "$JOB_RC" -ne 124 ] || finish; }
signal_run usr1r1 1 USR1 --set checkpoint.async=false
check_stop usr1r1 || { [ "$JOB_RC" -ne 124 ] || finish; }
signal_run usr1mpirun mpirun USR1
check_stop usr1mpirun || { [ "$JOB_RC" -ne 124 ] || finish; }

# 4. The storm: H=256 makes a ~3.6 MB checkpoint (write + fsync: milliseconds, while steps
# are fast); signals keep coming every millisecond to both ranks until the job exits.
BIG=(--set model.hidden=256 --set train.batch_size=8 --set train.window=2)
mpirun_t 2 "$TRAINER" "${BASE[@]}" --set run.dir="$WORK/storm" "${BIG[@]}" > storm.out 2> storm.err &
JOB=$!
r0=$(wait_rank_pid 0)
r1=$(wait_rank_pid 1)
n_sent=0
if wait_grep storm.out '^step +5/' && [ -n "$r0" ] && [ -n "$r1" ]; then
  while kill -TERM "$r0" 2>/dev/null; do
    kill -USR1 "$r1" 2>/dev/null || true
    n_sent=$((n_sent + 1))
    sleep 0.001
  done
fi
job_wait
say "storm: $n_sent rounds of SIGTERM to rank 0 + SIGUSR1 to rank 1"
if check_stop storm; then
  [ "$n_sent" -ge 2 ] || fail "storm: only $n_sent signal rounds reached the job"
  # The checkpoint written under fire resumes. Changing train.steps makes it another
  # experiment: refused without --resume, naming the key; accepted with it.
  RC=0
  mpirun_t 2 "$TRAINER" "${BASE[@]}" --set run.dir="$WORK/storm" "${BIG[@]}" --set train.steps=$((STOP_STEP + 2)) > refused.out 2>&1 || RC=$?
  if [ "$RC" -ne 0 ] && grep -q "holds a different experiment (changed: .*train.steps" refused.out; then
    pass "a run dir holding another experiment is refused without --resume, naming train.steps"
  else
    fail "changed experiment without --resume: exit $RC"; show refused.out
  fi
  RC=0
  mpirun_t 2 "$TRAINER" "${BASE[@]}" --set run.dir="$WORK/storm" "${BIG[@]}" --set train.steps=$((STOP_STEP + 2)) --resume > resume.out 2>&1 || RC=$?
  if [ "$RC" -eq 0 ] && grep -q "^resume: continuing from .*step-0*$STOP_STEP.ckpt (step $STOP_STEP," resume.out; then
    pass "storm: the checkpoint written while signals kept coming resumes"
  else
    fail "storm: resume exited $RC"; show resume.out
  fi
fi
finish
