#!/usr/bin/env bash
# The device key in a TPM 2.0 through tpm2-pkcs11 (Debian libtpm2-pkcs11-1): a software TPM
# (swtpm, TCP on 127.0.0.1), the tpm2-abrmd resource manager on a private D-Bus session bus
# (tpm2-pkcs11 leaves transient objects loaded; straight on swtpm its `tpm2_ptool addtoken`
# fails with "out of memory for object contexts"), a token made with `tpm2_ptool`, then the CLI
# against the reference MEF: `provision --key pkcs11:...` (the key pair generated in the TPM),
# `reprovision` renew and --rekey, `renew` (the renewal command), no key.pem on disk, the key sensitive and never extractable
# (`pkcs11-tool`), the old key destroyed after the rekey, and a wrong PIN refused (exit 3).
#
# Needs swtpm, tpm2-abrmd, dbus-daemon, tpm2_ptool (libtpm2-pkcs11-tools), the tpm2-pkcs11
# module, pkcs11-tool (opensc) and the openssl CLI; scripts/test.sh installs them. Exits non-zero
# when one is missing or a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/mef-fixture.sh
source scripts/lib/mef-fixture.sh

for tool in swtpm tpm2-abrmd dbus-daemon tpm2_ptool pkcs11-tool openssl python3; do
  command -v "$tool" >/dev/null || { echo "tpm-tests: $tool is required" >&2; exit 1; }
done
module=$(ls /usr/lib/*/pkcs11/libtpm2_pkcs11.so 2>/dev/null | head -1 || true)
[ -n "$module" ] || { echo "tpm-tests: the tpm2-pkcs11 module is required (libtpm2-pkcs11-1)" >&2; exit 1; }

# The CLI and the MEF with PKCS #11 support (the feature set of scripts/python-tests.sh).
cargo build --locked -p onem2m-est-cli -p onem2m-mef --features onem2m-est/psk,onem2m-est/pkcs11,onem2m-mef/pkcs11
cli=$FIXTURE_TARGET_DIR/debug/onem2m-est

fixture_init
tpm_pids=()
tpm_cleanup() {
  for pid in "${tpm_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  fixture_cleanup
}
trap tpm_cleanup EXIT
work=$FIXTURE_DIR/tpm
mkdir -p "$work/state" "$work/store"

fail() { echo "tpm-tests: FAILED: $*" >&2; exit 1; }

# swtpm on a free port of 127.0.0.1 (data) and the next one (control).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
swtpm socket --tpm2 --tpmstate dir="$work/state" --flags not-need-init,startup-clear \
  --server type=tcp,port="$port",bindaddr=127.0.0.1 \
  --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --log file="$work/swtpm.log" &
tpm_pids+=($!)

dbus-daemon --session --fork --print-address=3 --print-pid=4 3>"$work/dbus.addr" 4>"$work/dbus.pid"
tpm_pids+=("$(cat "$work/dbus.pid")")
DBUS_SESSION_BUS_ADDRESS=$(head -1 "$work/dbus.addr")
export DBUS_SESSION_BUS_ADDRESS
sleep 0.5
tpm2-abrmd --session --allow-root --tcti="swtpm:host=127.0.0.1,port=$port" >"$work/abrmd.log" 2>&1 &
tpm_pids+=($!)
export TPM2TOOLS_TCTI=tabrmd:bus_type=session TPM2_PKCS11_TCTI=tabrmd:bus_type=session
export TPM2_PKCS11_STORE=$work/store
for _ in $(seq 1 100); do
  tpm2_ptool init --path "$work/store" >"$work/init.out" 2>&1 && break
  sleep 0.1
done
grep -q "id: 1" "$work/init.out" || { cat "$work/init.out" "$work/abrmd.log" >&2; fail "tpm2_ptool init"; }
pin=246813
tpm2_ptool addtoken --pid=1 --label=tpm-device --userpin="$pin" --sopin=97531 --path "$work/store" >/dev/null
(umask 077 && printf '%s\n' "$pin" >"$work/pin" && printf '000000\n' >"$work/wrong-pin")

# mef_fixture_start polls mef.out with sed under `set -e` while the MEF's shell may not have
# created it yet (a race that ends the script with sed's status 2): create it first.
: >"$FIXTURE_DIR/mef.out"
mef_fixture_start
out=$FIXTURE_DIR/cred
token_args=(--pkcs11-module "$module" --pin-file "$work/pin")
privkeys() {
  pkcs11-tool --module "$module" --token-label tpm-device --login --pin "$pin" \
    --list-objects --type privkey 2>/dev/null
}

echo "== provision with the key generated in the TPM"
"$cli" provision --server "$MEF_URL" --trust-anchors "$MEF_CA" --tls-cert "$DEVICE_CERT" \
  --tls-key "$DEVICE_KEY" --subject-type cse --subject-id "$MEF_SUBJECT_ID" --out "$out" \
  --key 'pkcs11:token=tpm-device;object=device' "${token_args[@]}"
[ ! -e "$out/key.pem" ] || fail "key.pem written"
first=$(cat "$out/key.uri")
case $first in pkcs11:token=tpm-device\;object=device\;id=*) ;; *) fail "key.uri: $first" ;; esac
[ "$(privkeys | grep -c 'Private Key Object')" = 1 ] || fail "not one private key in the TPM"
privkeys | grep -q "never extractable" || fail "the key is extractable"
# The certificate holds the TPM key's public key.
id=$(privkeys | sed -n 's/^ *ID: *//p')
pkcs11-tool --module "$module" --token-label tpm-device --read-object --type pubkey --id "$id" \
  --output-file "$work/pub.der" >/dev/null 2>&1
[ "$(openssl pkey -pubin -inform DER -in "$work/pub.der" -outform DER | sha256sum)" = \
  "$(openssl x509 -in "$out/cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" ] ||
  fail "the certificate's public key is not the TPM key's"

echo "== renew (TLS client authentication with the TPM key)"
cert=$(sha256sum <"$out/cert.pem")
"$cli" reprovision --server "$MEF_URL" --out "$out" "${token_args[@]}"
[ "$(sha256sum <"$out/cert.pem")" != "$cert" ] || fail "renew did not replace the certificate"
[ "$(cat "$out/key.uri")" = "$first" ] || fail "renew changed the key"

echo "== rekey (the next key generated in the TPM, the old one destroyed)"
"$cli" reprovision --server "$MEF_URL" --out "$out" --rekey "${token_args[@]}"
[ "$(cat "$out/key.uri")" != "$first" ] || fail "rekey kept the key"
[ "$(privkeys | grep -c 'Private Key Object')" = 1 ] || fail "the old key was not destroyed"
[ -z "$(find "$out" -name key.pem)" ] || fail "key.pem on disk"

echo "== renew, the renewal command (the URI from DIR's key.uri)"
cert=$(sha256sum <"$out/cert.pem")
rekeyed=$(cat "$out/key.uri")
"$cli" renew --server "$MEF_URL" --out "$out" "${token_args[@]}"
[ "$(sha256sum <"$out/cert.pem")" != "$cert" ] || fail "renew did not replace the certificate"
[ "$(cat "$out/key.uri")" = "$rekeyed" ] || fail "renew changed the key"

echo "== a wrong PIN"
set +e
"$cli" reprovision --server "$MEF_URL" --out "$out" --pkcs11-module "$module" \
  --pin-file "$work/wrong-pin" >"$work/wrong.out" 2>&1
code=$?
set -e
[ "$code" = 3 ] || { cat "$work/wrong.out" >&2; fail "a wrong PIN exited $code, not 3"; }
! grep -q 000000 "$work/wrong.out" || fail "the PIN was shown"
echo "tpm-tests: OK (swtpm + tpm2-abrmd + tpm2-pkcs11)"
