#!/usr/bin/env bash
# isa_repro.sh: train.reproducible=true stays bitwise across rank counts on the generic and
# AVX2 kernel paths too (LSTM_TRAINER_ISA; multirank_equiv.sh covers the CPU's best path):
# the final checkpoint of 2 ranks equals 1 rank's byte for byte, and the paths agree with
# each other within the default-mode tolerance of multirank_equiv.sh (1e-3 absolute, AdamW).
# 64 lanes over 8 virtual shards = 8 lanes per shard pass, H = 32: the packed recurrent GEMM
# (M % 8 == 0, 4H % 32 == 0) and whole vectors on both ISA paths. A path this CPU lacks is
# skipped. Six steps each; ~10 s.
. "$(dirname "$0")/../lib/lib.sh"
[ -n "$CKPT_COMPARE" ] || { say "usage: isa_repro.sh TRAINER CKPT_COMPARE"; exit 2; }
write_small_exp exp.yaml
mapfile -t paths < <(bash "$TESTS_DIR/lib/isa_paths.sh")
ran=()
for isa in generic avx2; do
  [[ " ${paths[*]} " == *" $isa "* ]] || { say "skip $isa: this CPU lacks it"; continue; }
  ok=1
  for n in 1 2; do
    if ! LSTM_TRAINER_ISA=$isa mpirun_limit 120 "$n" "$TRAINER" train exp.yaml \
        --set run.dir="$WORK/$isa$n" --set train.reproducible=true --set train.batch_size=64 \
        --set model.hidden=32 --set train.steps=6 --set train.warmup_steps=1 > "$isa$n.out" 2>&1; then
      cat "$isa$n.out"; fail "$isa: mpirun -np $n failed"; ok=0
    elif ! grep -q "$isa kernels" "$isa$n.out" "$WORK/$isa$n"/log.jsonl 2>/dev/null; then
      grep -m2 -i "openblas" "$isa$n.out" || true; fail "$isa$n: the log does not name the $isa kernel path"; ok=0
    fi
  done
  [ $ok = 1 ] || continue
  ran+=("$isa")
  a=$WORK/${isa}1/checkpoints/step-00000006.ckpt b=$WORK/${isa}2/checkpoints/step-00000006.ckpt
  if "$CKPT_COMPARE" "$a" "$b" > "cmp-$isa.txt" 2>&1; then
    pass "$isa: 2 ranks == 1 rank bitwise (reproducible mode)"
  else
    cat "cmp-$isa.txt"; fail "$isa: reproducible checkpoints of 1 and 2 ranks differ"
  fi
done
if [ "${#ran[@]}" = 2 ]; then
  if "$CKPT_COMPARE" "$WORK/generic1/checkpoints/step-00000006.ckpt" \
      "$WORK/avx21/checkpoints/step-00000006.ckpt" --tol 1e-3 > cmp-paths.txt 2>&1; then
    pass "avx2 vs generic: final checkpoints within 1e-3"
  else
    cat cmp-paths.txt; fail "avx2 and generic paths train different models"
  fi
fi
finish
