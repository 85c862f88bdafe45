//! The openssl CLI as the independent parser of this crate's encodings, for the unit tests
//! (`src/lib.rs` includes this file) and the integration tests alike.

/// Writes `der` to `file` in a scratch directory named after `tag` and this process, runs
/// `openssl <args> <file>` (the last of `args` is the input option, e.g. `-in`) and returns its
/// standard output. A missing tool fails the test rather than letting it pass untested; so does
/// openssl refusing the input.
pub fn openssl_output(tag: &str, file: &str, args: &[&str], der: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("proto-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    std::fs::write(&path, der).unwrap();
    let out = std::process::Command::new("openssl")
        .args(args)
        .arg(&path)
        .output();
    std::fs::remove_dir_all(&dir).ok();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("running the openssl CLI (the independent parser): {e}"),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
