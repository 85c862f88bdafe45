#!/usr/bin/env bash
# Builds and runs the C examples (examples/c) against the installed library, the way a C user
# would: scripts/install.sh into a temporary prefix, plain `cc` with pkg-config, dynamic
# linking; then runs them against the reference MEF on 127.0.0.1 and checks what they installed.
# Then the PPSK-based RSPF through the installed library (built with `psk` by install.sh):
# ffi/tests/c/psk.c linked dynamically, statically with `pkg-config --static onem2m_est` (the
# archive; OpenSSL and libc stay shared), and fully static (`cc -static`). Needs a C compiler, pkg-config, libssl-dev (OpenSSL 3 for hsm_callbacks.c and the
# library's TLS-PSK) and the openssl CLI; installs the Debian packages when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/mef-fixture.sh
source scripts/lib/mef-fixture.sh
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh

packages=()
command -v cc >/dev/null 2>&1 || packages+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || packages+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || packages+=(libssl-dev)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
if [ ${#packages[@]} -gt 0 ] && ! apt_install "${packages[@]}"; then
  echo "error: missing ${packages[*]} (install them, or run as root with apt-get)" >&2
  exit 1
fi

cargo build --locked -p onem2m-est-ffi -p onem2m-mef

fixture_init
prefix=$FIXTURE_DIR/prefix
# install.sh builds the release library; --locked as everywhere else in the tests.
CARGO_BUILD_FLAGS=${CARGO_BUILD_FLAGS:---locked} scripts/install.sh "$prefix"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
bin=$FIXTURE_DIR/bin
mkdir -p "$bin"
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O2)
# shellcheck disable=SC2046 # pkg-config output is meant to be split
cc "${cflags[@]}" examples/c/provision.c $(pkg-config --cflags --libs onem2m_est) -o "$bin/provision"
# shellcheck disable=SC2046
cc "${cflags[@]}" examples/c/hsm_callbacks.c $(pkg-config --cflags --libs onem2m_est libcrypto) \
  -o "$bin/hsm_callbacks"
# PSK: ffi/tests/c/psk.c against the installed header and library, dynamic and static.
# shellcheck disable=SC2046
cc "${cflags[@]}" ffi/tests/c/psk.c $(pkg-config --cflags --libs onem2m_est) -o "$bin/psk"
# The plain module with --static links the archive though the .so lies beside it
# (scripts/install.sh says how); -static-libgcc: libgcc_s is not needed either.
# shellcheck disable=SC2046
cc "${cflags[@]}" -static-libgcc ffi/tests/c/psk.c $(pkg-config --cflags --libs --static onem2m_est) \
  -o "$bin/psk_static"
# Fully static, glibc included: links with glibc's warnings that getaddrinfo and dlopen need the
# same glibc at run time (docs/C-API.md, Packaging).
# shellcheck disable=SC2046
cc "${cflags[@]}" -static ffi/tests/c/psk.c $(pkg-config --cflags --libs --static onem2m_est) \
  -o "$bin/psk_full_static" 2>"$FIXTURE_DIR/full-static.log" ||
  { cat "$FIXTURE_DIR/full-static.log" >&2; exit 1; }
export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Linked with --static: no NEEDED libonem2m_est (readelf -d, not ldd: only what the program
# itself records counts), OpenSSL still shared; the fully static one needs nothing.
needed=$(readelf -d "$bin/psk_static" | grep NEEDED || true)
if grep -q libonem2m_est <<<"$needed" || grep -q libgcc_s <<<"$needed" || ! grep -q libssl.so.3 <<<"$needed"; then
  echo "FAIL: psk_static: not the archive with a shared OpenSSL and libc:" >&2
  echo "$needed" >&2
  exit 1
fi
if readelf -d "$bin/psk_full_static" | grep -q NEEDED; then
  echo "FAIL: psk_full_static needs shared libraries" >&2
  readelf -d "$bin/psk_full_static" >&2
  exit 1
fi
for exe in provision hsm_callbacks psk; do
  # (not `ldd | grep -q`: grep's early exit would fail the pipeline under pipefail)
  libs=$(ldd "$bin/$exe")
  grep -q "libonem2m_est\.so\.0 => $prefix/lib/" <<<"$libs" ||
    { echo "FAIL: $exe is not linked to $prefix/lib/libonem2m_est.so.0" >&2; echo "$libs" >&2; exit 1; }
done

mef_fixture_start

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# The issued certificate in DIR: chains to DIR/trust-anchors.pem, carries the CSE-ID as its
# subjectAltName dNSName (TS-0003 10.1.1.7), and its public key is the one in PUBKEY_PEM.
check_cert() {
  local dir=$1 pubkey_pem=$2 what=$3
  for f in cert.pem trust-anchors.pem; do
    [ -s "$dir/$f" ] || { fail "$what: no $dir/$f"; return; }
  done
  openssl verify -CAfile "$dir/trust-anchors.pem" "$dir/cert.pem" >/dev/null ||
    fail "$what: cert.pem does not verify against trust-anchors.pem"
  cmp -s <(openssl x509 -in "$dir/trust-anchors.pem" -outform DER) <(openssl x509 -in "$MEF_CA" -outform DER) ||
    fail "$what: trust-anchors.pem is not the MEF CA"
  local san
  san=$(openssl x509 -in "$dir/cert.pem" -noout -ext subjectAltName)
  grep -q "DNS:$MEF_SUBJECT_ID\$" <<<"$san" || fail "$what: subjectAltName lacks DNS:$MEF_SUBJECT_ID"
  [ "$(openssl x509 -in "$dir/cert.pem" -noout -pubkey)" = "$pubkey_pem" ] ||
    fail "$what: the certificate is not for the installed key"
}

echo "== provision (built-in file store)"
out=$FIXTURE_DIR/out-provision
if "$bin/provision" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" "$out"; then
  [ -s "$out/key.pem" ] || fail "provision: no key.pem"
  mode=$(stat -L -c %a "$out/key.pem")
  [ "$mode" = 600 ] || fail "provision: key.pem has mode $mode, not 600"
  check_cert "$out" "$(openssl pkey -in "$out/key.pem" -pubout)" provision
  # Re-provisioning was a rekey: the installed key is a new one, not the manufacturer's.
  [ "$(openssl pkey -in "$out/key.pem" -pubout)" != "$(openssl pkey -in "$DEVICE_KEY" -pubout)" ] ||
    fail "provision: key.pem is the manufacturer key"
else
  fail "provision exited with $?"
fi

echo "== provision with a wrong trust anchor (must fail server-side and install nothing)"
out=$FIXTURE_DIR/out-wrong-ta
set +e
"$bin/provision" "$MEF_URL" "$MANUFACTURER_CA" "$DEVICE_CERT" "$DEVICE_KEY" "$out" 2>"$FIXTURE_DIR/wrong-ta.err"
rc=$?
set -e
cat "$FIXTURE_DIR/wrong-ta.err" >&2
[ "$rc" = 1 ] || fail "wrong trust anchor: exit code $rc, not 1"
grep -q "MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR" "$FIXTURE_DIR/wrong-ta.err" ||
  fail "wrong trust anchor: not reported as MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR"
if [ -e "$out/cert.pem" ] || [ -e "$out/key.pem" ]; then fail "wrong trust anchor: something was installed"; fi

echo "== hsm_callbacks (host-owned keys and credentials)"
out=$FIXTURE_DIR/out-hsm
if "$bin/hsm_callbacks" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" "$out"; then
  [ -s "$out/public-key.pem" ] || fail "hsm_callbacks: no public-key.pem"
  check_cert "$out" "$(openssl pkey -pubin -in "$out/public-key.pem" -pubout)" hsm_callbacks
  [ ! -e "$out/key.pem" ] || fail "hsm_callbacks: a private key file was written"
else
  fail "hsm_callbacks exited with $?"
fi

# PPSK-based RSPF (TS-0003 8.3.2.1): only (KpmID, Kpm) and the TLS-PSK URI, then renewal on
# the certificate port; a wrong Kpm; the PSK from the identity callback (see ffi/tests/c/psk.c).
for exe in psk psk_static psk_full_static; do
  echo "== $exe (PPSK-based RSPF through the installed library)"
  if "$bin/$exe" "$MEF_PSK_URL" "$MEF_URL" "$KPM_ID" "$KPM_HEX" "$MEF_PSK_SUBJECT_ID" \
    "$DEVICE_CERT" "$DEVICE_KEY" "$FIXTURE_DIR/out-$exe"; then
    out=$FIXTURE_DIR/out-$exe/psk
    # check_cert with the KpmID's CSE-ID (a prefix assignment holds for the function call).
    MEF_SUBJECT_ID=$MEF_PSK_SUBJECT_ID check_cert "$out" "$(openssl pkey -in "$out/key.pem" -pubout)" "$exe"
  else
    fail "$exe exited with $?"
  fi
done

# The C snippets of README.md and docs/*.md, compiled with the same flags against the installed
# library and run against the MEF (issue #14: documentation that cannot rot).
echo "== C snippets of the documentation"
# shellcheck disable=SC2046
python3 scripts/doc_snippets.py c "${cflags[@]}" $(pkg-config --cflags --libs onem2m_est) ||
  fail "documentation C snippets"

if [ "$failures" -gt 0 ]; then
  echo "c-examples: $failures failure(s)" >&2
  exit 1
fi
echo "c-examples: all passed"
