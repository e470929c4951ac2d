# ckpt_lib.sh: helpers of the checkpoint, resume and preemption tests. Source it after
# lib.sh, which must be sourced with the test's arguments still in place:
#   . "$(dirname "$0")/../lib/lib.sh"; . "$TESTS_DIR/lib/ckpt_lib.sh"
#
# Jobs run in the background so that a test can signal one rank: start_job sets JOB (the pid
# of the subshell running mpirun), job_wait sets JOB_RC.

# When a rank exits non-zero (75 after a stop), mpirun aborts the job: SIGTERM to the ranks
# left, SIGKILL after odls_base_sigkill_timeout (1 s, twice over: ~2 s per stopped job).
# Zero makes the tests faster and harsher (stragglers are killed at once); the ranks wait for
# rank 0's checkpoint in MPI_Finalize, so it is still whole.
export OMPI_MCA_odls_base_sigkill_timeout=0

# inspect ARG...: `trainer checkpoint inspect ARG...`.
inspect() { "$TRAINER" checkpoint inspect "$@"; }

# Every command of these tests runs under a time limit (each takes seconds even under ASan):
# a hang (ranks that disagree about a stop) fails the test instead of stalling the suite.
limit() { timeout -k 5 60 "$@"; }
mpirun_t() { local n=$1; shift; limit mpirun --oversubscribe --bind-to none -np "$n" "$@"; }

# Pids of every descendant of pid $1.
descendants() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done
}

# Pid of MPI rank $2 among the descendants of pid $1; empty if there is none (yet).
rank_pid() {
  local p
  for p in $(descendants "$1"); do
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in trainer*) ;; *) continue ;; esac # trainer_lsan too
    if grep -qx "OMPI_COMM_WORLD_RANK=$2" < <(tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null); then
      echo "$p"
      return
    fi
  done
}

# start_job N OUTFILE ARGS...: `mpirun -np N trainer ARGS...` in the background.
start_job() {
  local n=$1 out=$2
  shift 2
  mpirun_t "$n" "$TRAINER" "$@" > "$out" 2>&1 &
  JOB=$!
}

job_wait() {
  JOB_RC=0
  wait "$JOB" || JOB_RC=$?
}

# The pid of the mpirun of $JOB.
mpirun_pid() {
  local p
  for p in $(descendants "$JOB"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = mpirun ] && { echo "$p"; return; }
  done
}

# Waits (up to 60 s) until the pid of rank $1 of $JOB (or of its mpirun if $1 is "mpirun") is
# known; prints it.
wait_rank_pid() {
  local p="" i
  for i in $(seq 3000); do
    if [ "$1" = mpirun ]; then p=$(mpirun_pid); else p=$(rank_pid "$JOB" "$1"); fi
    [ -n "$p" ] && break
    kill -0 "$JOB" 2>/dev/null || break
    sleep 0.02
  done
  echo "$p"
}

# wait_grep FILE REGEX: waits (up to 60 s) until FILE has a line matching REGEX, polling
# every 5 ms. Returns 1 if the job ended or time ran out first.
wait_grep() {
  local i
  for i in $(seq 12000); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    kill -0 "$JOB" 2>/dev/null || { grep -qE "$2" "$1" 2>/dev/null; return; }
    sleep 0.005
  done
  return 1
}

# wait_file PATH: like wait_grep, for a file to appear.
wait_file() {
  local i
  for i in $(seq 12000); do
    [ -e "$1" ] && return 0
    kill -0 "$JOB" 2>/dev/null || { [ -e "$1" ]; return; }
    sleep 0.005
  done
  return 1
}

# The step number of a checkpoint path (step-00000123.ckpt -> 123).
ckpt_step() {
  local b
  b=$(basename "$1" .ckpt)
  echo $((10#${b#step-}))
}

# Path of checkpoint `step` in run dir $1.
ckpt_path() { printf '%s/checkpoints/step-%08d.ckpt' "$1" "$2"; }

# Shows the tail of a job's output when a check fails.
show() { say "--- $1 (last lines)"; tail -n "${2:-15}" "$1" | sed 's/^/    /'; }

# train_source OUT ARGS...: a 1-rank train of exp.yaml with ARGS (the model other checks
# start from), its output in OUT; the test ends at once if it fails.
train_source() {
  local out=$1 rc=0
  shift
  mpirun_t 1 "$TRAINER" train exp.yaml "$@" > "$out" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || { show "$out"; fail "train ($out): rc=$rc"; finish; }
}
