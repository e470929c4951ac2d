#!/usr/bin/env bash
# speed_vs_torch.sh: `trainer bench` against the PyTorch reference (../shared/bench/torch_lstm.py)
# on this machine, one thread each, interleaved, and the table of README.md between
# <!-- speed-table:begin --> and <!-- speed-table:end --> rewritten from the results.
#
#   tests/bench/speed_vs_torch.sh [TRAINER]        (default: build/trainer)
#
# Environment: SHARED (default ../shared next to the repo), REPS (timed repetitions per
# configuration and program, default 5; each is its own process), WINDOWS and WINDOW_S (timed
# windows per process and their target seconds, default 3 x 1.0), SIZES ("H:L ..."),
# CORETYPE (OPENBLAS_CORETYPE for both programs, default SkylakeX: the fastest sgemm kernels
# of OpenBLAS 0.3.21 on the AVX-512 machines measured so far; any value given in the
# environment before is overridden), OUT (raw JSON lines, default out/bench), README
# (default README.md of the repo), MPI=0 skips the 1-rank vs 2-rank rows.
# Takes about 8-10 minutes with the defaults on a 2-vCPU machine.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TRAINER=$(readlink -f "${1:-${TRAINER:-$REPO/build/trainer}}")
SHARED=${SHARED:-$REPO/../shared}
REPS=${REPS:-5}
WINDOWS=${WINDOWS:-3}
WINDOW_S=${WINDOW_S:-1.0}
SIZES=${SIZES:-"64:1 64:2 128:1 128:2 256:1 256:2 512:1 512:2"}
CORETYPE=${CORETYPE:-SkylakeX}
OUT=${OUT:-$REPO/out/bench}
README=${README:-$REPO/README.md}
MPI=${MPI:-1}
PY=/usr/bin/python3 # Debian's interpreter: python3-torch lives in its dist-packages

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
[ -x "$TRAINER" ] || die "no trainer at $TRAINER: build it first (cmake -S . -B build && cmake --build build -j) or pass its path"
[ -f "$SHARED/bench/torch_lstm.py" ] || die "no PyTorch reference at $SHARED/bench/torch_lstm.py: set SHARED to the folder that holds bench/"
[ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch (apt-get install python3-torch)"
[ "$REPS" -ge 1 ] || die "REPS must be >= 1"

export OPENBLAS_CORETYPE=$CORETYPE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RAW="$OUT/speed-$STAMP.jsonl"
: > "$RAW"
LOG="$OUT/speed-$STAMP.log"

# Every result line is tagged {"prog", "cfg", "rep"} so that the aggregation below needs
# nothing but this file.
record() { # prog cfg rep -- command...
  local prog=$1 cfg=$2 rep=$3; shift 4
  local line load
  load=$(cut -d' ' -f1 /proc/loadavg)
  if ! line=$("$@" 2>>"$LOG" | tail -n 1) || [ "${line:0:1}" != "{" ]; then
    die "$prog $cfg rep $rep failed (see $LOG): $*"
  fi
  printf '{"prog":"%s","cfg":"%s","rep":%d,"load1":%s,"r":%s}\n' "$prog" "$cfg" "$rep" "$load" "$line" >> "$RAW"
  printf '  %-6s %-10s rep %d  %s\n' "$prog" "$cfg" "$rep" \
    "$(printf '%s' "$line" | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("%.0f events/s" % r["events_per_s_med"])')"
}

ours() { "$TRAINER" bench --hidden "$1" --layers "$2" --windows "$WINDOWS" --window-s "$WINDOW_S" --json; }
torch() { "$PY" "$SHARED/bench/torch_lstm.py" --hidden "$1" --layers "$2" --threads 1 --windows "$WINDOWS" --window-s "$WINDOW_S"; }
ours_mpi() { mpirun --bind-to none -np "$1" "$TRAINER" bench --hidden 128 --layers 1 --windows "$WINDOWS" --window-s "$WINDOW_S" --json; }

printf 'speed_vs_torch: %s vs torch_lstm.py, OPENBLAS_CORETYPE=%s, %d reps, %d x %ss windows; raw: %s\n' \
  "$TRAINER" "$CORETYPE" "$REPS" "$WINDOWS" "$WINDOW_S" "$RAW"
T0=$(date +%s)
for rep in $(seq 1 "$REPS"); do
  for hl in $SIZES; do
    h=${hl%%:*} l=${hl##*:}
    # Alternate which program goes first so that neither always follows the other.
    if [ $((rep % 2)) -eq 1 ]; then
      record ours "$hl" "$rep" -- ours "$h" "$l"
      record torch "$hl" "$rep" -- torch "$h" "$l"
    else
      record torch "$hl" "$rep" -- torch "$h" "$l"
      record ours "$hl" "$rep" -- ours "$h" "$l"
    fi
  done
  if [ "$MPI" = 1 ]; then
    record mpi1 128:1 "$rep" -- ours_mpi 1
    record mpi2 128:1 "$rep" -- ours_mpi 2
  fi
done
ELAPSED=$(( $(date +%s) - T0 ))

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
FAMILY=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
MODEL=$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')
MACHINE="$CPU (family $FAMILY model $MODEL), $(getconf _NPROCESSORS_ONLN) CPUs, $(uname -r)"
CMD="tests/bench/speed_vs_torch.sh $(realpath --relative-to="$REPO" "$TRAINER" 2>/dev/null || echo "$TRAINER")"
[ "$REPS" = 5 ] || CMD="REPS=$REPS $CMD"
[ "$CORETYPE" = SkylakeX ] || CMD="CORETYPE=$CORETYPE $CMD"

REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
git -C "$REPO" diff --quiet HEAD -- trainer comm CMakeLists.txt 2>/dev/null || REV="$REV + uncommitted changes"

"$PY" - "$RAW" "$README" "$MACHINE" "$CMD" "$ELAPSED" "$REV" <<'PYEOF'
import json, statistics as st, sys, time, os
raw, readme, machine, cmd, elapsed, rev = sys.argv[1:7]
rows = [json.loads(l) for l in open(raw) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["prog"], r["cfg"]), []).append(r)

def med(xs): return st.median(xs)
def cell(runs):  # median of the per-process medians, [min..max] over every window
    return "%s [%s..%s]" % (f"{med([x['r']['events_per_s_med'] for x in runs]):,.0f}",
                            f"{min(x['r']['events_per_s_min'] for x in runs):,.0f}",
                            f"{max(x['r']['events_per_s_max'] for x in runs):,.0f}")

cfgs = []
for r in rows:
    if r["prog"] == "ours" and r["cfg"] not in cfgs: cfgs.append(r["cfg"])
o0 = by[("ours", cfgs[0])][0]["r"]
t0 = by[("torch", cfgs[0])][0]["r"]
loads = [r["load1"] for r in rows]
out = []
out.append(f"Training throughput, 1 process x 1 thread each, B=64 lanes, T=64, K=32 types, E=32 "
           f"(the model of `torch_lstm.py`). Measured {time.strftime('%Y-%m-%d', time.gmtime())} on "
           f"{machine}, trainer at {rev}; OpenBLAS core `{o0['openblas_core']}` (OPENBLAS_CORETYPE="
           f"{o0['openblas_coretype_env']}), torch {t0['torch']} on the same OpenBLAS. "
           f"{len(by[('ours', cfgs[0])])} processes per cell, run interleaved with the reference; a cell "
           f"is the median of the per-process medians with [min..max] over all timed windows. "
           f"1-minute load average during the runs: {min(loads):.2f}..{max(loads):.2f}.")
out.append("")
out.append("| H | L | ours events/s | torch events/s | ours / torch | ours GFLOP/s | % of sgemm peak "
           "| sgemm 2048^3 GFLOP/s | peak RSS ours / needed (MiB) | torch peak RSS (MiB) | targets |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|")
for c in cfgs:
    h, l = map(int, c.split(":"))
    o, t = by[("ours", c)], by.get(("torch", c), [])
    oe = med([x["r"]["events_per_s_med"] for x in o])
    te = med([x["r"]["events_per_s_med"] for x in t]) if t else float("nan")
    ratio = oe / te
    gf = med([x["r"]["gflops_med"] for x in o])
    share = med([x["r"]["peak_share"] for x in o])
    sg = med([x["r"]["sgemm_gflops_med"] for x in o])
    rss = max(x["r"]["peak_rss_mib"] for x in o)
    need = o[0]["r"]["need_mib"]
    trss = max(x["r"]["peak_rss_mib"] for x in t) if t else float("nan")
    miss = []
    want = 2.5 if h <= 128 else (1.3 if h >= 512 else None)
    if want and ratio < want: miss.append(f"speed < {want}x")
    if h >= 256 and share < 0.75: miss.append("peak < 75%")
    if rss > 1.5 * need: miss.append("RSS > 1.5x")
    out.append(f"| {h} | {l} | {cell(o)} | {cell(t)} | {ratio:.2f}x | {gf:.1f} | {100*share:.0f}% | {sg:.0f} "
               f"| {rss:.1f} / {need:.1f} ({rss/need:.2f}x) | {trss:.0f} | {'ok' if not miss else ', '.join(miss)} |")
m1, m2 = by.get(("mpi1", "128:1")), by.get(("mpi2", "128:1"))
if m1 and m2:
    e1 = med([x["r"]["events_per_s_med"] for x in m1]); e2 = med([x["r"]["events_per_s_med"] for x in m2])
    out.append("")
    out.append("Data-parallel, H=128 L=1, B=64 lanes per rank, `mpirun --bind-to none -np P`, gradients "
               "allreduced every step through gradsync (bucketed, overlapped with backward):")
    out.append("")
    out.append("| ranks | aggregate events/s | speed-up | time blocked in communication (mean / max over ranks) | GFLOP/s per rank | % of sgemm peak (all ranks busy) |")
    out.append("|---|---|---|---|---|---|")
    for p, m, e in ((1, m1, e1), (2, m2, e2)):
        out.append(f"| {p} | {cell(m)} | {e/e1:.2f}x | {100*med([x['r']['comm_share'] for x in m]):.1f}% / "
                   f"{100*med([x['r']['comm_share_max'] for x in m]):.1f}% | "
                   f"{med([x['r']['gflops_per_rank_med'] for x in m]):.1f} | {100*med([x['r']['peak_share'] for x in m]):.0f}% |")
out.append("")
out.append("Targets: ours >= 2.5x torch at H <= 128 and >= 1.3x at H = 512; >= 75% of the sgemm peak at "
           "H >= 256; peak RSS within 1.5x of what parameters, gradients, Adam moments, activations, lane "
           "state and data need (RSS includes ~16 MiB of process baseline: libc, OpenBLAS, Open MPI). "
           "Our time head is a log-normal (2 outputs) where torch's is a 1-output MSE; FLOPs are counted "
           "as `torch_lstm.py` counts them.")
out.append("")
out.append(f"Regenerate (about {int(elapsed)//60 + 1} min): `{cmd}` (raw results: `out/bench/`).")
table = "\n".join(out)

B, E = "<!-- speed-table:begin -->", "<!-- speed-table:end -->"
text = open(readme).read() if os.path.exists(readme) else f"{B}\n{E}\n"
if B not in text or E not in text or text.index(B) > text.index(E):
    sys.exit(f"error: {readme} lacks the lines {B} and {E} (in that order)")
head, rest = text.split(B, 1)
_, tail = rest.split(E, 1)
tmp = readme + ".tmp"
with open(tmp, "w") as f:
    f.write(head + B + "\n" + table + "\n" + E + tail)
os.replace(tmp, readme)
print(table)
PYEOF
printf 'updated %s (%d s)\n' "$README" "$ELAPSED"
