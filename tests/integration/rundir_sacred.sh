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
finish
