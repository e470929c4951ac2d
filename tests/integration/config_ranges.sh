# config_ranges.sh: every numeric key of the schema refuses values outside its range.
#
# Generated from `trainer config schema`, so a key added later is covered too: for each int
# or float key with a range, the value just below its minimum and just above its maximum
# (ints: min - 1, max + 1; floats: min - 1 or min / 10, max * 2 + 1) must exit 2 with a
# message naming the key and "out of range", and the bounds themselves must be accepted
# (unless a cross-key rule of the default experiment refuses them, which the message names).
. "$(dirname "$0")/../lib/lib.sh"
DEFAULT=$REPO_DIR/configs/default.yaml
"$TRAINER" config schema > schema.md
awk -F'|' '$3 ~ /^ *(int|float) *$/ {
  gsub(/[` ]/, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $5); print $2, $3, $5 }' schema.md > ranges.txt
n_keys=$(wc -l < ranges.txt)
[ "$n_keys" -ge 30 ] || fail "only $n_keys numeric keys found in the schema"
checked=0
refused() { # KEY VALUE: exit 2 naming the key, "out of range"
  local status=0
  "$TRAINER" config show "$DEFAULT" --set "$1=$2" > out.txt 2> err.txt || status=$?
  if [ "$status" -eq 2 ] && grep -q "$1" err.txt && grep -q "out of range" err.txt; then
    checked=$((checked + 1))
  else
    fail "$1=$2: exit $status, want 2 with 'out of range' naming the key: $(head -c 300 err.txt)"
  fi
}
accepted() { # KEY VALUE: exit 0, or a cross-key refusal that names another rule (not range)
  local status=0
  "$TRAINER" config show "$DEFAULT" --set "$1=$2" > out.txt 2> err.txt || status=$?
  if [ "$status" -ne 0 ] && grep -q "out of range" err.txt; then
    fail "$1=$2 (a bound) refused as out of range: $(head -c 300 err.txt)"
  fi
}
while read -r key type allowed; do
  lo=; hi=
  case $allowed in
    *..*) lo=${allowed%%..*}; hi=${allowed##*..} ;;
    ">="*) lo=${allowed#>=} ;;
    *) continue ;;
  esac
  if [ "$type" = int ]; then
    refused "$key" $((lo - 1)); accepted "$key" "$lo"
    if [ -n "$hi" ]; then refused "$key" $((hi + 1)); accepted "$key" "$hi"; fi
  else
    below=$(awk -v x="$lo" 'BEGIN { printf "%.17g", (x > 0 ? x / 10 : x - 1) }')
    refused "$key" "$below"; accepted "$key" "$lo"
    if [ -n "$hi" ]; then
      refused "$key" "$(awk -v x="$hi" 'BEGIN { printf "%.17g", (x * 2 + 1) }')"; accepted "$key" "$hi"
    fi
  fi
done < ranges.txt
[ "$checked" -ge 60 ] && pass "$checked out-of-range values refused with exit 2 over $n_keys numeric keys" \
  || fail "only $checked out-of-range checks ran"
finish
