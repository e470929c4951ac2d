# multihost_comm.sh: comm wait of a training run over TCP between two hosts (network
# namespaces of this machine, tests/lib/netns.sh) vs over shared memory, 2 ranks each,
# `--bind-to none`, runs interleaved. Usage:
#   bash tests/bench/multihost_comm.sh build/trainer [EXPERIMENT.yaml] [REPEATS] [--set K=V...]
# Prints per run the mean comm_share of the logged steps and events/s, then the medians.
. "$(dirname "$0")/../lib/lib.sh"
EXP=$(readlink -f "${1:-$REPO_DIR/configs/default.yaml}"); REPEATS=${2:-3}; shift 2 || shift $#
. "$TESTS_DIR/lib/netns.sh"
NETNS_EXIT_ALSO='rm -rf "$WORK"'
netns_up || { say "SKIP: $NETNS_WHY"; exit 77; }
# comm_share mean over the step lines and train_events_per_s of run dir $1.
figures() {
  local share eps
  share=$(sed -n 's/.*"event":"step".*"comm_share":\([^,]*\),.*/\1/p' "$1/log.jsonl" | awk '{ s += $1; n++ } END { printf "%.3f", s / n }')
  eps=$(sed -n 's/.*"train_events_per_s":\([0-9.]*\).*/\1/p' "$1/metrics.json")
  echo "$share $eps"
}
say "experiment $EXP, $REPEATS repeats, load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$REPEATS"); do
  mpirun -np 2 --bind-to none "$TRAINER" train "$EXP" --set run.dir="$WORK/shm$i" --set log.every=10 "$@" > shm$i.out 2>&1 || { cat shm$i.out; exit 1; }
  on_hosts 600 --bind-to none "$TRAINER" train "$EXP" --set run.dir="$WORK/tcp$i" --set log.every=10 "$@" > tcp$i.out 2>&1 || { cat tcp$i.out; exit 1; }
  say "run $i: shared memory $(figures "$WORK/shm$i")  TCP $(figures "$WORK/tcp$i")  (comm_share, events/s)"
  figures "$WORK/shm$i" >> shm.fig; figures "$WORK/tcp$i" >> tcp.fig
done
med() { sort -g -k"$2" "$1" | awk -v k="$2" '{ v[NR] = $k } END { print v[int((NR + 1) / 2)] }'; }
say "median comm wait: shared memory $(med shm.fig 1), TCP $(med tcp.fig 1); events/s: shared memory $(med shm.fig 2), TCP $(med tcp.fig 2); load $(cut -d' ' -f1-3 /proc/loadavg)"
