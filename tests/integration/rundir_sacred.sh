# rundir_sacred.sh: reading or refusing never harms a run directory (issue "Tried as a new
# user would", items 1-4): a refused `train --resume` changes nothing on disk; scoring
# commands never rebuild the run's shards and name what is stale; a checkpoint of other data
# is refused naming what differs; a copied or moved run directory is the same experiment.
. "$(dirname "$0")/../lib/lib.sh"
# The run's shards and synthetic data live inside it (the derived defaults).
write_small_exp small.yaml
grep -vE '^  (shard_dir|out_dir|dir):' small.yaml > exp.yaml
sed -i "s|^run:|run:\n  dir: $WORK/runs/a|" exp.yaml
"$TRAINER" train exp.yaml > train.out 2>&1 || { cat train.out; fail "training"; finish; }
A=$WORK/runs/a
# snapshot DIR: every file's name and checksum, modification times too (nothing touched).
# (lock files are excluded: taking a lock is not a change)
snapshot() { (cd "$1" && find . -type f ! -name lock ! -name .lock -printf '%p %T@ ' -exec md5sum {} \; | sort); }

# 1. A refused --resume (another model shape) changes nothing; the original command still runs.
snapshot "$A" > before.txt
rc=0; "$TRAINER" train exp.yaml --set model.hidden=24 --resume > refused.out 2>&1 || rc=$?
snapshot "$A" > after.txt
if [ "$rc" -ne 0 ] && grep -q "its model does not match" refused.out && cmp -s before.txt after.txt; then
  pass "refused --resume (model.hidden 16 -> 24): exit $rc, the run directory unchanged"
else cat refused.out; diff before.txt after.txt; fail "refused --resume: exit $rc, or the run directory changed"; fi
rc=0; "$TRAINER" train exp.yaml > again.out 2>&1 || rc=$?
[ "$rc" -eq 0 ] && ! grep -q "different experiment" again.out && pass "the original command still runs" \
  || { cat again.out; fail "the original command after a refused resume: exit $rc"; }

# 2. A scoring command with a data setting never rebuilds the run's shards: it names what is
# stale and prepares a scratch copy, removed at exit; a plain eval then uses the shards as is.
snapshot "$A" > before.txt
rc=0; "$TRAINER" eval exp.yaml --checkpoint "$A" --set data.on_error=skip > skip.out 2>&1 || rc=$?
snapshot "$A" > after.txt
if [ "$rc" -eq 0 ] && grep -q 'stale: data.on_error (stop -> skip)' skip.out && grep -q "scratch" skip.out \
   && cmp -s before.txt after.txt && [ -z "$(ls -d "$WORK"/runs/a/*scratch* 2>/dev/null)" ]; then
  pass "eval --set data.on_error=skip: names the stale key, run untouched, no scratch left"
else cat skip.out; diff before.txt after.txt; ls "$A"; fail "eval with a data setting: exit $rc"; fi
for cmd in "predict --input $A/synth/test.csv --output p.csv" "score --input $A/synth/test.csv --output s.csv" \
           "segment --k 2 --output seg"; do
  rc=0; "$TRAINER" ${cmd%% *} exp.yaml --checkpoint "$A" --set data.on_error=skip ${cmd#* } > cmd.out 2>&1 || rc=$?
  snapshot "$A" > after.txt
  if [ "$rc" -eq 0 ] && grep -q "stale: data.on_error (stop -> skip)" cmd.out && cmp -s before.txt after.txt; then
    pass "${cmd%% *} --set data.on_error=skip: run untouched"
  else cat cmd.out; diff before.txt after.txt; fail "${cmd%% *} with a data setting: exit $rc"; fi
done
"$TRAINER" eval exp.yaml --checkpoint "$A" > plain.out 2>&1 && grep -q "^data: using prepared shards" plain.out \
  && ! grep -q "preparing" plain.out && pass "the next plain eval uses the run's shards as they are" \
  || { cat plain.out; fail "plain eval after a scratch eval"; }

# 3. A checkpoint of other data is refused before anything is prepared, naming what differs:
# a data setting, or an input file.
"$TRAINER" train exp.yaml --set run.dir="$WORK/runs/b" --set synth.users=150 > b.out 2>&1 || { cat b.out; fail "training b"; }
snapshot "$A" > before.txt
rc=0; "$TRAINER" eval exp.yaml --checkpoint "$WORK/runs/b" > other.out 2>&1 || rc=$?
snapshot "$A" > after.txt
if [ "$rc" -ne 0 ] && grep -q "was trained on other data.*synth.users (150 -> 200)" other.out && ! grep -q "^data:" other.out \
   && cmp -s before.txt after.txt; then pass "checkpoint of other settings: refused naming synth.users, nothing prepared"
else cat other.out; fail "checkpoint of other data settings: exit $rc"; fi
cp -a "$A" "$WORK/runs/c"; C=$WORK/runs/c
sed -i '2,5d' "$C/synth/test.csv"
snapshot "$C" > before.txt
rc=0; "$TRAINER" eval exp.yaml --set run.dir="$C" --checkpoint "$C" > input.out 2>&1 || rc=$?
snapshot "$C" > after.txt
if [ "$rc" -ne 0 ] && grep -q "was trained on other data.*input synth.out_dir/test.csv (size" input.out \
   && cmp -s before.txt after.txt; then pass "a changed input file: refused naming it, the run untouched"
else cat input.out; diff before.txt after.txt; fail "changed input: exit $rc"; fi
rc=0; "$TRAINER" train exp.yaml --set run.dir="$C" --set train.steps=30 --resume > tr.out 2>&1 || rc=$?
snapshot "$C" > after.txt
if [ "$rc" -eq 2 ] && grep -q "holds checkpoints trained on .*input synth.out_dir/test.csv" tr.out && cmp -s before.txt after.txt; then
  pass "train --resume on changed input: refused (exit 2) before the shards are rebuilt"
else cat tr.out; diff before.txt after.txt; fail "train --resume on changed input: exit $rc"; fi

# 4. A copied (new file times) or moved run directory is the same experiment and its data.
cp -r "$A" "$WORK/runs/copy"
rc=0; "$TRAINER" train exp.yaml --set run.dir="$WORK/runs/copy" --set train.steps=30 --resume > copy.out 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && ! grep -qE "changed settings: .*dir|preparing" copy.out && grep -q "resume: continuing from" copy.out; then
  pass "a copied run resumes: no location key counted as a change, its shards used"
else cat copy.out; fail "resume of a copied run: exit $rc"; fi
mv "$WORK/runs/copy" "$WORK/runs/moved"
rc=0; "$TRAINER" eval exp.yaml --set run.dir="$WORK/runs/moved" --checkpoint "$WORK/runs/moved" > moved.out 2>&1 || rc=$?
[ "$rc" -eq 0 ] && grep -q "^data: using prepared shards" moved.out && pass "a moved run evaluates on its own shards" \
  || { cat moved.out; fail "eval of a moved run: exit $rc"; }
finish
