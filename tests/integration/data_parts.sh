# data_parts.sh: inputs as users have them (issue "Scale out"): a directory or glob of part
# files (part-*.csv as Spark writes them, with _SUCCESS and .crc files beside them), gzip
# files (.csv.gz), users spread over several parts.
#
# The events: 40 users x 12 events in one CSV, rows interleaved across users; the parts are
# consecutive line ranges of it (each with its header), so every user has rows in several
# parts. The same rows as one file, as a directory of parts (one of them gzip'd, one empty),
# as a glob, and as one .csv.gz prepare byte-identical shards (but for the data fingerprint).
# Parts out of time order between them are not "unsorted" (only rows of one file are); a
# user id in train and valid part
# directories is named with its part and line. Bad input: a gzip part cut short or corrupt, a
# part that cannot be read, a bad row in a part (named with its own line number), a glob
# that matches nothing, a directory without data files: each a message naming the file,
# exit 1 or 2, and no shard or meta file left.
. "$(dirname "$0")/../lib/lib.sh"

awk 'BEGIN { print "user,time,action,content";
  for (t = 1; t <= 12; t++) for (u = 1; u <= 40; u++)
    printf "u%d,%d,a%d,c%d\n", u, 1000 * t + (u * 37) % 900, (u + t) % 5, (u * t) % 7 }' > all.csv
# One .csv.gz of two gzip members (as `cat a.gz b.gz` and some writers make them).
{ head -n 200 all.csv | gzip -c; tail -n +201 all.csv | gzip -c; } > all.csv.gz
mkdir parts
tail -n +2 all.csv | split -l 150 -d -a 5 - body- # 480 rows: 150, 150, 150, 30
i=0
for b in body-*; do
  { head -1 all.csv; cat "$b"; } > "parts/part-$(printf %05d $i).csv"; i=$((i + 1))
done
rm body-*
gzip parts/part-00001.csv                       # part-00001.csv.gz
: > parts/part-00004.csv                        # an empty partition
touch parts/_SUCCESS parts/.part-00000.csv.crc   # written by Spark beside the parts

exp() { # exp NAME PATH: an experiment reading PATH into shards-NAME
  cat > "$1.yaml" <<YAML
run: {dir: $WORK/run-$1}
data:
  source: csv
  path: $2
  categorical_cols: [content]
  time_format: number
  valid_frac: 0.2
  test_frac: 0.1
  virtual_shards: 2
  shard_dir: $WORK/shards-$1
model: {hidden: 8, action_embed: 4}
train: {batch_size: 2, window: 4, steps: 2, warmup_steps: 0}
eval: {every: 0, batch_size: 2}
YAML
}
prepare() { # prepare NAME: `data prepare NAME.yaml`, status in $rc, output in NAME.out
  rc=0
  "$TRAINER" data prepare "$1.yaml" > "$1.out" 2>&1 || rc=$?
}
# same_shards A B: the same *.shard files, byte for byte but for the header's data
# fingerprint and header checksum (the fingerprint covers the input paths, sizes and times).
same_shards() {
  python3 - "$WORK/shards-$1" "$WORK/shards-$2" <<'PY'
import glob, os, sys
a = sorted(os.path.basename(p) for p in glob.glob(sys.argv[1] + "/*.shard"))
b = sorted(os.path.basename(p) for p in glob.glob(sys.argv[2] + "/*.shard"))
if not a or a != b: sys.exit("shard files: %s vs %s" % (a, b))
cut = lambda d: d[:56] + d[64:120] + d[128:]  # ShardHeader: fingerprint at 56, checksum at 120
for n in a:
    if cut(open(sys.argv[1] + "/" + n, "rb").read()) != cut(open(sys.argv[2] + "/" + n, "rb").read()):
        sys.exit(n + " differs")
PY
}

exp one "$WORK/all.csv"; prepare one
[ $rc = 0 ] || { cat one.out; fail "prepare of one plain file failed"; }
for case in "dir:$WORK/parts" "glob:$WORK/parts/part-*" "gz:$WORK/all.csv.gz"; do
  name=${case%%:*}
  exp "$name" "${case#*:}"; prepare "$name"
  if [ $rc != 0 ]; then cat "$name.out"; fail "$name: prepare failed (exit $rc)"; continue; fi
  same_shards one "$name" && pass "$name (${case#*:}): shards byte-identical to one plain file" ||
    { cat "$name.out"; fail "$name: shards differ from one plain file"; }
  grep -q "on_unsorted\|earlier than the same user" "$name.out" && fail "$name: parts reported as unsorted"
done
grep -q "events" dir.out && [ "$(grep -c 'users' dir.out)" = "$(grep -c 'users' one.out)" ] ||
  fail "dir: summary differs from one file"

# A part out of time order with the others is fine; a row out of order inside a part is not.
mkdir late
{ head -1 all.csv; echo "u1,1,a1,c1"; } > late/part-00009.csv   # u1's earliest event, last file
cp parts/part-00000.csv late/
exp late "$WORK/late"; prepare late
[ $rc = 0 ] && ! grep -q "earlier than the same user" late.out &&
  pass "a user's earliest event in a later part: no unsorted warning" ||
  { cat late.out; fail "a user's earliest event in a later part: rc $rc or a warning"; }

# Given splits as part directories: a user id in train parts and in a valid part is named
# with the part file and its line (data.on_split_overlap=warn).
mkdir vparts
{ head -1 all.csv; echo "zz,5,a1,c1"; echo "zz,6,a2,c2"; } > vparts/part-00000.csv
{ head -1 all.csv; echo "u7,99999,a1,c1"; echo "u7,99998,a2,c2"; } > vparts/part-00001.csv
exp splits "$WORK/parts"
sed -i "s|^  path: .*|  train_path: $WORK/parts\n  valid_path: $WORK/vparts|; /valid_frac\|test_frac/d" splits.yaml
prepare splits
grep -qE "1 user id appear.*first: $WORK/vparts/part-00001.csv:2\)" splits.out && [ $rc = 0 ] &&
  pass "given splits as part directories: $(grep -o '1 user id appear.*part-00001.csv:2)' splits.out)" ||
  { cat splits.out; fail "given splits as part directories: no overlap warning naming vparts/part-00001.csv:2 (exit $rc)"; }
grep -q "valid *2 users *4 events" splits.out || { grep valid splits.out; fail "valid parts: want 2 users, 4 events"; }

# no_shards NAME: nothing of a shard set in shards-NAME (no shard, meta or temporary file).
no_shards() {
  [ -z "$(ls -A "$WORK/shards-$1" 2> /dev/null | grep -v '^\.lock$')" ]
}
# bad NAME PATH WANT_RC REGEX WHAT: prepare must fail with WANT_RC, a message matching REGEX.
bad() {
  exp "$1" "$2"; prepare "$1"
  if [ $rc = "$3" ] && grep -qE "$4" "$1.out" && no_shards "$1"; then
    pass "$5: exit $rc, $(grep -m1 -oE "$4.*" "$1.out" | cut -c1-150)"
  else
    cat "$1.out"; ls -A "$WORK/shards-$1" 2> /dev/null || true
    fail "$5: exit $rc (want $3), message /$4/, shards: $(ls -A "$WORK/shards-$1" 2> /dev/null | tr '\n' ' ')"
  fi
}
cp -r parts cut
gz=cut/part-00001.csv.gz
head -c $(($(stat -c %s $gz) / 2)) $gz > cut.tmp && mv cut.tmp $gz
bad cut "$WORK/cut" 1 "cut/part-00001.csv.gz:[0-9]+: gzip stream cut short" "a gzip part cut short"
cp -r parts corrupt
gz=corrupt/part-00001.csv.gz
printf 'garbage!' | dd of=$gz bs=1 seek=$(($(stat -c %s $gz) / 2)) conv=notrunc status=none
bad corrupt "$WORK/corrupt" 1 "corrupt/part-00001.csv.gz:[0-9]+: gzip data corrupt" "a corrupt gzip part"
cp -r parts gone
rm gone/part-00002.csv && ln -s "$WORK/nowhere.csv" gone/part-00002.csv # a dangling link
bad gone "$WORK/gone" 1 "data.path: $WORK/gone/part-00002.csv: cannot read input" "an unreadable part"
cp -r parts badrow
sed -i '5s/.*/u3,notatime,a1,c1/' badrow/part-00002.csv
bad badrow "$WORK/badrow" 1 "badrow/part-00002.csv:5: " "a bad row in part 3 (its own line 5)"
bad nomatch "$WORK/parts/none-*.csv" 2 "data.path: $WORK/parts/none-\*.csv: no file matches" "a glob matching nothing"
mkdir empty; touch empty/_SUCCESS
bad emptydir "$WORK/empty" 2 "data.path: $WORK/empty: directory has no data files" "a directory without data files"
finish
