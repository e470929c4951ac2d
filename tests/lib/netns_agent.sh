#!/bin/sh
# netns_agent.sh: Open MPI's remote shell (plm_rsh_agent) for tests/integration/multihost.sh.
# Called as `netns_agent.sh HOST COMMAND...` (as ssh would be); runs COMMAND inside the
# network namespace of HOST with HOST as its host name (a UTS namespace of its own).
# MULTIHOST_MAP lists "HOST=NAMESPACE" pairs, space-separated.
host=$1
shift
ns=""
for pair in $MULTIHOST_MAP; do
  [ "${pair%%=*}" = "$host" ] && ns=${pair#*=}
done
[ -n "$ns" ] || { echo "netns_agent.sh: no namespace for host '$host' in MULTIHOST_MAP" >&2; exit 1; }
# ssh joins its arguments with spaces and hands them to the remote shell: eval does the same.
exec ip netns exec "$ns" unshare --uts /bin/sh -c 'hostname "$0" && eval "$*"' "$host" "$@"
