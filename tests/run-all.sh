#!/usr/bin/env bash
# run-all.sh: the whole test suite, as CI runs it (.ci/run calls exactly this).
#
#   bash tests/run-all.sh
#
# Installs what is missing, then builds and runs every CTest test in two configurations:
# Release with warnings as errors (build/), and AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/). Multi-rank tests run through mpirun; Slurm tests start a local Slurm.
set -euo pipefail
cd "$(dirname "$0")/.."
bash cluster/install-deps.sh --browser   # also headless Chromium, for the `browser` tests
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
for config in release asan; do
  dir=build; flags=(-DCMAKE_BUILD_TYPE=Release)
  if [ "$config" = asan ]; then dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRAINER_SANITIZE=ON); fi
  echo "== $config: configure, build, test ($dir)"
  cmake -S . -B "$dir" -DTRAINER_WERROR=ON "${flags[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" --timeout 600
done
echo "== all tests passed in both configurations ($(( $(date +%s) - start )) s)"
