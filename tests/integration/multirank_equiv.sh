# multirank_equiv.sh: `mpirun -np P trainer train` trains the same model as one rank, for
# P = 1, 2, 4 over data.virtual_shards=8 (issue "Data-parallel training over MPI").
#
# Default mode: the only legitimate differences are the float summation order in the GEMMs
# (B/P lanes per rank) and in the allreduce. Tolerances, from 32 np1-vs-np{2,4} comparisons
# over 16 seeds of this experiment (20 steps; worst case in brackets):
#   per-step loss, action_nll, time_nll, eng_mse: relative 1e-6   [8e-8; they are printed
#       with 9 digits]
#   per-step grad_norm:                            relative 1e-4   [9.3e-6; printed with 6
#       digits, so its rounding alone is up to 1e-5]
#   final checkpoint, AdamW (params, moments, lane state; ckpt_compare --tol is absolute):
#       1e-3 [2.9e-5: Adam amplifies noise in parameters whose gradients are ~0]
#   final checkpoint, SGD (linear in the gradient, no amplification): 1e-4 [6.2e-6]
# What real bugs give (measured with mutated builds): normalising by the local instead of
# the global event count -> adam_m off by 0.15 (AdamW), losses off by 2e-2 (SGD); a bucket
# never reduced -> losses off by 1.2e-4, params by 3e-2; ranks training on the wrong shards
# -> losses off by 5e-2.
#
# train.reproducible=true: final checkpoints bitwise identical and per-step losses identical
# as text for P = 1, 2, 4. And a P that does not divide V is refused on every rank, quickly.
. "$(dirname "$0")/../lib/lib.sh"
[ -n "$CKPT_COMPARE" ] || { say "usage: multirank_equiv.sh TRAINER CKPT_COMPARE"; exit 2; }
write_small_exp exp.yaml

# train_np NP NAME [--set ...]: one run into $WORK/NAME, every step logged, one checkpoint
# at the end. Returns non-zero (and shows its output) when the run fails.
train_np() {
  local n=$1 name=$2; shift 2
  if ! mpirun_limit 120 "$n" "$TRAINER" train exp.yaml --set run.dir="$WORK/$name" \
      --set log.every=1 "$@" > "$name.out" 2>&1; then
    cat "$name.out"; fail "$name: mpirun -np $n failed"; return 1
  fi
}
# "step loss action_nll time_nll eng_mse grad_norm lr" per step line of a run's log.jsonl.
step_fields() {
  sed -n 's/.*"event":"step","step":\([0-9]*\),"loss":\([^,]*\),"action_nll":\([^,]*\),"time_nll":\([^,]*\),"eng_mse":\([^,]*\),"grad_norm":\([^,]*\),"lr":\([^,]*\),.*/\1 \2 \3 \4 \5 \6 \7/p' "$WORK/$1/log.jsonl"
}
# compare_steps A B: per-step metrics of two runs within the tolerances above.
compare_steps() {
  local a=$1 b=$2 report
  step_fields "$a" > "$a.steps"; step_fields "$b" > "$b.steps"
  report=$(paste -d' ' "$a.steps" "$b.steps" | awk -v steps=20 '
    function rel(x, y) { d = x - y; if (d < 0) d = -d; s = (x < 0 ? -x : x); return s > 0 ? d / s : d }
    { n++
      if ($1 != $8 || $7 != $14) { bad = bad " step/lr differ at line " n }
      for (i = 2; i <= 5; i++) { r = rel($i, $(i + 7)); if (r > wl) wl = r }
      r = rel($6, $13); if (r > wg) wg = r }
    END { if (n != steps) bad = bad " " n " step lines (want " steps ")"
          if (wl > 1e-6) bad = bad " loss rel diff > 1e-6"
          if (wg > 1e-4) bad = bad " grad_norm rel diff > 1e-4"
          printf "max rel diff: losses %.2e, grad_norm %.2e%s\n", wl, wg, bad ? " BAD:" bad : ""
          exit bad ? 1 : 0 }') && { pass "$b vs $a per-step: $report"; return 0; }
  fail "$b vs $a per-step: $report"
}
# compare_ckpt A B [--tol X]: final checkpoints of two runs.
compare_ckpt() {
  local a=$1 b=$2; shift 2
  if "$CKPT_COMPARE" "$WORK/$a"/checkpoints/step-00000020.ckpt "$WORK/$b"/checkpoints/step-00000020.ckpt "$@" \
      > "cmp-$a-$b.txt" 2>&1; then
    pass "$b vs $a checkpoint ${*:-bitwise}: $(grep -o 'params.*' "cmp-$a-$b.txt" | head -1)"
  else
    cat "cmp-$a-$b.txt"; fail "$b vs $a final checkpoint differs (${*:-bitwise})"
  fi
}

# compare_valid A B: the final validation metrics (metrics.json "valid", reduced across
# ranks): n_targets equal, the rest within 1e-5 relative plus one unit of the 6th digit.
compare_valid() {
  local why
  why=$(sed -n 's/.*"valid":{\(.*\)}}.*/\1/p' "$WORK/$1/metrics.json" "$WORK/$2/metrics.json" | awk -F'[:,]' '
    function tol(x) { x = x < 0 ? -x : x; return 1e-5 * x + (x > 0 ? 10 ^ (int(log(x) / log(10) + 100) - 100 - 5) : 0) }
    NR == 1 { for (i = 1; i < NF; i += 2) a[$i] = $(i + 1); next }
    { for (i = 1; i < NF; i += 2) { k = $i; d = a[k] - $(i + 1); d = d < 0 ? -d : d
        if (!(k in a) || (k == "\"n_targets\"" ? a[k] != $(i + 1) : d > tol(a[k]))) { print k " " a[k] " vs " $(i + 1); bad = 1 } } }
    END { if (NR != 2) { print "no valid metrics"; bad = 1 }; exit bad }') \
    && pass "$2 vs $1: final validation metrics agree" || fail "$2 vs $1: validation metrics differ: $why"
}

# 1. Default mode, AdamW (the default optimizer) and SGD.
for opt in adamw sgd; do
  sets=(--set train.optimizer=$opt); [ $opt = sgd ] && sets+=(--set train.lr=0.5)
  tol=1e-3; [ $opt = sgd ] && tol=1e-4
  ok=1
  for n in 1 2 4; do train_np "$n" "$opt$n" "${sets[@]}" || ok=0; done
  [ $ok = 1 ] || continue
  for n in 2 4; do
    grep -q "$n ranks (mpirun)" "$opt$n.out" || fail "$opt$n did not run on $n ranks"
    compare_steps "${opt}1" "$opt$n"
    compare_ckpt "${opt}1" "$opt$n" --tol $tol
    if [ $opt = adamw ]; then compare_valid "${opt}1" "$opt$n"; fi
  done
  # Only rank 0 logs: one line per step, with every documented field.
  for n in 2 4; do
    fields='"step":[0-9]+,"loss":[^,]+,"action_nll":[^,]+,"time_nll":[^,]+,"eng_mse":[^,]+,"grad_norm":[^,]+,"lr":[^,]+,"events_per_s":[^,]+,"comm_share":[^,]+,"comm_share_max":[^,]+,"skipped":[0-9]+,"eta_s":[^,]+,"rank_step_s":\[[0-9.,]+\],"rank_comm_s":\[[0-9.,]+\]\}$'
    [ "$(grep -c '"event":"step"' "$WORK/$opt$n/log.jsonl")" = 20 ] && [ "$(grep -cE "\"event\":\"step\",$fields" "$WORK/$opt$n/log.jsonl")" = 20 ] \
      && pass "$opt$n: log.jsonl has 20 step lines (rank 0 only), each with every field" \
      || { head -3 "$WORK/$opt$n/log.jsonl"; fail "$opt$n: log.jsonl step lines missing, duplicated or lacking fields"; }
  done
done

# 2. Reproducible mode: bitwise, for every P dividing V.
ok=1
for n in 1 2 4; do train_np "$n" "repro$n" --set train.reproducible=true || ok=0; done
if [ $ok = 1 ]; then
  for n in 2 4; do
    compare_ckpt repro1 "repro$n"
    step_fields repro1 > repro1.text; step_fields "repro$n" > "repro$n.text"
    if [ -s repro1.text ] && cmp -s repro1.text "repro$n.text"; then
      pass "repro$n: per-step losses, grad_norm and lr identical as text to repro1 ($(wc -l < repro1.text) steps)"
    else
      { diff repro1.text "repro$n.text" || true; } | head -5; fail "repro$n: per-step log differs from repro1"
    fi
  done
  # Per-shard passes train the same model as one pass over all lanes (float tolerance).
  if [ -d "$WORK/adamw1" ]; then compare_steps adamw1 repro1; compare_ckpt adamw1 repro1 --tol 1e-3; fi
fi

# 4. Bucket edges, against one rank with the same settings:
#  - comm.bucket_mb=0.004 (1024-float buckets): layer 0's 2304 gradients span three buckets, so
#    a last bucket left unreduced shows; H=256 makes ~280 buckets (2 ranks died there once with
#    "too many outstanding reductions": the request table was smaller than the bucket table);
#  - train.window=1: 8 lanes x 1 step per rank are fewer than the 12 folded-embedding rows (K=7 + 5), so 2
#    ranks take the unfolded embedding path (1 rank the folded one): its embedding bucket must
#    be reduced too;
#  - a bucket size that would cut the model into more than 4096 buckets is refused (exit 2,
#    naming comm.bucket_mb) before anything trains.
for case in "tiny:--set comm.bucket_mb=0.004" "h256:--set comm.bucket_mb=0.004 --set model.hidden=256" \
            "w1:--set train.window=1"; do
  name=${case%%:*}; read -r -a sets <<< "${case#*:}"
  train_np 1 "${name}1" "${sets[@]}" && train_np 2 "${name}2" "${sets[@]}" &&
    { compare_steps "${name}1" "${name}2"; compare_ckpt "${name}1" "${name}2" --tol 1e-3; }
done
status=0
mpirun_limit 60 2 "$TRAINER" train exp.yaml --set run.dir="$WORK/huge" --set model.hidden=1024 \
  --set comm.bucket_mb=0.001 > huge.out 2>&1 || status=$?
if [ "$status" -eq 2 ] && grep -q "error: comm.bucket_mb=0.001 cuts this model's gradients into more than 4096 buckets" huge.out; then
  pass "comm.bucket_mb=0.001 at H=1024 refused with exit 2: $(grep -m1 'comm.bucket_mb' huge.out)"
else
  cat huge.out; fail "comm.bucket_mb=0.001 at H=1024: exit $status, want 2 and a message naming comm.bucket_mb"
fi

# 3. P that does not divide V: a clear error from the ranks, non-zero, no hang.
t0=$(date +%s)
status=0
mpirun_limit 60 3 "$TRAINER" train exp.yaml --set run.dir="$WORK/np3" > np3.out 2>&1 || status=$?
t=$(( $(date +%s) - t0 ))
if [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && [ "$status" -ne 137 ] &&
   grep -q "3 ranks do not divide data.virtual_shards=8" np3.out; then
  pass "-np 3 with V=8 refused in ${t}s (exit $status): $(grep -m1 'do not divide' np3.out)"
else
  cat np3.out; fail "-np 3 with V=8: exit $status after ${t}s, want a clear error and non-zero exit"
fi
[ ! -e "$WORK/np3/checkpoints/step-00000000.ckpt" ] || fail "-np 3 wrote a checkpoint"
finish
