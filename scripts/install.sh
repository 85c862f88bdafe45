#!/usr/bin/env bash
# Installs the C library of onem2m-est under PREFIX:
#   PREFIX/lib/libonem2m_est.so.X.Y.Z, .so.X (the soname) and .so (symlinks)
#   PREFIX/lib/libonem2m_est.a
#   PREFIX/include/onem2m_est.h
#   PREFIX/lib/pkgconfig/onem2m_est.pc         (the shared library)
#   PREFIX/lib/pkgconfig/onem2m_est-static.pc  (the static library and what it needs)
# usage: scripts/install.sh PREFIX      (e.g. /usr/local, or a staging directory)
# Then: cc app.c $(pkg-config --cflags --libs onem2m_est)                    (shared)
#       cc app.c $(pkg-config --cflags --libs --static onem2m_est-static)    (static)
# Run time (shared): the dynamic loader must find libonem2m_est.so.0. As root with a PREFIX
# the loader searches (/usr/local, /usr), this script runs ldconfig; otherwise it says what to
# do: link with -Wl,-rpath,PREFIX/lib, or add PREFIX/lib to /etc/ld.so.conf.d/ and run
# ldconfig, or set LD_LIBRARY_PATH=PREFIX/lib.
# Builds with `cargo build --release -p onem2m-est-ffi --features psk` (set CARGO_BUILD_FLAGS, e.g.
# --locked): the installed library supports the PPSK-based RSPF (TLS-PSK, mef_config_set_psk)
# through the system OpenSSL (libssl.so.3 at run time; libssl-dev and pkg-config to build).
# ONEM2M_EST_FEATURES overrides the feature list: `psk-vendored` compiles OpenSSL from source
# and links it into the library (self-contained .so/.dll/.a; needs a C compiler and perl),
# `""` builds without TLS-PSK (no OpenSSL; the PSK functions then fail with
# MEF_ERR_INVALID_ARGUMENT, "no TLS-PSK support").
# cargo-c users can run `cargo cinstall --release -p onem2m-est-ffi --prefix PREFIX` instead
# ([package.metadata.capi] in ffi/Cargo.toml).
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 PREFIX" >&2
  exit 2
fi
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."

features=${ONEM2M_EST_FEATURES-psk}
# Where cargo puts what it builds (CARGO_TARGET_DIR when set); the build below and the copies
# from it run back to back, so the installed files are the ones this build made.
target_dir=${CARGO_TARGET_DIR:-target}
# shellcheck disable=SC2086 # CARGO_BUILD_FLAGS is a list of flags
cargo build --release -p onem2m-est-ffi --features "$features" ${CARGO_BUILD_FLAGS:-}
# A static link of a build with the system OpenSSL needs libssl and libcrypto too; the vendored
# OpenSSL is inside libonem2m_est.a already.
openssl_private=
case ",${features// /,}," in
  *,psk-vendored,*) ;;
  *,psk,*) openssl_private="-lssl -lcrypto " ;;
esac

version=$(sed -n 's/^version = "\([0-9][0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || { echo "$0: no version in Cargo.toml" >&2; exit 1; }
major=${version%%.*}
libdir=$prefix/lib
includedir=$prefix/include
so=libonem2m_est.so

case "$(uname -s)" in
  Linux) ;;
  *) echo "$0: only Linux (ELF, soname) is supported by this script; see README (C API, packaging)" >&2; exit 1 ;;
esac

install -d "$libdir" "$includedir" "$libdir/pkgconfig"
install -m 0755 "$target_dir/release/$so" "$libdir/$so.$version"
# Ship it stripped (BENCHMARKS.md, section 4): the symbol table and debug sections are not needed
# to link or run; the dynamic symbols (the mef_* API) stay. ONEM2M_EST_NO_STRIP=1 keeps them.
if [ -z "${ONEM2M_EST_NO_STRIP:-}" ] && command -v strip >/dev/null 2>&1; then
  strip --strip-unneeded "$libdir/$so.$version"
fi
ln -sfn "$so.$version" "$libdir/$so.$major"
ln -sfn "$so.$major" "$libdir/$so"
install -m 0644 "$target_dir/release/libonem2m_est.a" "$libdir/libonem2m_est.a"
install -m 0644 include/onem2m_est.h "$includedir/onem2m_est.h"

cat >"$libdir/pkgconfig/onem2m_est.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: onem2m_est
Description: oneM2M Certificate Provisioning (TS-0003 8.3.6) over EST (RFC 7030)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -lonem2m_est
Libs.private: ${openssl_private}-lpthread -ldl -lm
PC

# pkg-config cannot make `-lonem2m_est` pick the archive (the linker prefers the .so beside
# it), so static linking has its own module naming the archive itself.
cat >"$libdir/pkgconfig/onem2m_est-static.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: onem2m_est-static
Description: oneM2M Certificate Provisioning over EST, static library
Version: $version
Cflags: -I\${includedir}
Libs: \${libdir}/libonem2m_est.a
Libs.private: ${openssl_private}-lpthread -ldl -lm
PC

echo "installed onem2m_est $version (features: ${features:-none}) in $prefix"

# The run-time path of the shared library.
case "$libdir" in
  /usr/local/lib | /usr/lib | /usr/local/lib64 | /usr/lib64)
    if [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then
      ldconfig
      echo "ran ldconfig: programs find $so.$major in $libdir"
    else
      echo "run ldconfig as root so that programs find $so.$major in $libdir"
    fi
    ;;
  *)
    echo "$libdir is not on the dynamic loader's default path; to run programs linked with"
    echo "it: link with -Wl,-rpath,$libdir, or add $libdir to /etc/ld.so.conf.d/ and run"
    echo "ldconfig, or set LD_LIBRARY_PATH=$libdir"
    ;;
esac
