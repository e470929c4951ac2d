#!/usr/bin/env bash
# isa_override.sh: LSTM_TRAINER_ISA selects the kernel path that runs: for every path this
# CPU supports, `trainer bench --json` names it (isa, isa_env) and the text says so; an
# unknown name, or a path the CPU lacks, is a usage error (status 2) naming the variable.
# A second or so; no timing is checked.
. "$(dirname "$0")/../lib/lib.sh"
PY=$(command -v python3) || { say "SKIP: needs python3 to read the JSON"; exit 77; }
TINY=(--hidden 32 --layers 1 --batch 8 --window 4 --warmup 1 --window-s 0 --windows 1
      --max-steps-per-window 1 --sgemm-trials 0 --json)
mapfile -t paths < <(bash "$TESTS_DIR/lib/isa_paths.sh")
for isa in "${paths[@]}"; do
  if LSTM_TRAINER_ISA=$isa "$TRAINER" bench "${TINY[@]}" > "$isa.json" 2> "$isa.err" &&
     "$PY" -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]);
assert r["isa"] == sys.argv[2] and r["isa_env"] == sys.argv[2], r["isa"]' "$isa.json" "$isa" &&
     grep -q "kernels $isa (CPU: .*chosen by LSTM_TRAINER_ISA)" "$isa.err"; then
    pass "LSTM_TRAINER_ISA=$isa: bench runs the $isa path and says so"
  else
    fail "LSTM_TRAINER_ISA=$isa: $(tail -3 "$isa.err" "$isa.json")"
  fi
done
best=${paths[-1]}
if env -u LSTM_TRAINER_ISA "$TRAINER" bench "${TINY[@]}" > best.json 2> best.err &&
   "$PY" -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]);
assert r["isa"] == sys.argv[2] == r["isa_detected"] and r["isa_env"] == "<unset>", r' best.json "$best"; then
  pass "unset: the best path of this CPU ($best)"
else
  fail "unset: expected $best, $(tail -3 best.err best.json)"
fi
bad=(sse9)
[ "$best" != avx512 ] && bad+=(avx512)
[ "$best" = generic ] && bad+=(avx2)
for isa in "${bad[@]}"; do
  set +e
  LSTM_TRAINER_ISA=$isa "$TRAINER" bench "${TINY[@]}" > /dev/null 2> bad.err; st=$?
  set -e
  if [ "$st" -eq 2 ] && grep -q "LSTM_TRAINER_ISA=$isa" bad.err; then
    pass "LSTM_TRAINER_ISA=$isa: status 2 naming it"
  else
    fail "LSTM_TRAINER_ISA=$isa: status $st, $(cat bad.err)"
  fi
done
finish
