//! Pending challengePasswords (CR 8.3.Z.2.2 step 2 and 3: "the MEF shall validate the
//! challengePassword").
//!
//! Kept in memory: a restart forgets them, and the client simply fetches /csrattrs again.
//! Each password is random (18 bytes from `ring::rand`, 24 base64url characters), bound to the
//! fingerprint of the client certificate it was issued to, expires after a TTL, and is compared
//! in constant time. Policy: a password is consumed as soon as an enrollment request presents it
//! and reaches a final answer (a certificate or a rejection by a later check), so a failed CSR
//! never leaves it reusable; a `202 Accepted` (manual approval) does not consume it because the
//! client repeats the very same CSR.

use base64::Engine;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// At most this many pending passwords per client: older ones are dropped first.
const MAX_PER_CLIENT: usize = 8;

struct Pending {
    password: Zeroizing<String>,
    expires: Instant,
}

/// Result of looking a presented password up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeCheck {
    /// Issued to this client and still valid.
    Valid,
    /// Issued to this client but expired.
    Expired,
    /// Not (or no longer) pending for this client.
    Unknown,
}

/// The in-memory table of pending passwords, keyed by client certificate fingerprint.
#[derive(Default)]
pub struct Challenges {
    pending: Mutex<HashMap<String, Vec<Pending>>>,
}

impl Challenges {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Pending>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a fresh password for the client with this fingerprint.
    pub fn issue(
        &self,
        client_fp: &str,
        ttl: Duration,
    ) -> Result<Zeroizing<String>, crate::MefError> {
        let mut raw = Zeroizing::new([0u8; 18]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), raw.as_mut())
            .map_err(|_| crate::MefError::Crypto("random number generator failed".into()))?;
        let password =
            Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*raw));
        let now = Instant::now();
        let mut table = self.table();
        // Forget everything expired, for every client, so the table cannot grow without bound.
        table.retain(|_, list| {
            list.retain(|p| p.expires > now);
            !list.is_empty()
        });
        let list = table.entry(client_fp.to_owned()).or_default();
        if list.len() >= MAX_PER_CLIENT {
            list.remove(0);
        }
        list.push(Pending {
            password: password.clone(),
            expires: now + ttl,
        });
        Ok(password)
    }

    fn find(list: &[Pending], presented: &str) -> Option<usize> {
        // Constant-time comparison for every candidate; no early exit on the first match.
        let mut found = None;
        for (i, p) in list.iter().enumerate() {
            if bool::from(p.password.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(i);
            }
        }
        found
    }

    /// Checks a presented password without consuming it.
    pub fn check(&self, client_fp: &str, presented: &str) -> ChallengeCheck {
        let table = self.table();
        let Some(list) = table.get(client_fp) else {
            return ChallengeCheck::Unknown;
        };
        match Self::find(list, presented) {
            Some(i) if list[i].expires > Instant::now() => ChallengeCheck::Valid,
            Some(_) => ChallengeCheck::Expired,
            None => ChallengeCheck::Unknown,
        }
    }

    /// Removes a presented password (single use). Returns whether it was pending.
    pub fn consume(&self, client_fp: &str, presented: &str) -> bool {
        let mut table = self.table();
        let Some(list) = table.get_mut(client_fp) else {
            return false;
        };
        let found = Self::find(list, presented);
        if let Some(i) = found {
            list.remove(i);
        }
        if list.is_empty() {
            table.remove(client_fp);
        }
        found.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_bound_to_client() {
        let c = Challenges::default();
        let pw = c.issue("a", Duration::from_secs(60)).unwrap();
        assert_eq!(pw.len(), 24);
        assert_eq!(c.check("b", &pw), ChallengeCheck::Unknown);
        assert_eq!(c.check("a", "nope"), ChallengeCheck::Unknown);
        assert_eq!(c.check("a", &pw), ChallengeCheck::Valid);
        assert!(c.consume("a", &pw));
        assert_eq!(c.check("a", &pw), ChallengeCheck::Unknown);
        let pw = c.issue("a", Duration::ZERO).unwrap();
        assert_eq!(c.check("a", &pw), ChallengeCheck::Expired);
    }
}
