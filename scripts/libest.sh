#!/usr/bin/env bash
# Builds Cisco libest's `estserver` and `estclient` (the third-party EST peer of tests/libest.rs)
# from its source tarball and patches, into a cache folder keyed by their hash, and prints that
# folder (its `bin/estserver`, `bin/estclient`, and `example/server`, the CA folder the test
# copies) on the last line of stdout.
#
# Usage: scripts/libest.sh [SOURCE_DIR]
#   SOURCE_DIR (or $LIBEST_SRC) holds libest-*.tar.gz and the *.patch files (NOTES.md there has
#   the build facts); default ../shared/third-party/libest relative to the repository root.
#   $LIBEST_CACHE overrides the cache root (default target/libest).
# Exit status: 0 built or cached; 3 no source folder (the message says to set LIBEST_SRC);
# 1 any other failure.
# Nothing of libest goes into the repository: the build lives under target/ (git-ignored).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="${1:-${LIBEST_SRC:-$root/../shared/third-party/libest}}"
if [ ! -d "$src" ]; then
  # Exit 3: the source is missing (the test says so instead of "could not be built").
  if [ -z "${1:-}" ] && [ -z "${LIBEST_SRC:-}" ]; then
    echo "libest.sh: no libest source at $(realpath -m "$src"): this checkout is not beside" \
      "shared/; set LIBEST_SRC to the folder holding libest-*.tar.gz and its patches" \
      "(shared/third-party/libest), e.g. LIBEST_SRC=/path/to/shared/third-party/libest" >&2
  else
    echo "libest.sh: no libest source folder at $src (the argument or LIBEST_SRC must name" \
      "the folder holding libest-*.tar.gz and its patches)" >&2
  fi
  exit 3
fi
src="$(cd "$src" && pwd)"

shopt -s nullglob
tarballs=("$src"/libest-*.tar.gz)
patches=("$src"/*.patch)
shopt -u nullglob
if [ ${#tarballs[@]} -ne 1 ]; then
  echo "libest.sh: expected exactly one libest-*.tar.gz in $src, found ${#tarballs[@]}" >&2
  exit 1
fi

# The cache key covers the tarball and every patch (sorted by name, the order they apply in).
hash="$(cat "${tarballs[0]}" "${patches[@]}" | sha256sum | cut -c1-16)"
cache_root="${LIBEST_CACHE:-$root/target/libest}"
out="$cache_root/$hash"
# `.complete` is written last: a half-finished build (interrupted, failed) is redone.
if [ -f "$out/.complete" ] && [ -x "$out/bin/estserver" ] && [ -x "$out/bin/estclient" ]; then
  echo "libest.sh: cached build $out" >&2
  echo "$out"
  exit 0
fi

# Build dependencies (NOTES.md), installed when we can.
packages=()
for p in build-essential autoconf automake libtool pkg-config libssl-dev openssl; do
  dpkg -s "$p" >/dev/null 2>&1 || packages+=("$p")
done
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "libest.sh: installing ${packages[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  else
    echo "libest.sh: warning: missing ${packages[*]} (needs root and apt-get to install)" >&2
  fi
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/libest-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tar xzf "${tarballs[0]}" -C "$work"
dir=("$work"/libest-*)
cd "${dir[0]}"
for p in "${patches[@]}"; do
  patch -p1 --quiet <"$p"
done
# The installed tree has only the binaries and library; the tests also need the example CA
# folder, copied before the build leaves its objects there.
rm -rf "$out"
mkdir -p "$out/example"
cp -R example/server "$out/example/server"
# Installed straight into the cache folder (the binaries find libest.so there by their rpath).
{
  ./configure --prefix="$out" --with-ssl-dir=/usr --disable-safec \
    CFLAGS="-O2 -Wno-error -Wno-deprecated-declarations"
  make -j2
  make install
} >"$work/build.log" 2>&1 || {
  tail -n 40 "$work/build.log" >&2
  echo "libest.sh: build failed (log above)" >&2
  exit 1
}
touch "$out/.complete"
echo "libest.sh: built $out" >&2
echo "$out"
