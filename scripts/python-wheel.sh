#!/usr/bin/env bash
# Builds the platform wheel of the Python binding, with the shared library inside, so that
# `pip install onem2m_est-*.whl` needs no compiler and no Rust toolchain (issue #14):
#   OUT_DIR/onem2m_est-VERSION-py3-none-linux_x86_64.whl  (onem2m_est/libonem2m_est.so.0 inside)
# usage: scripts/python-wheel.sh OUT_DIR
# The library is the one scripts/install.sh builds (release, stripped, TLS-PSK through the system
# OpenSSL: the wheel needs libssl.so.3 at run time, as Debian and Ubuntu have it).
# ONEM2M_EST_WHEEL_LIB=PATH bundles that library file instead (no build).
set -euo pipefail
# shellcheck source=scripts/lib/out-dir.sh
source "$(dirname "$0")/lib/out-dir.sh"
out=$(out_dir OUT_DIR "$@")
cd "$(dirname "$0")/.."

work=$(mktemp -d "${TMPDIR:-/tmp}/onem2m-est-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
lib=${ONEM2M_EST_WHEEL_LIB:-}
if [ -z "$lib" ]; then
  CARGO_BUILD_FLAGS=${CARGO_BUILD_FLAGS:---locked} scripts/install.sh "$work/prefix" >/dev/null
  lib=$work/prefix/lib/libonem2m_est.so.0
fi
[ -f "$lib" ] || { echo "$0: no library at $lib" >&2; exit 1; }

# The platform the wheel needs, as docs/PYTHON.md states it: x86-64 Linux with glibc 2.34 or
# later, OpenSSL 3 (libssl.so.3, libcrypto.so.3) and libgcc_s.so.1, nothing else. (auditwheel
# show: manylinux_2_34 but for OpenSSL 3, which no manylinux policy allows, so the tag stays
# linux_x86_64.) A library that needs more fails here, so that the documentation changes with it.
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for n in $needed; do
  case $n in
    ld-linux-x86-64.so.2 | libc.so.6 | libgcc_s.so.1 | libssl.so.3 | libcrypto.so.3) ;;
    *) echo "$0: the library needs $n, which docs/PYTHON.md does not list" >&2; exit 1 ;;
  esac
done
glibc=$(readelf -V "$lib" | sed -n 's/.*Name: GLIBC_\([0-9.]*\).*/\1/p' | sort -V | tail -n 1)
if [ "$(printf '%s\n' "$glibc" 2.34 | sort -V | tail -n 1)" != 2.34 ]; then
  echo "$0: the library needs GLIBC_$glibc, docs/PYTHON.md says 2.34" >&2
  exit 1
fi

# Build from a copy: the source tree stays without a bundled library (python/setup.py refuses
# to build a wheel without one, so `pip install ./python` cannot make a package that cannot
# find its library).
mkdir -p "$work/src"
cp -r python/pyproject.toml python/setup.py python/README.md python/onem2m_est "$work/src/"
cp -L "$lib" "$work/src/onem2m_est/libonem2m_est.so.0"
python3 -m pip wheel --quiet --no-deps --wheel-dir "$out" "$work/src"
wheel=$(ls "$out"/onem2m_est-*.whl)
# The library sits in platlib (the wheel's root, Root-Is-Purelib: false), where installers and
# auditwheel expect a binary, not in .data/purelib.
python3 - "$wheel" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
if "onem2m_est/libonem2m_est.so.0" not in names:
    raise SystemExit(f"python-wheel.sh: the library is not in the wheel's platlib: {names}")
PY
echo "$wheel"
