//! Running a program under test (the `onem2m-est` CLI, whose path only its own tests know:
//! `env!("CARGO_BIN_EXE_onem2m-est")`) and showing what it did when an assertion fails.

use std::ffi::OsStr;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

/// Runs `program` with `args` to completion, its output captured.
pub fn run<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Output {
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", program.to_string_lossy()))
}

/// Exit status, stdout and stderr, for an assertion message.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit status `code`; the failure shows what the program printed.
#[track_caller]
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
}

/// Asserts the exit status `code` and that stderr says `needle`.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32, needle: &str) {
    assert_code(o, code);
    assert_stderr(o, needle);
}

/// Asserts that stdout says `needle`.
#[track_caller]
pub fn assert_stdout(o: &Output, needle: &str) {
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(needle),
        "stdout lacks {needle:?}: {}",
        text(o)
    );
}

/// Asserts that stderr says `needle`.
#[track_caller]
pub fn assert_stderr(o: &Output, needle: &str) {
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(needle),
        "stderr lacks {needle:?}: {}",
        text(o)
    );
}

/// Sends `child` the signal `name` (`TERM`, `HUP`, `KILL`) with the shell's built-in `kill`
/// (no procps needed, no unsafe here).
pub fn signal(child: &Child, name: &str) {
    let s = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{name} {}", child.id()))
        .status()
        .expect("sh runs");
    assert!(s.success(), "kill -{name} {}", child.id());
}

/// Waits for `child` to exit, at most `limit`; kills it and fails the test otherwise.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for the child") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
