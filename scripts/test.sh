#!/usr/bin/env bash
# The test command of the README: installs what the tests need (when it can), then runs the
# format and lint checks and every test: Rust (with and without the TLS-PSK feature), the C ABI
# under valgrind and sanitizers, the C examples against an installed library, the Python
# binding, the fuzz targets (short smoke pass) and the benchmarks (quick mode).
set -euo pipefail
cd "$(dirname "$0")/.."
# One build of each graph from scratch, never edited in between: incremental compilation would
# only add its caches (gigabytes of target/debug/incremental) and time.
export CARGO_INCREMENTAL=0
# A test that needs an external tool (openssl, curl, libest, ...) FAILS when the tool is missing
# (testkit/src/tools.rs, `require_tool`); without this variable it would only print SKIPPED.
export ONEM2M_REQUIRE_TOOLS=1

# Debian packages:
# - strongswan-pki + libstrongswan-extra-plugins + libstrongswan-standard-plugins: strongSwan's
#   `pki --est/--estca` (curl fetcher; the openssl plugin, only a Recommends that
#   --no-install-recommends leaves out, parses the MEF's EC keys and certificates), the
#   independent EST client the MEF is tested against;
# - openssl: fixtures, the TLS-PSK and ts0003 TLS profile interop tests and the issued
#   certificates in TLS (s_client/s_server); curl: a CSE certificate from the MEF serving
#   HTTPS to it;
# - libssl-dev + pkg-config: the `openssl` crate (TLS-PSK and the ts0003 TLS profile in the
#   client's `psk` feature, the MEF's PSK and ts0003 listeners) and the C examples;
# - gcc + libc6-dev: the C tests and examples; valgrind: the C ABI memory checks;
# - python3-pip + python3-venv: pytest for the Python binding; building its wheel and
#   installing it into a fresh virtual environment;
# - softhsm2 + opensc: the PKCS #11 token (SoftHSM2) and `pkcs11-tool` of tests/pkcs11.rs,
#   cli/tests/pkcs11.rs, mef/tests/pkcs11.rs, ffi/tests/c/pkcs11.c (ffi/tests/c/run.sh) and
#   python/tests/test_pkcs11.py (the `pkcs11` feature);
# - postgresql: the MEF's PostgreSQL backend (`--database postgres://...`): mef/tests/postgres.rs,
#   the store's unit tests and the HA tests start throw-away clusters with its initdb/pg_ctl
#   (mef/tests/common/postgres.rs, scripts/lib/postgres.sh);
# - swtpm + tpm2-tools + tpm2-abrmd + dbus + libtpm2-pkcs11-1 + libtpm2-pkcs11-tools (+ the
#   swtpm and tabrmd TCTIs): a software TPM 2.0 behind tpm2-pkcs11 for scripts/tpm-tests.sh.
# - the cross builds (scripts/lib/cross-env.sh, README "Platforms"): Debian's rustc-web,
#   cargo-web, rust-web-src and libstd-rust-web-dev (Rust 1.96 and its standard library's
#   source for -Zbuild-std; /usr/bin, never the default toolchain), mingw-w64 and wine64
#   (Windows), the aarch64 and armhf cross gcc and libc, qemu-user (ARM), perl and make
#   (OpenSSL from source for the Windows TLS-PSK build).
# - haproxy: the load balancer (TCP mode, health checks) in front of two MEF replicas in
#   mef/tests/ha.rs (issue #17).
# (scripts/libest.sh installs libest's build tools itself: build-essential autoconf automake
#  libtool pkg-config libssl-dev.)
packages=()
for p in strongswan-pki libstrongswan-extra-plugins libstrongswan-standard-plugins openssl curl \
  libssl-dev pkg-config gcc libc6-dev valgrind python3-pip rustc-web cargo-web rust-web-src \
  libstd-rust-web-dev gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 wine64 gcc-aarch64-linux-gnu \
  libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user perl make python3-venv \
  softhsm2 opensc postgresql swtpm tpm2-tools tpm2-abrmd dbus libtpm2-pkcs11-1 libtpm2-pkcs11-tools \
  libtss2-tcti-swtpm0 libtss2-tcti-tabrmd0 haproxy; do
  dpkg -s "$p" >/dev/null 2>&1 || packages+=("$p")
done
# shellcheck source=scripts/lib/apt.sh
source scripts/lib/apt.sh
if [ ${#packages[@]} -gt 0 ] && ! apt_install "${packages[@]}"; then
  echo "warning: not installing ${packages[*]} (needs root and apt-get)" >&2
fi

step() { echo; echo "== $*"; }

step "format"
cargo fmt --all -- --check

step "clippy (default features, then with TLS-PSK and PKCS #11)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --features onem2m-est/psk,onem2m-est/pkcs11,onem2m-est-ffi/psk,onem2m-est-ffi/pkcs11,onem2m-mef/pkcs11 -- -D warnings

step "Cisco libest (the third-party EST server of cli/tests/libest.rs): build, or reuse the cache"
# Source: ../shared/third-party/libest beside the repository, or $LIBEST_SRC. The test runs the
# script again itself (a cache hit); building here shows a build failure on its own.
scripts/libest.sh >/dev/null

step "Rust tests without the psk feature"
cargo test --workspace --locked

step "the README's main command (the quick start) and the CLI commands it prints"
scripts/quickstart-check.sh

step "C ABI tests (valgrind, ASan/UBSan)"
ffi/tests/c/run.sh

step "C examples against the installed library"
scripts/c-examples.sh

step "Python binding"
scripts/python-tests.sh

step "PKCS #11 keys in a software TPM 2.0 (swtpm, tpm2-abrmd, tpm2-pkcs11) through the CLI"
scripts/tpm-tests.sh

step "fuzz targets: build and a short smoke run of each (FUZZING.md has the long runs)"
scripts/fuzz.sh 5

step "benchmarks, quick mode (figures only, no assertions; BENCHMARKS.md)"
benches/run.sh --quick --no-psk

step "cross builds: vendor packages for Windows, aarch64 and armv7 Linux, tested under Wine and QEMU"
# The standard library is built per target (target/cross/TARGET, kept between runs); Windows
# and aarch64 also build the TLS-PSK library (OpenSSL from source), and Windows runs the core
# crate's Rust tests under Wine (scripts/cross-test.sh says what runs where).
for target in x86_64-pc-windows-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  scripts/cross-test.sh "$target"
done

step "the shell snippets of the documentation (README.md, docs/, mef/README.md), run in order"
# scripts/shell-snippets.sh builds the binaries with the feature set of the step below (so that
# step reuses them) and runs every unmarked sh block against them and the MEF fixture.
scripts/shell-snippets.sh

# Last, so the closing summary of this script is the full Rust test run.
# The pkcs11 feature joins this run (one more build of the graph would cost minutes): it adds
# tests/pkcs11.rs, cli/tests/pkcs11.rs and, with the MEF's `pkcs11` feature, mef/tests/pkcs11.rs
# (SoftHSM2).
step "Rust tests with the psk and pkcs11 features (TLS-PSK, PKCS #11 keys in SoftHSM2)"
cargo test --workspace --locked --features onem2m-est/psk,onem2m-est/pkcs11,onem2m-est-ffi/psk,onem2m-est-ffi/pkcs11,onem2m-mef/pkcs11
