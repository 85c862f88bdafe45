//! Tests that need an external tool (openssl, strongSwan's `pki`, libest, SoftHSM2, ...) ask
//! [`require_tool`] first. A missing tool never lets a test pass silently: with
//! `ONEM2M_REQUIRE_TOOLS=1` (set by scripts/test.sh, the README's test command) the test
//! fails; without it the test stops early with a loud `SKIPPED` line on stderr.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The variable that turns a missing tool into a failure.
pub const REQUIRE_TOOLS: &str = "ONEM2M_REQUIRE_TOOLS";

/// Whether a missing tool fails the test (`ONEM2M_REQUIRE_TOOLS=1`).
pub fn tools_required() -> bool {
    std::env::var_os(REQUIRE_TOOLS).is_some_and(|v| v == "1")
}

/// Where `tool` is: a path that names a file as given, else the first match on `PATH` (with
/// the platform's executable suffix too, `.exe` on Windows).
pub fn find_tool(tool: impl AsRef<OsStr>) -> Option<PathBuf> {
    let tool = Path::new(tool.as_ref());
    if tool.components().count() > 1 {
        return tool.is_file().then(|| tool.to_path_buf());
    }
    let mut with_suffix = tool.as_os_str().to_owned();
    with_suffix.push(std::env::consts::EXE_SUFFIX);
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join(tool), dir.join(&with_suffix)])
        .find(|candidate| candidate.is_file())
}

/// `true` when `tool` can be run. When it cannot: with `ONEM2M_REQUIRE_TOOLS=1` this panics
/// (the test fails, naming `install`, e.g. "Debian package openssl"); otherwise it prints a
/// SKIPPED line and returns `false`, and the caller returns.
#[must_use]
pub fn require_tool(tool: &str, install: &str) -> bool {
    if find_tool(tool).is_some() {
        return true;
    }
    missing(&format!("`{tool}` ({install})"))
}

/// [`require_tool`] for a prerequisite that is not a command on `PATH` (a library module, a
/// build of a reference server): `what` names it and how to get it; `found` says whether it is
/// there.
#[must_use]
pub fn require(found: bool, what: &str) -> bool {
    found || missing(what)
}

fn missing(what: &str) -> bool {
    assert!(
        !tools_required(),
        "{what} is required by this test and was not found ({REQUIRE_TOOLS}=1)"
    );
    eprintln!(
        "SKIPPED: {what} was not found; this test did not run (set {REQUIRE_TOOLS}=1 to make \
         that a failure, as scripts/test.sh does)"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tool_on_path_and_by_path() {
        let sh = find_tool("sh").expect("sh is on PATH");
        assert!(sh.is_absolute());
        assert_eq!(find_tool(&sh), Some(sh.clone()));
        assert_eq!(find_tool("onem2m-no-such-tool-7f3a"), None);
        assert_eq!(find_tool("/nonexistent/onem2m-no-such-tool"), None);
    }

    /// The only test here that touches the variable (the other one does not read it).
    #[test]
    fn a_missing_tool_fails_when_tools_are_required_and_skips_otherwise() {
        std::env::set_var(REQUIRE_TOOLS, "1");
        let required = std::panic::catch_unwind(|| require_tool("onem2m-no-such-tool", "nowhere"));
        assert!(required.is_err(), "a missing tool must fail the test");
        assert!(require_tool("sh", "Debian package dash"));
        std::env::set_var(REQUIRE_TOOLS, "0");
        assert!(!require_tool("onem2m-no-such-tool", "nowhere"));
        std::env::remove_var(REQUIRE_TOOLS);
        assert!(!require_tool("onem2m-no-such-tool", "nowhere"));
        assert!(!require(false, "a libest build"));
        assert!(require(true, "a libest build"));
    }
}
