#!/usr/bin/env bash
# Cross-builds the C library of onem2m-est and lays out a vendor package.
#
# usage: scripts/cross.sh TARGET [OUT_DIR]
#   TARGET   x86_64-pc-windows-gnu | aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf
#   OUT_DIR  where the package goes (default target/cross/pkg/TARGET; emptied first)
# Environment: ONEM2M_EST_FEATURES (default "": rustls + ring, no OpenSSL and no TLS-PSK;
# "psk-vendored" compiles OpenSSL from source into the library), CROSS_NICE (default 15).
#
# Windows (x86_64-pc-windows-gnu, built with mingw-w64):
#   bin/onem2m_est.dll           stripped; exports the mef_* C API only
#   lib/libonem2m_est.dll.a      import library for MinGW (gcc/clang: -L lib -lonem2m_est)
#   lib/onem2m_est.lib           import library for MSVC (link.exe), made by dlltool from the .def
#   lib/onem2m_est.def           exactly the mef_* exports
#   include/onem2m_est.h, README.txt
# Linux ARM (aarch64, armv7 hard-float):
#   lib/libonem2m_est.so.X.Y.Z   stripped, soname libonem2m_est.so.X, mef_* dynamic symbols only
#   lib/libonem2m_est.so.X, lib/libonem2m_est.so  symlinks
#   lib/libonem2m_est.a, lib/pkgconfig/onem2m_est{,-shared}.pc (relocatable), include/onem2m_est.h
#
# Installs what it needs with apt-get when run as root (Debian's rustc-web 1.96, rust-web-src,
# the target's gcc and binutils, wine64 / qemu-user for scripts/cross-test.sh). Builds with
# `cargo -Zbuild-std` in target/cross/TARGET (README, "Platforms"). Exits non-zero if the
# build fails or the package does not export exactly the C API of include/onem2m_est.h.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/cross-env.sh
source scripts/lib/cross-env.sh

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 TARGET [OUT_DIR]" >&2
  exit 2
fi
cross_env "$1"
out=${2:-$CROSS_TARGET_DIR/../pkg/$CROSS_TARGET}
features=${ONEM2M_EST_FEATURES-}
cross_install_packages

echo "== building onem2m-est for $CROSS_TARGET (features: ${features:-default})"
cross_cargo build --release -p onem2m-est-ffi --features "$features"
built=$CROSS_TARGET_DIR/$CROSS_TARGET/release

version=$(sed -n 's/^version = "\([0-9][0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
major=${version%%.*}
rm -rf "$out"
mkdir -p "$out/include" "$out/lib"
out=$(cd "$out" && pwd)
install -m 0644 include/onem2m_est.h "$out/include/onem2m_est.h"

# The C API: every function the header declares (cbindgen writes one `mef_x(` per declaration).
api=$(grep -o '\bmef_[a-z0-9_]*(' include/onem2m_est.h | tr -d '(' | sort -u)
check_exports() {
  local what=$1 exports=$2
  if [ "$exports" != "$api" ]; then
    echo "FAIL: $what does not export exactly the C API of include/onem2m_est.h:" >&2
    diff <(echo "$api") <(echo "$exports") >&2 || true
    exit 1
  fi
  echo "== $what: $(echo "$exports" | wc -l) exports, exactly the mef_* C API"
}

case $CROSS_TARGET in
  *-windows-*)
    mkdir -p "$out/bin"
    install -m 0755 "$built/onem2m_est.dll" "$out/bin/onem2m_est.dll"
    "${CROSS_TOOL_PREFIX}strip" --strip-unneeded "$out/bin/onem2m_est.dll"
    install -m 0644 "$built/libonem2m_est.dll.a" "$out/lib/libonem2m_est.dll.a"
    # The DLL's export table (the names after "[Ordinal/Name Pointer] Table").
    exports=$("${CROSS_TOOL_PREFIX}objdump" -p "$out/bin/onem2m_est.dll" |
      awk '/^\[Ordinal\/Name Pointer\] Table/ {t = 1; next} t && /^\t\[/ {print $NF} t && /^$/ {t = 0}' |
      sort)
    check_exports "onem2m_est.dll" "$exports"
    { echo "LIBRARY onem2m_est.dll"; echo "EXPORTS"; echo "$api" | sed 's/^/    /'; } >"$out/lib/onem2m_est.def"
    # MSVC import library: link.exe reads the short-import format dlltool writes.
    "${CROSS_TOOL_PREFIX}dlltool" -m i386:x86-64 -d "$out/lib/onem2m_est.def" -D onem2m_est.dll \
      -l "$out/lib/onem2m_est.lib"
    check_exports "onem2m_est.lib" "$("${CROSS_TOOL_PREFIX}nm" "$out/lib/onem2m_est.lib" |
      awk '$2 == "T" && $3 ~ /^mef_/ {print $3}' | sort -u)"
    imports=$("${CROSS_TOOL_PREFIX}objdump" -p "$out/bin/onem2m_est.dll" | sed -n 's/^\tDLL Name: //p' | tr '\n' ' ')
    cat >"$out/README.txt" <<README
onem2m_est $version for Windows x64 (built with mingw-w64, target $CROSS_TARGET)
features: ${features:-default (rustls + ring; no TLS-PSK)}

bin/onem2m_est.dll        the library; ship it next to your program
lib/libonem2m_est.dll.a   import library for MinGW:  gcc app.c -Iinclude -Llib -lonem2m_est
lib/onem2m_est.lib        import library for MSVC:   cl app.c /Iinclude lib\\onem2m_est.lib
lib/onem2m_est.def        the exports (the mef_* C API only)
include/onem2m_est.h      the C API (docs/C-API.md in the source tree)

The DLL imports only system DLLs: $imports
It needs Windows 10 or later (the Rust standard library calls ProcessPrng in
bcryptprimitives.dll). The built-in file store (mef_config_set_store_dir) installs
credentials all or nothing: a new generation directory, then a pointer file "current"
replaced in one rename; protect the store directory with an ACL (Windows has no mode 0600).
README
    ;;
  *)
    so=libonem2m_est.so
    install -m 0755 "$built/$so" "$out/lib/$so.$version"
    "${CROSS_TOOL_PREFIX}strip" --strip-unneeded "$out/lib/$so.$version"
    ln -sfn "$so.$version" "$out/lib/$so.$major"
    ln -sfn "$so.$major" "$out/lib/$so"
    install -m 0644 "$built/libonem2m_est.a" "$out/lib/libonem2m_est.a"
    check_exports "$so" "$("${CROSS_TOOL_PREFIX}nm" -D --defined-only "$out/lib/$so.$version" | awk '{print $3}' | sort)"
    "${CROSS_TOOL_PREFIX}readelf" -d "$out/lib/$so.$version" | grep -F "[$so.$major]" >/dev/null ||
      { echo "FAIL: $so has no soname $so.$major" >&2; exit 1; }
    mkdir -p "$out/lib/pkgconfig"
    # Relocatable: the package can be unpacked anywhere (pkg-config knows pcfiledir). Two
    # modules, as scripts/install.sh writes them: `pkg-config --static --libs onem2m_est` links
    # the archive (-Bstatic: the .so beside it would win for -lonem2m_est), plain `--libs` the
    # shared library (onem2m_est-shared, --as-needed, so a static link records no NEEDED).
    cat >"$out/lib/pkgconfig/onem2m_est.pc" <<PC
prefix=\${pcfiledir}/../..
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: onem2m_est
Description: oneM2M Certificate Provisioning (TS-0003 8.3.6) over EST (RFC 7030), $CROSS_TARGET
Version: $version
Requires: onem2m_est-shared = $version
Cflags: -I\${includedir}
Libs:
Libs.private: -L\${libdir} -Wl,--push-state,-Bstatic,-lonem2m_est,--pop-state -lpthread -ldl -lm
PC
    cat >"$out/lib/pkgconfig/onem2m_est-shared.pc" <<PC
prefix=\${pcfiledir}/../..
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib

Name: onem2m_est-shared
Description: oneM2M Certificate Provisioning over EST, the shared library (use onem2m_est), $CROSS_TARGET
Version: $version
Libs: -L\${libdir} -Wl,--push-state,--as-needed,-lonem2m_est,--pop-state
PC
    ;;
esac
echo "== package for $CROSS_TARGET in $out:"
(cd "$out" && find . -type f -o -type l | sort | while read -r f; do
  printf '   %-36s %s\n' "$f" "$(stat -c %s "$f" 2>/dev/null) bytes"
done)
