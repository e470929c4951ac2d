# privacy.sh: no raw user id (nor the user-id key) reaches any file or output of the trainer.
#
# Users with distinctive ids go through data prepare, train on 2 ranks with checkpoints,
# eval (split and --input), predict --input and checkpoint inspect, with a few bad rows under
# on_error=skip. Then every file under the work directory except the input CSVs (shards, meta,
# run directory, checkpoints, predictions, the captured stdout/stderr of every command) is
# searched for every raw id and its fragments, case-insensitively, as hex, base64 (at every
# alignment), UTF-16 and reversed, and for the key as hex. A canary directory holding each
# encoding checks that the search finds them.
# Also: the key file is created with mode 0600 (whatever the umask) in a new directory;
# TRAINER_USER_KEY (32 hex digits) is used instead of the file and hashes like the same key
# in a key file; malformed keys, in the environment or the file, are refused clearly.
. "$(dirname "$0")/../lib/lib.sh"


IN="$WORK/input" # excluded from the search: the raw ids are the input
LOGS="$WORK/logs"
mkdir -p "$IN" "$LOGS"
export TRAINER_KEY_FILE="$WORK/keys/new-dir/user-id.key"

# ---------------------------------------------------------------- input
ids=()
for i in $(seq 1 40); do ids+=("raw-user-id-7f3a91-XYZ-$i"); done
ids+=("alice.7f3a91+tracking@example.com" "Zoë-7f3a91-Ünïcode" "4815162342007f3a91")
{
  printf 'user,time,action,content,engagement\n'
  n=0
  for id in "${ids[@]}"; do
    n=$((n + 1)); t=$((1700000000 + n * 1000))
    for k in $(seq 1 $((8 + n % 9))); do
      t=$((t + 30 + (n * 7 + k * 13) % 600))
      printf '"%s",%d,%s,%s,%d.%d\n' "$id" "$t" "$(echo view like share post | cut -d' ' -f$((1 + (n + k) % 4)))" \
        "$(echo text image video | cut -d' ' -f$((1 + (n * k) % 3)))" $(((n + k) % 5)) $((k % 10))
    done
  done
  # Bad rows with raw ids in them: the warnings must not echo the ids.
  printf '"%s",notatime,view,text,1\n' "${ids[0]}"
  printf '"%s",1700009999,view,text,oops\n' "${ids[1]}"
  printf '"%s,1700009999,view,text,1\n' "${ids[2]}"
  printf '%s,1700009999,view\n' "${ids[3]}"
} > "$IN/events.csv"
# A CSV to score: some known users and one never seen.
{ head -n 60 "$IN/events.csv"; for k in 1 2 3 4 5; do printf '"raw-user-id-7f3a91-XYZ-unseen",%d,view,text,1\n' $((1700100000 + k * 60)); done; } > "$IN/score.csv"
printf '%s\n' "${ids[@]}" "raw-user-id-7f3a91-XYZ-unseen" > "$IN/ids.txt"

cat > "$WORK/exp.yaml" <<YAML
run:
  dir: $WORK/run
data:
  source: csv
  path: $IN/events.csv
  valid_frac: 0.2
  test_frac: 0.2
  categorical_cols: [content]
  numeric_cols: [engagement]
  engagement_col: engagement
  numeric_transform: log1p
  on_error: skip
  virtual_shards: 4
  shard_dir: $WORK/shards
model: {hidden: 8, action_embed: 4, cat_embed: 4}
train: {batch_size: 4, window: 4, steps: 4, warmup_steps: 0}
eval: {every: 2, batch_size: 4}
log: {every: 1}
checkpoint: {every: 2}
YAML

# ---------------------------------------------------------------- every command, outputs kept
run_logged() { # NAME CMD...: stdout and stderr kept in $LOGS; fails the check on a non-zero status
  local name=$1; shift
  local rc=0
  if [ "$1" = mpi ]; then shift; timeout 120 "$@"; else timeout 120 "$@"; fi \
    > "$LOGS/$name.out" 2> "$LOGS/$name.err" || rc=$?
  if [ "$rc" -ne 0 ]; then fail "$name: exit status $rc"; sed 's/^/    /' "$LOGS/$name.err"; else pass "$name ran"; fi
}
umask 000 # the key file must still be 0600
run_logged prepare "$TRAINER" data prepare "$WORK/exp.yaml"
umask 022
mode=$(stat -c %a "$TRAINER_KEY_FILE" 2>/dev/null || echo missing)
if [ "$mode" = 600 ]; then pass "key file created with mode 0600 (umask 000)"; else fail "key file mode: $mode"; fi
if grep -q "created user-id key file $TRAINER_KEY_FILE (mode 0600)" "$LOGS/prepare.err"; then pass "key file creation reported"
else fail "key file creation not reported"; fi
if ! grep -qE '^warning: .*events.csv:[0-9]+: .*\(row skipped\)' "$LOGS/prepare.err"; then fail "the bad rows were not reported"; fi
run_logged train mpi mpirun --oversubscribe --bind-to none -np 2 "$TRAINER" train "$WORK/exp.yaml"
run_logged eval_test mpi mpirun --oversubscribe --bind-to none -np 2 "$TRAINER" eval "$WORK/exp.yaml" \
  --checkpoint "$WORK/run" --split test --output "$WORK/eval-test.json"
run_logged eval_input mpi mpirun --oversubscribe --bind-to none -np 2 "$TRAINER" eval "$WORK/exp.yaml" \
  --checkpoint "$WORK/run" --input "$IN/score.csv" --output "$WORK/eval-input.json"
run_logged predict mpi mpirun --oversubscribe --bind-to none -np 2 "$TRAINER" predict "$WORK/exp.yaml" \
  --checkpoint "$WORK/run" --input "$IN/score.csv" --output "$WORK/predictions.csv"
run_logged predict1 mpi "$TRAINER" predict "$WORK/exp.yaml" --checkpoint "$WORK/run" --input "$IN/events.csv" \
  --output "$WORK/predictions-all.csv"
run_logged inspect "$TRAINER" checkpoint inspect "$WORK/run"
# The runs produced what is searched (a search of nothing proves nothing).
for f in "$WORK/shards/dataset.meta" "$WORK/shards/train-0000.shard" "$WORK/run/log.jsonl" \
         "$WORK/predictions.csv" "$WORK/eval-input.json"; do
  [ -s "$f" ] || fail "expected output $f is missing or empty"
done
n_ckpt=$(find "$WORK/run" -name '*.ckpt' | wc -l)
[ "$n_ckpt" -ge 1 ] || fail "no checkpoint written"
n_pred=$(($(wc -l < "$WORK/predictions.csv") - 1))
if [ "$n_pred" -ge 5 ] && grep -qE '^[0-9a-f]{16},' "$WORK/predictions.csv"; then pass "predictions name $n_pred users by keyed hash"
else fail "predictions.csv: $n_pred users, or not named by hash:"; head -3 "$WORK/predictions.csv" | sed 's/^/    /'; fi

# ---------------------------------------------------------------- the key
ENVKEY=00112233445566778899aabbccddeeff
other_key_file="$WORK/keys/other.key"
rc=0
TRAINER_USER_KEY=$ENVKEY TRAINER_KEY_FILE=$other_key_file "$TRAINER" data prepare "$WORK/exp.yaml" \
  --set data.shard_dir="$WORK/shards-env" > "$LOGS/env.out" 2> "$LOGS/env.err" || rc=$?
printf '%s\n' "$ENVKEY" > "$WORK/keys/same.key"; chmod 600 "$WORK/keys/same.key"
"$TRAINER" data prepare "$WORK/exp.yaml" --set data.shard_dir="$WORK/shards-file" \
  --set data.key_file="$WORK/keys/same.key" > "$LOGS/file.out" 2> "$LOGS/file.err" || rc=$?
if [ "$rc" -eq 0 ] && [ ! -e "$other_key_file" ] && cmp -s "$WORK/shards-env/train-0000.shard" "$WORK/shards-file/train-0000.shard" &&
   ! cmp -s "$WORK/shards-env/train-0000.shard" "$WORK/shards/train-0000.shard"; then
  pass "TRAINER_USER_KEY is used (no key file made) and hashes as the same key in data.key_file"
else fail "TRAINER_USER_KEY not honoured (rc $rc)"; cat "$LOGS/env.err" "$LOGS/file.err" | sed 's/^/    /'; fi
for bad in xyz 00112233445566778899aabbccddeef 00112233445566778899aabbccddeeff0 \
           0011223344556677889gaabbccddeeff -1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1 "+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f" \
           " f f f f f f f f f f f f f f f f" "0x112233445566778899aabbccddeeff"; do
  rc=0
  TRAINER_USER_KEY=$bad "$TRAINER" data prepare "$WORK/exp.yaml" --set data.shard_dir="$WORK/shards-bad" \
    > "$LOGS/badkey.out" 2> "$LOGS/badkey.err" || rc=$?
  if [ "$rc" -eq 1 ] && grep -q '^error: TRAINER_USER_KEY must be 32 hex digits' "$LOGS/badkey.err" &&
     [ ! -e "$WORK/shards-bad/dataset.meta" ]; then :
  else fail "TRAINER_USER_KEY='$bad': status $rc"; sed 's/^/    /' "$LOGS/badkey.err"; fi
  # The refusal must not print the key it refused (it may be a real key with a typo).
  if [ ${#bad} -gt 8 ] && grep -qF -- "$bad" "$LOGS/badkey.err"; then fail "the refused key is echoed"; fi
done
pass "malformed TRAINER_USER_KEY values refused"
printf 'not a key\n' > "$WORK/keys/bad.key"; chmod 600 "$WORK/keys/bad.key"
rc=0
"$TRAINER" data prepare "$WORK/exp.yaml" --set data.key_file="$WORK/keys/bad.key" \
  --set data.shard_dir="$WORK/shards-bad" > "$LOGS/badfile.out" 2> "$LOGS/badfile.err" || rc=$?
if [ "$rc" -eq 1 ] && grep -q "^error: $WORK/keys/bad.key:1: user-id key file must hold 32 hex digits" "$LOGS/badfile.err"; then
  pass "malformed key file refused, naming it"
else fail "malformed key file (status $rc):"; sed 's/^/    /' "$LOGS/badfile.err"; fi
chmod 644 "$WORK/keys/same.key"
"$TRAINER" data prepare "$WORK/exp.yaml" --set data.key_file="$WORK/keys/same.key" \
  --set data.shard_dir="$WORK/shards-file" > /dev/null 2> "$LOGS/mode.err"
if grep -q "warning: $WORK/keys/same.key: user-id key file is readable by others (mode 644)" "$LOGS/mode.err"; then
  pass "a key file readable by others is warned about"
else fail "no warning for a 0644 key file:"; sed 's/^/    /' "$LOGS/mode.err"; fi

# ---------------------------------------------------------------- the search
# Patterns (Perl regular expressions, one per line) for a secret string: itself, its hex,
# base64 at each of the three alignments, UTF-16 LE and BE, reversed.
hex_of() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
pcre_quote() { printf '%s' "$1" | sed 's/[][\\.^$*+?(){}|\/]/\\&/g'; }
encodings() {
  local s=$1 k pad b64 len start end
  pcre_quote "$s"; echo
  hex_of "$s"; echo
  len=${#s}
  for k in 0 1 2; do
    pad=$(head -c "$k" /dev/zero | tr '\0' 'A')
    b64=$(printf '%s%s' "$pad" "$s" | base64 -w0)
    start=$(( k > 0 ? 4 : 0 )); end=$(( (k + $(printf '%s' "$s" | wc -c)) / 3 * 4 ))
    pcre_quote "${b64:$start:$((end - start))}"; echo
  done
  printf '%s' "$s" | iconv -f UTF-8 -t UTF-16LE | od -An -tx1 -v | tr -s ' \n' ' ' | sed 's/^ //; s/ $//; s/\([0-9a-f][0-9a-f]\)/\\x\1/g; s/ //g'; echo
  printf '%s' "$s" | iconv -f UTF-8 -t UTF-16BE | od -An -tx1 -v | tr -s ' \n' ' ' | sed 's/^ //; s/ $//; s/\([0-9a-f][0-9a-f]\)/\\x\1/g; s/ //g'; echo
  pcre_quote "$(printf '%s' "$s" | rev)"; echo
}
: > "$IN/patterns.txt"
while IFS= read -r id; do encodings "$id" >> "$IN/patterns.txt"; done < "$IN/ids.txt"
# Fragments: whatever is left of an id cut short or split up.
for frag in 7f3a91-XYZ user-id-7f3a91 alice.7f3a91 tracking@example Ünïcode 4815162342; do
  encodings "$frag" >> "$IN/patterns.txt"
done
KEY_HEX=$(tr -d '\n' < "$TRAINER_KEY_FILE")
hex_of_key=$KEY_HEX
printf '%s\n' "$hex_of_key" "$ENVKEY" >> "$IN/patterns.txt"

# search DIR EXCLUDED_DIR: prints the files under DIR (outside EXCLUDED_DIR and the key files)
# that match any pattern: one grep over all files with all patterns in one alternation.
search() {
  local files=()
  mapfile -d '' files < <(find "$1" -type f ! -path "$2/*" ! -path "$WORK/keys/*" -print0)
  [ ${#files[@]} -gt 0 ] || return 0
  LC_ALL=C grep -l -a -i -P -e "$(paste -sd'|' "$IN/patterns.txt")" "${files[@]}" 2>/dev/null || true
}
# explain FILE...: which patterns each file matches.
explain() {
  local f p
  for f in "$@"; do
    while IFS= read -r p; do
      if LC_ALL=C grep -q -a -i -P -e "$p" "$f"; then printf '    %s: %s\n' "$f" "$p"; fi
    done < "$IN/patterns.txt"
  done
}

# The search must find each encoding: a canary file per encoding of one id, and the key.
mkdir -p "$IN/canary"
canary_id="raw-user-id-7f3a91-XYZ-17"
printf 'x%sx' "$canary_id" | tr a-z A-Z > "$IN/canary/upper"
printf 'x%sx' "$(hex_of "$canary_id")" > "$IN/canary/hex"
printf '{"id":"%s"}' "$(printf 'xy%s' "$canary_id" | base64 -w0)" > "$IN/canary/base64"
printf '%s' "$canary_id" | iconv -f UTF-8 -t UTF-16LE > "$IN/canary/utf16"
printf '%s' "$canary_id" | rev > "$IN/canary/reversed"
printf 'ab%scd' "${canary_id:0:18}" > "$IN/canary/truncated"
printf 'key %s' "$KEY_HEX" > "$IN/canary/key"
missed=""
for c in upper hex base64 utf16 reversed truncated key; do
  [ -n "$(search "$IN/canary/$c" /nonexistent)" ] || missed="$missed $c"
done
if [ -z "$missed" ]; then pass "the search finds every planted encoding"
else fail "the search misses the encodings:$missed"; fi

n_files=$(find "$WORK" -type f ! -path "$IN/*" ! -path "$WORK/keys/*" | wc -l)
hits=$(search "$WORK" "$IN")
if [ -n "$hits" ]; then fail "raw ids or the key found in outputs:"; mapfile -t hit_files <<< "$hits"; explain "${hit_files[@]}" | head -40
else pass "no raw id, fragment or key in any of $n_files files ($(wc -l < "$IN/patterns.txt") patterns)"; fi

finish
