#!/usr/bin/env bash
# input_warnings.sh: CSV inputs that used to be accepted silently.
#   1. UTF-16 (LE and BE, with a byte order mark) and UTF-16 without one: exit 1,
#      "file:1: file is UTF-16 ...; convert it to UTF-8"; a UTF-8 BOM is skipped with a note.
#   2. CR CR LF line ends: a bad row whose message shows "\r\r\n" visibly (stop: exit 1;
#      skip: counted); a header ending in CR CR LF is refused the same way.
#   3. Duplicate timestamps of a user and rows earlier than the user's previous row (negative
#      gaps in file order): counted in a warning naming the first file:line; data.on_*=stop
#      refuses with exit 1.
#   4. A user id in two given split files (train and test): warned with counts per pair and
#      the first file:line; data.on_split_overlap=stop refuses.
#   5. A clean file gets none of these warnings.
. "$(dirname "$0")/../lib/lib.sh"

write_exp() { # write_exp NAME [yaml lines under data:]: one file split by user, or given splits
  local name=$1; shift
  mkdir -p "$WORK/$name"
  {
    printf 'run:\n  dir: %s/%s/run\ndata:\n  source: csv\n' "$WORK" "$name"
    printf '  user_col: user\n  time_col: t\n  action_col: action\n  numeric_cols: [x]\n'
    printf '  time_format: number\n  time_unit: s\n  virtual_shards: 2\n  shard_dir: %s/%s/shards\n' "$WORK" "$name"
    for l in "$@"; do printf '  %s\n' "$l"; done
    printf 'model:\n  hidden: 8\ntrain:\n  batch_size: 2\n  window: 4\n  steps: 1\n  warmup_steps: 0\n'
  } > "$WORK/$name/exp.yaml"
}
rows() { # rows N_USERS N_EVENTS: a clean file body, users u0.., times increasing
  local u e
  for ((u = 0; u < $1; u++)); do for ((e = 0; e < $2; e++)); do echo "u$u,$((1000 + 60 * e)),view,$e"; done; done
}
prepare() { # prepare NAME: sets RC, output in NAME/out
  RC=0; "$TRAINER" data prepare "$WORK/$1/exp.yaml" > "$WORK/$1/out" 2>&1 || RC=$?
}
check() { # check NAME WANT_RC REGEX DESCRIPTION
  if [ "$RC" -eq "$2" ] && grep -qE -- "$3" "$WORK/$1/out"; then pass "$4: $(grep -m1 -E -- "$3" "$WORK/$1/out" | cut -c1-220)"
  else sed 's/^/    /' "$WORK/$1/out" | head -20; fail "$4: exit $RC (want $2), no /$3/"; fi
}

# 1. Encodings.
{ echo "user,t,action,x"; rows 6 5; } > clean.csv
for enc in UTF-16LE UTF-16BE UTF-16; do
  write_exp "e$enc" "path: $WORK/e$enc/in.csv" "valid_frac: 0.2" "test_frac: 0"
  if [ "$enc" = UTF-16 ]; then iconv -f UTF-8 -t UTF-16LE clean.csv > "$WORK/e$enc/in.csv"   # no BOM
  else { [ "$enc" = UTF-16LE ] && printf '\xff\xfe' || printf '\xfe\xff'; iconv -f UTF-8 -t "$enc" clean.csv; } > "$WORK/e$enc/in.csv"; fi
  prepare "e$enc"
  check "e$enc" 1 "^error: $WORK/e$enc/in.csv:1: file is UTF-16.*; convert it to UTF-8" "$enc file"
done
write_exp bom "path: $WORK/bom/in.csv" "valid_frac: 0.2" "test_frac: 0"
{ printf '\xef\xbb\xbf'; cat clean.csv; } > bom/in.csv
prepare bom
check bom 0 "^data: $WORK/bom/in.csv: UTF-8 byte order mark skipped" "UTF-8 BOM"

# 2. CR CR LF.
for policy in stop skip; do
  write_exp "cr$policy" "path: $WORK/cr$policy/in.csv" "valid_frac: 0.2" "test_frac: 0" "on_error: $policy"
  { echo "user,t,action,x"; rows 6 5 | sed '7s/$/\r\r/'; } > "cr$policy/in.csv"
  prepare "cr$policy"
  if [ $policy = stop ]; then
    check crstop 1 "^error: $WORK/crstop/in.csv:8: line ends in \\\\r\\\\r\\\\n \(CR CR LF" "CR CR LF row, on_error=stop"
  else
    check crskip 0 "^warning: $WORK/crskip/in.csv:8: line ends in \\\\r\\\\r\\\\n .*\(row skipped\)" "CR CR LF row, on_error=skip"
  fi
done
grep -q "30 rows (1 bad" crskip/out && pass "the CR CR LF row is counted as bad" || { cat crskip/out; fail "CR CR LF row not counted"; }
write_exp crhead "path: $WORK/crhead/in.csv" "valid_frac: 0.2" "test_frac: 0"
{ printf 'user,t,action,x\r\r\n'; rows 6 5; } > crhead/in.csv
prepare crhead
check crhead 1 "^error: $WORK/crhead/in.csv:1: line ends in \\\\r\\\\r\\\\n" "header in CR CR LF"
# A field with a control character shows it in the message.
write_exp ctrl "path: $WORK/ctrl/in.csv" "valid_frac: 0.2" "test_frac: 0" "on_error: skip"
{ echo "user,t,action,x"; rows 6 5; printf 'u1,99,view,1\t2\n'; } > ctrl/in.csv
prepare ctrl
check ctrl 0 'cannot parse "1\\t2" as a number' "a tab inside a number is shown as \\t"

# 3. Duplicate times and negative gaps. Lines 32-36: u2 gets two more events at 1060 (2
# duplicates; the first also comes after u2's 1240: negative), u4 one at 500 (negative) and
# one at 1000 (a duplicate, later than 500 in the file), u5 one at 10 (negative).
{ echo "user,t,action,x"; rows 6 5; echo "u2,1060,like,1"; echo "u2,1060,like,2"; echo "u4,500,post,1"; echo "u4,1000,post,1"; echo "u5,10,view,0"; } > order.csv
write_exp order "path: $WORK/order.csv" "valid_frac: 0.2" "test_frac: 0"
prepare order
check order 0 "^warning: data: 3 events of 2 users share their time with the same user's previous event \(first: $WORK/order.csv:32\) \(data.on_duplicate_time=warn" "duplicate times warned with counts"
check order 0 "^warning: data: 3 events of 3 users are earlier than the same user's previous row in the file \(negative gaps; sorted by time\) \(first: $WORK/order.csv:32\) \(data.on_unsorted=warn" "negative gaps warned with counts"
write_exp dupstop "path: $WORK/order.csv" "valid_frac: 0.2" "test_frac: 0" "on_duplicate_time: stop"
prepare dupstop
check dupstop 1 "^error: 3 events of 2 users share their time .*\(data.on_duplicate_time=stop" "on_duplicate_time=stop refuses"
write_exp unsortstop "path: $WORK/order.csv" "valid_frac: 0.2" "test_frac: 0" "on_unsorted: stop"
prepare unsortstop
check unsortstop 1 "^error: 3 events of 3 users are earlier .*\(data.on_unsorted=stop" "on_unsorted=stop refuses"
ls unsortstop/shards | grep -qE "prepare-|\.tmp$" && fail "refused prepare left temporary files" || pass "a refused prepare leaves no temporary files"

# 4. A user in two splits.
{ echo "user,t,action,x"; rows 6 5; } > train.csv
{ echo "user,t,action,x"; rows 2 5 | sed 's/^u/v/'; } > valid.csv
{ echo "user,t,action,x"; rows 3 5 | sed 's/^u0,/w0,/'; } > test.csv
write_exp overlap "train_path: $WORK/train.csv" "valid_path: $WORK/valid.csv" "test_path: $WORK/test.csv"
prepare overlap
check overlap 0 "^warning: data: 2 user ids appear in more than one split \(train\+valid 0, train\+test 2, valid\+test 0; first: $WORK/test.csv:7\)" "user in train and test warned"
write_exp overlapstop "train_path: $WORK/train.csv" "valid_path: $WORK/valid.csv" "test_path: $WORK/test.csv" "on_split_overlap: stop"
prepare overlapstop
check overlapstop 1 "^error: data: |^error: 2 user ids appear in more than one split .*\(data.on_split_overlap=stop\)" "on_split_overlap=stop refuses"

# 5. Clean input: no warning.
write_exp clean "path: $WORK/clean.csv" "valid_frac: 0.2" "test_frac: 0"
prepare clean
[ "$RC" -eq 0 ] && ! grep -q "warning" clean/out && pass "a clean file: no warnings" || { cat clean/out; fail "clean file: exit $RC or warnings"; }
finish
