#!/usr/bin/env bash
# Installs the C library of onem2m-est under PREFIX:
#   PREFIX/lib/libonem2m_est.so.X.Y.Z, .so.X (the soname) and .so (symlinks)
#   PREFIX/lib/libonem2m_est.a
#   PREFIX/include/onem2m_est.h
#   PREFIX/lib/pkgconfig/onem2m_est.pc         (the module to use; --static: the archive)
#   PREFIX/lib/pkgconfig/onem2m_est-shared.pc  (the shared library; onem2m_est.pc requires it)
# usage: scripts/install.sh PREFIX      (e.g. /usr/local, or a staging directory)
# Then: cc app.c $(pkg-config --cflags --libs onem2m_est)            (libonem2m_est.so)
#       cc app.c $(pkg-config --cflags --libs --static onem2m_est)   (libonem2m_est.a; OpenSSL
#                                                                    and libc stay shared)
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

# shellcheck source=scripts/lib/out-dir.sh
source "$(dirname "$0")/lib/out-dir.sh"
prefix=$(out_dir PREFIX "$@")
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

# `pkg-config --static --libs onem2m_est` must link the archive, though the .so lies beside it
# and the linker prefers it for -lonem2m_est. Libs.private names the archive first
# (-Bstatic within push/pop-state, so a `cc -static` link stays static), then what the archive
# needs; the shared library comes after it, from the required onem2m_est-shared module (pkg-config
# prints a module's flags before those of what it requires), with --as-needed: in a static link
# the archive has resolved every mef_* symbol by then, so no NEEDED libonem2m_est.so is
# recorded. Without --static only onem2m_est-shared's flags remain: the shared library.
cat >"$libdir/pkgconfig/onem2m_est.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: onem2m_est
Description: oneM2M Certificate Provisioning (TS-0003 8.3.6) over EST (RFC 7030)
Version: $version
Requires: onem2m_est-shared = $version
Cflags: -I\${includedir}
Libs:
Libs.private: -L\${libdir} -Wl,--push-state,-Bstatic,-lonem2m_est,--pop-state ${openssl_private}-lpthread -ldl -lm
PC

cat >"$libdir/pkgconfig/onem2m_est-shared.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib

Name: onem2m_est-shared
Description: oneM2M Certificate Provisioning over EST, the shared library (use onem2m_est)
Version: $version
Libs: -L\${libdir} -Wl,--push-state,--as-needed,-lonem2m_est,--pop-state
PC
# An older installation's separate static module (replaced by onem2m_est.pc --static).
rm -f "$libdir/pkgconfig/onem2m_est-static.pc"

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
