# data_determinism.sh: prepared shards are a pure function of (input, data settings, key),
# balanced, rebuilt exactly when stale, and refused when corrupt.
#
# On 3000 synthetic users read back as CSV files (data.source=csv, given splits):
#   - two prepares into two directories, and a re-prepare over the first: every file
#     byte-identical;
#   - another key (TRAINER_USER_KEY): shards differ, but the counts, vocabularies (in order)
#     and statistics are the same; with one input file (data.path) the split of users does not
#     depend on the key either;
#   - the prepare report's largest virtual shard is within 1.1x the mean in every split, and
#     `train` on 2 ranks reports a rank imbalance within 1.1;
#   - `train` reuses the shards when nothing changed (also after a non-data key changed), and
#     re-prepares after touching or changing an input file, changing a data.* key or the key;
#   - a flipped byte in a shard's payload or header, or a truncated shard, stops `train` with
#     a message naming the file (from the rank that holds it); a corrupt dataset.meta is
#     rebuilt, saying why.
. "$(dirname "$0")/../lib/lib.sh"


write_small_exp "$WORK/synth.yaml"
"$TRAINER" data synth "$WORK/synth.yaml" --set synth.users=3000 > /dev/null
mkdir -p "$WORK/in"
cp "$WORK"/synth/{train,valid,test}.csv "$WORK/in/"

cat > "$WORK/exp.yaml" <<YAML
run:
  dir: $WORK/run
data:
  source: csv
  train_path: $WORK/in/train.csv
  valid_path: $WORK/in/valid.csv
  test_path: $WORK/in/test.csv
  categorical_cols: [content]
  numeric_cols: [engagement]
  engagement_col: engagement
  numeric_transform: log1p
  virtual_shards: 8
  shard_dir: $WORK/a
model: {hidden: 8, action_embed: 4, cat_embed: 4}
train: {batch_size: 16, window: 8, steps: 2, warmup_steps: 0}
eval: {every: 0, batch_size: 16}
checkpoint: {every: 0}
YAML

# same_dirs A B: the same file names, every file byte-identical.
same_dirs() {
  local a=$1 b=$2 f bad=0
  if [ "$(cd "$a" && ls)" != "$(cd "$b" && ls)" ]; then say "  file lists differ"; return 1; fi
  for f in "$a"/*; do cmp -s "$f" "$b/$(basename "$f")" || { say "  $(basename "$f") differs"; bad=1; }; done
  return $bad
}
# The report without the lines and parts that depend on where users went.
report_totals() { grep -E '^  (train|valid|test|vocabulary)' "$1" | sed 's/; largest of.*//'; }
# The vocabulary strings of a dataset.meta, in their order.
vocab_order() { grep -aoE '<unk>|post|like|comment|share|view|follow|text|image|video|link' "$1" | tr '\n' ' '; }

# ---------------------------------------------------------------- same input, same bytes
"$TRAINER" data prepare "$WORK/exp.yaml" > "$WORK/prep-a.out"
"$TRAINER" data prepare "$WORK/exp.yaml" --set data.shard_dir="$WORK/b" > "$WORK/prep-b.out"
if same_dirs "$WORK/a" "$WORK/b"; then pass "two prepares: every file byte-identical ($(ls "$WORK/a" | wc -l) files)"
else fail "two prepares of the same input differ"; fi
cp -r "$WORK/a" "$WORK/a.saved"
"$TRAINER" data prepare "$WORK/exp.yaml" > /dev/null
if same_dirs "$WORK/a" "$WORK/a.saved"; then pass "re-prepare over existing shards: byte-identical"
else fail "re-preparing into the same directory changed the bytes"; fi
if ls -A "$WORK/a" | grep -q '^\.prepare-'; then fail "temporary buckets left in the shard directory"; fi

# ---------------------------------------------------------------- balance
ok=1
for split in train valid test; do
  ratio=$(sed -nE "s/^  $split .*largest of 8 virtual shards ([0-9.]+)x the mean/\1/p" "$WORK/prep-a.out")
  if [ -z "$ratio" ] || ! awk -v r="$ratio" 'BEGIN { exit !(r >= 1 && r <= 1.1) }'; then
    fail "$split: largest virtual shard '$ratio' x the mean (want 1..1.1)"; ok=0
  fi
done
[ $ok = 1 ] && pass "virtual shards balanced: $(grep -oE 'largest of 8 virtual shards [0-9.]+x' "$WORK/prep-a.out" | awk '{print $6}' | tr '\n' ' ')"

# ---------------------------------------------------------------- another key
TRAINER_USER_KEY=000102030405060708090a0b0c0d0e0f "$TRAINER" data prepare "$WORK/exp.yaml" \
  --set data.shard_dir="$WORK/c" > "$WORK/prep-c.out"
n_diff=0
for f in "$WORK"/a/*.shard; do cmp -s "$f" "$WORK/c/$(basename "$f")" || n_diff=$((n_diff + 1)); done
if [ "$n_diff" -ge 8 ]; then pass "another key: $n_diff shard files differ"
else fail "another key: only $n_diff shard files differ (the user hashes must change)"; fi
if [ "$(report_totals "$WORK/prep-a.out")" = "$(report_totals "$WORK/prep-c.out")" ] &&
   [ -n "$(report_totals "$WORK/prep-a.out")" ]; then
  pass "another key: same counts, vocabulary sizes and statistics"
else fail "another key changed the totals:"; diff <(report_totals "$WORK/prep-a.out") <(report_totals "$WORK/prep-c.out") | sed 's/^/    /'; fi
va=$(vocab_order "$WORK/a/dataset.meta"); vc=$(vocab_order "$WORK/c/dataset.meta")
if [ "$va" = "$vc" ] && [ "$(echo "$va" | wc -w)" -eq 12 ]; then pass "another key: same vocabularies in the same order"
else fail "vocabularies: [$va] vs [$vc]"; fi

# One input file split by user: the split must not depend on the key.
{ cat "$WORK/in/train.csv"; tail -n +2 "$WORK/in/valid.csv"; tail -n +2 "$WORK/in/test.csv"; } > "$WORK/in/all.csv"
one_file=(--set 'data.train_path=""' --set 'data.valid_path=""' --set 'data.test_path=""' --set data.path="$WORK/in/all.csv")
"$TRAINER" data prepare "$WORK/exp.yaml" "${one_file[@]}" --set data.shard_dir="$WORK/d1" > "$WORK/prep-d1.out"
TRAINER_USER_KEY=ffeeddccbbaa99887766554433221100 "$TRAINER" data prepare "$WORK/exp.yaml" "${one_file[@]}" \
  --set data.shard_dir="$WORK/d2" > "$WORK/prep-d2.out"
"$TRAINER" data prepare "$WORK/exp.yaml" "${one_file[@]}" --set data.shard_dir="$WORK/d3" > /dev/null
if [ "$(report_totals "$WORK/prep-d1.out")" = "$(report_totals "$WORK/prep-d2.out")" ] &&
   grep -qE '^  valid +[1-9]' "$WORK/prep-d1.out" && same_dirs "$WORK/d1" "$WORK/d3"; then
  pass "data.path: split by user independent of the key, and deterministic"
else fail "data.path split:"; diff "$WORK/prep-d1.out" "$WORK/prep-d2.out" | sed 's/^/    /'; fi

# ---------------------------------------------------------------- train: reuse, imbalance, staleness
RUNS=0
# train_out [--set ...]: trains 2 steps on 2 ranks in a fresh run directory; output in $OUT.
train_out() {
  RUNS=$((RUNS + 1))
  OUT="$WORK/train-$RUNS.out"
  local rc=0
  mpi timeout 120 bash -c 'mpirun --oversubscribe --bind-to none -np 2 "$@"' _ "$TRAINER" train \
    "$WORK/exp.yaml" --set run.dir="$WORK/run-$RUNS" "$@" > "$OUT" 2>&1 || rc=$?
  return $rc
}
expect_reuse() {
  if train_out "${@:2}" && grep -q '^data: using prepared shards' "$OUT" && ! grep -q 'data: preparing' "$OUT"; then pass "$1: shards reused"
  else fail "$1: shards not reused:"; sed 's/^/    /' "$OUT"; fi
}
expect_prepare() {
  if train_out "${@:2}" && grep -qE '^data: preparing .*\(stale' "$OUT"; then pass "$1: re-prepared"
  else fail "$1: not re-prepared:"; sed 's/^/    /' "$OUT"; fi
}

expect_reuse "unchanged"
imb=$(sed -nE 's/.*imbalance max\/mean ([0-9.]+)\).*/\1/p' "$OUT")
if [ -n "$imb" ] && awk -v r="$imb" 'BEGIN { exit !(r >= 1 && r <= 1.1) }'; then pass "train on 2 ranks reports imbalance $imb"
else fail "train: no or bad imbalance report ('$imb')"; fi
expect_reuse "train.lr changed" --set train.lr=0.001
touch -d '+1 minute' "$WORK/in/valid.csv"
expect_reuse "valid.csv touched, contents unchanged (the fingerprint is of contents, not times)"
expect_reuse "touched again, unchanged"
printf 'brand-new-user,1,view,image,1.0\nbrand-new-user,2,like,text,0.5\n' >> "$WORK/in/train.csv"
expect_prepare "train.csv changed"
if grep -qE '^  train +2401 users' "$OUT"; then pass "the appended user is in the re-prepared shards"
else fail "appended user not counted:"; grep -E '^  train' "$OUT" | sed 's/^/    /'; fi
expect_prepare "data.min_events changed" --set data.min_events=3
expect_prepare "data.min_events back" 
expect_prepare "model.gap_offset changed" --set model.gap_offset=0.01
expect_prepare "back"
TRAINER_USER_KEY=00112233445566778899aabbccddeeff expect_prepare "another key"
expect_prepare "the key file's key again"

# ---------------------------------------------------------------- corruption
flip_byte() { # FILE OFFSET: inverts one byte in place
  local b; b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# expect_refused WHAT FILE RANK REASON: train fails naming FILE, from RANK, then the shards
# are restored.
expect_refused() {
  local what=$1 file=$2 rank=$3 reason=$4 rc=0
  train_out || rc=$?
  if [ "$rc" -eq 124 ]; then fail "$what: train hung"
  elif [ "$rc" -eq 0 ]; then fail "$what: train accepted it"
  elif grep -qE 'Sanitizer|runtime error|Segmentation' "$OUT"; then fail "$what: crashed:"; sed 's/^/    /' "$OUT"
  elif grep -qF "[rank $rank] error: $file: $reason" "$OUT"; then pass "$what: refused by rank $rank naming the file"
  else fail "$what: no '[rank $rank] error: $file: $reason' line:"; sed 's/^/    /' "$OUT"; fi
  rm -rf "$WORK/a" && cp -r "$WORK/a.fresh" "$WORK/a"
}
"$TRAINER" data prepare "$WORK/exp.yaml" > /dev/null
cp -r "$WORK/a" "$WORK/a.fresh"
flip_byte "$WORK/a/train-0002.shard" 300
expect_refused "payload byte flipped" "$WORK/a/train-0002.shard" 0 "payload checksum mismatch (corrupt file)"
flip_byte "$WORK/a/train-0006.shard" 40
expect_refused "header byte flipped" "$WORK/a/train-0006.shard" 1 "header checksum mismatch (corrupt file)"
truncate -s -16 "$WORK/a/valid-0005.shard"
expect_refused "truncated" "$WORK/a/valid-0005.shard" 1 "size"
rm "$WORK/a/train-0001.shard"
expect_refused "missing shard" "$WORK/a/train-0001.shard" 0 "cannot read (No such file"
# A shard of other data in the right place (another key's) is refused, not trained on.
cp "$WORK/c/train-0003.shard" "$WORK/a/train-0003.shard"
expect_refused "shard of other data" "$WORK/a/train-0003.shard" 0 "belongs to other data"
flip_byte "$WORK/a/dataset.meta" 100
if train_out && grep -qE "^data: preparing $WORK/a \($WORK/a/dataset.meta: checksum mismatch" "$OUT"; then
  pass "corrupt dataset.meta: re-prepared, saying why"
else fail "corrupt dataset.meta:"; sed 's/^/    /' "$OUT"; fi

finish
