#!/usr/bin/env bash
# slurm_smoke.sh - the sbatch path end to end on a real one-node Slurm.
#
# Brings up a private cluster with cluster/slurm-local.sh (its own state
# directory and ports, 6917/6918 by default, so that it never meets a cluster a
# user runs), then checks:
#   (a) sbatch --wrap hostname
#   (b) a 2-task job that runs mpirun hostname
#   (d) a 4-task job array, waited for as a whole
# and takes the cluster down again, whatever happens.
#
#   bash tests/integration/slurm_smoke.sh      exit 0 pass, 1 fail, 77 cannot run here (not root, ...)
#
# SLURM_SMOKE_PORT=N uses ports N and N+1. Needs root; installs Slurm and munge
# from Debian's packages if they are missing (cluster/slurm-local.sh up).
set -euo pipefail

kit=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../cluster" && pwd)/slurm-local.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
skip() { echo "SKIP: $*"; exit 77; }
export PATH=$PATH:/usr/sbin:/sbin

[ "$(uname -s)" = Linux ] || skip "needs Linux"
[ "$(id -u)" = 0 ] || skip "needs root (munged, slurmd and the package install run as root)"
command -v flock >/dev/null || skip "needs flock"
command -v mpirun >/dev/null || skip "needs Open MPI's mpirun"
if ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || skip "Slurm is not installed and there is no apt-get"
fi

# A caller's Slurm settings (say, this test run inside a Slurm job) stay out.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SALLOC|SRUN)_' || true)

port=${SLURM_SMOKE_PORT:-6917}
if [ -z "${SLURM_SMOKE_PORT:-}" ] && command -v ss >/dev/null; then
    while ! { port_free "$port" && port_free $((port + 1)); }; do
        port=$((port + 2))
        [ "$port" -lt 6999 ] || { echo "FAIL: no free port pair in 6917..6998"; exit 1; }
    done
fi

base=$(mktemp -d /tmp/slurm-smoke.XXXXXX)
chmod 755 "$base" # munged wants every directory above its socket searchable
export SLURM_LOCAL_DIR=$base/cluster
export SLURM_LOCAL_CTLD_PORT=$port SLURM_LOCAL_SLURMD_PORT=$((port + 1))
jobs=$base/jobs
mkdir -p "$jobs"

finish() {
    local rc=$?
    bash "$kit" down --purge >/dev/null 2>&1 || true
    rm -rf -- "$base"
    exit "$rc"
}
trap finish EXIT
trap 'exit 143' TERM INT HUP # so that a killed test still takes the cluster down

bash "$kit" up
eval "$(bash "$kit" env)"
echo "cluster up (ports $port, $((port + 1)))"

# Each check submits, waits with 'slurm-local.sh wait' and looks at the output.
check_a() { # the simplest batch job
    local j
    j=$(sbatch --parsable -o "$jobs/a-%j.out" --wrap hostname) || return 1
    bash "$kit" wait "$j" 120 || return 1
    [ "$(cat "$jobs/a-$j.out")" = "$(hostname)" ]
}

check_b() { # mpirun inside a 2-task allocation starts 2 ranks
    local j
    j=$(sbatch --parsable -n 2 -o "$jobs/b-%j.out" --wrap 'mpirun hostname') || return 1
    bash "$kit" wait "$j" 120 || return 1
    [ "$(grep -cx "$(hostname)" "$jobs/b-$j.out")" = 2 ]
}

check_d() { # a 4-task array: wait covers every task, each sees its own index
    local j out i
    # shellcheck disable=SC2016 # expanded in the job, not here
    j=$(sbatch --parsable --array=0-3 -o "$jobs/d-%a.out" --wrap 'echo "task $SLURM_ARRAY_TASK_ID"') || return 1
    out=$(bash "$kit" wait "$j" 120) || { echo "$out"; return 1; }
    echo "$out"
    [ "$(grep -c 'JobState=COMPLETED ExitCode=0:0' <<<"$out")" = 4 ] || return 1
    for i in 0 1 2 3; do grep -qx "task $i" "$jobs/d-$i.out" || return 1; done
}

passed=0 failed=0
now_ms() { echo $(($(date +%s%N) / 1000000)); }
run() { # NAME FUNCTION
    local t f
    t=$(now_ms)
    if "$2"; then
        echo "PASS: $1 ($(($(now_ms) - t)) ms)"
        passed=$((passed + 1))
    else
        echo "FAIL: $1 ($(($(now_ms) - t)) ms); job output:"
        for f in "$jobs"/*; do [ -e "$f" ] && { echo "--- $f"; cat "$f"; }; done
        failed=$((failed + 1))
    fi
    rm -f "$jobs"/*
}

run "(a) sbatch --wrap hostname" check_a
run "(b) sbatch -n 2, mpirun hostname" check_b
run "(d) sbatch --array=0-3" check_d

if [ "$failed" != 0 ]; then
    echo "--- tail of slurmctld.log"
    tail -n 20 "$SLURM_LOCAL_DIR/log/slurmctld.log" || true
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
