# newcomer_outputs.sh: outputs people can use (issue "Tried as a new user would", items 10, 12,
# 13): predict writes ISO-8601 times for ISO-8601 input and names the gap unit in its header;
# times without a zone, with a space for 'T' or as bare dates are read as UTC with one
# warning and a count; implausible dates (year 1900) are counted; values never seen in
# training are counted in predict's summary and never predicted.
. "$(dirname "$0")/../lib/lib.sh"
write_small_exp exp.yaml
"$TRAINER" data synth exp.yaml > synth.out 2>&1 || { cat synth.out; fail "data synth"; finish; }
# The generator's CSVs with ISO-8601 times; the test file written the ways people write times.
python3 - "$WORK/synth" <<'PY'
import sys, datetime as dt
d = sys.argv[1]
def iso(t, form):
    x = dt.datetime.fromtimestamp(float(t), dt.timezone.utc)
    return {"z": x.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (x.microsecond // 1000),
            "nozone": x.strftime("%Y-%m-%dT%H:%M:%S"), "space": x.strftime("%Y-%m-%d %H:%M:%S"),
            "date": x.strftime("%Y-%m-%d")}[form]
for split in ("train", "valid", "test"):
    rows = open(f"{d}/{split}.csv").read().splitlines()
    out = [rows[0]]
    for i, r in enumerate(rows[1:]):
        f = r.split(",")
        form = "z" if split != "test" else ("nozone", "space", "date", "z")[i % 4]
        f[1] = iso(f[1], form)
        out.append(",".join(f))
    if split == "test":
        u = out[-1].split(",")[0]
        out.append(f"{u},1900-01-01T00:00:00Z,teleport,hologram,1.0")
    open(f"iso_{split}.csv", "w").write("\n".join(out) + "\n")
PY
cat > iso.yaml <<YAML
run: {dir: $WORK/iso_run}
data:
  source: csv
  train_path: iso_train.csv
  valid_path: iso_valid.csv
  test_path: iso_test.csv
  time_format: iso8601
  categorical_cols: [content]
  numeric_cols: [engagement]
  engagement_col: engagement
  virtual_shards: 4
model: {hidden: 8, action_embed: 4, cat_embed: 4}
train: {batch_size: 8, window: 8, steps: 5, warmup_steps: 1}
eval: {every: 0}
YAML
"$TRAINER" train iso.yaml > train.out 2>&1 || { cat train.out; fail "training on ISO-8601 data"; finish; }
"$TRAINER" predict iso.yaml --checkpoint "$WORK/iso_run" --input iso_test.csv --output p.csv > p.out 2> p.err \
  || { cat p.out p.err; fail "predict on ISO-8601 input"; finish; }
head -1 p.csv | grep -q ',gap_median_s,gap_p10_s,gap_p90_s' && pass "the gap columns name their unit: $(head -1 p.csv | grep -o 'gap_median.*')" \
  || fail "gap header: $(head -1 p.csv)"
iso_re='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z$'
bad=$(tail -n +2 p.csv | cut -d, -f3,4 | tr ',' '\n' | grep -cvE "$iso_re" || true)
[ "$bad" = 0 ] && pass "last_time and predicted_time in ISO-8601 (e.g. $(sed -n 2p p.csv | cut -d, -f3,4))" \
  || fail "$bad times not ISO-8601: $(sed -n 2p p.csv)"
nz=$(awk -F, 'NR > 1 && $2 !~ /Z$/' iso_test.csv | wc -l)
nd=$(awk -F, 'NR > 1 && length($2) == 10' iso_test.csv | wc -l)
ns=$(awk -F, 'NR > 1 && $2 ~ / /' iso_test.csv | wc -l)
grep -q "warning: iso_test.csv: $nz time times have no zone ($nd of them bare dates, $ns with a space for 'T'): read as UTC" p.err \
  && pass "one warning for the times without a zone, with the counts ($nz, $nd, $ns)" || { cat p.err; fail "no-zone warning"; }
grep -q "warning: iso_test.csv: 1 time times are before 1971 or after 2099 (the first: 1900-01-01T00:00:00Z)" p.err \
  && pass "the year-1900 event is counted as implausible" || { cat p.err; fail "implausible date warning"; }
[ "$(grep -c 'warning: iso_test.csv' p.err)" = 2 ] && pass "two warnings, not one per row" || fail "warnings: $(grep -c warning p.err)"
grep -q "1 rows with a value of action never seen in training, 1 rows with a value of content never seen in training (scored as <unk>; never predicted)" p.out \
  && pass "unseen values counted in the summary" || { cat p.out; fail "unseen count missing"; }
! cut -d, -f5,7,9 p.csv | grep -q '<unk>' && pass "<unk> never predicted" || fail "<unk> predicted"
grep -q "times in ISO-8601 UTC, gaps in s" p.out && pass "the summary says how times and gaps are written" || { cat p.out; fail "summary"; }
finish
