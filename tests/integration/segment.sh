# segment.sh: `trainer segment` end to end on synthetic users whose segments are known.
#
#   1. data synth writes truth.csv (user,segment,bayes_segment,irregular,irregular_start), one row per user; its
#      bayes_segment accuracy is the one best.txt records.
#   2. segment on 1, 2 and 4 ranks: segments.csv, profiles.json and centroids.pb are the same
#      bytes; one row per train user (user_hash,segment,distance_to_centroid), sorted; ARI
#      printed against the truth next to the Bayes ceiling and the handmade baseline, and the
#      model features beat the handmade ones; --features handmade gives the handmade ARI of
#      the model run (same clustering); --k auto prints its curve and picks a K.
#   3. predict --segments gives every user of a file the segment `segment --input` gave it.
#   4. data hash-ids maps raw ids to the hashes of segments.csv; no raw id in any output.
#   5. Bad input, each exit 2 with one message: a checkpoint of another model or of other
#      data (naming both files), a missing checkpoint, --k 1, --k larger than the users, an
#      input without users, results already in --output (and --force replaces them),
#      centroids.pb of another checkpoint or corrupt for predict, empty lines for hash-ids.
. "$(dirname "$0")/../lib/lib.sh"
# A fixed key: user hashes (and so the k-means draws) are the same in every run, so the ARI
# checks below see the same numbers every time (they vary by a few hundredths with the key).
export TRAINER_USER_KEY=00112233445566778899aabbccddeeff
write_small_exp exp.yaml
sed -i -e 's/users: 200/users: 600/' -e 's/steps: 20/steps: 300/' -e 's/hidden: 16/hidden: 24/' exp.yaml
run() { local n=$1; shift; mpirun_limit 200 "$n" "$TRAINER" "$@"; }

run 1 train exp.yaml > train.out 2>&1 || { cat train.out; fail "training failed"; finish; }

# 1. truth.csv
T=$WORK/synth/truth.csv
if [ "$(head -1 "$T")" = "user,segment,bayes_segment,irregular,irregular_start" ] && [ "$(($(wc -l < "$T") - 1))" -eq 600 ] &&
   ! tail -n +2 "$T" | grep -vE '^u[0-9]{7},(lurker|creator|night_owl|bursty_sharer|casual),(lurker|creator|night_owl|bursty_sharer|casual),,$' > /dev/null; then
  pass "truth.csv: one row per user, known segment names"
else
  fail "truth.csv malformed: $(head -3 "$T")"
fi
acc=$(tail -n +2 "$T" | awk -F, '{ n++; ok += $2 == $3 } END { printf "%.6f", ok / n }')
stored=$(awk '/^# bayes_segment_acc/ { print $3 }' "$WORK/synth/best.txt")
[ -n "$stored" ] && [ "$acc" = "$stored" ] && pass "truth.csv bayes_segment accuracy $acc == best.txt's $stored" \
  || fail "truth.csv bayes_segment accuracy $acc, best.txt says '$stored'"

# 2. segment on 1, 2, 4 ranks
for n in 1 2 4; do
  run "$n" segment exp.yaml --checkpoint "$WORK/run" --output "$WORK/seg$n" > "seg$n.out" 2>&1 \
    || { cat "seg$n.out"; fail "segment on $n ranks failed"; }
done
for n in 2 4; do
  for f in segments.csv profiles.json profiles.md centroids.pb; do
    cmp -s "seg1/$f" "seg$n/$f" || fail "$f differs between 1 and $n ranks"
  done
done
[ "$FAILS" -eq 0 ] && pass "segments.csv, profiles.json, profiles.md, centroids.pb: same bytes on 1, 2 and 4 ranks"
S=seg1/segments.csv
train_users=$(grep -E '^  train ' train.out | awk '{ print $2 }')
if [ "$(head -1 $S)" = "user_hash,segment,distance_to_centroid" ] && [ "$(($(wc -l < $S) - 1))" -eq "$train_users" ] &&
   ! tail -n +2 $S | grep -vE '^[0-9a-f]{16},[0-4],[0-9]+\.[0-9]{6}$' > /dev/null && tail -n +2 $S | sort -c 2> /dev/null; then
  pass "segments.csv: $train_users users, sorted by hash, segments 0..4"
else
  fail "segments.csv malformed ($(($(wc -l < $S) - 1)) rows, want $train_users): $(head -3 $S)"
fi
ari() { awk -v w="$2" '$1 == w && $2 == "features" { print $3 }' "$1"; }
m=$(ari seg1.out model); h=$(ari seg1.out handmade); c=$(awk '/Bayes ceiling/ { print $3 }' seg1.out)
if [ -n "$m" ] && [ -n "$h" ] && [ -n "$c" ] && awk -v m="$m" -v h="$h" -v c="$c" 'BEGIN { exit !(m > h + 0.05 && m >= 0.8 * c && c > 0.9) }'; then
  pass "ARI: model features $m > handmade $h; Bayes ceiling $c"
else
  cat seg1.out; fail "ARI: model $m, handmade $h, ceiling $c (want model > handmade + 0.05, >= 0.8 ceiling)"
fi
run 1 segment exp.yaml --checkpoint "$WORK/run" --output "$WORK/seg_hand" --features handmade > hand.out 2>&1 \
  || { cat hand.out; fail "segment --features handmade failed"; }
[ "$(ari hand.out handmade)" = "$h" ] && pass "--features handmade: ARI $h, as the baseline of the model run" \
  || fail "--features handmade: ARI $(ari hand.out handmade), the model run's baseline said $h"
run 2 segment exp.yaml --checkpoint "$WORK/run" --output "$WORK/seg_auto" --k auto > auto.out 2>&1 \
  || { cat auto.out; fail "segment --k auto failed"; }
k_auto=$(sed -n 's/^segment: --k auto chose K = \([0-9]*\).*/\1/p' auto.out)
[ "$(grep -cE '^ +([2-9]|10) +[0-9.]+ +-?[0-9.]+$' auto.out)" -eq 9 ] && [ -n "$k_auto" ] &&
  grep -q "\"k\": $k_auto, \"k_rule\": \"auto: silhouette\"" seg_auto/profiles.json \
  && pass "--k auto: silhouette curve for K = 2..10, chose K = $k_auto" || { cat auto.out; fail "--k auto"; }
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert len(d["segments"]) == d["k"] and "ari" in d' seg1/profiles.json \
  && pass "profiles.json: valid JSON, one entry per segment, ARI block" || fail "profiles.json invalid"
grep -q "^## Segment 4: " seg1/profiles.md && grep -q "most distinguishing" seg1/profiles.md \
  && pass "profiles.md: a section per segment" || fail "profiles.md incomplete"

# 3. predict --segments == segment --input for the same file
IN=$WORK/synth/valid.csv
run 1 segment exp.yaml --checkpoint "$WORK/run" --input "$IN" --output "$WORK/seg_in" > in.out 2>&1 || { cat in.out; fail "segment --input"; }
for n in 1 2; do
  run "$n" predict exp.yaml --checkpoint "$WORK/run" --input "$IN" --segments "$WORK/seg_in" --output "$WORK/pred$n.csv" > "pred$n.out" 2>&1 \
    || { cat "pred$n.out"; fail "predict --segments on $n ranks"; }
  d=$(join -t, <(tail -n +2 seg_in/segments.csv) <(tail -n +2 "pred$n.csv" | awk -F, '{ print $1 "," $(NF-1) "," $NF }') |
      awk -F, '$2 != $4 || $3 != $5 { bad++ } END { print NR - 0 "," bad + 0 }')
  [ "$d" = "$(($(wc -l < seg_in/segments.csv) - 1)),0" ] && head -1 "pred$n.csv" | grep -q ',segment,segment_distance$' \
    && pass "predict --segments on $n ranks: every user's segment and distance as segment --input ($d)" \
    || fail "predict --segments on $n ranks disagrees with segment --input (users,differing: $d)"
done

# 4. hash-ids: the way back; raw ids appear nowhere else
head -50 "$WORK/synth/truth.csv" | tail -n +2 | cut -d, -f1 | sort -u > ids.txt
"$TRAINER" data hash-ids exp.yaml --split train < ids.txt > ids.csv 2> ids.err || fail "hash-ids failed: $(cat ids.err)"
found=$(tail -n +2 ids.csv | cut -d, -f2 | grep -cFf - $S || true)
in_train=$(grep -cFf ids.txt "$WORK/synth/train.csv" | head -1 || true)
want=$(cut -d, -f1 "$WORK/synth/train.csv" | sort -u | grep -cxFf ids.txt || true)
[ "$(($(wc -l < ids.csv) - 1))" -eq "$(wc -l < ids.txt)" ] && [ "$found" -eq "$want" ] && [ "$want" -gt 0 ] \
  && pass "hash-ids --split train: $found of $(wc -l < ids.txt) ids found in segments.csv (the train users among them)" \
  || fail "hash-ids: $found hashes found in segments.csv, want $want"
if grep -rlE 'u[0-9]{7}' seg1 seg_in pred1.csv > leaks.txt; then fail "raw ids in outputs: $(cat leaks.txt)"; else pass "no raw id in any segment output"; fi

# 5. bad input
expect2() { # WHAT REGEX CMD...: exit 2, stderr matches, no sanitizer report, no partial results
  local what=$1 re=$2 rc=0; shift 2
  "$@" > bad.out 2> bad.err || rc=$?
  if [ "$rc" -eq 2 ] && grep -qE -- "$re" bad.err && ! grep -qE "Sanitizer|runtime error" bad.err; then pass "$what: exit 2"; return 0; fi
  fail "$what: exit $rc; stderr: $(head -c 800 bad.err)"
}
run 1 train exp.yaml --set run.dir="$WORK/h8" --set model.hidden=8 --set train.steps=5 > h8.out 2>&1 || fail "training the foreign model"
sed -e "s|users: 600|users: 300|" -e "s|$WORK/synth|$WORK/synth2|" -e "s|$WORK/shards|$WORK/shards2|" -e "s|dir: $WORK/run|dir: $WORK/run2|" exp.yaml > exp2.yaml
run 1 train exp2.yaml --set train.steps=5 > other.out 2>&1 || fail "training on other data"
run 1 train exp.yaml --set run.dir="$WORK/run_b" --set train.steps=10 > run_b.out 2>&1 || fail "training a second model"
H8=$(ls "$WORK"/h8/checkpoints/*.ckpt | tail -1); OTHER=$(ls "$WORK"/run2/checkpoints/*.ckpt | tail -1)
B10=$(ls "$WORK"/run_b/checkpoints/*.ckpt | tail -1)
expect2 "checkpoint of another model" "error: $H8: its model does not match the experiment.*\(experiment exp.yaml\)" \
  run 2 segment exp.yaml --checkpoint "$H8" --output "$WORK/bad1"
expect2 "checkpoint of other data" "error: $OTHER: was trained on other data.*\(experiment exp.yaml\)" \
  run 2 segment exp.yaml --checkpoint "$OTHER" --output "$WORK/bad2"
expect2 "missing checkpoint" "nope.ckpt.*\(experiment exp.yaml\)" run 1 segment exp.yaml --checkpoint "$WORK/nope.ckpt" --output "$WORK/bad3"
expect2 "--k 1" "--k must be at least 2" "$TRAINER" segment exp.yaml --checkpoint "$WORK/run" --output "$WORK/bad4" --k 1
expect2 "--k abc" "--k expects a number of segments or auto" "$TRAINER" segment exp.yaml --checkpoint "$WORK/run" --output "$WORK/bad4" --k abc
expect2 "--k larger than the users" "--k 500 is larger than the number of users of test \([0-9]+\)" \
  run 2 segment exp.yaml --checkpoint "$WORK/run" --split test --k 500 --output "$WORK/bad5"
head -1 "$IN" > empty.csv
expect2 "an input without users" "empty.csv has no users to segment" \
  run 2 segment exp.yaml --checkpoint "$WORK/run" --input "$WORK/empty.csv" --output "$WORK/bad6"
expect2 "--output already holding results" "seg1 already holds results \(segments.csv\); use --force" \
  run 2 segment exp.yaml --checkpoint "$WORK/run" --output "$WORK/seg1"
cmp -s seg1/segments.csv seg2/segments.csv || fail "a refused run touched the results it refused to replace"
for d in bad1 bad2 bad3 bad4 bad5 bad6; do [ -e "$d/segments.csv" ] && fail "$d: results written by a refused run"; done
run 2 segment exp.yaml --checkpoint "$WORK/run" --output "$WORK/seg1" --force > force.out 2>&1 && cmp -s seg1/segments.csv seg2/segments.csv \
  && pass "--force replaces the results (same bytes again)" || { cat force.out; fail "--force"; }
expect2 "predict with centroids.pb of another checkpoint" "seg_in/centroids.pb: was made from .*step-00000300.ckpt \(step 300\), not from $B10" \
  run 2 predict exp.yaml --checkpoint "$B10" --input "$IN" --segments "$WORK/seg_in" --output "$WORK/p_bad.csv"
# Byte 40 lies in the checkpoint path (under a random mktemp name): write a byte it is not.
c=X; [ "$(dd if=seg_in/centroids.pb bs=1 skip=40 count=1 2> /dev/null)" = X ] && c=Y
mkdir -p corrupt && cp seg_in/centroids.pb corrupt/ && printf '%s' "$c" | dd of=corrupt/centroids.pb bs=1 seek=40 conv=notrunc 2> /dev/null
expect2 "predict with a corrupt centroids.pb" "corrupt/centroids.pb: corrupt" \
  run 2 predict exp.yaml --checkpoint "$WORK/run" --input "$IN" --segments "$WORK/corrupt" --output "$WORK/p_bad.csv"
[ -e p_bad.csv ] && fail "predict wrote output after refusing the segments"
printf 'u0000001\n\nu0000002\n' > gap.txt
expect2 "hash-ids with an empty line" "stdin:2: empty line" sh -c '"$0" data hash-ids exp.yaml < gap.txt' "$TRAINER"
finish
