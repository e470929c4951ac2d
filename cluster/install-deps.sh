#!/usr/bin/env bash
# install-deps.sh: installs what building, testing and running the trainer needs on a
# Debian/Ubuntu machine, and only what is missing. Safe to run again; no stdin needed.
#
#   bash cluster/install-deps.sh            # build + run + tests
#   bash cluster/install-deps.sh --fuzz     # clang with libFuzzer, for tests/fuzz/run.sh
#   bash cluster/install-deps.sh --browser  # also a headless Chromium (the `browser` tests of
#                                           # `trainer report`)
#
# Slurm (for the batch-path tests) is installed by cluster/slurm-local.sh when needed.
set -euo pipefail

PKGS=(gcc make libc6-dev cmake pkg-config
      libopenmpi-dev openmpi-bin libopenblas-dev libprotobuf-c-dev protobuf-c-compiler libyaml-dev
      zlib1g-dev iproute2 python3)  # zlib: .csv.gz inputs; iproute2: the multihost test; python3:
                                    # tests compare outputs with it
if [ "${1:-}" = --fuzz ]; then PKGS=(clang); fi # Debian's clang carries libFuzzer's runtime
if [ "${1:-}" = "--browser" ]; then
  # Debian's headless Chromium; fonts so that text in screenshots and PDFs renders.
  PKGS+=(chromium-headless-shell fonts-dejavu-core)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else
    echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Another apt may hold the lock for a while on a fresh machine (unattended upgrades).
for attempt in 1 2 3 4 5; do
  if "${SUDO[@]}" apt-get update -q >/dev/null && \
     "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null; then
    exit 0
  fi
  echo "install-deps: apt-get failed (attempt $attempt); retrying in 10 s" >&2
  sleep 10
done
echo "install-deps: could not install ${missing[*]}" >&2
exit 1
