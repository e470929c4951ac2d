# slurm_2node.sh: cluster/train.sbatch on a real two-node Slurm (issue 20). The nodes are two
# network namespaces of this machine (tests/lib/slurm_netns.sh: a bridge and veth links on a
# private test subnet, 10.213.8.0/24, that exists only on them; slurmctld in the root
# namespace, one slurmd per node namespace). `sbatch -N2 -n2 cluster/train.sbatch`, once with
# ranks by mpirun (its daemon on the second node started through srun) and once with
# LAUNCH=srun (srun --mpi=pmix), both jobs at the same time, one rank per node, reproducible
# mode. Each job is preempted mid-run (`scancel --batch -s USR1`: the ranks checkpoint, exit
# 75, the script requeues the job), runs again on both nodes, resumes from the checkpoint and
# must end with the parameters of the same training on one host (2 ranks over shared memory),
# bit for bit (tests/tools/ckpt_compare).
# Skips (77) where it cannot run: not root, no namespaces or bridge here, no Slurm and no
# apt-get to install it. Namespaces, daemons and files are removed at exit, also on failure.
. "$(dirname "$0")/../lib/lib.sh"
[ -n "$CKPT_COMPARE" ] || { say "usage: slurm_2node.sh TRAINER CKPT_COMPARE"; exit 2; }
skip() { say "SKIP: $*"; exit 77; }
export PATH=$PATH:/usr/sbin:/sbin
KIT=$REPO_DIR/cluster/slurm-local.sh
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, munged, slurmd)"
if ! command -v sbatch > /dev/null || ! command -v slurmd > /dev/null || ! command -v munged > /dev/null; then
  command -v apt-get > /dev/null || skip "Slurm is not installed and there is no apt-get"
  SLURM_LOCAL_DIR=$WORK/install bash "$KIT" install || { fail "installing Slurm"; finish; }
fi
# A caller's Slurm settings (say, this test run inside a Slurm job) stay out.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SALLOC|SRUN)_' || true)
. "$TESTS_DIR/lib/slurm_netns.sh"
S2N_EXIT_ALSO='rm -rf "$WORK"'
trap 'exit 143' TERM INT HUP # the EXIT trap still takes the cluster and namespaces down
s2n_net_up || skip "$S2N_WHY"
s2n_daemons || { s2n_logs; fail "two-node cluster: $S2N_WHY"; finish; }
say "two nodes up: $(sinfo -h -N -o '%N %T' | tr '\n' ' ')(slurmctld port $S2N_CTLD_PORT)"
write_small_exp exp.yaml
# The shards once, before three runs start that would each prepare them.
"$TRAINER" data prepare exp.yaml > prepare.out 2>&1 || { show prepare.out; fail "data prepare"; finish; }
# Long enough that the preemption lands mid-run (2000 steps take about 0.6 s over the link on
# an idle machine; the signal, 0.3..1 s after the first logged step).
STEPS=6000
LONG=(--set train.reproducible=true --set "train.steps=$STEPS" --set log.every=10)
# Everything below ends by then, well within CTest's limit (whose SIGKILL skips the clean-up).
DEADLINE=$((SECONDS + 150))
left() { local n=$((DEADLINE - SECONDS)); echo $((n > 1 ? n : 1)); }
# The one-host reference (shared memory: before the jobs' Open MPI settings), while the jobs run.
mpirun_limit 120 2 "$TRAINER" train exp.yaml --set run.dir="$WORK/ref" "${LONG[@]}" > ref.out 2>&1 &
ref=$!

s2n_env
export TRAINER # the job script runs this binary

declare -A job
for launch in mpirun srun; do
  job[$launch]=$(LAUNCH=$launch sbatch --parsable -N2 -n2 "$REPO_DIR/cluster/train.sbatch" exp.yaml \
    --set run.dir="$WORK/$launch" "${LONG[@]}")
done
# Preempt each job once its ranks train (the first step line is logged).
for launch in mpirun srun; do
  while [ "$SECONDS" -lt "$DEADLINE" ] && ! grep -q '"event":"step"' "$launch/log.jsonl" 2> /dev/null; do sleep 0.05; done
  scancel --batch -s USR1 "${job[$launch]}"
done
ref_rc=0
wait "$ref" || ref_rc=$?
[ "$ref_rc" = 0 ] && grep -q "2 ranks (mpirun) on 1 host," ref.out || { show ref.out; fail "one-host reference run: exit $ref_rc"; ref_rc=1; }

final=$(printf 'checkpoints/step-%08d.ckpt' "$STEPS")
for launch in mpirun srun; do
  j=${job[$launch]} out=lstm-train-${job[$launch]}.out
  st=$(bash "$KIT" wait "$j" "$(left)") || { cat "$out" 2> /dev/null; fail "$launch job: $st"; continue; }
  k=$(sed -n 's/^checkpointed on a signal at step \([0-9]*\): requeueing.*/\1/p' "$out")
  runs=$(grep -c "^job $j run [01]: 2 tasks on $S2N_NODE_A,$S2N_NODE_B:" "$out" || true)
  if [ -n "$k" ] && [ "$runs" = 2 ] && grep -q "^resume: continuing from .*step-$(printf %08d "${k:-0}").ckpt" "$out" &&
    [ "$(grep -c "2 ranks ($launch) on 2 hosts" "$out")" = 2 ]; then
    pass "$launch: 2 ranks on 2 nodes, preempted at step $k (exit 75), requeued, resumed on both nodes"
  else
    cat "$out"; fail "$launch: no preempt + requeue + resume on 2 hosts (stop step '$k', runs $runs)"
  fi
  if [ "$ref_rc" = 0 ] && "$CKPT_COMPARE" "$WORK/ref/$final" "$WORK/$launch/$final" > "cmp-$launch.txt" 2>&1; then
    pass "$launch: step $STEPS bitwise equal to one host ($(grep -o 'params.*' "cmp-$launch.txt" | head -1))"
  else
    cat "cmp-$launch.txt"; fail "$launch: final parameters differ from the one-host run"
  fi
done
say "wall time ${SECONDS} s (load: $(cut -d' ' -f1-3 /proc/loadavg))"
finish
