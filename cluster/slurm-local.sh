#!/usr/bin/env bash
# slurm-local.sh - a real one-node Slurm (slurmctld + slurmd + a private munged)
# on this machine, for trying the sbatch path by hand and for the test suite.
# Debian 12 (bookworm), run as root; no systemd needed.
#
# Usage:
#   bash cluster/slurm-local.sh up                 install packages if missing, write the
#                                                  config, start the daemons, wait until idle
#   bash cluster/slurm-local.sh down [--purge]     cancel this cluster's jobs, stop the daemons
#                                                  it started (--purge: also delete DIR, if
#                                                  this script created it)
#   bash cluster/slurm-local.sh env                print exports: eval "$(bash cluster/slurm-local.sh env)"
#   bash cluster/slurm-local.sh wait JOBID [SECS]  wait until the job (every task of an array)
#                                                  has ended, through requeues; exit 0 only if
#                                                  all COMPLETED with 0, 124 on timeout
#   bash cluster/slurm-local.sh status             daemons, sinfo, squeue; exit 0 up, 3 not up
#   bash cluster/slurm-local.sh install            only install the packages if a tool is missing
#                                                  (the log goes to DIR/log/apt.log)
#
# Environment:
#   SLURM_LOCAL_DIR          state directory (default /tmp/trainer-slurm); everything
#                            the script writes goes there, apart from the package install
#   SLURM_LOCAL_CTLD_PORT    slurmctld port (6817)
#   SLURM_LOCAL_SLURMD_PORT  slurmd port (6818)
#   SLURM_LOCAL_CPUS         CPUs the node advertises (default: the machine's); more than
#                            the machine has lets a 2-core box run 'sbatch -n 4'
#   SLURM_LOCAL_TIMEOUT      seconds to wait for daemons and the node (60)
#   SLURM_LOCAL_NO_INSTALL=1 never run apt-get; fail if a tool is missing
# Settings apply when 'up' starts slurmctld/slurmd; to change them: down, then up.
#
# Layout of DIR: etc/slurm.conf, munge/ (key, socket), state/, spool/, run/*.pid,
# log/ (slurmctld.log slurmd.log munged.log jobcomp.log apt.log).
set -euo pipefail

PROG=slurm-local
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) # slurm-common.conf is next to it
export PATH=$PATH:/usr/sbin:/sbin # munged, slurmctld, slurmd live there
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

DIR=$(realpath -m -- "${SLURM_LOCAL_DIR:-/tmp/trainer-slurm}")
CTLD_PORT=${SLURM_LOCAL_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_LOCAL_SLURMD_PORT:-6818}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
case "$DIR" in /|*[[:space:]]*) die "unusable SLURM_LOCAL_DIR: '$DIR'" ;; esac
for v in "$CTLD_PORT" "$SLURMD_PORT" "$TIMEOUT"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "ports and timeout must be positive numbers, got '$v'"
done

CONF=$DIR/etc/slurm.conf
MUNGE_KEY=$DIR/munge/munge.key
MUNGE_SOCKET=$DIR/munge/munge.socket
PID_MUNGED=$DIR/run/munged.pid
PID_CTLD=$DIR/run/slurmctld.pid
PID_SLURMD=$DIR/run/slurmd.pid
MARKER=$DIR/.created-by-slurm-local
# Daemons start with a clean environment: no stray SLURM_* of the caller's.
DAEMON_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)

# The node is named after this host, so that mpirun inside a job sees its
# allocation as local; a host name Slurm would not like gives "node1".
NODE=$(hostname -s 2>/dev/null || true)
[[ "$NODE" =~ ^[A-Za-z0-9][A-Za-z0-9-]*$ ]] || NODE=node1

# --- daemons by pid file ----------------------------------------------------

# running NAME PIDFILE: print the pid and succeed only if PIDFILE names a live
# NAME process whose command line mentions this DIR (so it is ours).
running() {
    local name=$1 file=$2 pid cmd
    [ -r "$file" ] || return 1
    pid=$(cat -- "$file" 2>/dev/null) || return 1
    pid=${pid//[!0-9]/}
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    # A zombie has an empty command line and so counts as stopped.
    case "$cmd" in "$name "* | */"$name "*) ;; *) return 1 ;; esac
    case "$cmd" in *"$DIR/"*) ;; *) return 1 ;; esac
    echo "$pid"
}

stop() { # NAME PIDFILE
    local name=$1 file=$2 pid i
    if ! pid=$(running "$name" "$file"); then
        rm -f "$file"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        running "$name" "$file" >/dev/null || { rm -f "$file"; return 0; }
        sleep 0.1
    done
    log "$name (pid $pid) still there after 15 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$file"
}

port_in_use() { # PORT
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

show_logs() {
    local f
    for f in "$DIR"/log/{munged,slurmctld,slurmd}.{stdout,log}; do
        [ -s "$f" ] || continue
        echo "--- tail of $f" >&2
        tail -n 15 "$f" >&2
    done
}

# --- install ------------------------------------------------------------------

POLICY=/usr/sbin/policy-rc.d
POLICY_OURS=0
cleanup() {
    # Remove the policy-rc.d we added for the install, and only that one.
    if [ "$POLICY_OURS" = 1 ] && grep -q "added by $PROG" "$POLICY" 2>/dev/null; then
        rm -f "$POLICY"
    fi
}
trap cleanup EXIT

missing_tools() {
    local t
    for t in munged mungekey munge unmunge slurmctld slurmd sbatch srun sinfo squeue scontrol scancel; do
        command -v "$t" >/dev/null 2>&1 || printf '%s ' "$t"
    done
}

install_if_missing() {
    local missing aptlog=$DIR/log/apt.log
    missing=$(missing_tools)
    [ -z "$missing" ] && return 0
    [ "${SLURM_LOCAL_NO_INSTALL:-0}" = 1 ] && die "missing: $missing(SLURM_LOCAL_NO_INSTALL=1)"
    command -v apt-get >/dev/null 2>&1 || die "missing: $missing and no apt-get"
    log "missing: $missing; installing slurmctld slurmd slurm-client munge (log: $aptlog)"
    # Keep the packages from starting the system's own munge/slurm services.
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\n# added by %s for a package install\nexit 101\n' "$PROG" >"$POLICY"
        chmod 755 "$POLICY"
        POLICY_OURS=1
    fi
    local -a apt=(apt-get -q -y -o DPkg::Lock::Timeout=300
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    if ! { "${apt[@]}" update &&
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends \
            slurmctld slurmd slurm-client munge; } </dev/null >>"$aptlog" 2>&1; then
        tail -n 20 "$aptlog" >&2
        die "package install failed (see $aptlog)"
    fi
    cleanup
    POLICY_OURS=0
    missing=$(missing_tools)
    [ -z "$missing" ] || die "still missing after the install: $missing"
}

# --- configuration ------------------------------------------------------------

write_conf() {
    local hw cpus mem layout overrides=""
    # e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24152"
    hw=$("${DAEMON_ENV[@]}" slurmd -C 2>/dev/null | head -n 1) || true
    cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    layout=$(grep -o 'Boards=.* ThreadsPerCore=[0-9]*' <<<"$hw" || true)
    [ -n "$cpus" ] || cpus=$(nproc)
    [ -n "$mem" ] || mem=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
    if [ -n "${SLURM_LOCAL_CPUS:-}" ] && [ "$SLURM_LOCAL_CPUS" != "$cpus" ]; then
        [[ "$SLURM_LOCAL_CPUS" =~ ^[1-9][0-9]*$ ]] || die "SLURM_LOCAL_CPUS must be a positive number"
        cpus=$SLURM_LOCAL_CPUS
        layout=""
        # slurmd would otherwise drain a node that claims more than it has.
        overrides=SlurmdParameters=config_overrides
    fi
    [ -r "$HERE/slurm-common.conf" ] || die "$HERE/slurm-common.conf: missing (it is installed next to this script)"
    mkdir -p "$DIR/etc"
    cat >"$CONF.tmp" <<EOF
# Written by cluster/slurm-local.sh on every 'up' that starts slurmctld/slurmd.
ClusterName=trainer
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# Our own munged; a short cred_expire lets a requeued job run again in seconds.
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$PID_CTLD
SlurmdPidFile=$PID_SLURMD
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
JobAcctGatherType=jobacct_gather/linux
$(sed "s|@LOG@|$DIR/log|" "$HERE/slurm-common.conf")
$overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus ${layout:+$layout }RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    mv -f "$CONF.tmp" "$CONF"
    chmod 644 "$CONF"
}

# --- starting -------------------------------------------------------------------

# start_daemon NAME PIDFILE PORT CMD...: start CMD (which daemonizes itself) unless
# NAME already runs from PIDFILE; wait for its pid file. fd 9 (our lock) is closed.
start_daemon() {
    local name=$1 file=$2 port=$3 pid i
    shift 3
    if pid=$(running "$name" "$file"); then
        log "$name already running (pid $pid)"
        return 0
    fi
    if [ "$port" != - ] && port_in_use "$port"; then
        die "port $port (for $name) is in use; set SLURM_LOCAL_CTLD_PORT/SLURM_LOCAL_SLURMD_PORT"
    fi
    rm -f "$file"
    "${DAEMON_ENV[@]}" "$@" </dev/null >>"$DIR/log/$name.stdout" 2>&1 9>&- ||
        { show_logs; die "$name failed to start"; }
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        if pid=$(running "$name" "$file"); then
            log "$name started (pid $pid)"
            return 0
        fi
        sleep 0.1
    done
    show_logs
    die "$name wrote no pid file within ${TIMEOUT}s"
}

# wait_until DESCRIPTION CMD...: poll CMD every 0.1 s for TIMEOUT seconds.
wait_until() {
    local what=$1 i
    shift
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    sinfo -N -l >&2 2>/dev/null || true
    show_logs
    die "$what: not ready after ${TIMEOUT}s"
}

munge_ok() { munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }
ctld_ok() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_ok() {
    # idle after a fresh start; mixed/allocated if 'up' finds jobs running.
    # A trailing '*' means "not responding", so it does not match.
    case "$(sinfo -h -n "$NODE" -o '%T' 2>/dev/null)" in
        idle | mixed | allocated | completing) return 0 ;;
        *) return 1 ;;
    esac
}

lock_dir() {
    exec 9>>"$DIR/.lock"
    flock -w "$TIMEOUT" 9 || die "another $PROG is working on $DIR"
}

dir_is_empty() { # apart from a lock file of a concurrent 'up'
    local f
    for f in "$DIR"/* "$DIR"/.[!.]* "$DIR"/..?*; do
        [ -e "$f" ] || continue
        [ "$f" = "$DIR/.lock" ] || return 1
    done
}

cmd_up() {
    [ "$(id -u)" = 0 ] || die "must run as root (package install, munged, slurmd)"
    local t0=$SECONDS fresh=0
    # DIR is ours to purge later only if it is new (or empty but for our lock).
    if [ ! -d "$DIR" ] || dir_is_empty; then fresh=1; fi
    mkdir -p "$DIR"
    lock_dir
    if [ "$fresh" = 1 ]; then
        touch "$MARKER"
        # munged insists that every directory above its socket is searchable.
        chmod 755 "$DIR"
    fi
    mkdir -p "$DIR/log" "$DIR/run" "$DIR/spool" "$DIR/state" "$DIR/munge"
    chmod 700 "$DIR/state"
    install_if_missing
    export SLURM_CONF=$CONF
    # Fail before starting anything if a port we still need is taken.
    local name port
    for name in slurmctld:$CTLD_PORT slurmd:$SLURMD_PORT; do
        port=${name#*:} name=${name%:*}
        if ! running "$name" "$DIR/run/$name.pid" >/dev/null && port_in_use "$port"; then
            die "port $port (for $name) is in use; set SLURM_LOCAL_CTLD_PORT/SLURM_LOCAL_SLURMD_PORT"
        fi
    done

    if [ ! -s "$MUNGE_KEY" ]; then
        mungekey --create --keyfile="$MUNGE_KEY" 2>/dev/null ||
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
    fi
    chmod 600 "$MUNGE_KEY"
    start_daemon munged "$PID_MUNGED" - munged \
        --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" --pid-file="$PID_MUNGED" \
        --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
    wait_until munged munge_ok

    # A new slurm.conf only when neither Slurm daemon runs: they must agree on it.
    if ! running slurmctld "$PID_CTLD" >/dev/null && ! running slurmd "$PID_SLURMD" >/dev/null; then
        write_conf
    fi
    # -c: start without the jobs and node states of an earlier run (job ids
    # still count on).
    start_daemon slurmctld "$PID_CTLD" "$CTLD_PORT" slurmctld -c -f "$CONF"
    wait_until slurmctld ctld_ok
    start_daemon slurmd "$PID_SLURMD" "$SLURMD_PORT" slurmd -f "$CONF" -N "$NODE"
    wait_until "node $NODE" node_ok
    log "up in $((SECONDS - t0)) s: node $NODE $(sinfo -h -n "$NODE" -o '%T, %c CPUs'); now run:"
    log "  eval \"\$(bash $0 env)\""
}

cmd_down() {
    local purge=${1:-} ids i
    [ -z "$purge" ] || [ "$purge" = --purge ] || usage
    if [ ! -d "$DIR" ]; then
        log "nothing at $DIR"
        return 0
    fi
    lock_dir
    export SLURM_CONF=$CONF
    if running slurmctld "$PID_CTLD" >/dev/null; then
        ids=$(squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ')
        if [ -n "${ids// /}" ]; then
            log "cancelling jobs: $ids"
            # shellcheck disable=SC2086 # a list of job ids
            scancel $ids 2>/dev/null || true
            # KillWait=5: give the jobs a few seconds to go.
            for ((i = 0; i < 150; i++)); do
                [ -z "$(squeue -h -o '%A' 2>/dev/null)" ] && break
                sleep 0.1
            done
        fi
    fi
    stop slurmd "$PID_SLURMD"
    stop slurmctld "$PID_CTLD"
    stop munged "$PID_MUNGED"
    if [ "$purge" = --purge ]; then
        if [ -e "$MARKER" ]; then
            rm -rf -- "$DIR"
            log "removed $DIR"
        else
            log "kept $DIR: $PROG did not create it"
        fi
    fi
    log "down"
}

cmd_env() {
    echo "export SLURM_CONF=$CONF"
    echo "export OMPI_ALLOW_RUN_AS_ROOT=1"
    echo "export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
}

cmd_status() {
    local rc=0 pair name file pid
    for pair in "munged:$PID_MUNGED" "slurmctld:$PID_CTLD" "slurmd:$PID_SLURMD"; do
        name=${pair%%:*} file=${pair#*:}
        if pid=$(running "$name" "$file"); then
            printf '%-10s running, pid %s\n' "$name" "$pid"
        else
            printf '%-10s not running\n' "$name"
            rc=3
        fi
    done
    echo "SLURM_CONF=$CONF"
    if [ "$rc" = 0 ]; then
        export SLURM_CONF=$CONF
        sinfo -N -l || rc=3
        squeue || rc=3
        node_ok || rc=3
    fi
    return "$rc"
}

# --- wait -----------------------------------------------------------------------

# Reads "Key=Value ..." records (scontrol -o show job, or jobcomp lines) and
# prints "JOBID ARRAYJOBID ARRAYTASKID STATE EXITCODE" per record ("-" if none).
# With want=N it keeps only records of job N (or of array N), the last one per
# JobId, since a requeued job can appear more than once in the jobcomp file.
records() {
    awk -v want="${1:-}" '
    {
        split("", f)
        for (i = 1; i <= NF; i++) {
            p = index($i, "=")
            if (p > 1) { k = substr($i, 1, p - 1); if (!(k in f)) f[k] = substr($i, p + 1) }
        }
        if (!("JobId" in f)) next
        aj = ("ArrayJobId" in f) ? f["ArrayJobId"] : "-"
        at = ("ArrayTaskId" in f) ? f["ArrayTaskId"] : "-"
        if (want != "" && f["JobId"] != want && aj != want) next
        if (!(f["JobId"] in line)) order[++n] = f["JobId"]
        line[f["JobId"]] = f["JobId"] " " aj " " at " " f["JobState"] " " f["ExitCode"]
    }
    END { for (i = 1; i <= n; i++) print line[order[i]] }'
}

show_records() { # the output of records as Key=Value lines, by array task and JobId
    local id aj at st ec
    sort -k3,3n -k1,1n <<<"$1" | while read -r id aj at st ec; do
        [ -n "$id" ] || continue
        if [ "$aj" = - ]; then
            echo "JobId=$id JobState=$st ExitCode=$ec"
        else
            echo "JobId=$id ArrayJobId=$aj ArrayTaskId=$at JobState=$st ExitCode=$ec"
        fi
    done
}

is_final() {
    case "$1" in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | PREEMPTED | BOOT_FAIL | DEADLINE) return 0 ;;
        *) return 1 ;; # PENDING, RUNNING, REQUEUED, COMPLETING, SUSPENDED, ...
    esac
}

cmd_wait() {
    local job=${1:-} secs=${2:-3600} out recs="" deadline err_since="" jc done_ id aj at st ec code rc=0
    [[ "$job" =~ ^[0-9]+$ ]] || usage
    [[ "$secs" =~ ^[0-9]+$ ]] || usage
    # The caller's SLURM_CONF (from 'env') wins; otherwise this DIR's.
    export SLURM_CONF=${SLURM_CONF:-$CONF}
    deadline=$((SECONDS + secs))
    while :; do
        if out=$(scontrol -o show job "$job" 2>&1); then
            err_since=""
            recs=$(records "" <<<"$out")
        elif grep -qi 'invalid job id' <<<"$out"; then
            # Purged from slurmctld (MinJobAge, or a restart): the jobcomp file.
            jc=$(sed -n 's/^JobCompLoc=//p' "$SLURM_CONF" 2>/dev/null | head -n 1)
            recs=$(records "$job" <"${jc:-/dev/null}" 2>/dev/null || true)
            [ -n "$recs" ] || die "job $job: unknown to slurmctld and not in ${jc:-the jobcomp file}"
        else
            if [ -z "$err_since" ]; then
                err_since=$SECONDS
                log "scontrol: $out (retrying)"
            fi
            [ $((SECONDS - err_since)) -lt 20 ] || die "slurmctld has not answered for 20 s"
            recs=""
        fi
        if [ -n "$recs" ]; then
            done_=1
            while read -r id aj at st ec; do is_final "$st" || done_=0; done <<<"$recs"
            [ "$done_" = 1 ] && break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "job $job has not ended after ${secs}s:"
            show_records "$recs" >&2
            return 124
        fi
        sleep 0.25
    done
    show_records "$recs"
    while read -r id aj at st ec; do
        if [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ]; then continue; fi
        code=${ec%%:*}
        if [ "${code:-0}" = 0 ]; then
            # Killed by a signal: 128+signal, as a shell reports it; else 1.
            if [ "${ec##*:}" != 0 ] && [ -n "${ec##*:}" ]; then code=$((128 + ${ec##*:})); else code=1; fi
        fi
        if [ "$code" -gt "$rc" ]; then rc=$code; fi
    done <<<"$recs"
    return "$rc"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    up) [ $# = 0 ] || usage; cmd_up ;;
    install) [ $# = 0 ] || usage; mkdir -p "$DIR/log"; install_if_missing ;;
    down) [ $# -le 1 ] || usage; cmd_down "$@" ;;
    env) [ $# = 0 ] || usage; cmd_env ;;
    status) [ $# = 0 ] || usage; cmd_status ;;
    wait) if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi; cmd_wait "$@" ;;
    help | -h | --help) usage 0 ;;
    *) usage ;;
esac
