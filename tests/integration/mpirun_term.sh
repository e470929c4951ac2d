# mpirun_term.sh: SIGTERM or SIGINT (Ctrl-C) sent to mpirun itself (issue "Tried as a new user
# would", item 6). mpirun stops reading the ranks' output at once, signals them a second later
# and kills them a second after that; with a log line every step the ranks used to block on
# the full output pipe and die without a checkpoint. Now every rank stops at one step, rank 0
# checkpoints, and the ranks exit 75 (as $TRAINER_EXIT_FILE records). mpirun itself still
# exits 1 when it is signalled (Open MPI's rule, not changeable from the ranks): the exit
# file is how a script gets the 75, as cluster/train.sbatch does.
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml
for sig in TERM INT; do
  rm -f "exit-$sig.txt"
  TRAINER_EXIT_FILE="$WORK/exit-$sig.txt" mpirun --oversubscribe --bind-to none -np 2 \
    -x TRAINER_EXIT_FILE "$TRAINER" train exp.yaml --set run.dir="$WORK/run-$sig" \
    --set train.steps=10000000 --set log.every=1 --set checkpoint.every=0 > "$sig.out" 2> "$sig.err" &
  mp=$!
  for _ in $(seq 600); do grep -qE '^step +5/' "$sig.out" 2>/dev/null && break; sleep 0.1; done
  kill -"$sig" "$mp"
  rc=0; timeout 60 tail --pid="$mp" -f /dev/null || { kill -KILL "$mp"; fail "$sig: mpirun did not end"; }
  wait "$mp" || rc=$?
  status=$(sed -n 's/^status //p' "exit-$sig.txt" 2>/dev/null)
  step=$(sed -n 's/^step //p' "exit-$sig.txt" 2>/dev/null)
  ck="$WORK/run-$sig/checkpoints/$(printf 'step-%08d.ckpt' "${step:-0}")"
  if [ "$status" = 75 ] && "$TRAINER" checkpoint inspect "$ck" > inspect.out 2>&1 && grep -q "step $step " inspect.out; then
    pass "$sig to mpirun: the ranks checkpointed step $step and exited 75 (mpirun itself: $rc)"
  else
    fail "$sig to mpirun: exit file '$(cat "exit-$sig.txt" 2>/dev/null)', mpirun $rc, checkpoints: $(ls "$WORK/run-$sig/checkpoints" 2>&1)"
  fi
done
# cluster/mpirun-trainer: the same signals to the wrapper give the trainer's 75 as its status.
for sig in TERM INT; do
  # (a job started with & in a script ignores SIGINT; a terminal's Ctrl-C would not be ignored)
  env --default-signal=INT "$REPO_DIR/cluster/mpirun-trainer" --oversubscribe --bind-to none -np 2 "$TRAINER" train exp.yaml \
    --set run.dir="$WORK/wrap-$sig" --set train.steps=10000000 --set log.every=1 \
    --set checkpoint.every=0 > "wrap-$sig.out" 2> "wrap-$sig.err" &
  wp=$!
  for _ in $(seq 600); do grep -qE '^step +5/' "wrap-$sig.out" 2>/dev/null && break; sleep 0.1; done
  kill -"$sig" "$wp"
  rc=0; timeout 60 tail --pid="$wp" -f /dev/null || { kill -KILL "$wp"; fail "wrapper $sig: did not end"; }
  wait "$wp" || rc=$?
  if [ "$rc" = 75 ] && compgen -G "$WORK/wrap-$sig/checkpoints/step-*.ckpt" > /dev/null; then
    pass "$sig to cluster/mpirun-trainer: exit 75 with a checkpoint"
  else
    tail -3 "wrap-$sig.err"; fail "$sig to cluster/mpirun-trainer: exit $rc, checkpoints: $(ls "$WORK/wrap-$sig/checkpoints" 2>&1)"
  fi
done
finish
