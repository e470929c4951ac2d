# config_errors.sh: every class of experiment/CLI error gives one exact line naming the
# place (file:line:column or the --set argument) and the key, exits non-zero, writes nothing.
. "$(dirname "$0")/../lib/lib.sh"
DEFAULT=$REPO_DIR/configs/default.yaml

# expect_error STATUS "EXPECTED STDERR" -- trainer args...
expect_error() {
  local want_status=$1 want=$2; shift 3
  local out status=0
  out=$("$TRAINER" "$@" 2>&1 >/dev/null) || status=$?
  if [ "$status" -ne "$want_status" ]; then fail "trainer $*: exit $status, expected $want_status"; return; fi
  if [ "$out" != "$want" ]; then
    fail "trainer $*: stderr was:"; printf '%s\n' "$out"; say "expected:"; printf '%s\n' "$want"; return
  fi
  pass "trainer $* -> $want"
}

cat > typo.yaml <<'YAML'
train:
  lrr: 0.01
YAML
expect_error 2 "error: typo.yaml:2:3: train.lrr: unknown key (did you mean 'train.lr'?)" -- config show typo.yaml

cat > section.yaml <<'YAML'
modle:
  hidden: 8
YAML
expect_error 2 "error: section.yaml:1:1: modle: unknown key (did you mean 'model'?)" -- config show section.yaml

cat > wrongsec.yaml <<'YAML'
model:
  lr: 0.1
YAML
expect_error 2 "error: wrongsec.yaml:2:3: model.lr: unknown key (did you mean 'train.lr'?)" -- config show wrongsec.yaml

cat > string.yaml <<'YAML'
train:
  batch_size: abc
  lr: "0.1"
YAML
expect_error 2 'error: string.yaml:2:15: train.batch_size: expected an integer, got "abc"
error: string.yaml:3:7: train.lr: expected a number, got the string "0.1"' -- config show string.yaml

cat > negative.yaml <<'YAML'
train:
  batch_size: -3
YAML
expect_error 2 "error: negative.yaml:2:15: train.batch_size: value -3 is out of range (allowed: 1..1048576)" -- config show negative.yaml

cat > float.yaml <<'YAML'
model:
  dropout: 1.5
  hidden: 12.5
YAML
expect_error 2 'error: float.yaml:2:12: model.dropout: value 1.5 is out of range (allowed: 0..0.9)
error: float.yaml:3:11: model.hidden: expected an integer, got "12.5"' -- config show float.yaml

cat > enum.yaml <<'YAML'
train:
  optimizer: adan
  reproducible: maybe
YAML
expect_error 2 'error: enum.yaml:2:14: train.optimizer: "adan" is not one of sgd|adam|adamw (did you mean '"'adam'"'?)
error: enum.yaml:3:17: train.reproducible: expected true or false, got "maybe"' -- config show enum.yaml

cat > list.yaml <<'YAML'
data:
  numeric_cols: engagement
  categorical_cols: [a, [b]]
YAML
expect_error 2 'error: list.yaml:2:17: data.numeric_cols: expected a list of strings like [a, b], got "engagement"
error: list.yaml:3:21: data.categorical_cols: list items must be plain strings' -- config show list.yaml

cat > null.yaml <<'YAML'
train:
  steps:
YAML
expect_error 2 "error: null.yaml:2:9: train.steps: missing value (expected an integer)" -- config show null.yaml

cat > dup.yaml <<'YAML'
train:
  steps: 10
  steps: 20
YAML
expect_error 2 "error: dup.yaml:3:3: train.steps: duplicate key (first set on line 2)" -- config show dup.yaml

printf 'train: [1, 2\n' > broken.yaml
expect_error 2 "error: broken.yaml:2:1: invalid YAML: did not find expected ',' or ']' while parsing a flow sequence" -- config show broken.yaml

printf -- '- a\n- b\n' > notmap.yaml
expect_error 2 "error: notmap.yaml:1:1: expected a mapping of sections (run:, data:, model:, ...)" -- config show notmap.yaml

printf 'train: 5\n' > scalarsec.yaml
expect_error 2 "error: scalarsec.yaml:1:1: train: is a section: expected a mapping of its keys" -- config show scalarsec.yaml

expect_error 2 "error: missing.yaml: cannot read experiment file (No such file or directory)" -- config show missing.yaml

# Overrides are checked the same way.
expect_error 2 "error: --set model.hiden=3: model.hiden: unknown key (did you mean 'model.hidden'?)" -- config show "$DEFAULT" --set model.hiden=3
expect_error 2 'error: --set train.lr=fast: train.lr: expected a number, got "fast"' -- config show "$DEFAULT" --set train.lr=fast
expect_error 2 "error: --set train=1: train: is a section, not a key" -- config show "$DEFAULT" --set train=1
expect_error 2 "error: --set train.lr: expected key=value, for example train.lr=3e-4" -- config show "$DEFAULT" --set train.lr
expect_error 2 "error: --set train.batch_size=30: train.batch_size: 30 is not a multiple of data.virtual_shards (16): each virtual shard feeds batch_size/virtual_shards lanes" -- config show "$DEFAULT" --set train.batch_size=30

# Rules across keys name the key and where it was set.
cat > rule.yaml <<'YAML'
data:
  source: csv
YAML
expect_error 2 "error: rule.yaml:2:11: data.source: csv needs data.train_path (with data.valid_path, data.test_path) or data.path" -- config show rule.yaml

# Command-line misuse.
expect_error 2 "error: trainer train: unknown option '--sett' (accepted: --set --resume)" -- train "$DEFAULT" --sett x=1
expect_error 2 "error: trainer train: missing the experiment file (EXP.yaml)" -- train
expect_error 2 "error: trainer config show: --set needs a value" -- config show "$DEFAULT" --set
expect_error 2 "error: unknown command 'trian' (run 'trainer --help')" -- trian

# Nothing is written by a run that fails on its config: no run directory, no shards.
cat > nowrite.yaml <<YAML
run:
  dir: $WORK/never
train:
  batch_size: -1
YAML
"$TRAINER" train nowrite.yaml >/dev/null 2>&1 && fail "train with a bad config succeeded"
[ -e "$WORK/never" ] && fail "a run with a bad config created its run directory" || pass "bad config writes nothing"
if command -v mpirun >/dev/null; then
  status=0; out=$(mpirun_n 2 "$TRAINER" train nowrite.yaml 2>&1) || status=$?
  [ "$status" -ne 0 ] || fail "2-rank train with a bad config exited 0"
  n=$(printf '%s\n' "$out" | grep -c "train.batch_size: value -1 is out of range" || true)
  [ "$n" -ge 1 ] && pass "2 ranks: bad config reported, exit $status" || fail "2 ranks: no config error shown: $out"
  [ -e "$WORK/never" ] && fail "2-rank run with a bad config created its run directory"
fi

# `config show` prints the resolved experiment, which loads back to the same hash.
"$TRAINER" config show "$DEFAULT" --set train.lr=3e-4 --set model.hidden=32 > resolved.yaml
grep -q "^  lr: 0.0003$" resolved.yaml && grep -q "^  hidden: 32$" resolved.yaml \
  && pass "config show applies overrides" || fail "config show did not apply overrides"
h1=$(grep "config hash" resolved.yaml); h2=$("$TRAINER" config show resolved.yaml | grep "config hash")
[ "$h1" = "$h2" ] && pass "resolved config round-trips ($h1)" || fail "round trip changed the hash: $h1 vs $h2"
finish
