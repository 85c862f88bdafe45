//! Link settings of the C library (ffi/src/): the soname of libonem2m_est.so. Only for
//! Linux/ELF targets; other targets build with the linker's defaults.
//!
//! The exports need no setting of ours: for a cdylib rustc hands the linker its own version
//! script that exports only the `#[no_mangle]` C API (`mef_*`) and hides everything else (the
//! C ABI tests and scripts/cross.sh check the dynamic symbols / DLL export table). A second
//! version script of ours broke GNU ld (the cross linkers of Debian, aarch64 and armv7):
//! "anonymous version tag cannot be combined with other version tags"; rust-lld merged them.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The target, not the host: CARGO_CFG_* describe what is being built.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libonem2m_est.so.{major}");
    }
}
