#!/usr/bin/env bash
# watchdog.sh: a rank that is alive but silent (SIGSTOP: a stuck filesystem, a node that stops
# answering) no longer hangs the job. comm.timeout_s is set tiny here (2 s).
#   1. SIGSTOP on rank 1 of 2: the job ends with status 4 within the limit; rank 0 says
#      rank 1 never arrived, at which step and collective; no trainer process is left.
#   2. The same on rank 2 of 4: every waiting rank names rank 2, and the others as waiting.
#   3. A pause shorter than the timeout (SIGSTOP 1 s, SIGCONT, timeout 4 s) is not a hang:
#      the run finishes with status 0 (the deadline is time without progress in one wait).
#   4. comm.timeout_s=0 is off: a 3 s pause with it off does not end the job.
. "$(dirname "$0")/../lib/lib.sh"
. "$TESTS_DIR/lib/ckpt_lib.sh"
write_small_exp exp.yaml
"$TRAINER" data prepare exp.yaml > prep.out 2>&1 || { cat prep.out; fail "data prepare"; finish; }
LIMIT=40

# Pid of MPI rank $2 among the descendants of $1 (the binary is trainer, or trainer_lsan
# under the sanitizers); empty until it exists.
rank_pid() {
  local p
  for p in $(descendants "$1"); do
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in trainer*) ;; *) continue ;; esac
    if grep -qx "OMPI_COMM_WORLD_RANK=$2" < <(tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null); then
      echo "$p"; return
    fi
  done
}

# stop_run NAME NP RANK TIMEOUT PAUSE: trains on NP ranks, SIGSTOPs RANK once step 5 is
# logged; PAUSE > 0 sends SIGCONT after PAUSE seconds. Sets JOB_RC and TOOK (seconds from
# the SIGSTOP to the end of the job).
stop_run() {
  local name=$1 np=$2 rank=$3 timeout_s=$4 pause=$5 steps=${6:-1000000} pid t0
  JOB_RC=-1 TOOK=-1
  timeout -k 5 $LIMIT mpirun --oversubscribe --bind-to none -np "$np" "$TRAINER" train exp.yaml \
    --set run.dir="$WORK/$name" --set train.steps=$steps --set log.every=1 \
    --set comm.timeout_s="$timeout_s" > "$name.out" 2>&1 &
  JOB=$!
  pid=$(wait_rank_pid "$rank")
  if [ -z "$pid" ] || ! wait_grep "$name.out" '^step +5/'; then
    show "$name.out"; fail "$name: training did not start"; kill -9 "$JOB" 2>/dev/null; return 1
  fi
  t0=$(date +%s.%N)
  kill -STOP "$pid"
  if [ "$pause" != 0 ]; then sleep "$pause"; kill -CONT "$pid"; fi
  job_wait
  TOOK=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  kill -CONT "$pid" 2>/dev/null || true; kill -9 "$pid" 2>/dev/null || true
}

left_over() { # trainer processes of this test still alive (by its private key file)
  local e p
  for e in /proc/[0-9]*/environ; do
    p=${e#/proc/}; p=${p%/environ}
    case "$(cat "/proc/$p/comm" 2>/dev/null)" in trainer*) ;; *) continue ;; esac
    grep -qxF "TRAINER_KEY_FILE=$TRAINER_KEY_FILE" < <(tr '\0' '\n' < "$e" 2>/dev/null) && echo "$p"
  done
  return 0
}

# check_hang NAME NP VICTIM: the job ended with 4 and every other rank named VICTIM.
check_hang() {
  local name=$1 np=$2 victim=$3 r others msg
  if [ "$JOB_RC" -eq 4 ]; then
    pass "$name: SIGSTOP on rank $victim of $np -> exit 4 after ${TOOK}s (comm.timeout_s=2)"
  else
    show "$name.out" 25; fail "$name: exit status $JOB_RC after ${TOOK}s, expected 4"
  fi
  # Each live rank names the victim as never arrived, and every other live rank as waiting:
  # at the same collective, or at the next one (an allreduce can complete on the ranks that
  # got the victim's part before it stopped).
  for r in $(seq 0 $((np - 1))); do
    [ "$r" = "$victim" ] && continue
    msg="^\[rank $r\] error: comm watchdog: no progress for [0-9.]+ s in [a-z ()]+ \(collective #[0-9]+\) at step [0-9]+ \(comm.timeout_s=2(, rank [0-9]+'s deadline first)?\): rank $victim never arrived"
    line=$(grep -m1 -E "$msg" "$name.out" || true)
    ok=1
    [ -n "$line" ] || ok=0
    for o in $(seq 0 $((np - 1))); do
      [ "$o" = "$r" ] || [ "$o" = "$victim" ] || [ "$ok" = 0 ] && continue
      grep -qE "waiting here too: ([0-9]+, )*$o[,;]|rank $o waits in " <<< "$line" || ok=0
    done
    if [ "$ok" = 1 ]; then
      pass "$name: rank $r says: $(grep -oE "no progress.*; ending" <<< "$line" | sed 's/; ending$//')"
    else
      show "$name.out" 25; fail "$name: rank $r did not name rank $victim as never arrived and the others as waiting"
    fi
  done
  sleep 0.5
  [ -z "$(left_over)" ] && pass "$name: no trainer process left" || { fail "$name: processes left: $(left_over | tr '\n' ' ')"; for p in $(left_over); do kill -CONT "$p"; kill -9 "$p"; done; }
}

stop_run hang2 2 1 2 0 && check_hang hang2 2 1
stop_run hang4 4 2 2 0 && check_hang hang4 4 2

# 3. A short pause is not a hang.
if stop_run pause 2 1 4 1 300; then
  if [ "$JOB_RC" -eq 0 ] && grep -q "^done: 300 steps" pause.out && ! grep -q "watchdog" pause.out; then
    pass "a 1 s SIGSTOP under comm.timeout_s=4: the run finishes (exit 0, no watchdog message)"
  else
    show pause.out; fail "1 s pause under a 4 s timeout: exit $JOB_RC"
  fi
fi
# 4. Off.
if stop_run off 2 1 0 3 300; then
  if [ "$JOB_RC" -eq 0 ] && grep -q "^done: 300 steps" off.out; then
    pass "comm.timeout_s=0: a 3 s SIGSTOP does not end the job"
  else
    show off.out; fail "comm.timeout_s=0: exit $JOB_RC"
  fi
fi
finish
