//! Renewal exports: when the installed certificate is due (`est::renewal`), and renewal with
//! re-bootstrap. Times are seconds since the Unix epoch (UTC), as `time()` returns them; `now`
//! is an argument, so a host scheduler (and a test) decides what "now" is.

use std::ffi::c_int;
use std::time::{Duration, SystemTime};

use super::client::{mef_client, out_call, reprovision_mode, with_client};
use super::{
    check, mef_reprovision, mef_result, MEF_ERR_INVALID_ARGUMENT, MEF_ERR_NULL_ARGUMENT, MEF_OK,
};
use est::error::Error;
use est::renewal::{FailureKind, RenewAt, RenewalPath, RenewalPolicy};

/// How `mef_client_renew` obtained the new credentials: one of the `MEF_RENEWED_*` values.
pub type mef_renewal_path = u32;
/// Certificate Re-Provisioning (TS-0003 8.3.6.2.3) with the installed credentials.
pub const MEF_RENEWED_REPROVISIONED: mef_renewal_path = 0;
/// Initial Certificate Provisioning (8.3.6.2.2) with the configured third-party certificate or
/// PSK, because the installed certificate had expired, was refused by the MEF (revoked), or
/// none was installed. The reason is logged at warning level.
pub const MEF_RENEWED_REBOOTSTRAPPED: mef_renewal_path = 1;

fn time_of(secs: i64) -> SystemTime {
    match u64::try_from(secs) {
        Ok(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        Err(_) => SystemTime::UNIX_EPOCH,
    }
}

fn secs_of(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The installed credentials, or `Error::NotProvisioned`.
fn installed(c: &mut mef_client) -> est::Result<est::store::Credentials> {
    c.installed()?.ok_or_else(|| Error::NotProvisioned {
        reason: "the credential store holds no certificate".into(),
    })
}

/// Whether the installed certificate is due for renewal at `now` (seconds since the epoch):
/// writes 1 (due) or 0 to `*out_due`. `MEF_ERR_NOT_PROVISIONED` when nothing is installed.
/// `*out_due` is written only on success.
///
/// # Safety
/// `client` as for `mef_client_free` (non-NULL); `out_due` writable.
#[no_mangle]
pub unsafe extern "C" fn mef_client_renewal_due(
    client: *mut mef_client,
    now: i64,
    out_due: *mut c_int,
) -> mef_result {
    let due = |c: &mut mef_client| {
        let policy = c.renewal.clone();
        installed(c)?
            .renewal_due(&policy, time_of(now))
            .map(c_int::from)
    };
    // SAFETY: caller's contract above.
    unsafe { out_call(client, "mef_client_renewal_due", out_due, due) }
}

/// When the installed certificate becomes due for renewal, in seconds since the epoch, to
/// `*out_secs` (written only on success). Stable for one certificate across restarts (the
/// jitter is derived from the certificate). `MEF_ERR_NOT_PROVISIONED` when nothing is
/// installed.
///
/// # Safety
/// `client` as for `mef_client_free` (non-NULL); `out_secs` writable.
#[no_mangle]
pub unsafe extern "C" fn mef_client_next_renewal(
    client: *mut mef_client,
    out_secs: *mut i64,
) -> mef_result {
    let at = |c: &mut mef_client| {
        let policy = c.renewal.clone();
        installed(c)?.next_renewal_at(&policy).map(secs_of)
    };
    // SAFETY: caller's contract above.
    unsafe { out_call(client, "mef_client_next_renewal", out_secs, at) }
}

/// Sets the renewal policy: due when `fraction` of the lifetime has passed (0 < fraction <= 1;
/// default 2/3) if `margin_secs` is 0, else `margin_secs` before notAfter; moved earlier by up
/// to `jitter` times the lifetime (0 <= jitter < 1; default 0.1). `MEF_ERR_INVALID_ARGUMENT` (policy
/// unchanged) for values out of range.
///
/// # Safety
/// `client` as for `mef_client_free` (non-NULL).
#[no_mangle]
pub unsafe extern "C" fn mef_client_set_renewal_policy(
    client: *mut mef_client,
    fraction: f64,
    margin_secs: u64,
    jitter: f64,
) -> mef_result {
    let body = |c: &mut mef_client| {
        let mut policy = RenewalPolicy::default();
        policy.renew_at = if margin_secs == 0 {
            RenewAt::Fraction(fraction)
        } else {
            RenewAt::BeforeNotAfter(Duration::from_secs(margin_secs))
        };
        policy.jitter = jitter;
        check!(c.call(|_| policy.validate()));
        c.renewal = policy;
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_client(client, "mef_client_set_renewal_policy", body) }
}

/// Renews at `now` (seconds since the epoch): Certificate Re-Provisioning in `mode` while the
/// installed certificate is valid; Initial Certificate Provisioning with the configured
/// third-party certificate or PSK when it has expired, the MEF refuses it (401/403 or a TLS
/// alert about the client certificate: revoked), or nothing is installed, and a bootstrap
/// credential is configured. Writes the path taken to `*out_path` (may be NULL; written only
/// on success). Without a bootstrap credential an expired certificate gives
/// `MEF_ERR_NOT_PROVISIONED`. On failure the installed set is unchanged. Call it when
/// `mef_client_renewal_due` says so; retrying is the caller's (see docs/C-API.md).
///
/// # Safety
/// `client` as for `mef_client_free` (non-NULL); `out_path` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mef_client_renew(
    client: *mut mef_client,
    mode: mef_reprovision,
    now: i64,
    out_path: *mut mef_renewal_path,
) -> mef_result {
    let body = |c: &mut mef_client| {
        let mode = match reprovision_mode(c, mode) {
            Ok(m) => m,
            Err(code) => return code,
        };
        let renewal = check!(c.call(|c| c.renew(mode, time_of(now))));
        if !out_path.is_null() {
            let path = match renewal.path {
                RenewalPath::Reprovisioned => MEF_RENEWED_REPROVISIONED,
                RenewalPath::Rebootstrapped { .. } => MEF_RENEWED_REBOOTSTRAPPED,
            };
            // SAFETY: non-NULL (checked) and writable (caller's contract).
            unsafe { out_path.write(path) };
        }
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_client(client, "mef_client_renew", body) }
}

/// Whether a failure is worth retrying: one of the `MEF_FAILURE_*` values.
pub type mef_failure_kind = u32;
/// The last call succeeded (or none was made).
pub const MEF_FAILURE_NONE: mef_failure_kind = 0;
/// The server or the path to it failed (connection, timeout, interrupted TLS, 5xx, 408, 429,
/// 202 beyond the polling bounds, an answer that does not validate): retry later, at
/// `mef_client_next_retry`.
pub const MEF_FAILURE_RETRYABLE: mef_failure_kind = 1;
/// The MEF refused the MEF-provisioned certificate (401/403, or a TLS alert about the client
/// certificate): re-provisioning cannot succeed; `mef_client_renew` re-bootstraps when a
/// bootstrap credential is configured.
pub const MEF_FAILURE_IDENTITY_REFUSED: mef_failure_kind = 2;
/// Retrying cannot fix it (arguments, the store, keys, an untrusted server, another 4xx).
pub const MEF_FAILURE_FATAL: mef_failure_kind = 3;

/// The `MEF_FAILURE_*` kind of the last call on this client (`MEF_FAILURE_NONE` after a
/// success, before any call, or for NULL). The rule is the library's, the same for the CLI's
/// agent and Python.
///
/// # Safety
/// `client` must be NULL or a live client.
#[no_mangle]
pub unsafe extern "C" fn mef_client_last_failure_kind(
    client: *const mef_client,
) -> mef_failure_kind {
    super::guard_value(MEF_FAILURE_NONE, || {
        // SAFETY: NULL or a live client (caller's contract).
        match unsafe { client.as_ref() }.and_then(|c| c.last_failure) {
            None => MEF_FAILURE_NONE,
            Some(FailureKind::Retryable) => MEF_FAILURE_RETRYABLE,
            Some(FailureKind::IdentityRefused) => MEF_FAILURE_IDENTITY_REFUSED,
            Some(FailureKind::Fatal) => MEF_FAILURE_FATAL,
        }
    })
}

/// When to retry after the `failures`-th consecutive retryable failure (1 for the first) at
/// `failed_at` (seconds since the epoch), to `*out_secs` (written only on success):
/// exponential backoff from 60 s up to 6 h with jitter, at most half the time left before the
/// installed certificate's notAfter (at least 1 s). Without installed credentials, the backoff
/// alone. `MEF_ERR_INVALID_ARGUMENT` for `failures` 0.
///
/// # Safety
/// `client` as for `mef_client_free` (non-NULL); `out_secs` writable.
#[no_mangle]
pub unsafe extern "C" fn mef_client_next_retry(
    client: *mut mef_client,
    failures: u32,
    failed_at: i64,
    out_secs: *mut i64,
) -> mef_result {
    if out_secs.is_null() {
        return MEF_ERR_NULL_ARGUMENT;
    }
    let body = |c: &mut mef_client| {
        if failures == 0 {
            c.set_error("failures counts the failed attempts: 1 for the first");
            return MEF_ERR_INVALID_ARGUMENT;
        }
        // The failure kind of the attempt being scheduled stays what it was.
        let kind = c.last_failure;
        let installed = c.call(|c| c.installed());
        c.last_failure = kind;
        let installed = check!(installed);
        let not_after = installed
            .as_ref()
            .and_then(|i| i.validity().ok())
            .map(|v| v.not_after);
        let seed = installed
            .as_ref()
            .and_then(|i| i.chain.first())
            .map(est::renewal::jitter_seed)
            .unwrap_or(0);
        let at = c
            .renewal
            .retry
            .retry_at(failures, time_of(failed_at), not_after, seed);
        // SAFETY: non-NULL (checked above) and writable (caller's contract).
        unsafe { out_secs.write(secs_of(at)) };
        MEF_OK
    };
    // SAFETY: caller's contract above.
    unsafe { with_client(client, "mef_client_next_retry", body) }
}
