//! Log forwarding: the library logs through the `log` facade; a process-wide logger (installed
//! once, and only when the host process has no `log` logger yet) forwards each record to the
//! log callback of the handle whose call is running on the current thread.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{mef_log_level, UserData};
use super::{MEF_LOG_DEBUG, MEF_LOG_ERROR, MEF_LOG_INFO, MEF_LOG_TRACE, MEF_LOG_WARN};

/// The log callback: receives every message of this library of a level up to the configured
/// maximum, on the thread of the `mef_client_*` call that produced it, during that call.
/// `message` is NUL-terminated UTF-8, valid during the call only, and never contains private
/// keys or challengePasswords.
pub type mef_log_cb = Option<
    unsafe extern "C" fn(user_data: *mut c_void, level: mef_log_level, message: *const c_char),
>;

/// A handle's log destination.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogSink {
    pub(crate) cb: unsafe extern "C" fn(*mut c_void, mef_log_level, *const c_char),
    pub(crate) user_data: UserData,
    pub(crate) max: log::LevelFilter,
}

thread_local! {
    /// The sink of the `mef_client_*` call running on this thread, if its handle has one.
    static CURRENT: Cell<Option<LogSink>> = const { Cell::new(None) };
}

/// Whether the logger installed by this module is the process's `log` logger.
static OURS: AtomicBool = AtomicBool::new(false);

struct Forwarder;

static FORWARDER: Forwarder = Forwarder;

/// Only this library's own records are forwarded: they are written never to carry secrets,
/// which third-party crates' debug output does not promise.
fn is_ours(target: &str) -> bool {
    target.starts_with("onem2m_est")
}

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        is_ours(metadata.target())
            && CURRENT
                .with(Cell::get)
                .is_some_and(|sink| metadata.level() <= sink.max)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Some(sink) = CURRENT.with(Cell::get) else {
            return;
        };
        // Interior NULs would truncate the C string: replaced, so nothing is lost silently.
        let text = record.args().to_string().replace('\0', "\u{FFFD}");
        let Ok(message) = CString::new(text) else {
            return;
        };
        let level = match record.level() {
            log::Level::Error => MEF_LOG_ERROR,
            log::Level::Warn => MEF_LOG_WARN,
            log::Level::Info => MEF_LOG_INFO,
            log::Level::Debug => MEF_LOG_DEBUG,
            log::Level::Trace => MEF_LOG_TRACE,
        };
        // SAFETY: the host registered `cb` with `user_data` through
        // mef_config_set_log_callback, promising both stay valid while a handle created from
        // that configuration exists; `message` outlives the call.
        unsafe { (sink.cb)(sink.user_data.0, level, message.as_ptr()) };
    }

    fn flush(&self) {}
}

/// The `log` filter of a C level (already validated).
pub(crate) fn level_filter(level: mef_log_level) -> Option<log::LevelFilter> {
    Some(match level {
        MEF_LOG_ERROR => log::LevelFilter::Error,
        MEF_LOG_WARN => log::LevelFilter::Warn,
        MEF_LOG_INFO => log::LevelFilter::Info,
        MEF_LOG_DEBUG => log::LevelFilter::Debug,
        MEF_LOG_TRACE => log::LevelFilter::Trace,
        _ => return None,
    })
}

/// Installs the forwarder unless the process already has a `log` logger (a Rust host's own
/// logger then receives the records), and raises the global maximum level to `max` when the
/// forwarder is ours.
pub(crate) fn install(max: log::LevelFilter) {
    if log::set_logger(&FORWARDER).is_ok() {
        OURS.store(true, Ordering::SeqCst);
    }
    if OURS.load(Ordering::SeqCst) && log::max_level() < max {
        log::set_max_level(max);
    }
}

/// Makes `sink` the current sink of this thread until dropped (the previous one is restored,
/// also when unwinding).
pub(crate) struct SinkScope {
    previous: Option<LogSink>,
}

impl SinkScope {
    pub(crate) fn enter(sink: Option<LogSink>) -> SinkScope {
        SinkScope {
            previous: CURRENT.with(|c| c.replace(sink)),
        }
    }
}

impl Drop for SinkScope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}
