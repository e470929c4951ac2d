#!/usr/bin/env bash
# deps.sh: carry the build and run dependencies of `trainer` (OpenBLAS, Open MPI, libyaml,
# protobuf-c, pkg-config) to an x86-64 machine that lacks them and cannot download them.
#
#   tests/bench/deps.sh fetch  [DIR]   here (Debian bookworm, apt works): download the .deb files
#                                      into DIR/debs (default DIR: out/deps, which git ignores)
#   tests/bench/deps.sh unpack [DIR]   there: dpkg -x them into DIR/prefix (no root, nothing
#                                      outside DIR changes), point the pkg-config files at it and
#                                      write DIR/env.sh
#   . DIR/env.sh                       there: PATH, LD_LIBRARY_PATH, PKG_CONFIG_PATH, OPAL_PREFIX,
#                                      PMIX_PREFIX for the unpacked tree, and TRAINER_CMAKE_ARGS for
#                                      `cmake -S . -B build $TRAINER_CMAKE_ARGS`
#   tests/bench/deps.sh check  [DIR]   there, after sourcing: what the build still lacks
#
# The packages are Debian 12's (glibc 2.36): they run on any x86-64 Linux with glibc >= 2.36
# (Debian 12+, Ubuntu 23.04+). The compiler (gcc or cc) and cmake >= 3.18 are NOT carried: the
# target must have them. Neither is python3-torch: only tests/bench/speed_vs_torch.sh uses it
# (an optional benchmark dependency; no test needs it). Libraries a normal system already has
# (libgfortran, libnuma, libudev, libatomic, libltdl) are used from the system when present,
# else from DIR/fallback.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cmd=${1:-}
DIR=$(mkdir -p "${2:-$REPO/out/deps}" && cd "${2:-$REPO/out/deps}" && pwd)

# What the build and a multi-rank run need, one dependency level at a time (apt-cache depends),
# without compilers, Fortran, InfiniBand development files or X11.
MAIN_DEBS="libopenblas0 libopenblas0-pthread libopenblas-dev libopenblas-pthread-dev
  libyaml-0-2 libyaml-dev libprotobuf-c1 libprotobuf-c-dev protobuf-c-compiler libprotoc32 libprotobuf32
  libopenmpi3 libopenmpi-dev openmpi-bin openmpi-common libpmix2 libhwloc15 libevent-core-2.1-7
  libevent-pthreads-2.1-7 libfabric1 libucx0 libibverbs1 librdmacm1 libnl-3-200 libnl-route-3-200
  libpsm2-2 libpsm-infinipath1 libmunge2 pkgconf pkgconf-bin libpkgconf3"
FALLBACK_DEBS="libgfortran5 libquadmath0 libatomic1 libudev1 libnuma1 libltdl7"
ARCH_LIB=usr/lib/x86_64-linux-gnu

die() { printf 'deps.sh: error: %s\n' "$*" >&2; exit 1; }

case "$cmd" in
fetch)
  command -v apt-get >/dev/null || die "fetch needs apt-get (run it on the Debian machine)"
  mkdir -p "$DIR/debs/main" "$DIR/debs/fallback"
  (cd "$DIR/debs/main" && rm -f ./*.deb && apt-get download $MAIN_DEBS)
  (cd "$DIR/debs/fallback" && rm -f ./*.deb && apt-get download $FALLBACK_DEBS)
  du -sh "$DIR/debs"
  printf 'fetched into %s; carry that folder and run: tests/bench/deps.sh unpack %s\n' "$DIR" "$DIR"
  ;;
unpack)
  [ "$(uname -m)" = x86_64 ] || die "these packages are for x86-64, this is $(uname -m)"
  ls "$DIR"/debs/main/*.deb >/dev/null 2>&1 || die "no .deb files in $DIR/debs/main: run 'deps.sh fetch' where apt works, then carry $DIR"
  command -v dpkg-deb >/dev/null || command -v ar >/dev/null || die "need dpkg-deb or ar (binutils) to unpack .deb files"
  P=$DIR/prefix F=$DIR/fallback
  rm -rf "$P" "$F" "$DIR/fallback-lib" "$DIR/bin"
  mkdir -p "$P" "$F" "$DIR/fallback-lib" "$DIR/bin"
  unpack_deb() { # deb dest: dpkg -x, or ar + tar where dpkg is missing
    if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" "$2"; return; fi
    local t; t=$(mktemp -d)
    (cd "$t" && ar x "$1" && tar -xf data.tar.* -C "$2")
    rm -rf "$t"
  }
  for f in "$DIR"/debs/main/*.deb; do unpack_deb "$f" "$P"; done
  for f in "$DIR"/debs/fallback/*.deb; do unpack_deb "$f" "$F"; done
  # pkg-config files name /usr: point them at the prefix.
  find "$P" -name '*.pc' -type f -print0 | xargs -0 sed -i -E "s#(^|=|-[IL])/usr(/|$)#\1$P/usr\2#g"
  # The generic names Debian sets up with update-alternatives (mpicc, mpirun, pkg-config).
  for n in mpicc mpirun mpiexec ompi_info orted; do
    t=$P/usr/bin/$n.openmpi; [ -e "$t" ] || t=$P/usr/bin/$n
    [ -e "$t" ] && ln -sf "$t" "$DIR/bin/$n"
  done
  ln -sf "$P/usr/bin/pkgconf" "$DIR/bin/pkg-config"
  # Fallback libraries only where the system lacks the soname.
  have=$(/sbin/ldconfig -p 2>/dev/null || true)
  for so in "$F/$ARCH_LIB"/*.so.*; do
    name=$(basename "$so")
    case "$name" in *.so.[0-9]|*.so.[0-9][0-9]) ;; *) continue ;; esac # sonames only
    if ! grep -q "^[[:space:]]*$name " <<<"$have"; then
      ln -sf "$so" "$DIR/fallback-lib/$name"
      echo "deps.sh: using the carried $name (the system has none)"
    fi
  done
  LIBS="$P/$ARCH_LIB:$P/$ARCH_LIB/openblas-pthread:$P/$ARCH_LIB/openmpi/lib:$P/$ARCH_LIB/pmix2/lib:$DIR/fallback-lib"
  cat > "$DIR/env.sh" <<EOF
# Written by tests/bench/deps.sh unpack: source it before building or running trainer.
export PATH="$DIR/bin:$P/usr/bin:\$PATH"
export LD_LIBRARY_PATH="$LIBS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export PKG_CONFIG_PATH="$P/$ARCH_LIB/pkgconfig:$P/$ARCH_LIB/openblas-pthread/pkgconfig:$P/usr/share/pkgconfig"
export PKG_CONFIG_LIBDIR="\$PKG_CONFIG_PATH" # the carried packages only, never the system's
# Open MPI and PMIx were built for /usr: these relocate their plugins, help files and wrappers.
export OPAL_PREFIX="$P/usr" PMIX_PREFIX="$P/$ARCH_LIB/pmix2"
export PMIX_PKGLIBDIR="$P/$ARCH_LIB/pmix2/lib/pmix" PMIX_PKGDATADIR="$P/$ARCH_LIB/pmix2/share/pmix"
export OMPI_MCA_mca_base_component_show_load_errors=0
export TRAINER_CMAKE_ARGS="-DMPI_C_COMPILER=$DIR/bin/mpicc -DPKG_CONFIG_EXECUTABLE=$P/usr/bin/pkgconf -DPROTOC_C=$P/usr/bin/protoc-c -DCMAKE_BUILD_RPATH=$LIBS"
EOF
  printf 'unpacked into %s; now: . %s/env.sh\n' "$P" "$DIR"
  ;;
check)
  miss=0
  for t in cmake pkg-config mpicc mpirun protoc-c; do
    command -v "$t" >/dev/null || { echo "missing: $t"; miss=1; }
  done
  command -v cc >/dev/null || command -v gcc >/dev/null || { echo "missing: a C compiler (cc/gcc)"; miss=1; }
  for m in openblas yaml-0.1 libprotobuf-c; do
    pkg-config --exists "$m" 2>/dev/null || { echo "missing: pkg-config module $m"; miss=1; }
  done
  if command -v protoc-c >/dev/null && ! protoc-c --version >/dev/null 2>&1; then
    echo "broken: protoc-c does not start:"; protoc-c --version 2>&1 | head -3; miss=1
  fi
  if command -v mpirun >/dev/null; then
    v=$(mpirun --version 2>&1 | head -1) || true
    echo "mpirun: $v"
  fi
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null || echo "glibc ?")
  echo "$glibc (the carried packages need glibc >= 2.36)"
  [ "$miss" = 0 ] && echo "deps.sh check: everything the build needs is there" || exit 1
  ;;
*)
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
