//! Certificate lifecycle for devices that run for years: when to renew, how to retry, and
//! re-bootstrap to Initial Certificate Provisioning.
//!
//! - [`RenewalPolicy`] says when the installed certificate is due: after a fraction of its
//!   lifetime (default two thirds) or a margin before notAfter, moved earlier by a jitter.
//! - [`RetryPolicy`] says when to try again after a failure: exponential backoff with jitter,
//!   never more than half the time left before notAfter away, so the last attempts happen while
//!   the certificate is still valid.
//! - [`classify`] says whether a failure is worth retrying.
//! - [`MefClient::renew`] re-provisions (TS-0003 8.3.6.2.3), or, when the MEF-provisioned
//!   certificate has expired or the MEF refuses it (revoked), falls back to Initial Certificate
//!   Provisioning (8.3.6.2.2) with the bootstrap credential if the caller still has one.
//! - [`Scheduler`] combines them into the decisions of a renewal agent (the CLI's `agent`).
//!
//! The clock seam: nothing here reads the clock. Every decision takes `now`, so the tests run
//! years of lifecycle without sleeping.
//!
//! Jitter is derived from the certificate itself (the first 8 bytes of the SHA-256 of the leaf
//! certificate, [`jitter_seed`]), not from a random generator: devices provisioned together hold
//! different certificates (different keys and serials), so they spread out, while one device
//! computes the same renewal time after every restart (no state file, no drift towards
//! notAfter from re-rolling the dice on each start).

use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;

use crate::client::{InitialAuth, KeySource, MefClient, Provisioned, Reprovision};
use crate::error::{Error, Result};
use crate::store::{CredentialStore, Credentials};

/// The validity period of a certificate (RFC 5280 4.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: SystemTime,
    /// notAfter.
    pub not_after: SystemTime,
}

impl Validity {
    /// The validity period of `cert` (DER).
    pub fn of(cert: &CertificateDer<'_>) -> Result<Validity> {
        let parsed = crate::x509::parse_certificate(cert.as_ref()).map_err(|e| Error::Store {
            operation: "read the installed certificate",
            reason: format!("cannot parse it: {e}"),
            path: None,
            source: None,
        })?;
        let v = parsed.tbs_certificate().validity();
        Ok(Validity {
            not_before: SystemTime::UNIX_EPOCH + v.not_before.to_unix_duration(),
            not_after: SystemTime::UNIX_EPOCH + v.not_after.to_unix_duration(),
        })
    }

    /// notAfter − notBefore (zero for a malformed period).
    pub fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }

    /// Whether the certificate is past its notAfter at `now` (RFC 5280 4.1.2.5: valid through
    /// notAfter inclusive).
    pub fn expired_at(&self, now: SystemTime) -> bool {
        now > self.not_after
    }
}

/// When a certificate becomes due for renewal, before jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum RenewAt {
    /// When this fraction of the lifetime (notBefore to notAfter) has passed, in (0, 1].
    Fraction(f64),
    /// This long before notAfter (at notBefore if the lifetime is shorter).
    BeforeNotAfter(Duration),
}

/// When to renew: the trigger, then a jitter that moves it earlier by up to `jitter` × lifetime,
/// by an amount fixed per certificate (see the module documentation). Earlier, never later: the
/// configured point is the latest a device renews on schedule.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RenewalPolicy {
    /// The trigger (default: two thirds of the lifetime).
    pub renew_at: RenewAt,
    /// The jitter window as a fraction of the lifetime, in [0, 1) (default 0.1).
    pub jitter: f64,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
}

impl Default for RenewalPolicy {
    fn default() -> RenewalPolicy {
        RenewalPolicy {
            renew_at: RenewAt::Fraction(2.0 / 3.0),
            jitter: 0.1,
            retry: RetryPolicy::default(),
        }
    }
}

impl RenewalPolicy {
    /// A policy (not yet checked: [`RenewalPolicy::validate`]).
    pub fn new(renew_at: RenewAt, jitter: f64, retry: RetryPolicy) -> RenewalPolicy {
        RenewalPolicy {
            renew_at,
            jitter,
            retry,
        }
    }

    /// Refuses a fraction outside (0, 1], a jitter outside [0, 1) and an empty retry delay.
    pub fn validate(&self) -> Result<()> {
        if let RenewAt::Fraction(f) = self.renew_at {
            if !(f > 0.0 && f <= 1.0) {
                return Err(Error::invalid(
                    "renewal fraction",
                    format!("{f} is not in (0, 1]"),
                ));
            }
        }
        if !(self.jitter >= 0.0 && self.jitter < 1.0) {
            return Err(Error::invalid(
                "renewal jitter",
                format!("{} is not in [0, 1)", self.jitter),
            ));
        }
        self.retry.validate()
    }

    /// The renewal time of a certificate with `validity` and jitter seed `seed`, in whole
    /// seconds.
    pub fn renewal_time(&self, validity: &Validity, seed: u64) -> SystemTime {
        let lifetime = validity.lifetime();
        let trigger = match self.renew_at {
            RenewAt::Fraction(f) => validity.not_before + lifetime.mul_f64(f.clamp(0.0, 1.0)),
            RenewAt::BeforeNotAfter(margin) => validity
                .not_after
                .checked_sub(margin)
                .unwrap_or(validity.not_before)
                .max(validity.not_before),
        };
        let earlier = lifetime
            .mul_f64(self.jitter.clamp(0.0, 1.0))
            .mul_f64(unit(seed));
        let at = trigger
            .checked_sub(earlier)
            .unwrap_or(validity.not_before)
            .max(validity.not_before);
        // Whole seconds (certificate times have no finer grain), rounded down: the same value
        // in every language, and `renewal_due(next_renewal_at())` holds.
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix_secs(at))
    }
}

/// Exponential backoff with jitter, bounded by notAfter.
///
/// The n-th retry after consecutive failures waits `initial × 2^(n−1)`, at most `max`, then a
/// jitter draws the delay from [d/2, d] ("equal jitter": a fleet that failed together against a
/// MEF outage does not come back together, and no delay shrinks to nothing). While the
/// certificate is valid the delay is also at most half the time left before notAfter (and at
/// least `min`), so attempts get denser, not sparser, as expiry approaches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The first delay (default 60 s).
    pub initial: Duration,
    /// The largest delay (default 6 h).
    pub max: Duration,
    /// The smallest delay, also near notAfter (default 1 s).
    pub min: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(6 * 3600),
            min: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// A policy (not yet checked: [`RetryPolicy::validate`]).
    pub fn new(initial: Duration, max: Duration, min: Duration) -> RetryPolicy {
        RetryPolicy { initial, max, min }
    }

    /// Refuses a zero `min` and `initial` or `min` above `max`.
    pub fn validate(&self) -> Result<()> {
        if self.min.is_zero() || self.initial < self.min || self.max < self.initial {
            return Err(Error::invalid(
                "retry policy",
                format!(
                    "need 0 < min ({:?}) <= initial ({:?}) <= max ({:?})",
                    self.min, self.initial, self.max
                ),
            ));
        }
        Ok(())
    }

    /// When to try again after the `failures`-th consecutive failure (1 for the first) at
    /// `failed_at`, for a certificate valid until `not_after` (`None`: none installed).
    pub fn retry_at(
        &self,
        failures: u32,
        failed_at: SystemTime,
        not_after: Option<SystemTime>,
        seed: u64,
    ) -> SystemTime {
        let exponent = failures.saturating_sub(1).min(30);
        let full = self
            .initial
            .checked_mul(1u32 << exponent)
            .unwrap_or(self.max)
            .min(self.max);
        let half = full / 2;
        let mut delay = half + half.mul_f64(unit(mix(seed, u64::from(failures))));
        if let Some(not_after) = not_after {
            if let Ok(left) = not_after.duration_since(failed_at) {
                delay = delay.min(left / 2);
            }
        }
        failed_at + delay.max(self.min)
    }
}

/// What to do about a failed renewal attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Not #[non_exhaustive]: the C ABI (MEF_FAILURE_*) and Python map every kind
// one-to-one; a new one must fail to compile there until it is mapped.
pub enum FailureKind {
    /// The server or the path to it failed (connection, timeout, TLS interrupted, 5xx, 408,
    /// 429, 202 beyond the polling bounds, an answer that does not validate): try again later.
    Retryable,
    /// The MEF refused this device's MEF-provisioned certificate (401/403, or a TLS alert about
    /// the client certificate): revoked, expired at the MEF, or unknown. Re-provisioning cannot
    /// succeed (pre-condition C); Initial Certificate Provisioning may.
    IdentityRefused,
    /// Retrying cannot fix it (bad arguments, the store, keys, a requirement we cannot meet,
    /// a server we do not trust, another 4xx): report at once.
    Fatal,
}

/// Whether a failure is worth retrying. The CERT_PROV class ([`Error::class`]) stays what it
/// is; this only decides whether to try again.
pub fn classify(error: &Error) -> FailureKind {
    match error {
        Error::Connect { .. }
        | Error::Timeout { .. }
        | Error::Transport { .. }
        | Error::StillPending { .. }
        | Error::BadResponse { .. }
        | Error::Decode { .. }
        | Error::CertificateRejected { .. } => FailureKind::Retryable,
        Error::ServerStatus { status, .. } => match status {
            401 | 403 => FailureKind::IdentityRefused,
            408 | 429 | 500..=599 => FailureKind::Retryable,
            _ => FailureKind::Fatal,
        },
        Error::Tls { reason, .. } if reason.contains(crate::tls::CLIENT_CERT_HINT) => {
            FailureKind::IdentityRefused
        }
        Error::Tls { .. } => FailureKind::Retryable,
        _ => FailureKind::Fatal,
    }
}

/// The jitter seed of a certificate: the first 8 bytes of SHA-256 over its DER.
pub fn jitter_seed(cert: &CertificateDer<'_>) -> u64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// A seed as a number in [0, 1).
fn unit(seed: u64) -> f64 {
    (seed >> 11) as f64 / (1u64 << 53) as f64
}

/// splitmix64 of `seed` and `n`: a different, still deterministic draw per retry.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Credentials {
    /// The validity period of the installed certificate (the leaf, first in the chain).
    pub fn validity(&self) -> Result<Validity> {
        let leaf = self.chain.first().ok_or_else(|| Error::NotProvisioned {
            reason: "the credential store holds no certificate".into(),
        })?;
        Validity::of(leaf)
    }

    /// When the installed certificate becomes due for renewal under `policy`.
    pub fn next_renewal_at(&self, policy: &RenewalPolicy) -> Result<SystemTime> {
        let validity = self.validity()?;
        Ok(policy.renewal_time(&validity, jitter_seed(&self.chain[0])))
    }

    /// Whether the installed certificate is due for renewal at `now` under `policy`.
    pub fn renewal_due(&self, policy: &RenewalPolicy, now: SystemTime) -> Result<bool> {
        Ok(now >= self.next_renewal_at(policy)?)
    }
}

/// How a renewal got its new credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
// Not #[non_exhaustive]: the C ABI (MEF_RENEWED_*) maps every path one-to-one.
pub enum RenewalPath {
    /// Certificate Re-Provisioning (TS-0003 8.3.6.2.3) with the installed credentials.
    Reprovisioned,
    /// Initial Certificate Provisioning (8.3.6.2.2) with the bootstrap credential, because
    /// re-provisioning was impossible; the reason says why.
    Rebootstrapped {
        /// Why (expired, refused by the MEF, nothing installed).
        reason: String,
    },
}

/// A successful [`MefClient::renew`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Renewal {
    /// What was installed.
    pub provisioned: Provisioned,
    /// How.
    pub path: RenewalPath,
}

impl MefClient {
    /// Renews the credentials in `store` at `now`: Certificate Re-Provisioning (TS-0003
    /// 8.3.6.2.3) while the installed certificate is valid; otherwise, or when the MEF refuses
    /// it ([`FailureKind::IdentityRefused`]), Initial Certificate Provisioning (8.3.6.2.2) with
    /// `bootstrap` (the third-party certificate or the Kpm), if given. CR 8.3.Z.2.2 gives that
    /// procedure for a MEF Client that "does not possess a valid MEF-Provisioned Certificate";
    /// re-provisioning needs one (8.3.Z.2.3 pre-condition C).
    ///
    /// New trust anchors from `/cacerts` (a MEF CA rollover) are installed with the new
    /// certificate, as a whole, on either path. On failure the installed set is unchanged.
    pub fn renew(
        &self,
        store: &mut dyn CredentialStore,
        mode: Reprovision,
        bootstrap: Option<&InitialAuth>,
        now: SystemTime,
    ) -> Result<Renewal> {
        let fresh_key = match mode {
            Reprovision::ServerKeygen => KeySource::ServerGenerated,
            // A key whose certificate expired or was refused is retired, not reused.
            Reprovision::Renew | Reprovision::Rekey => KeySource::Generate,
        };
        let reason = match store.load()? {
            None => "the credential store holds no certificate".to_string(),
            Some(current) => {
                let validity = current.validity()?;
                if validity.expired_at(now) {
                    format!(
                        "the MEF-provisioned certificate expired at {}",
                        crate::x509::format_unix_time(unix_secs(validity.not_after))
                    )
                } else {
                    match self.reprovision(store, mode) {
                        Ok(provisioned) => {
                            return Ok(Renewal {
                                provisioned,
                                path: RenewalPath::Reprovisioned,
                            })
                        }
                        Err(e) if classify(&e) == FailureKind::IdentityRefused => {
                            if bootstrap.is_none() {
                                return Err(e);
                            }
                            format!("the MEF refused the MEF-provisioned certificate ({e})")
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        let Some(auth) = bootstrap else {
            return Err(Error::NotProvisioned {
                reason: format!(
                    "{reason}, and no bootstrap credential (third-party certificate or Kpm) is \
                     configured for Initial Certificate Provisioning"
                ),
            });
        };
        log::warn!("re-bootstrapping with Initial Certificate Provisioning: {reason}");
        let provisioned = self.provision(auth, store, fresh_key)?;
        log::info!("re-bootstrap succeeded");
        Ok(Renewal {
            provisioned,
            path: RenewalPath::Rebootstrapped { reason },
        })
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a renewal agent should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
// Not #[non_exhaustive]: an agent (the CLI's, ffi's) must act on every action; a new one must
// fail to compile there.
pub enum Action {
    /// Nothing until `until`, then ask again.
    Sleep {
        /// When to ask again.
        until: SystemTime,
        /// Why (for the decision log).
        reason: String,
    },
    /// Renew now.
    Renew {
        /// Why (for the decision log).
        reason: String,
    },
}

/// The decisions of a renewal agent: when to renew, and when to retry after failures. It keeps
/// only the count of consecutive failures and the next retry time; everything else is read from
/// the installed credentials each time, so an agent restarted from the store decides the same.
#[derive(Debug, Clone)]
pub struct Scheduler {
    policy: RenewalPolicy,
    failures: u32,
    retry_at: Option<SystemTime>,
}

impl Scheduler {
    /// A scheduler for `policy` (validated).
    pub fn new(policy: RenewalPolicy) -> Result<Scheduler> {
        policy.validate()?;
        Ok(Scheduler {
            policy,
            failures: 0,
            retry_at: None,
        })
    }

    /// The policy.
    pub fn policy(&self) -> &RenewalPolicy {
        &self.policy
    }

    /// Consecutive failed attempts since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The next action for the credentials installed now (`None`: nothing installed).
    pub fn next_action(&self, installed: Option<&Credentials>, now: SystemTime) -> Result<Action> {
        if let Some(at) = self.retry_at {
            return Ok(if now >= at {
                Action::Renew {
                    reason: format!("retry {} after a failed attempt", self.failures),
                }
            } else {
                Action::Sleep {
                    until: at,
                    reason: format!("backing off after {} failed attempt(s)", self.failures),
                }
            });
        }
        let Some(current) = installed else {
            return Ok(Action::Renew {
                reason: "no credentials installed".into(),
            });
        };
        let due = current.next_renewal_at(&self.policy)?;
        let not_after = current.validity()?.not_after;
        Ok(if now >= due {
            Action::Renew {
                reason: format!(
                    "renewal due since {} (notAfter {})",
                    crate::x509::format_unix_time(unix_secs(due)),
                    crate::x509::format_unix_time(unix_secs(not_after))
                ),
            }
        } else {
            Action::Sleep {
                until: due,
                reason: format!(
                    "certificate valid until {}",
                    crate::x509::format_unix_time(unix_secs(not_after))
                ),
            }
        })
    }

    /// Records a failed attempt at `now`: `Ok(retry time)` when it is worth retrying, the error
    /// back when it is not. `installed`: the credentials still installed (for the notAfter
    /// bound and the jitter seed).
    pub fn failed(
        &mut self,
        error: Error,
        installed: Option<&Credentials>,
        now: SystemTime,
    ) -> std::result::Result<SystemTime, Error> {
        if classify(&error) != FailureKind::Retryable {
            return Err(error);
        }
        self.failures = self.failures.saturating_add(1);
        let not_after = installed
            .and_then(|c| c.validity().ok())
            .map(|v| v.not_after);
        let seed = installed
            .and_then(|c| c.chain.first())
            .map(jitter_seed)
            .unwrap_or(0);
        let at = self
            .policy
            .retry
            .retry_at(self.failures, now, not_after, seed);
        self.retry_at = Some(at);
        Ok(at)
    }

    /// Records a successful renewal: the backoff starts over.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn validity(days: u64) -> Validity {
        Validity {
            not_before: at(T0),
            not_after: at(T0 + days * 86_400),
        }
    }

    #[test]
    fn default_is_two_thirds_moved_earlier_by_at_most_a_tenth() {
        let p = RenewalPolicy::default();
        let v = validity(90);
        assert_eq!(p.renewal_time(&v, 0), at(T0 + 60 * 86_400));
        let latest_jitter = p.renewal_time(&v, u64::MAX);
        assert!(
            latest_jitter < at(T0 + 51 * 86_400 + 1),
            "{latest_jitter:?}"
        );
        assert!(
            latest_jitter > at(T0 + 51 * 86_400 - 1),
            "{latest_jitter:?}"
        );
        // Spread: different seeds, different times, all within [51 d, 60 d].
        let times: std::collections::BTreeSet<_> =
            (0..100u64).map(|i| p.renewal_time(&v, mix(i, 7))).collect();
        assert!(times.len() > 90);
        assert!(times
            .iter()
            .all(|t| *t >= at(T0 + 51 * 86_400 - 1) && *t <= at(T0 + 60 * 86_400)));
    }

    #[test]
    fn margin_before_not_after() {
        let p = RenewalPolicy {
            renew_at: RenewAt::BeforeNotAfter(Duration::from_secs(7 * 86_400)),
            jitter: 0.0,
            ..RenewalPolicy::default()
        };
        assert_eq!(p.renewal_time(&validity(30), 42), at(T0 + 23 * 86_400));
        // A margin longer than the lifetime: due from notBefore on.
        assert_eq!(p.renewal_time(&validity(3), 42), at(T0));
    }

    #[test]
    fn bad_policies_are_bad_arguments() {
        for p in [
            RenewalPolicy {
                renew_at: RenewAt::Fraction(0.0),
                ..RenewalPolicy::default()
            },
            RenewalPolicy {
                renew_at: RenewAt::Fraction(1.5),
                ..RenewalPolicy::default()
            },
            RenewalPolicy {
                jitter: 1.0,
                ..RenewalPolicy::default()
            },
            RenewalPolicy {
                retry: RetryPolicy {
                    min: Duration::ZERO,
                    ..RetryPolicy::default()
                },
                ..RenewalPolicy::default()
            },
        ] {
            let e = p.validate().unwrap_err();
            assert_eq!(e.class(), crate::ErrorClass::BadArguments, "{e}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_maximum() {
        let r = RetryPolicy::default();
        let far = Some(at(T0 + 365 * 86_400));
        let mut previous_full = Duration::ZERO;
        for n in 1..=12u32 {
            let delay = r
                .retry_at(n, at(T0), far, 99)
                .duration_since(at(T0))
                .unwrap();
            let full = (r.initial * (1 << (n - 1))).min(r.max);
            assert!(
                delay >= full / 2 && delay <= full,
                "n={n} {delay:?} {full:?}"
            );
            assert!(full >= previous_full);
            previous_full = full;
        }
        assert_eq!(previous_full, r.max);
        // The draw differs between retries and between devices.
        assert_ne!(r.retry_at(3, at(T0), far, 1), r.retry_at(3, at(T0), far, 2));
    }

    #[test]
    fn retries_crowd_before_not_after() {
        let r = RetryPolicy::default();
        let not_after = at(T0 + 600);
        let mut now = at(T0);
        let mut attempts = 0;
        for n in 1..=40u32 {
            let next = r.retry_at(n, now, Some(not_after), 5);
            assert!(next > now);
            if next > not_after {
                break;
            }
            attempts += 1;
            now = next;
        }
        // Without the bound, six hours of backoff would leave one attempt in ten minutes.
        assert!(attempts >= 8, "{attempts} attempts before notAfter");
    }

    #[test]
    fn classification() {
        use crate::Operation::SimpleReenroll;
        let status = |status| Error::ServerStatus {
            operation: SimpleReenroll,
            status,
            message: String::new(),
        };
        assert_eq!(classify(&status(503)), FailureKind::Retryable);
        assert_eq!(classify(&status(500)), FailureKind::Retryable);
        assert_eq!(classify(&status(429)), FailureKind::Retryable);
        assert_eq!(classify(&status(403)), FailureKind::IdentityRefused);
        assert_eq!(classify(&status(401)), FailureKind::IdentityRefused);
        assert_eq!(classify(&status(400)), FailureKind::Fatal);
        let pending = Error::StillPending {
            operation: SimpleReenroll,
            attempts: 10,
            waited_secs: 600,
        };
        assert_eq!(classify(&pending), FailureKind::Retryable);
        let connect = Error::Connect {
            address: "127.0.0.1:1".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(classify(&connect), FailureKind::Retryable);
        let refused_cert = Error::Tls {
            reason: format!(
                "the server sent the alert CertificateRevoked{}",
                crate::tls::CLIENT_CERT_HINT
            ),
            source: None,
        };
        assert_eq!(classify(&refused_cert), FailureKind::IdentityRefused);
        let store = Error::Store {
            operation: "install",
            reason: "EACCES".into(),
            path: None,
            source: None,
        };
        assert_eq!(classify(&store), FailureKind::Fatal);
        assert_eq!(
            classify(&Error::ServerNotAuthorized { reason: "x".into() }),
            FailureKind::Fatal
        );
    }

    #[test]
    fn scheduler_backs_off_then_starts_over() {
        let mut s = Scheduler::new(RenewalPolicy::default()).unwrap();
        let now = at(T0);
        assert!(matches!(
            s.next_action(None, now).unwrap(),
            Action::Renew { .. }
        ));
        let e = || Error::Timeout {
            phase: "connect".into(),
        };
        let first = s.failed(e(), None, now).unwrap();
        assert!(
            matches!(s.next_action(None, now).unwrap(), Action::Sleep { until, .. } if until == first)
        );
        assert!(matches!(
            s.next_action(None, first).unwrap(),
            Action::Renew { .. }
        ));
        let second = s.failed(e(), None, first).unwrap();
        assert!(second.duration_since(first).unwrap() >= Duration::from_secs(60));
        assert_eq!(s.failures(), 2);
        let fatal = s.failed(
            Error::Store {
                operation: "install",
                reason: "read-only".into(),
                path: None,
                source: None,
            },
            None,
            second,
        );
        assert!(fatal.is_err());
        s.succeeded();
        assert_eq!(s.failures(), 0);
        assert!(matches!(
            s.next_action(None, now).unwrap(),
            Action::Renew { .. }
        ));
    }
}
