#!/usr/bin/env bash
# Builds the platform wheel of the Python binding, with the shared library inside, so that
# `pip install onem2m_est-*.whl` needs no compiler and no Rust toolchain (issue #14):
#   OUT_DIR/onem2m_est-VERSION-py3-none-linux_x86_64.whl  (onem2m_est/libonem2m_est.so.0 inside)
# usage: scripts/python-wheel.sh OUT_DIR
# The library is the one scripts/install.sh builds (release, stripped, TLS-PSK through the system
# OpenSSL: the wheel needs libssl.so.3 at run time, as Debian and Ubuntu have it).
# ONEM2M_EST_WHEEL_LIB=PATH bundles that library file instead (no build).
set -euo pipefail
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."

work=$(mktemp -d "${TMPDIR:-/tmp}/onem2m-est-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
lib=${ONEM2M_EST_WHEEL_LIB:-}
if [ -z "$lib" ]; then
  CARGO_BUILD_FLAGS=${CARGO_BUILD_FLAGS:---locked} scripts/install.sh "$work/prefix" >/dev/null
  lib=$work/prefix/lib/libonem2m_est.so.0
fi
[ -f "$lib" ] || { echo "$0: no library at $lib" >&2; exit 1; }

# Build from a copy: the source tree stays without a bundled library (python/setup.py refuses
# to build a wheel without one, so `pip install ./python` cannot make a package that cannot
# find its library).
mkdir -p "$work/src"
cp -r python/pyproject.toml python/setup.py python/README.md python/onem2m_est "$work/src/"
cp -L "$lib" "$work/src/onem2m_est/libonem2m_est.so.0"
python3 -m pip wheel --quiet --no-deps --wheel-dir "$out" "$work/src"
ls "$out"/onem2m_est-*.whl
