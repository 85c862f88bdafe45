#!/usr/bin/env bash
# C tests of the C API (include/onem2m_est.h):
#   null_args.c  every export with NULL and bad arguments, then a configuration/client lifecycle;
#   file_store.c the quick start: provisioning with the built-in file store against the reference
#                MEF, /cacerts and /csrattrs buffers, renew, rekey, server-side key generation;
#   callbacks.c  provisioning through key and credential callbacks against the reference MEF,
#                with each callback failing in turn (no half install);
#   psk.c        the PPSK-based RSPF: provisioning with only (KpmID, Kpm) and the MEF's TLS-PSK
#                URI, renewal over the certificate port, a wrong Kpm, the PSK from the identity
#                callback.
#   renewal.c    mef_client_next_renewal / mef_client_renewal_due / mef_client_renew (re-provision,
#                re-bootstrap once expired), the failure kind and retry time, NULL arguments.
#   pkcs11.c     mef_config_set_pkcs11_key: the device key generated in a SoftHSM2 token,
#                provision, renew, /serverkeygen refused, a wrong PIN (without PREFIX only: the
#                library is built here with the `pkcs11` feature).
# All run under valgrind (definite and indirect leaks and memory errors fail; Rust runtime
# "possibly lost" blocks are tolerated), then again built with -fsanitize=address,undefined
# against the static library.
#
# usage: ffi/tests/c/run.sh [PREFIX]
#   without PREFIX: against include/ and the debug build in ${CARGO_TARGET_DIR:-target}, built
#   here with the `psk` and `pkcs11` features (cargo rebuilds onem2m-est-ffi when its features
#   change); with PREFIX: against an
#   installation by scripts/install.sh (pkg-config; built with `psk` only, so pkcs11.c is left
#   out).
# Needs cc, valgrind, the openssl CLI, libssl/libcrypto (libssl-dev), and without PREFIX
# softhsm2-util and pkcs11-tool (softhsm2, opensc). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../../.."
repo=$(pwd)
# Cargo's output folder, wherever CARGO_TARGET_DIR puts it.
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
# shellcheck source=../../../scripts/lib/mef-fixture.sh
source scripts/lib/mef-fixture.sh

prefix=${1:-}
for tool in cc valgrind openssl pkg-config nm readelf; do
  command -v "$tool" >/dev/null || { echo "ffi/tests/c/run.sh: $tool is required" >&2; exit 1; }
done
pkg-config --exists libcrypto || { echo "ffi/tests/c/run.sh: libcrypto (libssl-dev) is required" >&2; exit 1; }
pkg-config --exists libssl || { echo "ffi/tests/c/run.sh: libssl (libssl-dev) is required" >&2; exit 1; }
# The library under test supports TLS-PSK (psk.c), like the installed one (scripts/install.sh),
# and PKCS #11 (pkcs11.c). The features are scripts/python-tests.sh's: one build serves both.
if [ -z "$prefix" ]; then
  for tool in softhsm2-util pkcs11-tool; do
    command -v "$tool" >/dev/null || { echo "ffi/tests/c/run.sh: $tool is required (softhsm2, opensc)" >&2; exit 1; }
  done
fi
cargo build -p onem2m-est-ffi -p onem2m-mef --features onem2m-est-ffi/psk,onem2m-est-ffi/pkcs11,onem2m-mef/pkcs11

fixture_init
work=$FIXTURE_DIR/c-tests
mkdir -p "$work/lib"
cflags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Wpedantic -Werror -g -O1)
read -r -a crypto <<<"$(pkg-config --cflags --libs libcrypto)"
# What a static link of a `psk` build needs besides the archive (OpenSSL's libssl and libcrypto).
read -r -a openssl_libs <<<"$(pkg-config --libs libssl libcrypto)"

if [ -n "$prefix" ]; then
  export PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  read -r -a mef_dyn <<<"$(pkg-config --cflags --libs onem2m_est)"
  mef_dyn+=("-Wl,-rpath,$prefix/lib")
  read -r -a mef_static <<<"$(pkg-config --cflags --static onem2m_est)"
  mef_static+=("$prefix/lib/libonem2m_est.a" $(pkg-config --libs-only-l --static onem2m_est | sed 's/-lonem2m_est//'))
  static_lib=$prefix/lib/libonem2m_est.a
else
  # The soname is libonem2m_est.so.0; cargo writes libonem2m_est.so: link through a directory
  # holding both names.
  ln -s "$target/debug/libonem2m_est.so" "$work/lib/libonem2m_est.so"
  ln -s "$target/debug/libonem2m_est.so" "$work/lib/libonem2m_est.so.0"
  mef_dyn=(-I"$repo/include" -L"$work/lib" -lonem2m_est "-Wl,-rpath,$work/lib")
  static_lib=$target/debug/libonem2m_est.a
  mef_static=(-I"$repo/include" "$static_lib" "${openssl_libs[@]}" -lpthread -ldl -lm)
fi

cc "${cflags[@]}" ffi/tests/c/null_args.c "${mef_dyn[@]}" -o "$work/null_args"
cc "${cflags[@]}" ffi/tests/c/callbacks.c "${mef_dyn[@]}" "${crypto[@]}" -o "$work/callbacks"
cc "${cflags[@]}" ffi/tests/c/file_store.c "${mef_dyn[@]}" -o "$work/file_store"
cc "${cflags[@]}" ffi/tests/c/psk.c "${mef_dyn[@]}" -o "$work/psk"
cc "${cflags[@]}" ffi/tests/c/renewal.c "${mef_dyn[@]}" -o "$work/renewal"
cc "${cflags[@]}" ffi/tests/c/pkcs11.c "${mef_dyn[@]}" -o "$work/pkcs11"
# Really linked to the library under test.
ldd "$work/null_args" | grep "libonem2m_est.so.0 => ${prefix:-$work/lib}" >/dev/null ||
  { echo "FAIL: null_args is not linked to the library under test" >&2; ldd "$work/null_args" >&2; exit 1; }

# The shared library exports the C API only (rustc's own version script for a cdylib, build.rs)
# and carries the soname.
so=${prefix:+$prefix/lib/libonem2m_est.so.0}
so=${so:-$target/debug/libonem2m_est.so}
exports=$(nm -D --defined-only "$so" | awk '{print $3}')
if [ -z "$exports" ] || echo "$exports" | grep -v '^mef_' >/dev/null; then
  echo "FAIL: $so exports symbols other than mef_*:" >&2
  echo "$exports" | grep -v '^mef_' | head -20 >&2
  exit 1
fi
readelf -d "$so" | grep -F '[libonem2m_est.so.0]' >/dev/null ||
  { echo "FAIL: $so has no soname libonem2m_est.so.0" >&2; exit 1; }
echo "== $(echo "$exports" | wc -l) exported symbols, all mef_*; soname libonem2m_est.so.0"

mef_fixture_start
store=$work/store

failures=0
run() {
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    echo "== $name: passed"
  else
    echo "FAIL: $name" >&2
    failures=$((failures + 1))
  fi
}
vg=(valgrind -q --suppressions=ffi/tests/c/valgrind.supp --leak-check=full --show-leak-kinds=definite,indirect
  --errors-for-leak-kinds=definite,indirect --error-exitcode=99)

run "null_args (valgrind)" "${vg[@]}" "$work/null_args" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" "$store"
run "file_store (valgrind)" "${vg[@]}" "$work/file_store" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" \
  "$MEF_SUBJECT_ID" "$work/file-store"
run "callbacks (valgrind)" "${vg[@]}" "$work/callbacks" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" \
  "$MEF_SUBJECT_ID"
run "psk (valgrind)" "${vg[@]}" "$work/psk" "$MEF_PSK_URL" "$MEF_URL" "$KPM_ID" "$KPM_HEX" \
  "$MEF_PSK_SUBJECT_ID" "$DEVICE_CERT" "$DEVICE_KEY" "$work/psk-store"
run "renewal (valgrind)" "${vg[@]}" "$work/renewal" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" \
  "$MEF_SUBJECT_ID" "$work/renewal-store"
if [ -z "$prefix" ]; then
  # Two SoftHSM2 tokens in a scratch folder (SOFTHSM2_CONF): the device's, and one for the
  # wrong PIN (login state is per process and token). No label is a prefix of another
  # (pkcs11-tool --token-label matches prefixes).
  softhsm=$work/softhsm
  rm -rf "$softhsm" && mkdir -p "$softhsm/tokens"
  export SOFTHSM2_CONF=$softhsm/softhsm2.conf
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$softhsm/tokens" >"$SOFTHSM2_CONF"
  for label in c-device c-wrong-pin; do
    softhsm2-util --init-token --free --label "$label" --so-pin 97531975 --pin 314159 >/dev/null
  done
  echo 314159 >"$softhsm/pin"
  echo 271828 >"$softhsm/wrong-pin"
  module=/usr/lib/softhsm/libsofthsm2.so
  [ -e "$module" ] || module=/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so
  run "pkcs11 (valgrind)" "${vg[@]}" "$work/pkcs11" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" \
    "$MEF_SUBJECT_ID" "$work/pkcs11-store" "$module" c-device "$softhsm/pin" c-wrong-pin "$softhsm/wrong-pin"
  # What pkcs11.c left in the token: one private key (renewing kept it), sensitive and never
  # extractable, whose CKA_ID the installed key.uri names; none in the wrong-PIN token.
  token_key_ok() {
    local keys id
    keys=$(pkcs11-tool --module "$module" --token-label c-device --login --pin 314159 --list-objects --type privkey)
    id=$(sed -n 's/.*;id=\([^;]*\);.*/\1/p' "$work/pkcs11-store/key.uri" | tr -d '%' | tr 'A-F' 'a-f')
    [ "$(grep -c 'Private Key Object' <<<"$keys")" = 1 ] && grep -q 'never extractable' <<<"$keys" &&
      grep -q 'sensitive' <<<"$keys" && grep -q "ID:.*$id" <<<"$keys" &&
      ! pkcs11-tool --module "$module" --token-label c-wrong-pin --login --pin 314159 --list-objects --type privkey |
        grep -q 'Private Key Object'
  }
  run "pkcs11: one sensitive, never extractable key in the token, the one key.uri names" token_key_ok
fi
# What psk.c installed over TLS-PSK (and renewed): the trust anchors are the MEF CA, the
# certificate chains to them and names the KpmID's CSE-ID (TS-0003 10.1.1.7).
psk_installed_ok() {
  local d=$work/psk-store/psk
  cmp -s <(openssl x509 -in "$d/trust-anchors.pem" -outform DER) <(openssl x509 -in "$MEF_CA" -outform DER) &&
    openssl verify -CAfile "$d/trust-anchors.pem" "$d/cert.pem" &&
    openssl x509 -in "$d/cert.pem" -noout -ext subjectAltName | grep -q "DNS:$MEF_PSK_SUBJECT_ID\$"
}
run "psk: installed trust anchors are the MEF CA, the certificate verifies" psk_installed_ok

# AddressSanitizer + UBSan, statically linked (the Rust code is not instrumented; the C side and
# every buffer the library hands over are).
san=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
if cc "${cflags[@]}" "${san[@]}" ffi/tests/c/null_args.c "${mef_static[@]}" -o "$work/null_args_asan" 2>"$work/asan-link.log" &&
  cc "${cflags[@]}" "${san[@]}" ffi/tests/c/callbacks.c "${mef_static[@]}" "${crypto[@]}" -o "$work/callbacks_asan" \
    2>>"$work/asan-link.log" &&
  cc "${cflags[@]}" "${san[@]}" ffi/tests/c/file_store.c "${mef_static[@]}" -o "$work/file_store_asan" \
    2>>"$work/asan-link.log" &&
  cc "${cflags[@]}" "${san[@]}" ffi/tests/c/psk.c "${mef_static[@]}" -o "$work/psk_asan" \
    2>>"$work/asan-link.log" &&
  cc "${cflags[@]}" "${san[@]}" ffi/tests/c/renewal.c "${mef_static[@]}" -o "$work/renewal_asan" \
    2>>"$work/asan-link.log"; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
  run "null_args (ASan+UBSan, static)" "$work/null_args_asan" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" "$store-asan"
  run "file_store (ASan+UBSan, static)" "$work/file_store_asan" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" \
    "$DEVICE_KEY" "$MEF_SUBJECT_ID" "$work/file-store-asan"
  run "callbacks (ASan+UBSan, static)" "$work/callbacks_asan" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" \
    "$DEVICE_KEY" "$MEF_SUBJECT_ID"
  run "psk (ASan+UBSan, static)" "$work/psk_asan" "$MEF_PSK_URL" "$MEF_URL" "$KPM_ID" "$KPM_HEX" \
    "$MEF_PSK_SUBJECT_ID" "$DEVICE_CERT" "$DEVICE_KEY" "$work/psk-store-asan"
  run "renewal (ASan+UBSan, static)" "$work/renewal_asan" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" \
    "$DEVICE_KEY" "$MEF_SUBJECT_ID" "$work/renewal-store-asan"
else
  # A sanitizer step that cannot run fails: a skipped memory check proves nothing.
  echo "FAIL: ASan build against $static_lib does not link:" >&2
  cat "$work/asan-link.log" >&2
  failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
  echo "ffi/tests/c/run.sh: $failures failure(s)" >&2
  exit 1
fi
echo "ffi/tests/c/run.sh: all passed"
