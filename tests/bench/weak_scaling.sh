#!/usr/bin/env bash
# weak_scaling.sh: weak scaling of `trainer bench` over 1, 2, 4, 8, 16 ranks (B=64 lanes per
# rank, so the global batch grows with P) on one many-core machine, with the sgemm peak of the
# same runs. Builds the trainer first (in build-weak/), so it runs from a bare copy of the repo.
#
#   tests/bench/weak_scaling.sh            about 4-5 minutes on 16 cores (build ~1 min)
#
# Where the machine lacks OpenBLAS / Open MPI / libyaml / protobuf-c / pkg-config and cannot
# download them: on a machine with apt run `tests/bench/deps.sh fetch` (into out/deps, ~22 MB),
# carry out/deps along, and this script unpacks and uses it (DEPS=path to use another folder).
# It needs a C compiler and cmake >= 3.18 there.
#
# Environment: RANKS ("1 2 4 8 16"; counts above the CPU count are skipped), SIZES ("128:1
# 512:1", H:L), REPS (2, interleaved over P), WINDOWS x WINDOW_S (3 x 1.5 s per run),
# CORETYPE (OPENBLAS_CORETYPE; default: each of auto, SkylakeX, Haswell, Zen is tried with a
# short sgemm and the fastest is used), MPIRUN_FLAGS (default: map and bind by core when P fits
# the physical cores, else --oversubscribe --bind-to none), OUT (where the JSON lines and the
# Markdown table go; default $OUT if set, else out/bench).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
RANKS=${RANKS:-"1 2 4 8 16"}
SIZES=${SIZES:-"128:1 512:1"}
REPS=${REPS:-2}
WINDOWS=${WINDOWS:-3}
WINDOW_S=${WINDOW_S:-1.5}
RESULTS=${OUT:-$REPO/out/bench}
DEPS=${DEPS:-$REPO/out/deps}
BUILD=$REPO/build-weak
PY=$(command -v python3 || true)
T0=$(date +%s)
say() { printf '[%3ds] %s\n' $(( $(date +%s) - T0 )) "$*"; }
die() { printf 'weak_scaling: error: %s\n' "$*" >&2; exit 1; }
[ -n "$PY" ] || die "python3 is needed for the summary"
mkdir -p "$RESULTS"

# ---- dependencies: the system's, else the carried .deb files
have_deps() {
  command -v pkg-config >/dev/null && command -v mpicc >/dev/null && command -v mpirun >/dev/null &&
    command -v protoc-c >/dev/null && pkg-config --exists openblas yaml-0.1 libprotobuf-c 2>/dev/null
}
CMAKE_ARGS=""
if ! have_deps; then
  ls "$DEPS"/debs/main/*.deb >/dev/null 2>&1 ||
    die "the machine lacks build dependencies (see 'tests/bench/deps.sh check') and $DEPS/debs holds no .deb files: run 'tests/bench/deps.sh fetch' where apt works and carry out/deps"
  say "unpacking the carried packages from $DEPS"
  bash tests/bench/deps.sh unpack "$DEPS" >/dev/null
  # shellcheck disable=SC1091
  . "$DEPS/env.sh"
  bash tests/bench/deps.sh check "$DEPS" || die "dependencies still missing (above)"
  CMAKE_ARGS=$TRAINER_CMAKE_ARGS
fi

# ---- build
command -v cmake >/dev/null || die "cmake >= 3.18 is needed"
NPROC=$(getconf _NPROCESSORS_ONLN)
say "building in $BUILD ($NPROC CPUs)"
# shellcheck disable=SC2086
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release $CMAKE_ARGS > "$RESULTS/weak-build.log" 2>&1 ||
  { tail -20 "$RESULTS/weak-build.log"; die "cmake failed (log: $RESULTS/weak-build.log)"; }
cmake --build "$BUILD" -j "$NPROC" --target trainer >> "$RESULTS/weak-build.log" 2>&1 ||
  { tail -20 "$RESULTS/weak-build.log"; die "build failed (log: $RESULTS/weak-build.log)"; }
TRAINER=$BUILD/trainer

# ---- machine and run settings
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
# Shared memory only, without CMA single copy (refused in many containers and VMs), and no
# network transports probing for devices.
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader} OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
CORES=$( (lscpu -p=CORE,SOCKET 2>/dev/null || true) | grep -v '^#' | sort -u | wc -l)
[ "$CORES" -ge 1 ] || CORES=$NPROC
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW=$RESULTS/weak-$STAMP.jsonl
: > "$RAW"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
say "machine: $CPU, $NPROC CPUs, $CORES physical cores, $(uname -r)"

# ---- OpenBLAS core type: the fastest 1-thread sgemm of a few candidates
sgemm_of() { # coretype -> median GFLOP/s of 3 trials of 2048^3
  local env=(env); [ "$1" = auto ] && env+=(-u OPENBLAS_CORETYPE) || env+=(OPENBLAS_CORETYPE="$1")
  "${env[@]}" "$TRAINER" bench --hidden 64 --warmup 1 --windows 1 --window-s 0 \
    --max-steps-per-window 1 --sgemm-trials 3 --json 2>/dev/null | tail -n 1 |
    "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("%.1f %s" % (r["sgemm_gflops_med"], r["openblas_core"]))'
}
if [ -z "${CORETYPE:-}" ]; then
  best=auto best_gf=0
  for ct in auto SkylakeX Haswell Zen; do
    read -r gf core < <(sgemm_of "$ct") || { say "core type $ct: failed"; continue; }
    say "core type $ct -> OpenBLAS $core: sgemm 2048^3 $gf GFLOP/s"
    if "$PY" -c "import sys; sys.exit(0 if $gf > $best_gf * 1.05 else 1)"; then best=$ct best_gf=$gf; fi
  done
  CORETYPE=$best
fi
if [ "$CORETYPE" = auto ]; then unset OPENBLAS_CORETYPE; else export OPENBLAS_CORETYPE=$CORETYPE; fi
say "using OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>}"

# ---- the runs: every size and P once per repetition, P interleaved
run_p() { # P H L rep
  local p=$1 h=$2 l=$3 rep=$4 flags line
  if [ -n "${MPIRUN_FLAGS:-}" ]; then flags=$MPIRUN_FLAGS
  elif [ "$p" -le "$CORES" ]; then flags="--map-by core --bind-to core"
  else flags="--oversubscribe --bind-to none"; fi
  # shellcheck disable=SC2086
  if ! line=$(mpirun $flags -np "$p" "$TRAINER" bench --hidden "$h" --layers "$l" --windows "$WINDOWS" \
      --window-s "$WINDOW_S" --json 2>>"$RESULTS/weak-$STAMP.log" | tail -n 1) || [ "${line:0:1}" != "{" ]; then
    # Binding can fail in containers: retry once without it.
    # shellcheck disable=SC2086
    line=$(mpirun --oversubscribe --bind-to none -np "$p" "$TRAINER" bench --hidden "$h" --layers "$l" \
      --windows "$WINDOWS" --window-s "$WINDOW_S" --json 2>>"$RESULTS/weak-$STAMP.log" | tail -n 1) || true
    flags="--oversubscribe --bind-to none (retry)"
  fi
  [ "${line:0:1}" = "{" ] || { say "P=$p H=$h L=$l rep $rep FAILED (see $RESULTS/weak-$STAMP.log)"; return 0; }
  printf '{"P":%d,"cfg":"%s:%s","rep":%d,"mpirun_flags":"%s","r":%s}\n' "$p" "$h" "$l" "$rep" "$flags" "$line" >> "$RAW"
  say "P=$p H=$h L=$l rep $rep: $(printf '%s' "$line" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("%.0f events/s, comm %.1f%%, sgemm/rank %.0f GFLOP/s" % (r["events_per_s_med"], 100*r["comm_share"], r["sgemm_gflops_med"]))')"
}
for rep in $(seq 1 "$REPS"); do
  for hl in $SIZES; do
    for p in $RANKS; do
      [ "$p" -le "$NPROC" ] || { [ "$rep" = 1 ] && say "skipping P=$p: only $NPROC CPUs"; continue; }
      run_p "$p" "${hl%%:*}" "${hl##*:}" "$rep"
    done
  done
done

# ---- summary
"$PY" - "$RAW" "$CPU, $NPROC CPUs ($CORES cores)" "${OPENBLAS_CORETYPE:-<unset>}" > "$RESULTS/weak-$STAMP.md" <<'PYEOF'
import json, statistics as st, sys, time
raw, machine, coretype = sys.argv[1:4]
rows = [json.loads(l) for l in open(raw) if l.strip()]
print(f"Weak scaling of `trainer bench`, B=64 lanes per rank, T=64, 1 OpenBLAS thread per rank; "
      f"{time.strftime('%Y-%m-%d', time.gmtime())}, {machine}; OPENBLAS_CORETYPE={coretype} "
      f"(OpenBLAS core {rows[0]['r']['openblas_core'] if rows else '?'}). Median over repetitions; "
      f"efficiency = aggregate events/s / (P x the P=1 median).\n")
cfgs = []
for r in rows:
    if r["cfg"] not in cfgs: cfgs.append(r["cfg"])
for c in cfgs:
    h, l = c.split(":")
    print(f"H={h} L={l}:\n")
    print("| P | aggregate events/s [min..max] | per rank | efficiency | comm share (mean / max rank) "
          "| GFLOP/s per rank | sgemm 2048^3 per rank, all ranks busy | % of that peak | peak RSS per rank (MiB) | mpirun flags |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    byp = {}
    for r in rows:
        if r["cfg"] == c: byp.setdefault(r["P"], []).append(r)
    base = None
    for p in sorted(byp):
        rs = byp[p]; m = lambda k: st.median(x["r"][k] for x in rs)
        ev = m("events_per_s_med")
        if p == 1: base = ev
        eff = f"{ev / (p * base):.0%}" if base else "?"
        print(f"| {p} | {ev:,.0f} [{min(x['r']['events_per_s_min'] for x in rs):,.0f}.."
              f"{max(x['r']['events_per_s_max'] for x in rs):,.0f}] | {ev/p:,.0f} | {eff} | "
              f"{100*m('comm_share'):.1f}% / {100*m('comm_share_max'):.1f}% | {m('gflops_per_rank_med'):.1f} | "
              f"{m('sgemm_gflops_med'):.0f} [{min(x['r']['sgemm_gflops_min'] for x in rs):.0f}.."
              f"{max(x['r']['sgemm_gflops_max'] for x in rs):.0f}] | {100*m('peak_share'):.0f}% | "
              f"{max(x['r']['peak_rss_mib'] for x in rs):.1f} | {rs[0]['mpirun_flags']} |")
    print()
PYEOF
cat "$RESULTS/weak-$STAMP.md"
say "done; raw: $RAW, table: $RESULTS/weak-$STAMP.md"
