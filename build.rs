//! Link settings of the C library (src/ffi/): the soname of libonem2m_est.so and the exported
//! symbols (the C API's `mef_*` only, through src/ffi/exports.map). Only for Linux/ELF targets;
//! other targets build with the linker's defaults.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/ffi/exports.map");
    // The target, not the host: CARGO_CFG_* describe what is being built.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        let map = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
            .join("src/ffi/exports.map");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libonem2m_est.so.{major}");
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            map.display()
        );
    }
}
