# multihost.sh: ranks on two hosts that share no memory (issue "Scale out"). Two network
# namespaces joined by a veth pair (10.213.7.1 and .2, a private test subnet that exists only
# inside them) are the hosts, each with its own host name (unshare --uts). mpirun starts in
# one with a hostfile naming both, one rank per host, Open MPI restricted to TCP on that link;
# its remote shell (plm_rsh_agent) is tests/lib/netns_agent.sh, which runs the command inside
# the other namespace. Skips (77) where namespaces cannot be made (not root, no ip/unshare,
# a kernel or container that refuses them). The namespaces are removed on exit.
#
# Checks, against the same run over shared memory (one host, 2 ranks):
#   train.reproducible=true: final checkpoint bitwise identical, per-step log identical;
#   default mode: per-step losses within relative 1e-6, final validation metrics agree;
#   the trainer reports 2 hosts over TCP, 1 over shared memory;
#   binding: with Open MPI's default binding each "host" binds its rank to its core 0, both
#   the same physical core: the trainer warns (naming --bind-to none); with --bind-to none,
#   and over shared memory with the default binding (cores 0 and 1), it does not.
#   preempt: SIGUSR1 to mpirun on host A stops both ranks with a checkpoint (exit 75); a
#   resume over TCP ends bitwise where an uninterrupted shared-memory run does.
# Prints the mean comm wait (comm_share of the step lines) over TCP and over shared memory.
. "$(dirname "$0")/../lib/lib.sh"
[ -n "$CKPT_COMPARE" ] || { say "usage: multihost.sh TRAINER CKPT_COMPARE"; exit 2; }
skip() { say "SKIP: $*"; exit 77; }
. "$TESTS_DIR/lib/netns.sh"
NETNS_EXIT_ALSO='rm -rf "$WORK"'
netns_up || skip "$NETNS_WHY"
write_small_exp exp.yaml

# tcp NAME BIND ARGS...: `trainer train exp.yaml ARGS` from host A, one rank on each host;
# BIND is "none" or "default" (Open MPI's own binding).
tcp() {
  local name=$1 bind=$2 flags=(); shift 2
  [ "$bind" = none ] && flags+=(--bind-to none)
  on_hosts 120 "${flags[@]}" "$TRAINER" train exp.yaml --set run.dir="$WORK/$name" \
    --set log.every=1 "$@" > "$name.out" 2>&1 || { cat "$name.out"; fail "$name: mpirun over TCP failed"; return 1; }
}
# shm NAME BIND ARGS...: the same on this host, 2 ranks over shared memory.
shm() {
  local name=$1 bind=$2 flags=(-np 2); shift 2
  [ "$bind" = none ] && flags+=(--bind-to none)
  timeout -k 5 120 mpirun "${flags[@]}" "$TRAINER" train exp.yaml --set run.dir="$WORK/$name" \
    --set log.every=1 "$@" > "$name.out" 2>&1 || { cat "$name.out"; fail "$name: mpirun over shared memory failed"; return 1; }
}
# "step loss action_nll time_nll eng_mse grad_norm lr" per step line; and the comm_share.
step_fields() {
  sed -n 's/.*"event":"step","step":\([0-9]*\),"loss":\([^,]*\),"action_nll":\([^,]*\),"time_nll":\([^,]*\),"eng_mse":\([^,]*\),"grad_norm":\([^,]*\),"lr":\([^,]*\),.*/\1 \2 \3 \4 \5 \6 \7/p' "$WORK/$1/log.jsonl"
}
mean_comm_share() {
  sed -n 's/.*"event":"step".*"comm_share":\([^,]*\),.*/\1/p' "$WORK/$1/log.jsonl" |
    awk '{ s += $1; n++ } END { printf "%.1f%%", n ? 100 * s / n : -1 }'
}

# 1. Reproducible mode: bitwise the same model over TCP as over shared memory.
if shm shm_repro none --set train.reproducible=true && tcp tcp_repro none --set train.reproducible=true; then
  ckpt=checkpoints/step-00000020.ckpt
  "$CKPT_COMPARE" "$WORK/shm_repro/$ckpt" "$WORK/tcp_repro/$ckpt" > cmp.txt 2>&1 &&
    pass "reproducible: TCP checkpoint bitwise equal to shared memory ($(grep -o 'params.*' cmp.txt | head -1))" ||
    { cat cmp.txt; fail "reproducible: TCP checkpoint differs from shared memory"; }
  step_fields shm_repro > shm_repro.text; step_fields tcp_repro > tcp_repro.text
  [ "$(wc -l < shm_repro.text)" = 20 ] && cmp -s shm_repro.text tcp_repro.text &&
    pass "reproducible: per-step losses, grad_norm and lr identical as text (20 steps)" ||
    { diff shm_repro.text tcp_repro.text | head -5; fail "reproducible: per-step log differs"; }
  grep -q "2 ranks (mpirun) on 2 hosts" tcp_repro.out && pass "TCP run: $(grep -o '2 ranks.*hosts' tcp_repro.out)" ||
    { head -3 tcp_repro.out; fail "TCP run did not report 2 ranks on 2 hosts"; }
  grep -q "2 ranks (mpirun) on 1 host," shm_repro.out || { head -3 shm_repro.out; fail "shared-memory run did not report 1 host"; }
fi

# 2. Default mode: the same metrics (the float sums of 2 ranks do not depend on the link).
if shm shm_default none && tcp tcp_default none; then
  step_fields shm_default > a.steps; step_fields tcp_default > b.steps
  report=$(paste -d' ' a.steps b.steps | awk '
    function rel(x, y) { d = x - y; if (d < 0) d = -d; s = (x < 0 ? -x : x); return s > 0 ? d / s : d }
    { n++; if ($1 != $8 || $7 != $14) bad = 1
      for (i = 2; i <= 6; i++) { r = rel($i, $(i + 7)); if (r > w) w = r } }
    END { printf "%d steps, max rel diff %.2e", n, w; exit (bad || n != 20 || w > 1e-6) }') &&
    pass "default mode: TCP per-step metrics == shared memory ($report)" || fail "default mode: per-step metrics differ ($report)"
  va=$(sed -n 's/.*"valid":{\(.*\)}}.*/\1/p' "$WORK/shm_default/metrics.json")
  vb=$(sed -n 's/.*"valid":{\(.*\)}}.*/\1/p' "$WORK/tcp_default/metrics.json")
  [ -n "$va" ] && [ "$va" = "$vb" ] && pass "default mode: final validation metrics identical" ||
    fail "default mode: validation metrics differ: '$va' vs '$vb'"
  say "comm wait (mean comm_share of 20 steps, H=16): TCP $(mean_comm_share tcp_default), shared memory $(mean_comm_share shm_default)"
fi

# 3. Binding: two "hosts" of one machine each bind their rank to core 0.
warning="are bound to [0-9]+ CPUs? .* of one machine"
if tcp tcp_bound default --set train.steps=3; then
  grep -qE "$warning" tcp_bound.out && pass "default binding over two namespaces warns: $(grep -m1 -oE '[0-9]+ ranks \(.*one machine' tcp_bound.out)" ||
    { head -5 tcp_bound.out; fail "default binding over two namespaces (both ranks on core 0): no warning"; }
fi
grep -qE "$warning" tcp_repro.out shm_repro.out 2> /dev/null && fail "a warning about shared CPUs with --bind-to none"
if [ "$(getconf _NPROCESSORS_ONLN)" -ge 2 ] && shm shm_bound default --set train.steps=3; then
  ! grep -qE "$warning" shm_bound.out && pass "default binding on one host (cores 0 and 1): no warning" ||
    { grep -E "$warning" shm_bound.out; fail "default binding on one host: a false warning"; }
fi

# 4. Preempt and resume across the hosts: SIGUSR1 to mpirun on host A once step 5 is logged
# (it forwards the signal to both ranks, the remote one through its daemon): exit 75 with a
# checkpoint; `--resume` over TCP then ends bitwise where 400 uninterrupted steps over shared
# memory do. A run that ends before the signal lands (a loaded machine) is tried again.
. "$TESTS_DIR/lib/ckpt_lib.sh"
LONG=(--set train.reproducible=true --set train.steps=400 --set checkpoint.every=0)
if shm shm_long none "${LONG[@]}"; then
  for try in 1 2 3; do
    rm -rf "$WORK/tcp_long"
    on_hosts 120 --bind-to none "$TRAINER" train exp.yaml --set run.dir="$WORK/tcp_long" \
      --set log.every=1 "${LONG[@]}" > tcp_long.out 2>&1 &
    JOB=$!
    pid=$(wait_rank_pid mpirun)
    wait_grep tcp_long.out '^step +5/' && [ -n "$pid" ] && kill -USR1 "$pid" || true
    job_wait
    [ "$JOB_RC" -eq 0 ] || break
    say "tcp_long: the run ended before the signal landed (attempt $try)"
  done
  k=$(sed -n 's/^stop requested by a signal: checkpointing at step \([0-9]*\) .*/\1/p' tcp_long.out)
  if [ "$JOB_RC" -eq 75 ] && [ -n "$k" ]; then
    if on_hosts 120 --bind-to none "$TRAINER" train exp.yaml --set run.dir="$WORK/tcp_long" \
        --set log.every=1 "${LONG[@]}" --resume > tcp_resume.out 2>&1; then
      ckpt=checkpoints/step-00000400.ckpt
      "$CKPT_COMPARE" "$WORK/shm_long/$ckpt" "$WORK/tcp_long/$ckpt" > cmp_long.txt 2>&1 &&
        pass "preempted over TCP at step $k (SIGUSR1 to mpirun, exit 75), resumed on both hosts: step 400 bitwise equal to shared memory" ||
        { cat cmp_long.txt; fail "preempt + resume over TCP: step-400 checkpoint differs from shared memory"; }
    else
      show tcp_resume.out; fail "resume over TCP failed"
    fi
  else
    show tcp_long.out; fail "SIGUSR1 to mpirun over TCP: exit $JOB_RC (want 75 and a stop step)"
  fi
fi
finish
