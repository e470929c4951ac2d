# data_errors.sh: bad event rows never crash `trainer data prepare` nor vanish silently.
#
# For each class of bad row (wrong field count, unparsable number, unparsable time as a number
# and as ISO-8601, empty user id, empty action, unterminated quote, text after a closing
# quote, non-finite number, log1p value <= -1):
#   data.on_error=stop: exit status 1, exactly one error line "error: FILE:LINE: reason"
#   naming the right line, no dataset.meta and no temporary buckets left, no sanitizer report;
#   data.on_error=skip: success, one warning "FILE:LINE: ... (row skipped)", the bad-row count
#   in the report, and every good row there (rows, events, users of the report).
# Also: a header without a configured column (fatal in both modes, naming the key), a
# tab-separated file (pointed out), a UTF-8 byte order mark with CRLF (read fine), a missing
# input file (naming the config key and the path), an empty file, data.max_bad_rows, the
# "further bad rows" cap on warnings, and a bad row met by `trainer train` on 2 ranks (it ends
# with the same message, without hanging).
. "$(dirname "$0")/../lib/lib.sh"


GOOD_USERS=4
GOOD_EVENTS=12

# The good rows: 4 users, 3 events each, one quoted action with a comma and one with a
# newline inside quotes (so the line numbers after it must count that newline).
good_rows() {
  local t1=$1 t2=$2 t3=$3
  printf 'u1,%s,view,1.5\nu1,%s,"buy,now",2\nu1,%s,view,0\n' "$t1" "$t2" "$t3"
  printf 'u2,%s,"two\nlines",1\nu2,%s,view,0.5\nu2,%s,like,3\n' "$t1" "$t2" "$t3"
  printf 'u3,%s,view,1\nu3,%s,like,2\nu3,%s,view,0\n' "$t1" "$t2" "$t3"
  printf 'u4,%s,like,4\nu4,%s,view,1\nu4,%s,share,2\n' "$t1" "$t2" "$t3"
}

# write_exp NAME CSV [extra yaml lines...]: an experiment reading CSV as one file, every user
# in the training split.
write_exp() {
  local name=$1 csv=$2 extra; shift 2
  mkdir -p "$WORK/$name"
  {
    printf 'run:\n  dir: %s/%s/run\n' "$WORK" "$name"
    printf 'data:\n  source: csv\n  path: %s\n  valid_frac: 0\n  test_frac: 0\n' "$csv"
    printf '  numeric_cols: [amount]\n  numeric_transform: log1p\n  virtual_shards: 2\n'
    printf '  shard_dir: %s/%s/shards\n' "$WORK" "$name"
    for extra in "$@"; do printf '  %s\n' "$extra"; done
  } > "$WORK/$name/exp.yaml"
}

# no_crash NAME STATUS ERRFILE: the command ended by itself with status 1 and no sanitizer report.
# no_crash NAME RC ERRFILE [EXPECTED]: exit status EXPECTED (default 1; 2 for a usage error
# such as a missing column) and no crash.
no_crash() {
  local name=$1 rc=$2 err=$3 want=${4:-1}
  if [ "$rc" -ne "$want" ]; then fail "$name: exit status $rc, expected $want"; fi
  if grep -qE 'Sanitizer|runtime error|Segmentation|core dumped' "$err"; then
    fail "$name: crashed or tripped a sanitizer:"; sed 's/^/    /' "$err"
  fi
}

# Writes $WORK/NAME/in.csv: header, the good rows with BAD inserted as line BAD_LINE.
# The good rows take 13 lines; line 6 is the second line of a quoted field, so BAD_LINE is
# 2..15 but not 6.
make_csv() {
  local name=$1 bad=$2 bad_line=$3 t1=${4:-1} t2=${5:-2} t3=${6:-3}
  mkdir -p "$WORK/$name"
  local all; all=$(printf 'user,time,action,amount\n'; good_rows "$t1" "$t2" "$t3")
  # Insert by physical line number (a quoted newline is a line of its own).
  printf '%s\n' "$all" | awk -v n="$bad_line" -v bad="$bad" 'NR == n { print bad } { print } END { if (NR < n) print bad }' \
    > "$WORK/$name/in.csv"
}

# check_bad_row NAME BAD_LINE REASON_REGEX [yaml lines...]: both policies on $WORK/NAME/in.csv.
check_bad_row() {
  local name=$1 line=$2 reason=$3; shift 3
  local csv="$WORK/$name/in.csv" dir="$WORK/$name"
  write_exp "$name" "$csv" "on_error: stop" "$@"
  local rc=0
  "$TRAINER" data prepare "$dir/exp.yaml" > "$dir/stop.out" 2> "$dir/stop.err" || rc=$?
  no_crash "$name stop" "$rc" "$dir/stop.err"
  local n_err; n_err=$(grep -c '^error: ' "$dir/stop.err" || true)
  if [ "$n_err" -ne 1 ]; then fail "$name stop: $n_err error lines, expected 1:"; sed 's/^/    /' "$dir/stop.err"; fi
  if ! grep -qE "^error: $csv:$line: ($reason)" "$dir/stop.err"; then
    fail "$name stop: no 'error: $csv:$line: $reason' line; stderr was:"; sed 's/^/    /' "$dir/stop.err"
  fi
  if [ -e "$dir/shards/dataset.meta" ]; then fail "$name stop: dataset.meta written by a failed prepare"; fi
  if compgen -G "$dir/shards/.prepare-*" > /dev/null; then fail "$name stop: temporary buckets left behind"; fi

  write_exp "$name" "$csv" "on_error: skip" "$@"
  rc=0
  "$TRAINER" data prepare "$dir/exp.yaml" > "$dir/skip.out" 2> "$dir/skip.err" || rc=$?
  if [ "$rc" -ne 0 ]; then fail "$name skip: exit status $rc"; sed 's/^/    /' "$dir/skip.err"; return; fi
  if ! grep -qE "^warning: $csv:$line: ($reason).*\(row skipped\)" "$dir/skip.err"; then
    fail "$name skip: no warning naming $csv:$line"; sed 's/^/    /' "$dir/skip.err"
  fi
  local rows=$((GOOD_EVENTS + 1))
  if ! grep -qE "^prepared .*: $rows rows \(1 bad, skipped\), $GOOD_EVENTS events of $GOOD_USERS users" "$dir/skip.out"; then
    fail "$name skip: report does not say $rows rows, 1 bad, $GOOD_EVENTS events of $GOOD_USERS users:"
    sed 's/^/    /' "$dir/skip.out"
  fi
  if [ ! -s "$dir/shards/dataset.meta" ]; then fail "$name skip: no dataset.meta"; fi
  pass "$name: line $line reported under stop and skip"
}

make_csv fields 'u2,9,view' 5
check_bad_row fields 5 'expected 4 fields as in the header, got 3'
make_csv toomany 'u2,9,view,1,extra' 15
check_bad_row toomany 15 'expected 4 fields as in the header, got 5'
make_csv number 'u3,9,view,abc' 10
check_bad_row number 10 'amount: cannot parse "abc" as a number'
make_csv nonfinite 'u3,9,view,inf' 3
check_bad_row nonfinite 3 'amount: cannot parse "inf" as a number'
make_csv time_number 'u1,9x,view,1' 2
check_bad_row time_number 2 'time: cannot parse time "9x" as a number'
make_csv time_looks_iso 'u1,2024-01-01T10:00:00Z,view,1' 3
check_bad_row time_looks_iso 3 'time: cannot parse time "2024-01-01T10:00:00Z" as a number \(for ISO-8601 times set data.time_format: iso8601\)'
make_csv time_iso 'u4,2024-02-30T10:00:00Z,view,1' 14 2024-01-01T10:00:00Z 2024-01-01T10:05:00+01:00 2024-01-01
check_bad_row time_iso 14 'time: cannot parse time "2024-02-30T10:00:00Z": no such date' \
  "time_format: iso8601"
make_csv time_iso_garbage 'u4,yesterday,view,1' 8 2024-01-01T10:00:00Z 2024-01-01T10:05:00.5Z 2024-01-02
check_bad_row time_iso_garbage 8 'time: cannot parse time "yesterday"' "time_format: iso8601"
make_csv empty_user ',9,view,1' 11
check_bad_row empty_user 11 'user: empty user id'
make_csv empty_action 'u2,9,,1' 11
check_bad_row empty_action 11 'action: empty action type'
# The stray quote must cost its own line only: the rows after it (one with quotes) are read.
make_csv quote 'u3,9,"view,1' 7
check_bad_row quote 7 'unterminated quoted field'
make_csv after_quote 'u3,9,"view"x,1' 9
check_bad_row after_quote 9 'text after a closing quote'
make_csv log1p 'u4,9,view,-1' 15
check_bad_row log1p 15 'amount: value -1 is not > -1'

# A header without a configured column is not a bad row: exit 2 under both policies, naming
# line 1, the column, its config key and what the header has.
for policy in stop skip; do
  name=missing_col_$policy
  mkdir -p "$WORK/$name"
  { printf 'user,time,action\n'; good_rows 1 2 3 | cut -d, -f1-3; } > "$WORK/$name/in.csv"
  write_exp "$name" "$WORK/$name/in.csv" "on_error: $policy"
  rc=0
  "$TRAINER" data prepare "$WORK/$name/exp.yaml" > "$WORK/$name/out" 2> "$WORK/$name/err" || rc=$?
  no_crash "$name" "$rc" "$WORK/$name/err" 2
  if grep -qE "^error: $WORK/$name/in.csv:1: missing column 'amount' \(named by data.numeric_cols.*the header has: user, time, action" "$WORK/$name/err" &&
     [ "$(grep -c '^error: ' "$WORK/$name/err")" -eq 1 ] && [ ! -e "$WORK/$name/shards/dataset.meta" ]; then
    pass "$name: missing column named with its key"
  else
    fail "$name: unexpected output:"; sed 's/^/    /' "$WORK/$name/err"
  fi
done

# A tab-separated file: the one-field header is pointed out.
name=tabs
mkdir -p "$WORK/$name"
{ printf 'user\ttime\taction\tamount\n'; good_rows 1 2 3 | tr , '\t'; } > "$WORK/$name/in.csv"
write_exp "$name" "$WORK/$name/in.csv"
rc=0
"$TRAINER" data prepare "$WORK/$name/exp.yaml" > "$WORK/$name/out" 2> "$WORK/$name/err" || rc=$?
no_crash "$name" "$rc" "$WORK/$name/err" 2
if grep -qE "^error: $WORK/$name/in.csv:1: missing column 'user' .*\(one field: the file must be comma-separated\)" "$WORK/$name/err"; then
  pass "tab-separated file: the one-field header is pointed out"
else fail "tab-separated file:"; sed 's/^/    /' "$WORK/$name/err"; fi

# A spreadsheet export (UTF-8 byte order mark, CRLF) is read as it is, every row kept.
name=bom_crlf
mkdir -p "$WORK/$name"
{ printf '\xEF\xBB\xBFuser,time,action,amount\n'; good_rows 1 2 3; } | sed 's/$/\r/' > "$WORK/$name/in.csv"
write_exp "$name" "$WORK/$name/in.csv"
rc=0
"$TRAINER" data prepare "$WORK/$name/exp.yaml" > "$WORK/$name/out" 2> "$WORK/$name/err" || rc=$?
if [ "$rc" -eq 0 ] && grep -qE "^prepared .*: $GOOD_EVENTS rows \(0 bad\), $GOOD_EVENTS events of $GOOD_USERS users" "$WORK/$name/out"; then
  pass "byte order mark and CRLF: every row read"
else fail "byte order mark and CRLF (status $rc):"; sed 's/^/    /' "$WORK/$name/out" "$WORK/$name/err"; fi

# Missing input files name the config key and the path.
name=missing_file
mkdir -p "$WORK/$name"
write_exp "$name" "$WORK/$name/nope.csv"
rc=0
"$TRAINER" data prepare "$WORK/$name/exp.yaml" > "$WORK/$name/out" 2> "$WORK/$name/err" || rc=$?
no_crash "$name" "$rc" "$WORK/$name/err"
if grep -qE "^error: data.path: $WORK/$name/nope.csv: .*No such file" "$WORK/$name/err"; then
  pass "missing data.path named"
else fail "missing data.path: unexpected output:"; sed 's/^/    /' "$WORK/$name/err"; fi
make_csv given_ok 'u1,4,view,1' 5
cat > "$WORK/$name/given.yaml" <<YAML
data:
  source: csv
  train_path: $WORK/given_ok/in.csv
  valid_path: $WORK/$name/valid-missing.csv
  numeric_cols: [amount]
  shard_dir: $WORK/$name/shards
YAML
rc=0
"$TRAINER" data prepare "$WORK/$name/given.yaml" > "$WORK/$name/out" 2> "$WORK/$name/err" || rc=$?
no_crash "$name given" "$rc" "$WORK/$name/err"
if grep -qE "^error: data.valid_path: $WORK/$name/valid-missing.csv: " "$WORK/$name/err"; then
  pass "missing data.valid_path named"
else fail "missing data.valid_path: unexpected output:"; sed 's/^/    /' "$WORK/$name/err"; fi

# An empty file names line 1.
name=empty
mkdir -p "$WORK/$name"
: > "$WORK/$name/in.csv"
write_exp "$name" "$WORK/$name/in.csv"
rc=0
"$TRAINER" data prepare "$WORK/$name/exp.yaml" > "$WORK/$name/out" 2> "$WORK/$name/err" || rc=$?
no_crash "$name" "$rc" "$WORK/$name/err"
if grep -qE "^error: $WORK/$name/in.csv:1: empty file" "$WORK/$name/err"; then pass "empty file"
else fail "empty file: unexpected output:"; sed 's/^/    /' "$WORK/$name/err"; fi

# Many bad rows under skip: each of the first ten shown, then a note; all counted; every good
# row kept. Beyond data.max_bad_rows the prepare stops anyway.
name=many
mkdir -p "$WORK/$name"
{ printf 'user,time,action,amount\n'; good_rows 1 2 3
  for i in $(seq 1 25); do printf 'u%d,%d,view,bad%d\n' "$i" "$i" "$i"; done; } > "$WORK/$name/in.csv"
write_exp "$name" "$WORK/$name/in.csv" "on_error: skip"
rc=0
"$TRAINER" data prepare "$WORK/$name/exp.yaml" > "$WORK/$name/out" 2> "$WORK/$name/err" || rc=$?
shown=$(grep -c '(row skipped)' "$WORK/$name/err" || true)
if [ "$rc" -eq 0 ] && [ "$shown" -eq 10 ] && grep -q 'further bad rows are counted' "$WORK/$name/err" &&
   grep -qE "^prepared .*: 37 rows \(25 bad, skipped\), $GOOD_EVENTS events of $GOOD_USERS users" "$WORK/$name/out"; then
  pass "25 bad rows: 10 shown, all counted, good rows kept"
else
  fail "25 bad rows (rc $rc, $shown shown):"; sed 's/^/    /' "$WORK/$name/out" "$WORK/$name/err"
fi
write_exp "$name" "$WORK/$name/in.csv" "on_error: skip" "max_bad_rows: 20"
rc=0
"$TRAINER" data prepare "$WORK/$name/exp.yaml" > "$WORK/$name/out" 2> "$WORK/$name/err" || rc=$?
no_crash "$name max_bad_rows" "$rc" "$WORK/$name/err"
if grep -qE "^error: $WORK/$name/in.csv:35: more than data.max_bad_rows=20 bad rows" "$WORK/$name/err" &&
   [ ! -e "$WORK/$name/shards/dataset.meta" ]; then
  pass "data.max_bad_rows stops the prepare at the 21st bad row"
else fail "data.max_bad_rows:"; sed 's/^/    /' "$WORK/$name/err"; fi

# `trainer train` prepares the data itself: on 2 ranks a bad row ends the run with the same
# one-line message and status 1, without leaving the other rank waiting.
name=train_stop
make_csv "$name" 'u2,9,view,abc' 8
write_exp "$name" "$WORK/$name/in.csv" "on_error: stop"
cat >> "$WORK/$name/exp.yaml" <<YAML
model: {hidden: 8, action_embed: 4}
train: {batch_size: 2, window: 4, steps: 2, warmup_steps: 0}
eval: {every: 0}
checkpoint: {every: 0}
YAML
rc=0
mpi timeout 120 bash -c 'mpirun --oversubscribe --bind-to none -np 2 "$1" train "$2"' _ "$TRAINER" \
  "$WORK/$name/exp.yaml" > "$WORK/$name/out" 2> "$WORK/$name/err" || rc=$?
if [ "$rc" -eq 124 ]; then fail "train on 2 ranks hung after a bad row"
elif [ "$rc" -eq 0 ]; then fail "train on 2 ranks succeeded despite a bad row"
elif grep -qE "error: $WORK/$name/in.csv:8: amount: cannot parse \"abc\"" "$WORK/$name/err" &&
     ! grep -qE 'Sanitizer|runtime error|Segmentation' "$WORK/$name/err"; then
  pass "train on 2 ranks stops at the bad row (status $rc) with file:line"
else fail "train on 2 ranks (status $rc):"; sed 's/^/    /' "$WORK/$name/err"; fi

finish
