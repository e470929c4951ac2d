# data_splits.sh: given split files that share user ids, and the key of the user hash.
#
# The public event sets (EasyTPP's) number users per file, so with given train/valid/test
# files a user is (file, id): the same id in two files is two users, one per split, and no
# valid event may land in a train shard. And the shards depend on the key: the same input
# prepared under two keys gives other user hashes (and the same key the same bytes).
. "$(dirname "$0")/../lib/lib.sh"

mkdir in
for f in train valid test; do printf 'user,time,action\n' > "in/$f.csv"; done
for u in 1 2 3 4 5 6; do for t in 1 2 3 4; do echo "u$u,$((t * 100)),like" >> in/train.csv; done; done
for u in 1 2 3; do for t in 1 2 3; do echo "u$u,$((t * 100 + 5000)),view" >> in/valid.csv; done; done
for u in 4 5; do for t in 1 2; do echo "u$u,$((t * 100 + 9000)),post" >> in/test.csv; done; done
exp() {
  cat > "$1" <<YAML
run: {dir: $WORK/run}
data:
  source: csv
  train_path: $WORK/in/train.csv
  valid_path: $WORK/in/valid.csv
  test_path: $WORK/in/test.csv
  virtual_shards: 2
  shard_dir: $WORK/$2
model: {hidden: 8, action_embed: 4}
train: {batch_size: 2, window: 4, steps: 2, warmup_steps: 0}
eval: {every: 0, batch_size: 2}
YAML
}
exp a.yaml shards-a; exp b.yaml shards-b; exp c.yaml shards-c
KEY_A=000102030405060708090a0b0c0d0e0f KEY_B=f0e0d0c0b0a090807060504030201000
TRAINER_USER_KEY=$KEY_A "$TRAINER" data prepare a.yaml > a.out 2>&1 || { cat a.out; fail "prepare under key A"; }
TRAINER_USER_KEY=$KEY_B "$TRAINER" data prepare b.yaml > b.out 2>&1 || { cat b.out; fail "prepare under key B"; }
TRAINER_USER_KEY=$KEY_A "$TRAINER" data prepare c.yaml > c.out 2>&1 || { cat c.out; fail "prepare again under key A"; }

# Per-split users and events: u1..u3 are in train and valid, u4, u5 in train and test.
want="train 6 24|valid 3 9|test 2 4"
got=$(awk '$1 ~ /^(train|valid|test)$/ && $3 == "users" { printf "%s%s %s %s", sep, $1, $2, $4; sep = "|" }' a.out)
[ "$got" = "$want" ] && pass "ids shared by given split files are users of their own split: $got" \
  || { cat a.out; fail "per-split users/events: got '$got', want '$want'"; }

# The user hashes of a prepared directory, one per line (the ShardUser table after the events).
user_hashes() {
  python3 - "$1" <<'PY'
import struct, sys, glob
for path in sorted(glob.glob(sys.argv[1] + "/*.shard")):
    b = open(path, "rb").read()
    event_bytes = struct.unpack_from("<I", b, 32)[0]
    n_users, n_events = struct.unpack_from("<QQ", b, 40)
    table = 128 + ((n_events * event_bytes + 7) // 8) * 8
    for u in range(n_users):
        print("%016x" % struct.unpack_from("<Q", b, table + 24 * u)[0])
PY
}
user_hashes "$WORK/shards-a" > a.hashes; user_hashes "$WORK/shards-b" > b.hashes
user_hashes "$WORK/shards-c" > c.hashes
[ "$(sort -u a.hashes | wc -l)" = 11 ] && pass "11 distinct user hashes (6 + 3 + 2)" \
  || fail "want 11 distinct user hashes, got $(sort -u a.hashes | wc -l)"
cmp -s a.hashes c.hashes && pass "the same key gives the same user hashes" \
  || fail "the same key gave other user hashes"
if [ -s a.hashes ] && [ -z "$(comm -12 <(sort a.hashes) <(sort b.hashes))" ]; then
  pass "two keys share no user hash (the hash is keyed)"
else fail "user hashes under two keys overlap: ids are not hashed with the key"; fi
finish
