//! The committed C header (include/onem2m_est.h) is what cbindgen generates from ffi/src/ with
//! ffi/cbindgen.toml, every name in it carries the `mef_`/`MEF_` prefix, every item is documented,
//! and its version macros are the crate's version.

use std::path::Path;

// Beside the workspace root, where C callers and the docs find it (not inside ffi/).
const HEADER: &str = "../include/onem2m_est.h";
const REGENERATE: &str = "ONEM2M_REGENERATE_HEADER=1 cargo test -p onem2m-est-ffi --test \
     ffi_header (or, in ffi/: cbindgen --config cbindgen.toml --output ../include/onem2m_est.h .)";

fn generated() -> String {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(crate_dir).join("cbindgen.toml"))
        .expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("UTF-8 header")
}

fn committed() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(HEADER))
        .unwrap_or_else(|e| panic!("{HEADER}: {e} (generate it with `{REGENERATE}`)"))
}

#[test]
fn committed_header_is_up_to_date() {
    let fresh = generated();
    // The same generator, writing the file: no cbindgen binary needed (the crate is pinned).
    if std::env::var_os("ONEM2M_REGENERATE_HEADER").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(HEADER);
        std::fs::write(&path, &fresh).expect("write the header");
        return;
    }
    let committed = committed();
    if fresh != committed {
        let first = fresh
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| fresh.lines().count().min(committed.lines().count()));
        panic!(
            "{HEADER} is stale: it differs from what ffi/src/ generates from line {} on\n  \
             generated: {:?}\n  committed: {:?}\nregenerate it with `{REGENERATE}` (cbindgen \
             0.29.4) and commit it",
            first + 1,
            fresh.lines().nth(first).unwrap_or("<end>"),
            committed.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// The name a declaration line declares, if it is one.
fn declared_name(line: &str) -> Option<&str> {
    if let Some(rest) = line.strip_prefix("#define ") {
        return rest.split_whitespace().next();
    }
    if let Some(rest) = line
        .strip_prefix("typedef struct ")
        .and_then(|r| r.strip_suffix(" {"))
    {
        return Some(rest);
    }
    if line.starts_with("typedef ") {
        // `typedef T name;`, `typedef struct name name;`, `typedef R (*name)(...);`
        if let Some(start) = line.find("(*") {
            let rest = &line[start + 2..];
            return rest.split(')').next();
        }
        return line.trim_end_matches(';').split_whitespace().last();
    }
    if line.starts_with(char::is_alphabetic) && line.contains('(') && line.ends_with(");") {
        let head = &line[..line.find('(')?];
        return head.split([' ', '*']).rfind(|s| !s.is_empty());
    }
    if let Some(rest) = line.strip_prefix("} ") {
        return rest.strip_suffix(';');
    }
    None
}

#[test]
fn every_name_is_prefixed_and_documented() {
    let header = committed();
    let lines: Vec<&str> = header.lines().collect();
    let mut names = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = declared_name(line) else {
            continue;
        };
        if name == "ONEM2M_EST_H" {
            continue;
        }
        names += 1;
        assert!(
            name.starts_with("mef_") || name.starts_with("MEF_"),
            "{HEADER}:{}: `{name}` lacks the mef_/MEF_ prefix (exclude Rust-only constants in \
             cbindgen.toml [export] exclude)",
            i + 1
        );
        if line.starts_with("} ") {
            continue; // the struct's doc comment precedes its `typedef struct {` line
        }
        let previous = if i > 0 { lines[i - 1].trim() } else { "" };
        let documented = previous.ends_with("*/");
        assert!(
            documented,
            "{HEADER}:{}: `{name}` has no doc comment (add a /// comment in ffi/src/)",
            i + 1
        );
    }
    assert!(
        names > 60,
        "only {names} declarations found: is the parser above broken?"
    );
}

#[test]
fn version_macros_match_the_crate() {
    let header = committed();
    let define = |name: &str| -> String {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("{HEADER}: no {name}"))
            .trim()
            .to_owned()
    };
    let hint = "update after_includes in cbindgen.toml and regenerate the header";
    assert_eq!(
        define("MEF_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MAJOR"),
        "{hint}"
    );
    assert_eq!(
        define("MEF_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_MINOR"),
        "{hint}"
    );
    assert_eq!(
        define("MEF_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION_PATCH"),
        "{hint}"
    );
    assert_eq!(
        define("MEF_VERSION_STRING"),
        format!("\"{}\"", env!("CARGO_PKG_VERSION")),
        "{hint}"
    );
}
