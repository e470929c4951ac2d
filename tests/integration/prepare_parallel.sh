# prepare_parallel.sh: `mpirun -np P trainer data prepare` (issue "Scale out"): every rank
# reads its byte range of each plain input (whole gzip files), rows go to their bucket's
# rank, and the shard set is the same bytes for any P dividing V, also when the buckets are
# sorted in runs on disk (data.prepare_mem_mb=1).
#
#   1. Three inputs: one plain CSV (75k rows, users interleaved, a quoted field, a bad row at
#      line 45001, a duplicate time and rows out of time order late in the file, then one user
#      of 15000 events, more than a shard's write buffer holds), a directory
#      of parts (one gzip'd, one empty) and one .csv.gz. For each, P = 2 and 4 and
#      prepare_mem_mb=1 (every rank's buckets spilled to disk, said in the report; by default
#      they stay in memory) give every file of the shard directory (shards, dataset.meta,
#      fingerprint.txt) byte-identical to P = 1 (cmp), and the same report lines: the bad
#      row and the first unsorted/duplicate rows named with their exact file and line.
#      Also given split files (users in both), a consent column and an erasure list at P = 4,
#      and a file with a UTF-8 byte order mark and CRLF line ends.
#      The prepare inside `mpirun -np 2 trainer train` gives the same bytes.
#      A quoted line break where two ranges meet: exit 1 naming file:line (one rank works).
#   2. P = 3 with data.virtual_shards=8: exit 2, a message saying so, no shard directory.
#   3. A rank killed after writing its events (TRAINER_FAULT_PREPARE_KILL=1): non-zero exit,
#      no dataset.meta and no *.shard in the shard directory; a rank that fails while the
#      other writes (TRAINER_FAULT_PREPARE_FAIL=0) stops it before removing the shared
#      directory, so nothing is left; the next prepare removes the leftovers of the killed
#      one and gives the same bytes.
. "$(dirname "$0")/../lib/lib.sh"

# 2000 users x 30 events, interleaved; user u7's row at line 50001 is earlier than its
# previous one, u9 (line 50010) repeats its previous time, line 45001 is a bad row. Then
# user ubig's 15000 events: 360 kB of shard events (24 bytes each: time, action, content,
# amount, padded), more than the largest write buffer of a shard (256 KiB), so they take the path
# for a user written on its own, in whichever split and shard the user lands.
awk 'BEGIN { print "user,time,action,content,amount";
  n = 1; for (t = 1; t <= 30; t++) for (u = 1; u <= 2000; u++) { n++;
    if (n == 45001) { print "u5,notatime,a1,c1,1"; continue }
    tm = 1000 * t + (u * 37) % 900
    if (n == 50001) tm = 5; if (u == 9 && t == 26) tm = 1000 * 25 + (9 * 37) % 900
    c = (u % 11 == 0) ? "\"c,q\"" : "c" (u * t) % 7
    printf "u%d,%d,a%d,%s,%.3f\n", u, tm, (u + t) % 9, c, (u * t) % 13 / 4 }
  for (i = 1; i <= 15000; i++) printf "ubig,%d,a%d,c%d,%.3f\n", 40000 + i, i % 9, i % 7, i % 13 / 4 }' > all.csv
gzip -c all.csv > all.csv.gz
mkdir parts
tail -n +2 all.csv | split -l 17000 -d -a 5 - body-
i=0
for b in body-*; do { head -1 all.csv; cat "$b"; } > "parts/part-$(printf %05d $i).csv"; i=$((i + 1)); done
rm body-*
gzip parts/part-00001.csv
: > parts/part-00009.csv # an empty partition

exp() { # exp NAME PATH
  cat > "$1.yaml" <<YAML
run: {dir: $WORK/run-$1}
data:
  source: csv
  path: $2
  categorical_cols: [content]
  numeric_cols: [amount]
  time_format: number
  valid_frac: 0.2
  test_frac: 0.1
  virtual_shards: 8
  shard_dir: $WORK/shards-$1
  on_error: skip
model: {hidden: 8, action_embed: 4}
train: {batch_size: 8, window: 4, steps: 2, warmup_steps: 0}
eval: {every: 0, batch_size: 8}
YAML
}
# run NP NAME OUT [--set ...]: prepare NAME.yaml with NP ranks (1: no mpirun); status in $rc.
run() {
  local np=$1 name=$2 out=$3; shift 3
  rc=0
  if [ "$np" = 1 ]; then "$TRAINER" data prepare "$name.yaml" "$@" > "$out" 2>&1 || rc=$?
  else mpirun_limit 60 "$np" "$TRAINER" data prepare "$name.yaml" "$@" > "$out" 2>&1 || rc=$?; fi
}
# same NAME REF: every file of shards-NAME equals REF's (cmp), none missing or extra.
same() {
  local a="$WORK/shards-$1" b=$2
  [ "$(cd "$a" && ls | sort)" = "$(cd "$b" && ls | sort)" ] || { say "files: $(ls "$a" | wc -l) vs $(ls "$b" | wc -l)"; return 1; }
  for f in "$b"/*; do cmp -s "$f" "$a/$(basename "$f")" || { say "$(basename "$f") differs"; return 1; }; done
}
# The report's lines that must not depend on P (not the timing or RSS lines), sorted: ranks
# print some of them (the byte order mark note, warnings) at their own time, and mpirun
# interleaves the ranks' output in no fixed order.
facts() { sed 's/^\[rank [0-9]*\] //' "$1" | grep -E '^  (train|valid|test|erasure|consent)|vocabulary|warning|byte order|rows \(' | sed 's/ in [0-9.]* s (.*//' | LC_ALL=C sort; }

# Given split files with users in both, a consent column and an erasure list (merged over ranks).
awk -F, 'NR == 1 || NR % 7 == 0 { print $0 (NR == 1 ? ",ok" : ($1 ~ /3$/ ? ",no" : ",yes")) }' all.csv > valid.csv
awk -F, '{ print $0 (NR == 1 ? ",ok" : ",yes") }' all.csv > train.csv
printf 'u12\nu400\n# a comment\nu99999\n' > excluded.txt
exp splits "$WORK/all.csv"
sed -i "s|^  path: .*|  train_path: $WORK/train.csv\n  valid_path: $WORK/valid.csv\n  consent_col: ok\n  exclude_users: $WORK/excluded.txt|; /valid_frac\|test_frac/d" splits.yaml

# A spreadsheet export: UTF-8 byte order mark and CRLF line ends.
{ printf '\xEF\xBB\xBF'; sed 's/$/\r/' all.csv; } > crlf.csv

for case in "plain:$WORK/all.csv" "parts:$WORK/parts" "gz:$WORK/all.csv.gz" "splits:" "crlf:$WORK/crlf.csv"; do
  name=${case%%:*}
  [ "$name" = splits ] || exp "$name" "${case#*:}"
  run 1 "$name" "$name-1.out"
  [ $rc = 0 ] || { cat "$name-1.out"; fail "$name: P=1 prepare failed (exit $rc)"; continue; }
  cp -r "shards-$name" "ref-$name"
  variants=("2" "4" "1 mem" "2 mem")
  [ "$name" = splits ] || [ "$name" = crlf ] && variants=("4")
  for v in "${variants[@]}"; do
    np=${v%% *}; extra=(); tag=$np
    [ "$v" != "${v% mem}" ] && extra=(--set data.prepare_mem_mb=1) && tag="$np-mem1"
    run "$np" "$name" "$name-$tag.out" "${extra[@]}"
    if [ $rc != 0 ]; then cat "$name-$tag.out"; fail "$name P=$tag: exit $rc"; continue; fi
    # prepare_mem_mb=1 spills every rank's buckets to disk; the default keeps them in memory.
    spill=$(grep -o "buckets sorted on disk by [0-9]* of [0-9]* rank" "$name-$tag.out" || true)
    if [ ${#extra[@]} -gt 0 ]; then
      [ "$spill" = "buckets sorted on disk by $np of $np rank" ] || fail "$name P=$tag: not every rank spilled ($spill)"
    else
      [ -z "$spill" ] || fail "$name P=$tag: spilled with the default data.prepare_mem_mb ($spill)"
    fi
    if same "$name" "ref-$name" && [ -n "$(facts "$name-1.out")" ] &&
       [ "$(facts "$name-$tag.out")" = "$(facts "$name-1.out")" ]; then
      pass "$name P=$tag: $(ls "shards-$name" | wc -l) files byte-identical to P=1, same report"
    else
      diff <(facts "$name-1.out") <(facts "$name-$tag.out") || true
      fail "$name P=$tag: shards or report differ from P=1"
    fi
  done
done
# ubig (written on its own, past a shard's buffer): its 15000 events in its shard as in the
# CSV, times 40001..55000 in order, amounts i % 13 / 4, actions and contents repeating every
# 9 and 7 events (vocabulary ids), read from the shard files themselves.
big=$(python3 - "$WORK/ref-plain" <<'PY'
import glob, struct, sys
for path in sorted(glob.glob(sys.argv[1] + "/*.shard")):
    b = open(path, "rb").read()
    n_users, n_events = struct.unpack_from("<QQ", b, 40)
    eb = struct.unpack_from("<I", b, 32)[0]
    table = 128 + n_events * eb
    for u in range(n_users):
        h, first, n = struct.unpack_from("<QQI", b, table + 24 * u)
        if n != 15000: continue
        ev = [struct.unpack_from("<diif", b, 128 + (first + i) * eb) for i in range(n)]
        ok = all(e[0] == 40001 + i and e[3] == struct.unpack("<f", struct.pack("<f", (i + 1) % 13 / 4))[0]
                 and e[1] == ev[i % 9][1] and e[2] == ev[i % 7][2] for i, e in enumerate(ev))
        print(path.rsplit("/", 1)[1], "ok" if ok and len({e[1] for e in ev}) == 9 else "wrong")
PY
)
[ "$(echo "$big" | awk '{print $2}')" = ok ] && pass "the 15000-event user written on its own: its events in $(echo "$big" | cut -d' ' -f1) as in the CSV" ||
  fail "the 15000-event user: '$big' (want one shard holding it, ok)"
# Exact line numbers from ranks that start mid-file (P=4: the bad row is in rank 2's range).
grep -q "all.csv:45001: time" plain-4.out && grep -q "(first: $WORK/all.csv:50001)" plain-4.out &&
  grep -q "share their time.*(first: $WORK/all.csv:50010)" plain-4.out &&
  pass "P=4 names all.csv:45001 (bad row), :50001 (unsorted), :50010 (duplicate time)" ||
  { grep -E "warning|error" plain-4.out; fail "P=4: wrong or missing file:line in messages"; }
grep -q "part-00002.csv:11001: time" parts-4.out && pass "P=4 names the part and its own line (part-00002.csv:11001)" ||
  { grep -E "warning" parts-4.out; fail "P=4 parts: bad row not named part-00002.csv:11001"; }
grep -q "peak RSS per rank (MiB): [0-9]* [0-9]* [0-9]* [0-9]*$" plain-4.out || fail "P=4: no per-rank peak RSS"
grep -q "user ids appear in more than one split.*first: $WORK/valid.csv:2)" splits-4.out &&
  grep -q "erasure: 2 of the 3 users" splits-4.out && grep -q "consent: [1-9][0-9]* rows without consent" splits-4.out &&
  pass "P=4 given splits: $(grep -o '[0-9]* user ids appear' splits-4.out), erasure 2 of 3, $(grep -o 'consent: [0-9]* rows' splits-4.out)" ||
  { cat splits-4.out; fail "P=4 given splits: overlap, erasure or consent report missing"; }

# The prepare inside a 2-rank `train` is the same parallel prepare.
exp train "$WORK/all.csv"
rc=0
mpirun_limit 120 2 "$TRAINER" train train.yaml > train.out 2>&1 || rc=$?
if [ $rc = 0 ] && grep -q "peak RSS per rank" train.out && same train "ref-plain"; then
  pass "mpirun -np 2 train: prepared on both ranks, shards byte-identical to P=1"
else
  cat train.out; fail "mpirun -np 2 train: exit $rc or shards differ from P=1"
fi

# The one limit: a quoted line break where two ranks' ranges meet stops with a message
# naming the file and the row's line, and leaves no shard set (one rank reads such a file).
awk 'BEGIN { print "user,time,action,content,amount"; long = sprintf("%3000s", ""); gsub(/ /, "x", long)
  for (i = 1; i <= 400; i++) printf "u%d,%d,a1,c1,1\n", i % 40, i
  printf "u1,401,a1,\"%s%s\nx\",1\n", long, long
  for (i = 402; i <= 800; i++) printf "u%d,%d,a1,c1,1\n", i % 40, i }' > quoted.csv
exp quoted "$WORK/quoted.csv"
run 2 quoted quoted.out
if [ $rc = 1 ] && grep -q "quoted.csv:402: a quoted field with a line break crosses" quoted.out &&
   [ ! -e "$WORK/shards-quoted/dataset.meta" ] && ! ls "$WORK/shards-quoted"/*.shard > /dev/null 2>&1; then
  pass "a quoted line break across ranges: exit 1, $(grep -m1 -o 'quoted.csv:402: .*' quoted.out | cut -c1-80)..."
else
  cat quoted.out; fail "a quoted line break across ranges: exit $rc, no clear message"
fi
run 1 quoted quoted1.out
[ $rc = 0 ] || { cat quoted1.out; fail "the same file on one rank: exit $rc"; }

# 2. A rank count that does not divide V.
exp odd "$WORK/all.csv"
run 3 odd odd.out
if [ $rc = 2 ] && grep -q "3 ranks do not divide data.virtual_shards=8" odd.out && [ ! -e "$WORK/shards-odd" ]; then
  pass "P=3, V=8: exit 2, '$(grep -m1 -o 'error: .*' odd.out | cut -c1-90)...', no shard directory"
else
  cat odd.out; fail "P=3, V=8: exit $rc (want 2), shard dir: $(ls -A "$WORK/shards-odd" 2>&1 | tr '\n' ' ')"
fi

exp fail "$WORK/all.csv"
# stop_case FAULT WHAT MESSAGE: with TRAINER_FAULT_PREPARE_FAIL=FAULT rank 0 fails; rank 1 stops
# at its next wait (not after COMM_STOP_WAIT_S, 60 s, of rank 0 waiting for it) and says why,
# and only then does rank 0 remove the shared directory: nothing is left.
stop_case() {
  local fault=$1 what=$2 msg=$3 rc=0 t0 secs left
  t0=$(date +%s)
  TRAINER_FAULT_PREPARE_FAIL=$fault mpirun_limit 50 2 "$TRAINER" data prepare fail.yaml > fail.out 2>&1 || rc=$?
  secs=$(($(date +%s) - t0))
  left=$(cd "$WORK/shards-fail" && ls -A | { grep -v '^\.lock$' || true; } | tr '\n' ' ')
  if [ $rc != 0 ] && grep -q "$msg" fail.out && grep -q "\[rank 1\] error: stopping: rank 0 failed" fail.out &&
     [ -z "$left" ] && [ "$secs" -lt 30 ]; then
    pass "$what: exit $rc in ${secs} s, rank 1 stopped first ('stopping: rank 0 failed'), nothing left"
  else
    cat fail.out; fail "$what: exit $rc in ${secs} s, left: '$left'"
  fi
}
# Rank 0 fails as the write pass starts, rank 1 writes 0.5 s later.
stop_case 0 "rank 0 failed while rank 1 wrote" "injected failure (TRAINER_FAULT_PREPARE_FAIL)"
# Rank 0 fails 0.3 s after rank 1 entered the gather of the users (a collective).
stop_case 0@gather "rank 0 failed while rank 1 waited in a gather" "injected failure before the users' gather"

# 3. A rank killed in the middle: no half-written set; the next prepare cleans up and works.
exp kill "$WORK/all.csv"
rc=0
TRAINER_FAULT_PREPARE_KILL=1 mpirun_limit 60 2 "$TRAINER" data prepare kill.yaml > kill.out 2>&1 || rc=$?
left=$(cd "$WORK/shards-kill" && ls -A | tr '\n' ' ')
if [ $rc != 0 ] && [ ! -e "$WORK/shards-kill/dataset.meta" ] && ! ls "$WORK/shards-kill"/*.shard > /dev/null 2>&1; then
  pass "rank 1 killed: exit $rc, no dataset.meta, no *.shard (left: $left)"
else
  cat kill.out; fail "rank 1 killed: exit $rc, shard dir holds: $left"
fi
run 2 kill kill2.out
if [ $rc = 0 ] && grep -q "removed $WORK/shards-kill/.prepare-" kill2.out && same kill "ref-plain"; then
  pass "the next prepare removed the leftovers and wrote the same shards"
else
  cat kill2.out; fail "prepare after the killed one: exit $rc"
fi
[ -z "$(ls -A "$WORK/shards-kill" | grep prepare-)" ] || fail "a .prepare-* directory is left after a good prepare"
finish
