#!/usr/bin/env bash
# refresh.sh: is refreshing a model cheaper than training a new one, and does `trainer drift`
# raise false alarms? Run and reported, never a timed test:
#   bash tests/bench/refresh.sh build/trainer [KIND] [SEEDS]
# (1) period 1: configs/default.yaml's users with synth.drift_kind=KIND (default habits),
#     trained P1_STEPS steps; (2) on period 2 (period2/ of the same `data synth`), the same
#     config from scratch and fine-tuned from (1) (train.init_from), validating every EVERY
#     steps: the first step whose valid action NLL is within 2% of period 2's best achievable
#     (period2/best.txt); (3) drift verdicts: period-1 valid, period-2 valid, and SEEDS (20)
#     fresh period-1 samples (synth.seed 1001..) for the false-alarm rate.
# Environment: NP (ranks, 1), STEPS (1200), P1_STEPS (1000), EVERY (10), SEED (unset: the
# config's synth.seed and run.seed and a random user-id key; N: synth.seed=run.seed=N and the
# user-id key N, so a run is repeatable), FINE_ARGS (extra --set for the fine-tuned arm only:
# the warm-start keys train.init_*, for ablations; they do nothing in a run from scratch).
. "$(dirname "$0")/../lib/lib.sh"
KIND=${1:-habits}
SEEDS=${2:-20}
NP=${NP:-1} STEPS=${STEPS:-1200} P1_STEPS=${P1_STEPS:-1000} EVERY=${EVERY:-10}
SEED_ARGS=()
if [ -n "${SEED:-}" ]; then
  SEED_ARGS=(--set synth.seed=$SEED --set run.seed=$SEED)
  export TRAINER_USER_KEY=$(printf '%032x' "$SEED")
fi
read -r -a FINE_EXTRA <<< "${FINE_ARGS:-}"
sed -e "s|dir: \.\./runs/default|dir: $WORK/p1|" "$REPO_DIR/configs/default.yaml" > p1.yaml
COMMON=(--set checkpoint.every=0 --set synth.out_dir=$WORK/synth --set data.shard_dir=$WORK/shards1 --set synth.drift_kind=$KIND "${SEED_ARGS[@]}")
run_np() { mpirun_n "$NP" "$TRAINER" "$@"; }
run_np train p1.yaml "${COMMON[@]}" --set train.steps=$P1_STEPS > p1.out 2>&1 || { grep error p1.out; exit 1; }
P2=$WORK/synth/period2
sed -e "s|dir: \.\./runs/default|dir: $WORK/p2|" \
    -e "s|source: synth .*|source: csv\n  train_path: $P2/train.csv\n  valid_path: $P2/valid.csv\n  test_path: $P2/test.csv|" \
    "$REPO_DIR/configs/default.yaml" > p2.yaml
BEST=$(sed -n 's/^split valid action_nll \([0-9.]*\).*/\1/p' "$P2/best.txt")
# first_within OUT: the first validation step within 2% of BEST (or "never").
first_within() {
  awk -v best="$BEST" '/^valid  step/ { if ($5 <= 1.02 * best) { print $3; found = 1; exit } }
                       END { if (!found) print "never" }' "$1"
}
P2ARGS=(--set checkpoint.every=0 --set data.shard_dir=$WORK/shards2 --set train.steps=$STEPS --set eval.every=$EVERY)
[ -z "${SEED:-}" ] || P2ARGS+=(--set run.seed=$SEED)
run_np train p2.yaml "${P2ARGS[@]}" --set run.dir=$WORK/scratch > scratch.out 2>&1 || { tail scratch.out; exit 1; }
run_np train p2.yaml "${P2ARGS[@]}" --set run.dir=$WORK/fine --set train.init_from=$WORK/p1 "${FINE_EXTRA[@]}" > fine.out 2>&1 ||
  { tail fine.out; exit 1; }
S=$(first_within scratch.out) F=$(first_within fine.out)
say "refresh ($KIND${SEED:+, seed $SEED}, $NP rank(s), $STEPS steps, validation every $EVERY${FINE_ARGS:+, fine-tuned with $FINE_ARGS}): period-2 best achievable valid action_nll $BEST (2%: $(awk -v b="$BEST" 'BEGIN{printf "%.4f", 1.02*b}'))"
say "  from scratch: within 2% at step $S; final $(sed -n 's/^validation: \(action_nll [0-9.]*\).*/\1/p' scratch.out)"
say "  fine-tuned:   within 2% at step $F; final $(sed -n 's/^validation: \(action_nll [0-9.]*\).*/\1/p' fine.out)"
grep '^init_from: ' fine.out | sed 's/^/  /'
if [ "$S" != never ] && [ "$F" != never ]; then
  say "  fine-tune needs $(awk -v f="$F" -v s="$S" 'BEGIN{printf "%.3f", f/s}') of the steps (target <= 0.333)"
fi

drift() { run_np drift p1.yaml "${COMMON[@]}" --checkpoint $WORK/p1 --input "$1" --output "$2.json" > "$2.out" 2>&1
          sed -n 's/^verdict: //p' "$2.out"; }
say "drift: period-1 valid: $(drift $WORK/synth/valid.csv p1v); period-2 valid ($KIND): $(drift $P2/valid.csv p2v)"
alarms=0
for i in $(seq 1 "$SEEDS"); do
  "$TRAINER" data synth p1.yaml --set synth.seed=$((1000 + i)) --set synth.out_dir=$WORK/fa$i > /dev/null 2>&1
  v=$(drift $WORK/fa$i/valid.csv fa$i)
  [ "$v" = "no drift" ] || { alarms=$((alarms + 1)); say "  false alarm, seed $((1000 + i)): $v"; grep SHIFTED fa$i.out | sed 's/^/    /' || true; grep 'action NLL' fa$i.out | sed 's/^/    /'; }
done
say "drift false alarms: $alarms of $SEEDS no-drift samples (synth.seed 1001..$((1000 + SEEDS)))"
