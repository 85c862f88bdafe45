# shellcheck shell=bash
# The one recipe for installing missing Debian packages, sourced by scripts/test.sh,
# scripts/c-examples.sh and scripts/lib/cross-env.sh (each says itself what a refusal means).
#
#   apt_install PKG...   # installs PKG... when run as root with apt-get (a failing apt-get
#                        # stops the script); returns 1, installing nothing, otherwise

apt_install() {
  { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; } || return 1
  echo "== installing $*"
  # `exit`, not `return`: callers test the result in a condition, where `set -e` is off.
  apt-get update -qq || exit 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    exit 1
}
