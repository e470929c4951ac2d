# netns.sh: two "hosts" on this machine for the multi-host tests and benchmarks: network
# namespaces joined by a veth pair, 10.213.7.1 (host A) and 10.213.7.2 (host B), a private
# test subnet that exists only inside them. Source it (after lib.sh or common.sh), then:
#   netns_up || skip "$NETNS_WHY"    creates them (NETNS_WHY says why not); removes them at
#                                    exit, running $NETNS_EXIT_ALSO too
#   on_hosts SECS MPIRUN_ARGS...     mpirun from host A, one rank per host, TCP on the link,
#                                    under a time limit of SECS seconds
# Each host has its own host name (unshare --uts); Open MPI's remote shell is netns_agent.sh.
NETNS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NS_A=mh$$a NS_B=mh$$b HOST_A=mh-$$-a HOST_B=mh-$$-b NETNS_SUBNET=10.213.7.0/24

netns_down() {
  ip netns del "$NS_A" 2> /dev/null || true
  ip netns del "$NS_B" 2> /dev/null || true
}

netns_up() {
  NETNS_WHY=""
  [ "$(id -u)" -eq 0 ] || { NETNS_WHY="network namespaces need root (ip netns); not root here"; return 1; }
  local tool err
  for tool in ip unshare timeout; do
    command -v $tool > /dev/null || { NETNS_WHY="no '$tool' here"; return 1; }
  done
  trap 'netns_down; eval "${NETNS_EXIT_ALSO:-}"' EXIT
  err=$(ip netns add "$NS_A" 2>&1 && ip netns add "$NS_B" 2>&1) ||
    { NETNS_WHY="cannot create a network namespace here: $err"; return 1; }
  err=$(ip netns exec "$NS_A" unshare --uts true 2>&1) || { NETNS_WHY="unshare --uts refused: $err"; return 1; }
  # The veth ends carry the namespace names, so concurrent runs do not collide.
  err=$(ip link add "$NS_A" type veth peer name "$NS_B" 2>&1) || { NETNS_WHY="no veth pair: $err"; return 1; }
  ip link set "$NS_A" netns "$NS_A" && ip link set "$NS_B" netns "$NS_B" &&
    ip -n "$NS_A" addr add 10.213.7.1/24 dev "$NS_A" && ip -n "$NS_B" addr add 10.213.7.2/24 dev "$NS_B" &&
    ip -n "$NS_A" link set lo up && ip -n "$NS_A" link set "$NS_A" up &&
    ip -n "$NS_B" link set lo up && ip -n "$NS_B" link set "$NS_B" up ||
    { NETNS_WHY="could not set up the veth link"; return 1; }
  export MULTIHOST_MAP="$HOST_A=$NS_A $HOST_B=$NS_B"
  NETNS_HOSTFILE=$(mktemp "${TMPDIR:-/tmp}/hostfile.XXXXXX")
  NETNS_EXIT_ALSO="rm -f $NETNS_HOSTFILE; ${NETNS_EXIT_ALSO:-}"
  printf '%s slots=1\n%s slots=1\n' "$HOST_A" "$HOST_B" > "$NETNS_HOSTFILE"
}

# on_hosts SECS ARGS...: `mpirun --hostfile (A, B) -np 2 ... ARGS` started inside host A.
on_hosts() {
  local secs=$1; shift
  timeout -k 5 "$secs" ip netns exec "$NS_A" unshare --uts /bin/sh -c 'hostname "$0" && exec "$@"' "$HOST_A" \
    mpirun --hostfile "$NETNS_HOSTFILE" -np 2 --mca plm_rsh_agent "$NETNS_LIB_DIR/netns_agent.sh" \
    --mca btl tcp,self --mca btl_tcp_if_include $NETNS_SUBNET --mca oob_tcp_if_include $NETNS_SUBNET "$@"
}
