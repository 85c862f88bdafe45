# shellcheck shell=bash
# Test fixture shared by the C tests, the C examples, the Python tests and the benchmarks
# (source it, do not run it): a throw-away manufacturer PKI made with the openssl CLI and the
# reference MEF (target/debug/onem2m-mef) listening on 127.0.0.1 with that device identity
# registered. The one openssl recipe of the PKI the scripts and the Python tests use.
#
#   source scripts/lib/mef-fixture.sh
#   fixture_init                 # FIXTURE_DIR (temp dir) + EXIT trap (stops the MEF, removes it)
#   mef_fixture_start            # PKI, identity, MEF; exports the variables below
#   fixture_make_ca DIR NAME     # another CA: DIR/NAME.pem and DIR/NAME.key
#   mef_fixture_serve            # for a program that is not a shell script (python/tests):
#                                # starts the fixture, prints the variables as NAME=VALUE lines
#                                # and "ready", and keeps the MEF until its stdin closes
#
# Exports: MEF_URL (https://localhost:PORT/.well-known/est), MEF_CA (the MEF CA certificate the
# MEF wrote into its data dir: the client's explicit trust anchor), DEVICE_CERT, DEVICE_KEY
# (third-party client certificate and key, PEM), MANUFACTURER_CA, MEF_DATA_DIR, MEF_PID,
# MEF_SUBJECT_ID (the CSE-ID registered for the device); for the PPSK-based RSPF (TS-0003
# 8.3.2.1): MEF_PSK_URL (https://localhost:PORT/.well-known/est on the MEF's TLS-PSK listener),
# KPM_ID and KPM_HEX (the KpmID and its Kpm as hexadecimal text, 32 random bytes, registered with
# `onem2m-mef psk add`), MEF_PSK_SUBJECT_ID (the CSE-ID registered for that KpmID).
# Set KEEP_FIXTURE=1 to keep FIXTURE_DIR after exit (for debugging).

FIXTURE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Cargo's target directory (CARGO_TARGET_DIR, relative to the repository root, as the scripts
# run cargo from there).
FIXTURE_TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $FIXTURE_TARGET_DIR in
  /*) ;;
  *) FIXTURE_TARGET_DIR=$FIXTURE_REPO/$FIXTURE_TARGET_DIR ;;
esac
MEF_BIN=${MEF_BIN:-$FIXTURE_TARGET_DIR/debug/onem2m-mef}
MEF_SUBJECT_ID=${MEF_SUBJECT_ID:-cse01.sp.example.com}
MEF_PSK_SUBJECT_ID=${MEF_PSK_SUBJECT_ID:-cse02.sp.example.com}
KPM_ID=${KPM_ID:-kpm-0001}
export MEF_SUBJECT_ID MEF_PSK_SUBJECT_ID KPM_ID

fixture_fail() {
  echo "mef-fixture: $*" >&2
  return 1
}

# Stops the MEF (if started) and removes FIXTURE_DIR. Installed as the EXIT trap.
fixture_cleanup() {
  if [ -n "${MEF_PID:-}" ]; then
    kill "$MEF_PID" 2>/dev/null || true
    wait "$MEF_PID" 2>/dev/null || true
    MEF_PID=
  fi
  if [ -n "${FIXTURE_DIR:-}" ] && [ -d "$FIXTURE_DIR" ]; then
    if [ "${KEEP_FIXTURE:-0}" = 1 ]; then
      echo "mef-fixture: kept $FIXTURE_DIR" >&2
    else
      rm -rf "$FIXTURE_DIR"
    fi
  fi
}

# Creates FIXTURE_DIR and installs the EXIT trap. Callers put their own temporary files there.
fixture_init() {
  FIXTURE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/onem2m-est-fixture.XXXXXX")
  export FIXTURE_DIR
  trap fixture_cleanup EXIT
  # A signal ends the script through the EXIT trap too.
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# The OpenSSL configuration of the fixture's CAs and device certificates, into DIR/ca.cnf.
fixture_write_ca_cnf() {
  cat >"$1/ca.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
O = Example Manufacturer
CN = Example Manufacturer Device CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_device]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
}

# An ECDSA P-256 CA (self-signed, 30 days): DIR/NAME.pem and its key DIR/NAME.key (0600).
fixture_make_ca() {
  local dir=$1 name=$2
  mkdir -p "$dir"
  fixture_write_ca_cnf "$dir"
  (
    set -e
    cd "$dir"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key" 2>/dev/null
    chmod 600 "$name.key"
    openssl req -x509 -new -key "$name.key" -sha256 -days 30 -config ca.cnf -extensions v3_ca \
      -out "$name.pem"
  ) || fixture_fail "openssl could not make the CA $dir/$name.pem" || return 1
}

# Manufacturer CA and device certificate (ECDSA P-256) in $FIXTURE_DIR/pki: the third-party
# client credentials the MEF trusts through --client-trust (certificate-based RSPF).
mef_fixture_make_pki() {
  local pki=$FIXTURE_DIR/pki
  fixture_make_ca "$pki" manufacturer-ca || return 1
  (
    set -e
    cd "$pki"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out device.key 2>/dev/null
    chmod 600 device.key
    openssl req -new -key device.key -subj "/O=Example Manufacturer/CN=device-0001" -out device.csr
    openssl x509 -req -in device.csr -CA manufacturer-ca.pem -CAkey manufacturer-ca.key -CAcreateserial \
      -sha256 -days 30 -extfile ca.cnf -extensions v3_device -out device.pem 2>/dev/null
  ) || fixture_fail "openssl could not make the manufacturer PKI" || return 1
  MANUFACTURER_CA=$pki/manufacturer-ca.pem
  DEVICE_CERT=$pki/device.pem
  DEVICE_KEY=$pki/device.key
  export MANUFACTURER_CA DEVICE_CERT DEVICE_KEY
}

# Makes the PKI, registers the device's CSE-ID and a KpmID/Kpm, and starts the MEF on
# 127.0.0.1:0 with a TLS-PSK listener on 127.0.0.1:0 too; returns once both listen (it prints
# "listening on ADDR" then "psk listening on ADDR" when ready, mef/src/main.rs).
mef_fixture_start() {
  [ -n "${FIXTURE_DIR:-}" ] || fixture_init
  [ -x "$MEF_BIN" ] || fixture_fail "$MEF_BIN not built (cargo build -p onem2m-mef)" || return 1
  command -v openssl >/dev/null || fixture_fail "the openssl CLI is needed" || return 1
  mef_fixture_make_pki || return 1

  MEF_DATA_DIR=$FIXTURE_DIR/mef
  export MEF_DATA_DIR
  # The registry is SQLite and read per request, so this also works while the MEF runs; doing
  # it first means one process creates the database.
  "$MEF_BIN" identity add --data-dir "$MEF_DATA_DIR" --client-cert "$DEVICE_CERT" \
    --subject-type cse --subject-id "$MEF_SUBJECT_ID" >"$FIXTURE_DIR/identity.out" ||
    fixture_fail "identity add failed" || return 1
  # The Kpm: 256 random bits as hex, handed to the MEF in a file (not on its command line).
  KPM_HEX=$(openssl rand -hex 32) || fixture_fail "openssl rand failed" || return 1
  export KPM_HEX
  (umask 077 && printf '%s\n' "$KPM_HEX" >"$FIXTURE_DIR/kpm.hex")
  "$MEF_BIN" psk add --data-dir "$MEF_DATA_DIR" --kpm-id "$KPM_ID" --kpm-file "$FIXTURE_DIR/kpm.hex" \
    --subject-type cse --subject-id "$MEF_PSK_SUBJECT_ID" >"$FIXTURE_DIR/psk.out" ||
    fixture_fail "psk add failed" || return 1

  local out=$FIXTURE_DIR/mef.out
  # Created here, not by the background job's redirection (which runs in the child, possibly
  # after the first poll below): a poll must never find the file missing.
  : >"$out"
  "$MEF_BIN" --listen 127.0.0.1:0 --psk-listen 127.0.0.1:0 --data-dir "$MEF_DATA_DIR" \
    --client-trust "$MANUFACTURER_CA" >"$out" 2>"$FIXTURE_DIR/mef.err" &
  MEF_PID=$!
  export MEF_PID

  local addr="" psk_addr="" _
  for _ in $(seq 1 600); do
    addr=$(sed -n 's/^listening on //p' "$out")
    psk_addr=$(sed -n 's/^psk listening on //p' "$out")
    [ -n "$addr" ] && [ -n "$psk_addr" ] && break
    if ! kill -0 "$MEF_PID" 2>/dev/null; then
      MEF_PID=
      cat "$FIXTURE_DIR/mef.err" >&2
      fixture_fail "the MEF exited before listening" || return 1
    fi
    sleep 0.1
  done
  if [ -z "$addr" ] || [ -z "$psk_addr" ]; then
    fixture_fail "the MEF did not print its addresses" || return 1
  fi
  # Wait for the second line too: the CA file path (written before "listening on").
  MEF_CA=$(sed -n 's/^CA certificate: //p' "$out")
  [ -n "$MEF_CA" ] || MEF_CA=$MEF_DATA_DIR/mef-ca.pem
  [ -s "$MEF_CA" ] || fixture_fail "no MEF CA certificate at $MEF_CA" || return 1
  # "localhost": the MEF's server certificate names localhost, 127.0.0.1 and ::1; the host
  # name is what the client matches (RFC 7030 3.6.1 / RFC 6125).
  MEF_URL="https://localhost:${addr##*:}/.well-known/est"
  # TLS-PSK: no certificate, so the host name only goes into SNI.
  MEF_PSK_URL="https://localhost:${psk_addr##*:}/.well-known/est"
  export MEF_CA MEF_URL MEF_PSK_URL
  echo "mef-fixture: MEF at $MEF_URL, TLS-PSK at $MEF_PSK_URL (pid $MEF_PID), data in $MEF_DATA_DIR" >&2
}

# For a test program that is not a shell script (python/tests/conftest.py): starts the
# fixture, prints the variables it exports as NAME=VALUE lines, then "ready", and keeps the MEF
# running until its standard input closes (the EXIT trap then stops it and removes
# FIXTURE_DIR). Also prints OTHER_CA: a CA unrelated to the MEF (a wrong trust anchor).
mef_fixture_serve() {
  fixture_init
  mef_fixture_start >&2 || return 1
  fixture_make_ca "$FIXTURE_DIR/other" other-ca || return 1
  local name
  for name in MEF_URL MEF_PSK_URL MEF_CA MEF_DATA_DIR MANUFACTURER_CA DEVICE_CERT DEVICE_KEY \
    MEF_SUBJECT_ID MEF_PSK_SUBJECT_ID KPM_ID KPM_HEX FIXTURE_DIR; do
    printf '%s=%s\n' "$name" "${!name}"
  done
  printf 'OTHER_CA=%s\n' "$FIXTURE_DIR/other/other-ca.pem"
  echo ready
  # Until the caller closes stdin (or exits).
  cat >/dev/null
}
