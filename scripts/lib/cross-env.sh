# shellcheck shell=bash
# The cross toolchain of scripts/cross.sh and scripts/cross-test.sh (source it, do not run it).
#
#   source scripts/lib/cross-env.sh
#   cross_env TARGET            # checks TARGET, sets CROSS_* and exports the cargo/cc variables
#   cross_install_packages      # apt-get the Debian packages TARGET needs (root only)
#   cross_cargo ARGS...         # Debian's cargo with -Zbuild-std for TARGET, niced
#
# rustup cannot add targets on these machines, so the route is Debian's rustc-web/cargo-web
# (1.96, /usr/bin) with the standard library's source (rust-web-src) and `cargo -Zbuild-std`
# (README, "Platforms"). The rustup toolchain stays the default for everything
# else: Debian's tools are named only here, through RUSTC/CARGO and a PATH local to the process.
# Each target has its own target folder (target/cross/TARGET): the standard library is built
# once per target and profile, and the native target/ is never invalidated.

CROSS_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

cross_env() {
  CROSS_TARGET=$1
  local triple_var
  case $CROSS_TARGET in
    x86_64-pc-windows-gnu)
      CROSS_GCC=x86_64-w64-mingw32-gcc
      CROSS_TOOL_PREFIX=x86_64-w64-mingw32-
      CROSS_PACKAGES=(gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 wine64)
      # Wine 8.0 (bookworm) console programs; no display needed.
      CROSS_RUNNER=(/usr/lib/wine/wine64)
      ;;
    aarch64-unknown-linux-gnu)
      CROSS_GCC=aarch64-linux-gnu-gcc
      CROSS_TOOL_PREFIX=aarch64-linux-gnu-
      CROSS_PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
      CROSS_RUNNER=(qemu-aarch64 -L /usr/aarch64-linux-gnu)
      ;;
    armv7-unknown-linux-gnueabihf)
      CROSS_GCC=arm-linux-gnueabihf-gcc
      CROSS_TOOL_PREFIX=arm-linux-gnueabihf-
      CROSS_PACKAGES=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user)
      CROSS_RUNNER=(qemu-arm -L /usr/arm-linux-gnueabihf)
      ;;
    *)
      echo "cross: unsupported target $CROSS_TARGET (x86_64-pc-windows-gnu, aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)" >&2
      return 2
      ;;
  esac
  # Debian's Rust 1.96 and the standard library's source for -Zbuild-std; perl and make for
  # OpenSSL built from source (the psk-vendored feature).
  CROSS_PACKAGES+=(rustc-web cargo-web rust-web-src libstd-rust-web-dev perl make)
  CROSS_TARGET_DIR=${CROSS_TARGET_DIR:-$CROSS_REPO/target/cross/$CROSS_TARGET}
  triple_var=$(echo "$CROSS_TARGET" | tr 'a-z-' 'A-Z_')
  export "CARGO_TARGET_${triple_var}_LINKER=$CROSS_GCC"
  export "CC_${CROSS_TARGET//-/_}=$CROSS_GCC"
  export "AR_${CROSS_TARGET//-/_}=${CROSS_TOOL_PREFIX}ar"
  export "CARGO_TARGET_${triple_var}_RUNNER=${CROSS_RUNNER[*]}"
  # Wine: a scratch prefix of our own, quiet.
  export WINEDEBUG=-all
  export WINEPREFIX=${WINEPREFIX:-$CROSS_REPO/target/cross/wine-prefix}
}

# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

cross_install_packages() {
  local missing=() p
  for p in "${CROSS_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_install "${missing[@]}" && return 0
  echo "cross: missing Debian packages ${missing[*]} (install them, or run as root with apt-get)" >&2
  return 1
}

# Debian's cargo for CROSS_TARGET, with its own target folder. RUSTC, CARGO, PATH (/usr/bin
# first: build scripts and -Zbuild-std call `rustc`/`cargo` by name) and RUSTC_BOOTSTRAP (for
# the unstable -Zbuild-std on a stable compiler) are set for this command only, so native cargo
# runs in the same script keep the rustup toolchain and their warm target/.
cross_cargo() {
  local sub=$1
  shift
  PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo RUSTDOC=/usr/bin/rustdoc \
    RUSTC_BOOTSTRAP=1 nice -n "${CROSS_NICE:-15}" /usr/bin/cargo "$sub" --locked \
    -Zbuild-std=std,panic_abort --target "$CROSS_TARGET" --target-dir "$CROSS_TARGET_DIR" "$@"
}
