#!/usr/bin/env bash
# speed_vs_torch.sh: `trainer bench` against the PyTorch reference (../shared/bench/torch_lstm.py)
# on this machine, one thread each, interleaved, and the table of README.md between
# <!-- speed-table:begin --> and <!-- speed-table:end --> rewritten from the results.
#
#   tests/bench/speed_vs_torch.sh [TRAINER]        (default: build/trainer)
#
# Environment: SHARED (the folder that holds bench/torch_lstm.py; default ../shared next to the
# repo, or next to the main checkout when this is a git worktree), REPS (timed repetitions per
# configuration and program, default 3; each is its own process), WINDOWS and WINDOW_S (timed
# windows per process and their target seconds, default 3 x 1.0), SIZES ("H:L ..."),
# CORETYPE (OPENBLAS_CORETYPE for both programs, default SkylakeX: the fastest sgemm kernels
# of OpenBLAS 0.3.21 on the AVX-512 machines measured so far; Haswell for AVX2-only CPUs; any
# value given in the environment before is overridden), ISA (LSTM_TRAINER_ISA for the trainer:
# generic, avx2 or avx512; default: unset, the best path the CPU has), CLOCK (cpu, the default:
# events per CPU second of each process, for both programs, which holds on a shared, loaded
# machine; wall: events per wall-clock second), OUT (raw JSON lines and the table, default
# out/bench), README (default README.md of the repo; "none" leaves it alone), MPI=0 skips the
# 1-rank vs 2-rank rows. Needs python3-torch (Debian: apt-get install python3-torch); nothing
# else in tests/ does. Takes about 6-8 minutes with the defaults on a 2-vCPU machine.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TRAINER=$(readlink -f "${1:-${TRAINER:-$REPO/build/trainer}}")
if [ -z "${SHARED:-}" ]; then
  SHARED=$REPO/../shared
  if [ ! -d "$SHARED" ]; then # a worktree: next to the main checkout
    common=$(git -C "$REPO" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
    [ -n "$common" ] && SHARED=$(dirname "$(dirname "$common")")/shared
  fi
fi
REPS=${REPS:-3}
WINDOWS=${WINDOWS:-3}
WINDOW_S=${WINDOW_S:-1.0}
SIZES=${SIZES:-"64:1 64:2 128:1 128:2 256:2 512:2"}
CORETYPE=${CORETYPE:-SkylakeX}
ISA=${ISA:-}
CLOCK=${CLOCK:-cpu}
OUT=${OUT:-$REPO/out/bench}
README=${README:-$REPO/README.md}
MPI=${MPI:-1}
PY=/usr/bin/python3 # Debian's interpreter: python3-torch lives in its dist-packages

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
[ -x "$TRAINER" ] || die "no trainer at $TRAINER: build it first (cmake -S . -B build && cmake --build build -j) or pass its path"
[ -f "$SHARED/bench/torch_lstm.py" ] || die "no PyTorch reference at $SHARED/bench/torch_lstm.py: set SHARED to the folder that holds bench/"
[ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null || die "$PY cannot import torch (apt-get install python3-torch)"
[ "$REPS" -ge 1 ] || die "REPS must be >= 1"
case "$CLOCK" in cpu|wall) ;; *) die "CLOCK must be cpu or wall, not '$CLOCK'" ;; esac
case "$ISA" in ''|generic|avx2|avx512) ;; *) die "ISA must be generic, avx2 or avx512, not '$ISA'" ;; esac

export OPENBLAS_CORETYPE=$CORETYPE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
if [ -n "$ISA" ]; then export LSTM_TRAINER_ISA=$ISA; else unset LSTM_TRAINER_ISA; fi
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
    "$(printf '%s' "$line" | CLOCK=$CLOCK "$PY" -c 'import json,os,sys; r=json.load(sys.stdin)
if "events_per_cpu_s" in r: print("%.0f events/s wall, %.0f per CPU s" % (r["events_per_s_med"], r["events_per_cpu_s"]))
else: print("%.0f events/s (%s clock)" % (r["events_per_s_med"], os.environ["CLOCK"]))')"
}

ours() { "$TRAINER" bench --hidden "$1" --layers "$2" --windows "$WINDOWS" --window-s "$WINDOW_S" --json; }
# Under CLOCK=cpu torch_lstm.py times itself by process CPU time (torch_cpu_clock.py).
torch() {
  local pre=()
  [ "$CLOCK" = cpu ] && pre=("$REPO/tests/bench/torch_cpu_clock.py")
  "$PY" "${pre[@]}" "$SHARED/bench/torch_lstm.py" --hidden "$1" --layers "$2" --threads 1 --windows "$WINDOWS" --window-s "$WINDOW_S"
}
ours_mpi() { mpirun --bind-to none -np "$1" "$TRAINER" bench --hidden 128 --layers 1 --windows "$WINDOWS" --window-s "$WINDOW_S" --json; }

printf 'speed_vs_torch: %s vs torch_lstm.py, OPENBLAS_CORETYPE=%s, LSTM_TRAINER_ISA=%s, 1 thread, clock %s, %d reps, %d x %ss windows; raw: %s\n' \
  "$TRAINER" "$CORETYPE" "${ISA:-<unset>}" "$CLOCK" "$REPS" "$WINDOWS" "$WINDOW_S" "$RAW"
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
[ "$REPS" = 3 ] || CMD="REPS=$REPS $CMD"
[ "$CORETYPE" = SkylakeX ] || CMD="CORETYPE=$CORETYPE $CMD"
[ -z "$ISA" ] || CMD="ISA=$ISA $CMD"
[ "$CLOCK" = cpu ] || CMD="CLOCK=$CLOCK $CMD"

REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
git -C "$REPO" diff --quiet HEAD -- trainer comm CMakeLists.txt 2>/dev/null || REV="$REV + uncommitted changes"

"$PY" - "$RAW" "$README" "$MACHINE" "$CMD" "$ELAPSED" "$REV" "$CLOCK" "$OUT/speed-$STAMP.md" <<'PYEOF'
import json, statistics as st, sys, time, os
raw, readme, machine, cmd, elapsed, rev, clock, table_md = sys.argv[1:9]
rows = [json.loads(l) for l in open(raw) if l.strip()]
by = {}
for r in rows:
    by.setdefault((r["prog"], r["cfg"]), []).append(r)

def med(xs): return st.median(xs)
def rate(x):  # one process's events/s on the chosen clock
    if x["prog"] == "torch" or clock == "wall": return x["r"]["events_per_s_med"]
    return x["r"]["events_per_cpu_s"]
def cell(runs):
    """Median of the per-process medians; [min..max] over every window (wall) or over the
    processes' medians (cpu: bench reports one CPU-time median per process)."""
    m = med([rate(x) for x in runs])
    if clock == "wall" or runs[0]["prog"] == "torch":
        lo = min(x["r"]["events_per_s_min"] for x in runs); hi = max(x["r"]["events_per_s_max"] for x in runs)
    else:
        lo = min(rate(x) for x in runs); hi = max(rate(x) for x in runs)
    return f"{m:,.0f} [{lo:,.0f}..{hi:,.0f}]"

cfgs = []
for r in rows:
    if r["prog"] == "ours" and r["cfg"] not in cfgs: cfgs.append(r["cfg"])
o0 = by[("ours", cfgs[0])][0]["r"]
t0 = by[("torch", cfgs[0])][0]["r"]
loads = [r["load1"] for r in rows]
per = "CPU second of each process (both programs: torch_lstm.py timed by process CPU time)" \
      if clock == "cpu" else "wall-clock second"
out = []
out.append(f"Training throughput, 1 process x 1 thread each, B=64 lanes, T=64, K=32 types, E=32 "
           f"(the model of `torch_lstm.py`), events per {per}. Measured "
           f"{time.strftime('%Y-%m-%d', time.gmtime())} on {machine}, trainer at {rev}, kernel path "
           f"`{o0['isa']}` (LSTM_TRAINER_ISA={o0['isa_env']}; CPU: {o0['isa_detected']}); OpenBLAS core "
           f"`{o0['openblas_core']}` (OPENBLAS_CORETYPE={o0['openblas_coretype_env']}), "
           f"{o0['openblas_threads']} OpenBLAS thread; torch {t0['torch']} on the same OpenBLAS "
           f"(core `{t0['openblas_core']}`, {t0['torch_threads']} torch thread, {t0['openblas_threads']} "
           f"OpenBLAS thread). {len(by[('ours', cfgs[0])])} processes per cell, run interleaved with the "
           f"reference; a cell is the median of the per-process medians with [min..max] "
           f"{'over all timed windows' if clock == 'wall' else 'over the processes (torch: over all timed windows)'}. "
           f"1-minute load average during the runs: {min(loads):.2f}..{max(loads):.2f}.")
out.append("")
out.append("| H | L | ours events/s | torch events/s | ours / torch | ours GFLOP/s | % of sgemm peak "
           "| sgemm 2048^3 GFLOP/s | peak RSS ours / needed (MiB) | torch peak RSS (MiB) | targets |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|")
for c in cfgs:
    h, l = map(int, c.split(":"))
    o, t = by[("ours", c)], by.get(("torch", c), [])
    oe = med([rate(x) for x in o])
    te = med([rate(x) for x in t]) if t else float("nan")
    ratio = oe / te
    gf = oe * o[0]["r"]["flops_per_event"] / 1e9
    share = med([x["r"]["peak_share" if clock == "wall" else "peak_share_cpu"] for x in o])
    sg = med([x["r"]["sgemm_gflops_med" if clock == "wall" else "sgemm_gflops_cpu_med"] for x in o])
    rss = max(x["r"]["peak_rss_mib"] for x in o)
    need = o[0]["r"]["need_mib"]
    trss = max(x["r"]["peak_rss_mib"] for x in t) if t else float("nan")
    miss = []  # issue 19's targets
    want = 2.5 if (h <= 64 or (h == 128 and l == 1)) else (1.5 if h >= 512 else None)
    if want and ratio < want: miss.append(f"speed < {want}x")
    want_share = 0.90 if h >= 256 else (0.85 if h == 128 else None)
    if want_share and share < want_share: miss.append(f"peak < {100*want_share:.0f}%")
    if rss > 1.5 * need: miss.append("RSS > 1.5x")
    out.append(f"| {h} | {l} | {cell(o)} | {cell(t)} | {ratio:.2f}x | {gf:.1f} | {100*share:.0f}% | {sg:.0f} "
               f"| {rss:.1f} / {need:.1f} ({rss/need:.2f}x) | {trss:.0f} | {'ok' if not miss else ', '.join(miss)} |")
m1, m2 = by.get(("mpi1", "128:1")), by.get(("mpi2", "128:1"))
if m1 and m2:
    e1 = med([x["r"]["events_per_s_med"] for x in m1]); e2 = med([x["r"]["events_per_s_med"] for x in m2])
    out.append("")
    out.append("Data-parallel, H=128 L=1, B=64 lanes per rank, `mpirun --bind-to none -np P`, gradients "
               "allreduced every step through gradsync (bucketed, overlapped with backward), wall clock:")
    out.append("")
    out.append("| ranks | aggregate events/s | speed-up | time blocked in communication (mean / max over ranks) | GFLOP/s per rank | % of sgemm peak (all ranks busy) |")
    out.append("|---|---|---|---|---|---|")
    for p, m, e in ((1, m1, e1), (2, m2, e2)):
        out.append(f"| {p} | {cell([dict(x, prog='mpi') for x in m]) if clock == 'wall' else f'{e:,.0f}'} | {e/e1:.2f}x | {100*med([x['r']['comm_share'] for x in m]):.1f}% / "
                   f"{100*med([x['r']['comm_share_max'] for x in m]):.1f}% | "
                   f"{med([x['r']['gflops_per_rank_med'] for x in m]):.1f} | {100*med([x['r']['peak_share'] for x in m]):.0f}% |")
out.append("")
out.append("Targets (issue 19): ours >= 2.5x torch at H = 64 and at H = 128 L = 1, >= 1.5x at H = 512; "
           ">= 85% of the same run's 1-thread sgemm peak at H = 128 and >= 90% at H >= 256; peak RSS "
           "within 1.5x of what parameters, gradients, Adam moments, activations, lane state and data "
           "need (RSS includes ~16 MiB of process baseline: libc, OpenBLAS, Open MPI). FLOPs are counted "
           "as `torch_lstm.py` counts them (per layer 2 (I + H) 4H, I = E + 1 for the first, plus the "
           "heads' 2 H (K + 1), times 3 for forward and backward; elementwise work, embedding and Adam "
           "not counted). Our time head is a log-normal (2 outputs) where torch's is a 1-output MSE.")
out.append("")
out.append(f"Regenerate (about {int(elapsed)//60 + 1} min): `{cmd}` (raw results: `out/bench/`).")
table = "\n".join(out)
with open(table_md, "w") as f:
    f.write(table + "\n")
print(table)
if readme == "none":
    sys.exit(0)
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
PYEOF
printf 'table: %s; README: %s (%d s)\n' "$OUT/speed-$STAMP.md" "$README" "$ELAPSED"
