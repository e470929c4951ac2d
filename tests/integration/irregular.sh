# irregular.sh: `trainer score` finds the irregular users the generator plants.
#
#   generator: synth.irregular_frac plants bot, burst, takeover and spree users, listed in
#       truth.csv (user,segment,bayes_segment,irregular,irregular_start); the normal users' rows are the same
#       bytes as without them; best.txt leaves the irregular users out (re-scored from the CSV
#       with truth.csv, see test_synth); a bad kind is a config error (exit 2).
#   detection: on a small synthetic set, every kind's AUROC (model score, planted users of the
#       kind against the normal ones) is above its floor, the peak window of most planted users
#       reaches the planted start, and summary.json holds the baseline's figures too.
#   calibration: with no irregular users, --flag-rate 0.1 flags 10% of the validation users
#       (exactly, less users tied at the threshold) and 10% +- 3 SD of the test users (binomial, and the threshold's own sampling error);
#       the threshold is the one summary.json states; --flag-rate 0 flags no validation user.
#   explain --target change: every user flagged for a change point (and only they) gets the
#       segment window of its peak, and its per-event, per-part additions sum to the ratio.
#   ranks: users.csv on 2 ranks has the same users in the same order as on 1, scores within
#       1e-5 (relative to max(|a|, |b|, 1 nat)); events.csv too.
#   bad command lines exit 2.
. "$(dirname "$0")/../lib/lib.sh"

exp() { # exp FILE FRAC
  write_small_exp "$1"
  sed -i -e 's/^  users: 200$/  users: 900\n  valid_frac: 0.3\n  test_frac: 0.3\n  irregular_frac: '"$2"'/' \
    -e 's/^  max_events: 40$/  max_events: 80/' -e 's/^  min_events: 10$/  min_events: 24/' \
    -e 's/^  hidden: 16$/  hidden: 32/' -e 's/^  steps: 20$/  steps: 300/' -e 's/^  window: 8$/  window: 16/' "$1"
  sed -i -e "s#$WORK/run#$WORK/run-$2#" -e "s#$WORK/shards#$WORK/shards-$2#" -e "s#$WORK/synth#$WORK/synth-$2#" "$1"
}
exp irr.yaml 0.12
exp clean.yaml 0

say "generator: planted users and truth.csv"
"$TRAINER" data synth irr.yaml > synth-irr.txt
"$TRAINER" data synth clean.yaml > synth-clean.txt
T=$WORK/synth-0.12/truth.csv
if [ "$(head -1 "$T")" = "user,segment,bayes_segment,irregular,irregular_start" ] && [ "$(wc -l < "$T")" -eq 901 ]; then
  pass "truth.csv: header and one row per user"
else fail "truth.csv: $(head -1 "$T"), $(wc -l < "$T") lines"; fi
for k in bot burst takeover spree; do
  n=$(awk -F, -v k=$k '$4 == k' "$T" | wc -l)
  if [ "$n" -ge 10 ]; then pass "$n $k users planted"; else fail "only $n $k users"; fi
done
bad_start=$(awk -F, 'NR > 1 && $4 != "" && ($5 == "" || $5 < 1)' "$T" | wc -l)
[ "$bad_start" -eq 0 ] && pass "every planted user has a start index" || fail "$bad_start planted users without a start"
# The normal users' rows are the same bytes with and without planted users.
awk -F, 'NR > 1 && $4 == "" { print $1 }' "$T" | sort > normal.txt
for s in train valid test; do
  join -t, normal.txt <(tail -n +2 "$WORK/synth-0.12/$s.csv" | sort -t, -k1,1 -s) > a.txt
  join -t, normal.txt <(tail -n +2 "$WORK/synth-0/$s.csv" | sort -t, -k1,1 -s) > b.txt
  if cmp -s a.txt b.txt && [ -s a.txt ]; then pass "$s: normal users' rows unchanged by the planted ones"
  else fail "$s: normal users' rows differ"; fi
done
if [ "$(awk -F, 'NR > 1 && $4 != ""' "$WORK/synth-0/truth.csv" | wc -l)" -eq 0 ]; then pass "irregular_frac 0 plants nobody"
else fail "irregular_frac 0 planted users"; fi
grep -q "irregular users (truth.csv; not in the best losses)" synth-irr.txt && pass "synth reports the planted users" \
  || fail "synth does not report the planted users"
set +e
"$TRAINER" config show irr.yaml --set 'synth.irregular_kinds=[bot,robot]' > /dev/null 2> kind.err; rc=$?
set -e
if [ $rc -eq 2 ] && grep -q '"robot" is not one of bot, burst, takeover, spree' kind.err; then pass "unknown kind: exit 2"
else fail "unknown kind: exit $rc: $(cat kind.err)"; fi

say "detection: train, score the test users"
"$TRAINER" train irr.yaml > train-irr.txt
"$TRAINER" score irr.yaml --checkpoint "$WORK/run-0.12" --output out1 --events > score1.txt
cat score1.txt
python3 - out1/summary.json <<'PY' || FAILS=$((FAILS + 1))
import json, sys
s = json.load(open(sys.argv[1]))
t = s["truth"]
# Floors from the measured figures (README): bot, burst and spree are found on this small set;
# takeover less well (0.52 before the prediction channels: the model adapts within a few events;
# 0.85 with the change point, whose fresh-state segments catch the switch).
floors = {"bot": 0.8, "burst": 0.95, "takeover": 0.8, "spree": 0.9}
bad = 0
for kind, floor in floors.items():
    k = t["kinds"][kind]
    ok = k["users"] >= 3 and k["auroc"] >= floor
    print(f"{'ok' if ok else 'FAIL'}: {kind}: {k['users']} users, AUROC {k['auroc']:.3f} (floor {floor}), "
          f"baseline {k['baseline_auroc']:.3f}, peak reaches the start for {k['peak_reaches_start']:.2f}")
    bad += not ok
reach = t["kinds"]["all"]["peak_reaches_start"]
print(f"{'ok' if reach >= 0.8 else 'FAIL'}: peak window reaches the planted start for {reach:.2f} of them")
bad += reach < 0.8
for key in ("threshold", "flagged", "calibration", "events_scored"):
    if key not in s:
        print(f"FAIL: summary.json lacks {key}"); bad += 1
sys.exit(1 if bad else 0)
PY
head -1 out1/users.csv | grep -q '^user_hash,score,flagged,reason,peak_start,peak_end,' && pass "users.csv header" || fail "users.csv header"
[ "$(tail -n +2 out1/users.csv | wc -l)" -eq "$(python3 -c 'import json;print(json.load(open("out1/summary.json"))["users"])')" ] \
  && pass "one users.csv row per scored user" || fail "users.csv rows != summary users"
bad_reason=$(tail -n +2 out1/users.csv | cut -d, -f4 | grep -cvE '^(action|timing|engagement)(-regular|-shift|-level|-change)?$' || true)
[ "$bad_reason" -eq 0 ] && pass "every reason names a part" || fail "$bad_reason rows with an odd reason"
ev_rows=$(tail -n +2 out1/events.csv | wc -l)
[ "$ev_rows" -eq "$(python3 -c 'import json;print(json.load(open("out1/summary.json"))["events_scored"])')" ] \
  && pass "events.csv: one row per scored event ($ev_rows)" || fail "events.csv rows $ev_rows"

say "explain --target change: the change-point evidence of the users flagged for it"
# At a flag rate of 0.3, so that the small set has users flagged for a change point.
"$TRAINER" score irr.yaml --checkpoint "$WORK/run-0.12" --flag-rate 0.3 --output out3 > /dev/null
"$TRAINER" explain irr.yaml --checkpoint "$WORK/run-0.12" --target change --flag-rate 0.3 --output why > why.txt
python3 - out3/users.csv why <<'PY' || FAILS=$((FAILS + 1))
import csv, sys
from collections import defaultdict
users = {r["user_hash"]: r for r in csv.DictReader(open(sys.argv[1]))}
want = {h for h, r in users.items() if r["flagged"] == "1" and r["reason"].endswith("-change")}
targets = list(csv.DictReader(open(sys.argv[2] + "/targets.csv")))
rows = defaultdict(list)
for r in csv.DictReader(open(sys.argv[2] + "/events.csv")):
    rows[r["user_hash"]].append(r)
bad = 0
got = {t["user_hash"] for t in targets}
ok = got == want and len(want) >= 1
print(f"{'ok' if ok else 'FAIL'}: {len(got)} users explained, {len(want)} flagged for a change point by score")
bad += not ok
import json
burn = max(1, json.load(open(sys.argv[1].replace("users.csv", "summary.json")))["window"] // 4)
for t in targets:
    u, ev = users[t["user_hash"]], rows[t["user_hash"]]
    total = sum(float(r["attribution"]) for r in ev)
    first = int(t["target_index"]) - max(int(r["offset"]) for r in ev) + 1
    start = int(t["target"].split(":")[1])
    ok = (abs(total - float(t["f_input"])) <= 1e-6 * max(1.0, abs(total))
          and t["target_index"] == u["peak_end"] and first == int(u["peak_start"])
          and start == first - burn and t["predicted"] == u["reason"]
          and {r["group"] for r in ev} == {"action", "timing", "engagement"}
          and abs(float(t["p_predicted"]) - float(u["score"])) <= 1e-6 * float(u["score"]))
    if not ok:
        print(f"FAIL: {t['user_hash']}: sum {total} vs ratio {t['f_input']}, window [{first}, "
              f"{t['target_index']}] vs peak [{u['peak_start']}, {u['peak_end']}], {t['target']}, "
              f"{t['predicted']} vs {u['reason']}")
        bad += 1
print(f"{'ok' if not bad else 'FAIL'}: every explained user's parts add up to its ratio, over its peak window")
sys.exit(1 if bad else 0)
PY
[ -s why/summary.md ] && grep -q "flagged for a change point" why/summary.md && pass "explain --target change: summary.md" \
  || fail "explain --target change: no summary.md"

say "ranks: 2 ranks give the same users.csv and events.csv"
mpirun_limit 120 2 "$TRAINER" score irr.yaml --checkpoint "$WORK/run-0.12" --output out2 --events > score2.txt
close_csv() { # close_csv A B COLUMN...: same rows and keys; the named numeric columns close
  python3 - "$@" <<'PY'
import csv, sys
a, b, cols = list(csv.DictReader(open(sys.argv[1]))), list(csv.DictReader(open(sys.argv[2]))), sys.argv[3:]
if len(a) != len(b):
    sys.exit(f"{len(a)} rows vs {len(b)}")
worst = 0.0
for x, y in zip(a, b):
    if x["user_hash"] != y["user_hash"]:
        sys.exit(f"row order differs: {x['user_hash']} vs {y['user_hash']}")
    for c in cols:
        u, v = float(x[c]), float(y[c])
        worst = max(worst, abs(u - v) / max(abs(u), abs(v), 1.0))
print(f"{len(a)} rows, largest relative difference {worst:.3g}")
sys.exit(1 if worst > 1e-5 else 0)
PY
}
close_csv out1/users.csv out2/users.csv score baseline_score && pass "users.csv: 1 rank == 2 ranks" || fail "users.csv differs between 1 and 2 ranks"
close_csv out1/events.csv out2/events.csv excess running_score && pass "events.csv: 1 rank == 2 ranks" || fail "events.csv differs between 1 and 2 ranks"

say "calibration: no irregular users, --flag-rate 0.1"
"$TRAINER" train clean.yaml > train-clean.txt
"$TRAINER" score clean.yaml --checkpoint "$WORK/run-0" --split valid --flag-rate 0.1 --output cv > /dev/null
"$TRAINER" score clean.yaml --checkpoint "$WORK/run-0" --split test --flag-rate 0.1 --output ct > /dev/null
"$TRAINER" score clean.yaml --checkpoint "$WORK/run-0" --split valid --flag-rate 0 --output c0 > /dev/null
python3 - cv ct c0 <<'PY' || FAILS=$((FAILS + 1))
import csv, json, math, sys
bad = 0
def load(d):
    s = json.load(open(f"{d}/summary.json"))
    rows = list(csv.DictReader(open(f"{d}/users.csv")))
    return s, rows
sv, rv = load(sys.argv[1])
n, k = len(rv), sum(int(r["flagged"]) for r in rv)
above = sum(float(r["score"]) > sv["threshold"] for r in rv)
# Scores are ranks against the validation users, so some tie: at most floor(0.1 n), less ties.
ties = sum(float(r["score"]) == sv["threshold"] for r in rv)
ok = k == above and math.floor(0.1 * n + 1e-9) - ties <= k <= math.floor(0.1 * n + 1e-9)
print(f"{'ok' if ok else 'FAIL'}: valid: {k} of {n} flagged (threshold {sv['threshold']:.6g}, {above} above it, "
      f"{ties} at it; want floor(0.1 n) less ties)")
bad += not ok
st, rt = load(sys.argv[2])
n, k = len(rt), sum(int(r["flagged"]) for r in rt)
# Two samples: the threshold is itself a quantile of len(rv) validation users, so the test
# count varies by n q (1 - q) (1 + n / len(rv)): twice the binomial variance at equal sizes.
sd = math.sqrt(n * 0.1 * 0.9 * (1 + n / len(rv)))
ok = abs(k - 0.1 * n) <= 3 * sd and st["threshold"] == sv["threshold"] and st["calibration"]["users"] == len(rv)
print(f"{'ok' if ok else 'FAIL'}: test: {k} of {n} flagged (want {0.1 * n:.0f} +- {3 * sd:.1f}); same threshold as valid")
bad += not ok
s0, r0 = load(sys.argv[3])
ok = sum(int(r["flagged"]) for r in r0) == 0
print(f"{'ok' if ok else 'FAIL'}: --flag-rate 0 flags none of the validation users")
bad += not ok
sys.exit(1 if bad else 0)
PY

say "bad command lines"
for args in "--checkpoint $WORK/run-0" "--checkpoint $WORK/run-0 --output o --flag-rate 2" \
            "--checkpoint $WORK/run-0 --output o --split test --input x.csv" "--output o --bogus 1"; do
  set +e
  "$TRAINER" score clean.yaml $args > /dev/null 2> bad.err; rc=$?
  set -e
  if [ $rc -eq 2 ]; then pass "score $args: exit 2 ($(head -1 bad.err))"; else fail "score $args: exit $rc"; fi
done
for args in "--target change --steps 4" "--flag-rate 0.1"; do
  set +e
  "$TRAINER" explain clean.yaml --checkpoint "$WORK/run-0" --output o $args > /dev/null 2> bad.err; rc=$?
  set -e
  if [ $rc -eq 2 ]; then pass "explain $args: exit 2 ($(head -1 bad.err))"; else fail "explain $args: exit $rc"; fi
done
finish
