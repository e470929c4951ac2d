# slurm_netns.sh: a two-node Slurm on this machine whose nodes are network namespaces, for
# tests/integration/slurm_2node.sh. Source it after lib.sh, then:
#   s2n_net_up || skip "$S2N_WHY"   the namespaces and the bridge (S2N_WHY: why not here);
#                                   everything made here is removed at exit (also on failure),
#                                   then $S2N_EXIT_ALSO runs
#   s2n_daemons || fail "$S2N_WHY"  munged, slurmctld, one slurmd per node, until both are idle
#   s2n_env                         the submitting shell's settings (SLURM_CONF, Open MPI's)
#
# The network: a bridge in the root namespace (10.213.8.1, where slurmctld listens) and one
# veth per node namespace (10.213.8.2 and .3), a private test subnet that exists only on the
# links made here. Each slurmd runs in its node's network namespace through
# `nsenter --net=/run/netns/NS` (not `ip netns exec`, which remounts /sys and so hides the
# cgroups) and in a UTS namespace of its own, so a node's jobs see the node's name as host name.
# Both nodes share the file system: each has its own slurm.conf copy (its own TmpFS: the pmix
# plugin puts its per-step directories under TmpFS, /tmp otherwise, and two nodes would
# collide there; its own log and pid file), with DebugFlags=NO_CONF_HASH since the copies
# differ; SlurmdSpoolDir names each node's own directory through %n.
S2N_NET=10.213.8 S2N_SUBNET=10.213.8.0/24
S2N_NS_A=s2n$$a S2N_NS_B=s2n$$b S2N_BR=s2n$$br
S2N_NODE_A=s2n$$a S2N_NODE_B=s2n$$b
S2N_DIR=$WORK/slurm2n
S2N_DAEMON_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)

# s2n_pid NAME: the pid in S2N_DIR/run/NAME.pid if that process still runs from this DIR.
s2n_pid() {
  local pid cmd
  pid=$(cat "$S2N_DIR/run/$1.pid" 2> /dev/null) || return 1
  pid=${pid//[!0-9]/}
  [ -n "$pid" ] || return 1
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2> /dev/null) || return 1
  case "$cmd" in *"$S2N_DIR/"*) echo "$pid" ;; *) return 1 ;; esac
}

# s2n_stop NAME: TERM the daemon of that pid file, KILL it after 10 s.
s2n_stop() {
  local pid i
  pid=$(s2n_pid "$1") || return 0
  kill -TERM "$pid" 2> /dev/null || true
  for ((i = 0; i < 100; i++)); do s2n_pid "$1" > /dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2> /dev/null || true
}

s2n_down() {
  local i ids
  local -x SLURM_CONF=$S2N_DIR/etc/slurm.conf
  if s2n_pid slurmctld > /dev/null; then
    ids=$(squeue -h -o %A 2> /dev/null | tr '\n' ' ') || true
    # shellcheck disable=SC2086 # a list of job ids
    [ -z "${ids// /}" ] || scancel $ids 2> /dev/null || true
    for ((i = 0; i < 150; i++)); do [ -z "$(squeue -h -o %A 2> /dev/null)" ] && break; sleep 0.1; done
  fi
  s2n_stop "slurmd-$S2N_NODE_A"; s2n_stop "slurmd-$S2N_NODE_B"
  s2n_stop slurmctld; s2n_stop munged
  ip netns del "$S2N_NS_A" 2> /dev/null || true
  ip netns del "$S2N_NS_B" 2> /dev/null || true
  ip link del "$S2N_BR" 2> /dev/null || true
}

# s2n_stale: the bridge and namespaces of an earlier run that was killed before its EXIT trap
# (SIGKILL at a CTest timeout), where that run's pid is gone: a second bridge on the subnet
# would take part of its traffic.
s2n_stale() {
  local br pid
  for br in $(ip -o link show type bridge 2> /dev/null | sed -n 's/^[0-9]*: \(s2n[0-9]*br\)[:@].*/\1/p'); do
    pid=${br#s2n} pid=${pid%br}
    if [ "$pid" = $$ ] || kill -0 "$pid" 2> /dev/null; then continue; fi
    ip link del "$br" 2> /dev/null || true
    ip netns del "s2n${pid}a" 2> /dev/null || true
    ip netns del "s2n${pid}b" 2> /dev/null || true
  done
}

# s2n_net: the namespaces, the bridge and one veth pair per namespace.
s2n_net() {
  local ns host ip err
  err=$(ip netns add "$S2N_NS_A" 2>&1 && ip netns add "$S2N_NS_B" 2>&1) ||
    { S2N_WHY="cannot create a network namespace here: $err"; return 1; }
  err=$(nsenter --net="/run/netns/$S2N_NS_A" unshare --uts true 2>&1) ||
    { S2N_WHY="nsenter --net or unshare --uts refused: $err"; return 1; }
  err=$(ip link add "$S2N_BR" type bridge 2>&1) || { S2N_WHY="no bridge device: $err"; return 1; }
  ip addr add "$S2N_NET.1/24" dev "$S2N_BR" && ip link set "$S2N_BR" up ||
    { S2N_WHY="could not set up the bridge"; return 1; }
  for ns in "$S2N_NS_A:2" "$S2N_NS_B:3"; do
    ip=${ns#*:} ns=${ns%:*} host=${ns}h
    err=$(ip link add "$host" type veth peer name "$ns" 2>&1) || { S2N_WHY="no veth pair: $err"; return 1; }
    ip link set "$host" master "$S2N_BR" && ip link set "$host" up && ip link set "$ns" netns "$ns" &&
      ip -n "$ns" addr add "$S2N_NET.$ip/24" dev "$ns" && ip -n "$ns" link set "$ns" up &&
      ip -n "$ns" link set lo up || { S2N_WHY="could not set up the veth link of $ns"; return 1; }
  done
}

# s2n_conf FILE NODE: the slurm.conf of NODE (ctl: slurmctld's and the submitting shell's).
s2n_conf() {
  local d=$S2N_DIR node=$2
  [ "$node" = ctl ] || mkdir -p "$d/spool-$node" "$d/tmp-$node"
  [ -r "$REPO_DIR/cluster/slurm-common.conf" ] || { S2N_WHY="$REPO_DIR/cluster/slurm-common.conf: missing"; return 1; }
  cat > "$1" << CONF
# slurm.conf of $node, written by tests/lib/slurm_netns.sh.
ClusterName=trainer2n
# slurmctld takes "localhost" as its own name; the nodes reach it at the bridge's address.
SlurmctldHost=localhost($S2N_NET.1)
SlurmctldPort=$S2N_CTLD_PORT
SlurmdPort=$S2N_SLURMD_PORT
# A requeued job runs again cred_expire + 1 s later (5 is Slurm's minimum).
AuthInfo=socket=$d/munge/munge.socket,cred_expire=5
StateSaveLocation=$d/state
# %n, not the node's name spelt out: the pmix plugin reaches a peer's slurmstepd through this
# path with %n expanded to the peer's name (spelt out, a node would send to itself).
SlurmdSpoolDir=$d/spool-%n
TmpFS=$d/tmp-$node
DebugFlags=NO_CONF_HASH
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmdPidFile=$d/run/slurmd-$node.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd-$node.log
JobAcctGatherType=jobacct_gather/none
$(sed "s|@LOG@|$d/log|" "$REPO_DIR/cluster/slurm-common.conf")
# Both nodes claim 2 CPUs of this machine's cores, whatever it has.
SlurmdParameters=config_overrides
NodeName=$S2N_NODE_A NodeAddr=$S2N_NET.2 CPUs=2 RealMemory=1000 State=UNKNOWN
NodeName=$S2N_NODE_B NodeAddr=$S2N_NET.3 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=two Nodes=$S2N_NODE_A,$S2N_NODE_B Default=YES MaxTime=INFINITE State=UP
CONF
}

# s2n_wait SECS CMD...: poll CMD every 0.1 s.
s2n_wait() {
  local i n=$(($1 * 10))
  shift
  for ((i = 0; i < n; i++)); do "$@" && return 0; sleep 0.1; done
  return 1
}
s2n_munge_ok() { munge -n -S "$S2N_DIR/munge/munge.socket" 2> /dev/null | unmunge -S "$S2N_DIR/munge/munge.socket" > /dev/null 2>&1; }
s2n_ctld_ok() { grep -q 'is UP' < <(scontrol ping 2> /dev/null); }
s2n_nodes_ok() { [ "$(sinfo -h -N -t idle -o %N 2> /dev/null | sort -u | wc -l)" = 2 ]; }
s2n_logs() { local f; for f in "$S2N_DIR"/log/*; do [ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done; }

# s2n_daemons: munged and slurmctld in the root namespace, a slurmd in each node namespace.
s2n_daemons() {
  local d=$S2N_DIR node ns
  mkdir -p "$d/etc" "$d/munge" "$d/state" "$d/run" "$d/log"
  chmod 700 "$d/state"
  dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
  chmod 600 "$d/munge/munge.key"
  "${S2N_DAEMON_ENV[@]}" munged --socket="$d/munge/munge.socket" --key-file="$d/munge/munge.key" \
    --pid-file="$d/run/munged.pid" --log-file="$d/log/munged.log" --seed-file="$d/munge/seed" ||
    { S2N_WHY="munged did not start"; return 1; }
  s2n_wait 20 s2n_munge_ok || { S2N_WHY="munged does not answer"; return 1; }
  s2n_conf "$d/etc/slurm.conf" ctl || return 1
  "${S2N_DAEMON_ENV[@]}" slurmctld -c -f "$d/etc/slurm.conf" > "$d/log/slurmctld.stdout" 2>&1 ||
    { S2N_WHY="slurmctld did not start"; return 1; }
  s2n_wait 30 s2n_ctld_ok || { S2N_WHY="slurmctld does not answer"; return 1; }
  for node in "$S2N_NODE_A:$S2N_NS_A" "$S2N_NODE_B:$S2N_NS_B"; do
    ns=${node#*:} node=${node%:*}
    s2n_conf "$d/etc/slurm-$node.conf" "$node" || return 1
    "${S2N_DAEMON_ENV[@]}" nsenter --net="/run/netns/$ns" unshare --uts /bin/sh -c \
      'hostname "$0" && exec "$@"' "$node" slurmd -f "$d/etc/slurm-$node.conf" -N "$node" \
      > "$d/log/slurmd-$node.stdout" 2>&1 || { S2N_WHY="slurmd $node did not start"; return 1; }
  done
  s2n_wait 30 s2n_nodes_ok || { S2N_WHY="the nodes are not idle after 30 s"; return 1; }
}

s2n_net_up() {
  S2N_WHY=""
  [ "$(id -u)" -eq 0 ] || { S2N_WHY="network namespaces and slurmd need root; not root here"; return 1; }
  local tool
  for tool in ip nsenter unshare munged slurmctld slurmd sbatch scontrol sinfo squeue mpirun; do
    command -v $tool > /dev/null || { S2N_WHY="no '$tool' here"; return 1; }
  done
  export SLURM_CONF=$S2N_DIR/etc/slurm.conf
  S2N_CTLD_PORT=7137 S2N_SLURMD_PORT=7138 # slurmd: inside the node namespaces, free there
  while ! port_free "$S2N_CTLD_PORT"; do
    S2N_CTLD_PORT=$((S2N_CTLD_PORT + 2))
    [ "$S2N_CTLD_PORT" -lt 7199 ] || { S2N_WHY="no free port in 7137..7199"; return 1; }
  done
  trap 's2n_down > /dev/null 2>&1; eval "${S2N_EXIT_ALSO:-}"' EXIT
  mkdir -p "$S2N_DIR" && chmod 755 "$WORK" "$S2N_DIR" # munged: every directory above searchable
  s2n_stale
  s2n_net
}

# The settings of the shell that submits (sbatch passes its environment on to the job):
# Open MPI's TCP links (ranks and mpirun's daemons) on the test subnet only, shared memory off
# (the ranks are on different "hosts"), no binding (both nodes' cores are this machine's).
s2n_env() {
  export SLURM_CONF=$S2N_DIR/etc/slurm.conf
  export OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=$S2N_SUBNET OMPI_MCA_oob_tcp_if_include=$S2N_SUBNET
  export OMPI_MCA_hwloc_base_binding_policy=none
}
