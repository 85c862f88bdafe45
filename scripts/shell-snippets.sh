#!/usr/bin/env bash
# Runs every sh/bash/console block of README.md, docs/*.md, mef/README.md and python/README.md
# (scripts/doc_snippets.py sh; issue #14: documentation that cannot rot), in document order, in
# a scratch folder per document, with target/debug's onem2m-est and onem2m-mef first on PATH
# and the MEF fixture (scripts/lib/mef-fixture.sh) standing in for the example MEF
# (mef.example.com). A block that cannot run here carries
# `<!-- snippet: not-run: REASON -->`; an unmarked block that fails fails this script.
# Needs the openssl CLI (the fixture's PKI and the README's recipe).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/mef-fixture.sh
source scripts/lib/mef-fixture.sh

command -v openssl >/dev/null 2>&1 || { echo "shell-snippets: the openssl CLI is needed" >&2; exit 1; }
# The binaries with the features the documentation uses (--psk-identity, --tls-profile ts0003):
# the feature set of scripts/test.sh's last cargo test, so after it this build is a no-op.
cargo build --locked --workspace \
  --features onem2m-est/psk,onem2m-est/pkcs11,onem2m-est-ffi/psk,onem2m-est-ffi/pkcs11,onem2m-mef/pkcs11

fixture_init
mef_fixture_start
python3 scripts/doc_snippets.py sh
