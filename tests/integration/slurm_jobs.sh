# slurm_jobs.sh: the batch path on a real one-node Slurm (cluster/slurm-local.sh), with the
# project's own job scripts exactly as a user submits them:
#   1. cluster/train.sbatch, 2 tasks, ranks by mpirun: finishes with its metrics
#   2. the same with LAUNCH=srun (srun --mpi=pmix)
#   3. a 4-trial sweep over a job array (cluster/sweep.sbatch): all DONE, summary table
#   4. preemption: `scancel --batch -s USR1` mid-run -> checkpoint, exit 75, requeue, resume,
#      and the final parameters equal an uninterrupted run's, bit for bit
#   5. scancel (SIGTERM to every process of the job, mpirun too): the ranks checkpoint; the
#      script reports the trainer's 75 (not mpirun's 1), says where it stopped, explains Open
#      MPI's non-zero-status block, does not requeue; the checkpoint is valid
#   6. scontrol requeue (SIGTERM, then Slurm reruns the job): the rerun resumes from that
#      checkpoint and finishes; metrics.json gives train_seconds over both segments
# Skips (77) where it cannot run: not root, no mpirun, no Slurm and no apt-get.
CMP=$(readlink -f "$2")
. "$(dirname "$0")/../lib/lib.sh"
KIT=$REPO_DIR/cluster/slurm-local.sh
export PATH=$PATH:/usr/sbin:/sbin
[ "$(id -u)" = 0 ] || { say "SKIP: needs root"; exit 77; }
command -v mpirun >/dev/null || { say "SKIP: needs mpirun"; exit 77; }
if ! command -v sbatch >/dev/null && ! command -v apt-get >/dev/null; then say "SKIP: no Slurm, no apt-get"; exit 77; fi
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SALLOC|SRUN)_' || true)

port=6937
while command -v ss >/dev/null && ! { port_free "$port" && port_free $((port + 1)); }; do
  port=$((port + 2)); [ "$port" -lt 7099 ] || { say "FAIL: no free port pair"; exit 1; }
done
chmod 755 "$WORK"
export SLURM_LOCAL_DIR=$WORK/slurm SLURM_LOCAL_CTLD_PORT=$port SLURM_LOCAL_SLURMD_PORT=$((port + 1))
export SLURM_LOCAL_CPUS=4 # two 2-task trials side by side on 2 cores
trap 'bash "$KIT" down >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
trap 'exit 143' TERM INT HUP
bash "$KIT" up >/dev/null 2>&1 || { bash "$KIT" up; fail "slurm-local.sh up"; finish; }
eval "$(bash "$KIT" env)"
export TRAINER # the job scripts run this binary
submit() { sbatch --parsable "$@"; }

cat > exp.yaml <<YAML
run:
  dir: $WORK/run
data:
  source: synth
  categorical_cols: [content]
  numeric_cols: [engagement]
  engagement_col: engagement
  virtual_shards: 8
  shard_dir: $WORK/shards
synth:
  users: 300
  min_events: 10
  max_events: 60
  out_dir: $WORK/synth
model:
  hidden: 16
train:
  batch_size: 16
  window: 8
  steps: 60
log:
  every: 20
eval:
  every: 0
YAML

# 1 and 2: training jobs.
for launch in mpirun srun; do
  j=$(LAUNCH=$launch submit -n 2 "$REPO_DIR/cluster/train.sbatch" exp.yaml --set run.dir="$WORK/run-$launch")
  if bash "$KIT" wait "$j" 180 && grep -q "^validation: action_nll" "lstm-train-$j.out" \
     && grep -q "on 2 ranks" "lstm-train-$j.out" && [ -f "run-$launch/metrics.json" ]; then
    pass "train.sbatch with $launch: 2 ranks, finished with metrics"
  else
    cat "lstm-train-$j.out" 2>/dev/null; fail "train.sbatch with $launch"
  fi
done

# 3: a sweep over a job array.
cat > sweep.yaml <<'YAML'
base: exp.yaml
seed: 3
trials: 2
set:
  train.steps: 30
grid:
  model.hidden: [8, 16]
random:
  train.lr: {dist: loguniform, low: 0.001, high: 0.01}
YAML
"$TRAINER" sweep plan sweep.yaml sweep > plan.out || { cat plan.out; fail "sweep plan"; }
j=$(submit --array=0-3 "$REPO_DIR/cluster/sweep.sbatch" sweep)
if bash "$KIT" wait "$j" 240 && "$TRAINER" sweep summary sweep > summary.out \
   && grep -q "4 trials, 4 done, 0 failed" summary.out && grep -q "^best: trial-" summary.out; then
  pass "sweep over a 4-task array: all DONE, summary with the best trial"
else
  cat summary.out lstm-sweep-*.out 2>/dev/null; fail "sweep over a job array"
fi

# 4: preemption and requeue.
long=(--set train.steps=3000 --set checkpoint.every=1000)
j=$(submit -n 2 "$REPO_DIR/cluster/train.sbatch" exp.yaml --set run.dir="$WORK/pre" "${long[@]}")
for _ in $(seq 300); do grep -q '"event":"step"' pre/log.jsonl 2>/dev/null && break; sleep 0.1; done
scancel --batch -s USR1 "$j"
if bash "$KIT" wait "$j" 240 && grep -qE "checkpointed on a signal at step [0-9]+: requeueing" "lstm-train-$j.out" \
   && grep -q "resume: continuing from" "lstm-train-$j.out"; then
  pass "USR1 -> checkpoint, exit 75, requeue, resume ($(grep -o 'checkpointing at step [0-9]*' "lstm-train-$j.out"))"
else
  cat "lstm-train-$j.out"; fail "preemption and requeue"
fi
mpirun_n 2 "$TRAINER" train exp.yaml --set run.dir="$WORK/ref" "${long[@]}" > ref.out 2>&1 || { cat ref.out; fail "reference run"; }
if "$CMP" ref/checkpoints/step-00003000.ckpt pre/checkpoints/step-00003000.ckpt > cmp.out; then
  pass "preempted + requeued run ends with the uninterrupted run's parameters, bit for bit"
else
  cat cmp.out; fail "preempted run differs from the uninterrupted one"
fi

# 5 and 6: SIGTERM by scancel and by scontrol requeue. The runs are long enough in steps that
# the signal lands mid-run on an idle machine too (this model trains ~15k steps/s there):
# the scancel'd one would take minutes, the requeued one ~10 s after its resume.
started() { for _ in $(seq 300); do grep -q '"event":"step"' "$1/log.jsonl" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
j=$(submit -n 2 "$REPO_DIR/cluster/train.sbatch" exp.yaml --set run.dir="$WORK/term" \
  --set train.steps=2000000 --set checkpoint.every=100000 --set log.every=1000)
started term; sleep 1
scancel "$j"
bash "$KIT" wait "$j" 120 || true
out="lstm-train-$j.out"
k=$(sed -n 's/^checkpointed on SIGTERM at step \([0-9]*\) .*/\1/p' "$out")
if grep -qE "^launcher exit status 1, trainer exit status 75 \(rank 0\)|^trainer exit status 75" "$out" && [ -n "$k" ] \
   && grep -q "^note: status 75 is a planned stop" "$out" && ! grep -q "did not checkpoint" "$out" \
   && ! grep -q "requeueing" "$out" && "$TRAINER" checkpoint inspect "$(printf 'term/checkpoints/step-%08d.ckpt' "$k")" > insp.out 2>&1; then
  pass "scancel: $(grep -m1 -E '^(launcher|trainer) exit status' "$out" | cut -c1-80); checkpoint at step $k valid; not requeued"
else
  cat "$out"; ls term/checkpoints 2>/dev/null; fail "scancel (SIGTERM): status or message wrong"
fi
j=$(submit -n 2 "$REPO_DIR/cluster/train.sbatch" exp.yaml --set run.dir="$WORK/rq" --set train.steps=150000 \
  --set checkpoint.every=50000 --set log.every=1000)
started rq; sleep 1
scontrol requeue "$j"
out="lstm-train-$j.out"
if bash "$KIT" wait "$j" 240 && grep -q "^checkpointed on SIGTERM at step" "$out" && grep -q "resume: continuing from" "$out" \
   && grep -q "^validation: action_nll" "$out" \
   && python3 -c "import json,sys; m=json.load(open('rq/metrics.json')); s=m['train_segments']; assert len(s)==2 and s[1]['from_step']==s[0]['to_step']>0 and s[0]['exit']==75 and s[1]['to_step']==150000 and abs(m['train_seconds']-sum(x['train_seconds'] for x in s))<0.01, m" 2> seg.err; then
  pass "scontrol requeue: checkpoint on SIGTERM, rerun resumed and finished; metrics.json: $(python3 -c "import json; m=json.load(open('rq/metrics.json')); print('train_seconds', m['train_seconds'], 'segments', m['train_segments'])")"
else
  cat "$out" seg.err; fail "scontrol requeue: no resume to the end, or metrics.json segments wrong"
fi
finish
