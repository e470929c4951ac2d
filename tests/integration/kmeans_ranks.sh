# kmeans_ranks.sh: test_kmeans on 1, 2 and 4 ranks: every check passes and the digest of
# labels, distances and centroids is the same (the clustering is identical on any P).
set -uo pipefail
BIN=$1
fails=0
for n in 1 2 4; do
  out=$(timeout -k 5 100 mpirun --oversubscribe --bind-to none -np "$n" "$BIN" 2>&1) || { echo "$out"; echo "FAIL: -np $n"; fails=1; continue; }
  d=$(grep '^digest' <<< "$out")
  echo "-np $n: $d"
  [ -n "$d" ] || { echo "$out"; fails=1; }
  if [ "$n" -eq 1 ]; then ref=$d; elif [ "$d" != "$ref" ]; then echo "FAIL: -np $n digest differs from -np 1"; fails=1; fi
done
[ "$fails" -eq 0 ] && echo "all checks passed"
exit "$fails"
