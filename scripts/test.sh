#!/usr/bin/env bash
# The test command of the README: installs the third-party peers the tests use (when it can),
# then runs the formatting and lint checks and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

# strongSwan's `pki --est/--estca` (with its curl fetcher plugin) is the independent EST client
# the MEF is tested against; openssl is used by fixture and interop tests.
packages=()
dpkg -s strongswan-pki >/dev/null 2>&1 || packages+=(strongswan-pki)
dpkg -s libstrongswan-extra-plugins >/dev/null 2>&1 || packages+=(libstrongswan-extra-plugins)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  else
    echo "warning: not installing ${packages[*]} (needs root and apt-get); the interop tests will skip" >&2
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
