# eval_ranks.sh: `trainer eval` and `trainer predict` give the same answers on any number
# of ranks: 1, 2, 3 (3 does not divide data.virtual_shards=8) and more ranks than shards.
#
#   eval --split valid|test and --input CSV: the same number of targets, every metric within
#       1e-5 relative (plus one unit of the 6th significant digit the JSON is printed with);
#       --output writes one valid JSON object.
#   predict --input CSV: the same users, in the same order (sorted by user hash), the same
#       actions, numbers within 1e-5 relative (plus the printed precision).
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml

# json_ok FILE: one flat JSON object of string and number members (python3 checks it too,
# when there is one).
json_ok() {
  local num='-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?' str='"[^"\\]*"'
  [ "$(wc -l < "$1")" -eq 1 ] || return 1
  grep -qE "^\{($str:($num|$str))(,$str:($num|$str))*\}$" "$1" || return 1
  if command -v python3 > /dev/null 2>&1; then python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1" || return 1; fi
}
# metrics_close A.json B.json: same members; n_targets equal; numbers within tolerance.
metrics_close() {
  awk -F'[:,{}]' '
    function tol(x) { x = x < 0 ? -x : x; return 1e-5 * x + (x > 0 ? 10 ^ (int(log(x) / log(10) + 100) - 100 - 5) : 0) }
    FNR == 1 { file++ }
    { for (i = 2; i < NF; i += 2) { k = $i; v = $(i + 1); if (file == 1) a[k] = v; else b[k] = v } }
    END { for (k in a) {
            if (!(k in b)) { print "missing " k; bad = 1; continue }
            if (a[k] ~ /^"/ || k == "\"n_targets\"" || k == "\"checkpoint_step\"") { if (a[k] != b[k]) { print k " " a[k] " vs " b[k]; bad = 1 } }
            else { d = a[k] - b[k]; d = d < 0 ? -d : d; if (d > tol(a[k])) { print k " " a[k] " vs " b[k]; bad = 1 } } }
          for (k in b) if (!(k in a)) { print "extra " k; bad = 1 }
          exit bad }' "$1" "$2"
}
# predictions_close A.csv B.csv: same header, users in the same order, same actions;
# predicted_time compared as the gap from last_time.
predictions_close() {
  paste -d, "$1" "$2" | awk -F, '
    # within 1e-5 relative plus one unit of the 6th significant digit (%.6g) or 2e-6 (%.6f)
    function near(x, y) { d = x - y; d = d < 0 ? -d : d; s = x < 0 ? -x : x
      q = s > 0 ? 10 ^ (int(log(s) / log(10) + 100) - 100 - 5) : 0; return d <= 1e-5 * s + (q > 2e-6 ? q : 2e-6) }
    NR == 1 { n = NF / 2; for (i = 1; i <= n; i++) if ($i != $(i + n)) { print "header differs"; exit 1 }; next }
    { for (i = 1; i <= n; i++) {
        x = $i; y = $(i + n)
        if (i == 4) { x = $4 - $3; y = $(4 + n) - $(3 + n) }
        if (i <= 3 || x ~ /^[a-z<]/) { if (x != y) { print "line " NR " field " i ": " x " vs " y; exit 1 } }
        else if (!near(x, y)) { print "line " NR " field " i ": " x " vs " y; exit 1 } } }
    END { if (NR < 2) { print "no rows"; exit 1 } }'
}

mpirun_limit 120 1 "$TRAINER" train exp.yaml > train.out 2>&1 || { cat train.out; fail "training failed"; finish; }
CKPT="$WORK/run"

# 1. eval of the prepared splits on 1, 2 and 3 ranks.
for split in valid test; do
  for n in 1 2 3; do
    if mpirun_limit 120 "$n" "$TRAINER" eval exp.yaml --checkpoint "$CKPT" --split $split \
        --output "$WORK/$split$n.json" > "$split$n.out" 2>&1 && grep -q "on $n rank" "$split$n.out"; then
      json_ok "$WORK/$split$n.json" && pass "eval --split $split -np $n: $(cat "$WORK/$split$n.json")" \
        || fail "eval --split $split -np $n: --output is not one valid JSON object: $(cat "$WORK/$split$n.json")"
    else
      cat "$split$n.out"; fail "eval --split $split on $n ranks failed"
    fi
  done
  for n in 2 3; do
    [ -f "$WORK/${split}1.json" ] && [ -f "$WORK/$split$n.json" ] || continue
    why=$(metrics_close "$WORK/${split}1.json" "$WORK/$split$n.json") \
      && pass "eval --split $split: $n ranks == 1 rank (same targets, metrics within 1e-5)" \
      || fail "eval --split $split: $n ranks differ from 1 rank: $why"
    [ "$(grep 'targets scored' "${split}1.out")" = "$(grep 'targets scored' "$split$n.out")" ] \
      || fail "eval --split $split: printed target counts differ between 1 and $n ranks"
  done
done
grep -q '"n_targets":0,' "$WORK/valid1.json" && fail "eval scored no targets" || true

# 2. eval --input and predict --input (users dealt to ranks round-robin) on 1, 2 and 3 ranks.
input="$WORK/synth/test.csv"
for n in 1 2 3; do
  mpirun_limit 120 "$n" "$TRAINER" eval exp.yaml --checkpoint "$CKPT" --input "$input" \
    --output "$WORK/input$n.json" > "input$n.out" 2>&1 || { cat "input$n.out"; fail "eval --input on $n ranks failed"; }
  mpirun_limit 120 "$n" "$TRAINER" predict exp.yaml --checkpoint "$CKPT" --input "$input" \
    --output "$WORK/pred$n.csv" > "pred$n.out" 2>&1 || { cat "pred$n.out"; fail "predict on $n ranks failed"; }
done
for n in 2 3; do
  why=$(metrics_close "$WORK/input1.json" "$WORK/input$n.json") && pass "eval --input: $n ranks == 1 rank" \
    || fail "eval --input: $n ranks differ from 1 rank: $why"
  why=$(predictions_close "$WORK/pred1.csv" "$WORK/pred$n.csv") \
    && pass "predict: $n ranks == 1 rank ($(($(wc -l < "$WORK/pred1.csv") - 1)) users, same order)" \
    || fail "predict: $n ranks differ from 1 rank: $why"
done
ls "$WORK"/pred*.csv.part* > /dev/null 2>&1 && fail "predict left .part files behind" || true

# 3. More ranks than virtual shards: an experiment with data.virtual_shards=2 on 3 ranks
# (rank 2 holds no shard and must still take part in the reductions).
sed -e "s|virtual_shards: 8|virtual_shards: 2|" -e "s|$WORK/shards|$WORK/shards2|" -e "s|dir: $WORK/run|dir: $WORK/run2|" exp.yaml > exp2.yaml
mpirun_limit 120 1 "$TRAINER" train exp2.yaml > train2.out 2>&1 || { cat train2.out; fail "training with V=2 failed"; }
for n in 1 3; do
  mpirun_limit 120 "$n" "$TRAINER" eval exp2.yaml --checkpoint "$WORK/run2" --split valid \
    --output "$WORK/v2_$n.json" > "v2_$n.out" 2>&1 || { cat "v2_$n.out"; fail "eval with V=2 on $n ranks failed"; }
done
why=$(metrics_close "$WORK/v2_1.json" "$WORK/v2_3.json") && pass "eval with V=2: 3 ranks == 1 rank" \
  || fail "eval with V=2: 3 ranks differ from 1 rank: $why"
finish
