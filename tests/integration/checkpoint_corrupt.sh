#!/usr/bin/env bash
# checkpoint_corrupt.sh: damaged, foreign and mismatched checkpoints are refused with one
# clear line naming the file and a non-zero exit, never a crash (this runs under ASan+UBSan
# in the sanitizer build); resume skips a damaged newest checkpoint and says so.
#   1. `checkpoint inspect` on: truncations (in the magic, the header's length field, the
#      header message, a chunk, just before the footer, the last byte), bit flips (magic,
#      header length/hash/message, chunk data, footer), bytes after the footer, an empty
#      file, a PNG, /bin/ls, a data shard, a YAML file, a directory without checkpoints.
#   2. `eval --checkpoint` on some of them: refused, naming the file.
#   3. Resume whose newest checkpoint is truncated: warns, continues from the previous one;
#      every checkpoint damaged: refused. `checkpoint inspect RUNDIR` and `eval --checkpoint
#      RUNDIR` do the same. checkpoint.resume=never with checkpoints present: refused.
#   4. A valid checkpoint of another model (hidden 24) or of other data (other synthetic
#      users): resume and eval refuse it, saying what differs.
#   5. 100 random mutations (flips, byte writes, cuts) through `checkpoint inspect`: exit 0
#      or 1 only. (The in-process fuzz with rehashed records is test_ckpt_io.)
. "$(dirname "$0")/../lib/lib.sh"
. "$TESTS_DIR/lib/ckpt_lib.sh"

write_small_exp exp.yaml
EXP=("$WORK/exp.yaml" --set train.steps=20 --set checkpoint.every=10)
RC=0
limit "$TRAINER" train "${EXP[@]}" > a.out 2>&1 || RC=$?
[ "$RC" -eq 0 ] || { fail "training the fixture exited $RC"; show a.out; finish; }
GOOD=$WORK/run/checkpoints/step-00000020.ckpt
SIZE=$(stat -c %s "$GOOD")

u32_at() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
# flip FILE OFFSET [MASK]: xor one byte in place.
flip() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((b ^ ${3:-1})))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# Record starts: magic (8 bytes), then u32 length | u64 hash | message.
RECS=()
pos=8
while [ "$pos" -lt "$SIZE" ]; do RECS+=("$pos"); pos=$((pos + 12 + $(u32_at "$GOOD" "$pos"))); done
[ "$pos" -eq "$SIZE" ] && [ "${#RECS[@]}" -ge 4 ] || { fail "cannot walk the records of $GOOD"; finish; }
HDR_LEN=$(u32_at "$GOOD" 8)
CHUNK=${RECS[3]}                        # the third tensor chunk
CHUNK_LEN=$(u32_at "$GOOD" "$CHUNK")
FOOTER=${RECS[${#RECS[@]} - 1]}
say "fixture: $SIZE bytes, ${#RECS[@]} records, header $HDR_LEN bytes, footer at $FOOTER"

mkdir bad
cut_at() { head -c "$2" "$GOOD" > "bad/$1.ckpt"; }
flipped() { cp "$GOOD" "bad/$1.ckpt"; flip "bad/$1.ckpt" "$2" "${3:-1}"; }
cut_at cut_magic 5
cut_at cut_header_length 10
cut_at cut_header_message $((20 + HDR_LEN / 2))
cut_at cut_chunk $((CHUNK + 12 + CHUNK_LEN / 2))
cut_at cut_before_footer "$FOOTER"
cut_at cut_last_byte $((SIZE - 1))
: > bad/empty.ckpt
flipped flip_magic 3
flipped flip_header_length 9 64      # the length grows by 2^14: runs past the end
flipped flip_header_hash 14
flipped flip_header_message $((20 + HDR_LEN / 2))
flipped flip_chunk_data $((CHUNK + 12 + CHUNK_LEN / 2)) 128
flipped flip_footer $((SIZE - 1))
{ cat "$GOOD"; printf 'trailing garbage'; } > bad/after_footer.ckpt
printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89' > bad/png.ckpt
head -c 65536 /bin/ls > bad/elf.ckpt
cp "$(ls "$WORK"/shards/*.shard 2>/dev/null | head -1)" bad/shard.ckpt 2>/dev/null || cp "$WORK/shards/dataset.meta" bad/shard.ckpt
cp run/config.yaml bad/yaml.ckpt

# expect_refused WHAT REGEX CMD...: exit 1, one line on stderr that names the file and matches
# REGEX, nothing on stdout, no sanitizer report.
expect_refused() {
  local what=$1 re=$2 rc=0 err
  shift 2
  "$@" > refused.out 2> refused.err || rc=$?
  err=$(cat refused.err)
  if [ "$rc" -eq 1 ] && [ "$(wc -l < refused.err)" -eq 1 ] && grep -qE "$re" <<< "$err" &&
     [ ! -s refused.out ]; then
    return 0
  fi
  fail "$what: exit $rc; stderr: $(head -c 600 refused.err); stdout: $(head -c 200 refused.out)"
  return 1
}

declare -A WHY=(
  [cut_magic]="not a checkpoint file" [cut_header_length]="truncated"
  [cut_header_message]="truncated" [cut_chunk]="truncated" [cut_before_footer]="truncated \(the footer is missing\)"
  [cut_last_byte]="truncated" [empty]="not a checkpoint file" [flip_magic]="not a checkpoint file"
  [flip_header_length]="truncated|corrupt" [flip_header_hash]="corrupt \(record at byte 8 fails its checksum\)"
  [flip_header_message]="corrupt \(record at byte 8 fails its checksum\)" [flip_chunk_data]="corrupt"
  [flip_footer]="corrupt" [after_footer]="corrupt \(16 bytes after the footer\)"
  [png]="not a checkpoint file" [elf]="not a checkpoint file" [shard]="not a checkpoint file"
  [yaml]="not a checkpoint file")
n_ok=0
for f in "${!WHY[@]}"; do
  p=$WORK/bad/$f.ckpt
  if expect_refused "inspect $f" "^error: $p: (${WHY[$f]})" inspect "$p"; then n_ok=$((n_ok + 1)); fi
done
[ "$n_ok" -eq "${#WHY[@]}" ] && pass "checkpoint inspect refuses all ${#WHY[@]} damaged or foreign files, one line naming each"
mkdir empty_dir
expect_refused "inspect a directory without checkpoints" "^error: --checkpoint $WORK/empty_dir: holds no checkpoints" inspect "$WORK/empty_dir" &&
  pass "checkpoint inspect on a directory without checkpoints: refused"

# expect_fatal WHAT REGEX CMD...: an MPI command's fatal error: exit 1, the first line on
# stderr names the file and matches REGEX (Open MPI's MPI_Abort banner follows it).
expect_fatal() {
  local what=$1 re=$2 rc=0
  shift 2
  "$@" > refused.out 2> refused.err || rc=$?
  if [ "$rc" -eq 1 ] && head -1 refused.err | grep -qE "$re" && ! grep -qE "Sanitizer|runtime error" refused.err; then
    return 0
  fi
  fail "$what: exit $rc; stderr: $(head -c 600 refused.err)"
  return 1
}

# 2. eval refuses them too.
n_ok=0
for f in cut_chunk flip_chunk_data png; do
  p=$WORK/bad/$f.ckpt
  if expect_fatal "eval $f" "^error: $p: (${WHY[$f]})" limit "$TRAINER" eval "${EXP[@]}" --checkpoint "$p"; then n_ok=$((n_ok + 1)); fi
done
[ "$n_ok" -eq 3 ] && pass "eval refuses a truncated, a bit-flipped and a foreign file, naming each"

# 3. The newest checkpoint truncated: inspect RUNDIR and resume fall back to step 10, saying so.
mkdir run_cut && cp -a run/checkpoints run_cut/ # (without config.yaml: its run.dir differs)
head -c $((SIZE / 2)) "$GOOD" > run_cut/checkpoints/step-00000020.ckpt
RC=0
inspect run_cut > inspect_cut.out 2> inspect_cut.err || RC=$?
if [ "$RC" -eq 0 ] && grep -q "warning: run_cut/checkpoints/step-00000020.ckpt: truncated .*trying an older checkpoint" inspect_cut.err &&
   grep -q "^  format version 1, step 10 " inspect_cut.out; then
  pass "inspect RUNDIR with the newest truncated: warns and shows step 10"
else
  fail "inspect RUNDIR with the newest truncated: exit $RC"; show inspect_cut.err; show inspect_cut.out 3
fi
RC=0
limit "$TRAINER" eval "${EXP[@]}" --checkpoint "$WORK/run_cut" > eval_cut.out 2>&1 || RC=$?
if [ "$RC" -eq 0 ] && grep -q "warning: .*run_cut/checkpoints/step-00000020.ckpt: truncated" eval_cut.out &&
   grep -q "^eval test with .*run_cut/checkpoints/step-00000010.ckpt (step 10)" eval_cut.out; then
  pass "eval --checkpoint RUNDIR with the newest truncated: warns and scores step 10"
else
  fail "eval --checkpoint RUNDIR with the newest truncated: exit $RC"; show eval_cut.out
fi
RC=0
limit "$TRAINER" train "${EXP[@]}" --set run.dir="$WORK/run_cut" --set train.steps=30 > resume_cut.out 2>&1 || RC=$?
if [ "$RC" -eq 0 ] && grep -q "warning: .*run_cut/checkpoints/step-00000020.ckpt: truncated .*trying an older checkpoint" resume_cut.out &&
   grep -q "^resume: continuing from .*run_cut/checkpoints/step-00000010.ckpt (step 10," resume_cut.out &&
   grep -q "^done: 30 steps" resume_cut.out; then
  pass "resume with the newest truncated: warns, continues from step 10, ends at 30"
else
  fail "resume with the newest truncated: exit $RC"; show resume_cut.out
fi
RC=0
limit "$TRAINER" train "${EXP[@]}" --set checkpoint.resume=never --resume > never.out 2>&1 || RC=$?
if [ "$RC" -eq 1 ] && grep -q "holds checkpoints but checkpoint.resume=never" never.out; then
  pass "checkpoint.resume=never with checkpoints present: refused"
else
  fail "checkpoint.resume=never with checkpoints present: exit $RC"; show never.out
fi
mkdir run_allbad && cp -a run/checkpoints run_allbad/
for f in run_allbad/checkpoints/*.ckpt; do flip "$f" 30; done
RC=0
"$TRAINER" checkpoint inspect run_allbad > allbad.out 2> allbad.err || RC=$?
if [ "$RC" -eq 1 ] && [ "$(grep -c "^warning: run_allbad/checkpoints/step-000000[12]0.ckpt: corrupt" allbad.err)" -eq 2 ] &&
   grep -q "^error: --checkpoint run_allbad: none of its checkpoints is valid" allbad.err; then
  pass "inspect RUNDIR with every checkpoint damaged: each reported, then refused"
else
  fail "inspect RUNDIR with every checkpoint damaged: exit $RC"; show allbad.err
fi
RC=0
limit "$TRAINER" train "${EXP[@]}" --set run.dir="$WORK/run_allbad" > allbad_train.out 2>&1 || RC=$?
if [ "$RC" -eq 1 ] && grep -q "holds checkpoints but none of them is valid" allbad_train.out; then
  pass "resume with every checkpoint damaged: refused (exit 1)"
else
  fail "resume with every checkpoint damaged: exit $RC"; show allbad_train.out
fi

# 4. Valid checkpoints that belong to something else.
RC=0
limit "$TRAINER" train "${EXP[@]}" --set run.dir="$WORK/h24" --set model.hidden=24 > h24.out 2>&1 || RC=$?
limit "$TRAINER" train "${EXP[@]}" --set run.dir="$WORK/other_data" --set synth.users=150 \
  --set synth.out_dir="$WORK/synth2" --set data.shard_dir="$WORK/shards2" > other_data.out 2>&1 || RC=$?
[ "$RC" -eq 0 ] || { fail "training the foreign fixtures"; show h24.out; show other_data.out; finish; }
H24=$WORK/h24/checkpoints/step-00000020.ckpt
OTHER=$WORK/other_data/checkpoints/step-00000020.ckpt
for pair in "h24:$H24:its model does not match the experiment: lstm.0.w_ih is 96x[0-9]+ there, lstm.0.w_ih is 64x[0-9]+ here \(H=24 L=1 K=[0-9]+ there, H=16 L=1 K=[0-9]+ here\)" \
            "other_data:$OTHER:was trained on other data"; do
  IFS=: read -r name file why <<< "$pair"
  mkdir -p "foreign_$name/checkpoints"
  cp "$file" "foreign_$name/checkpoints/"
  RC=0
  limit "$TRAINER" train "${EXP[@]}" --set run.dir="$WORK/foreign_$name" > "foreign_$name.out" 2>&1 || RC=$?
  if [ "$RC" -eq 1 ] && grep -qE "error: .*foreign_$name/checkpoints/step-00000020.ckpt: $why" "foreign_$name.out"; then
    pass "resume refuses a checkpoint of $name, saying what differs"
  else
    fail "resume from a checkpoint of $name: exit $RC"; show "foreign_$name.out"
  fi
  expect_fatal "eval with a checkpoint of $name" "^error: $file: $why" limit "$TRAINER" eval "${EXP[@]}" --checkpoint "$file" &&
    pass "eval refuses a checkpoint of $name, saying what differs"
done

# 5. Random damage through the command line: refused or (rarely) accepted, never a crash.
RANDOM=7
n_refused=0 n_bad=0
for i in $(seq 100); do
  cp "$GOOD" m.ckpt
  case $((RANDOM % 3)) in
    0) for k in 1 2 3; do flip m.ckpt $(((RANDOM * 32768 + RANDOM) % SIZE)) $((1 << (RANDOM % 8))); done ;;
    1) flip m.ckpt $(((RANDOM * 32768 + RANDOM) % (HDR_LEN + 20))) $((1 + RANDOM % 255)) ;; # in the header
    2) head -c $(((RANDOM * 32768 + RANDOM) % SIZE)) "$GOOD" > m.ckpt ;;
  esac
  RC=0
  inspect m.ckpt > /dev/null 2> m.err || RC=$?
  if [ "$RC" -eq 1 ]; then n_refused=$((n_refused + 1)); fi
  if [ "$RC" -gt 1 ] || grep -qE "Sanitizer|runtime error" m.err; then
    n_bad=$((n_bad + 1)); [ "$n_bad" -le 3 ] && { say "mutation $i: exit $RC"; head -5 m.err; cp m.ckpt "crash$i.ckpt"; }
  fi
done
if [ "$n_bad" -eq 0 ]; then pass "100 random mutations: $n_refused refused, none crashed"; else fail "$n_bad of 100 mutations crashed"; fi
finish
