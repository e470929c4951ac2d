#!/usr/bin/env bash
# isa_paths.sh: the kernel paths (kernels.h) this CPU can run, one a line: generic, and avx2
# and avx512 where /proc/cpuinfo has their flags (as cpu.c's detection: avx2+fma, avx512f).
#   isa_paths.sh             list them
#   isa_paths.sh ISA CMD...  run CMD with LSTM_TRAINER_ISA=ISA, or exit 77 (skip) if the
#                            CPU lacks ISA
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
has() { [[ " $flags " == *" $1 "* ]]; }
paths=(generic)
if has avx2 && has fma; then paths+=(avx2); fi
if has avx512f; then paths+=(avx512); fi
if [ $# -eq 0 ]; then printf '%s\n' "${paths[@]}"; exit 0; fi
isa=$1; shift
for p in "${paths[@]}"; do
  if [ "$p" = "$isa" ]; then LSTM_TRAINER_ISA=$isa exec "$@"; fi
done
echo "SKIP: this CPU has no $isa (paths here: ${paths[*]})"
exit 77
