//! Pending challengePasswords (CR 8.3.Z.2.2 step 2 and 3: "the MEF shall validate the
//! challengePassword").
//!
//! Kept in the database ([`Store`], schema version 5), so that a password issued by one MEF
//! replica is redeemable exactly once at any replica: only a SHA-256 of each password is stored,
//! looked up by client, compared in constant time here, and claimed by deleting its row (of
//! concurrent claims exactly one deletes it).
//! Each password is random (18 bytes from `ring::rand`, 24 base64url characters), bound to the
//! fingerprint of the client certificate it was issued to, and expires after a TTL. Policy: a
//! password is consumed as soon as an enrollment request presents it and reaches a final answer
//! (a certificate or a rejection by a later check), so a failed CSR never leaves it reusable; a
//! `202 Accepted` (manual approval) does not consume it because the client repeats the very same
//! CSR.

use crate::store::{ChallengeRow, Store};
use crate::MefError;
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// At most this many pending passwords per client: older ones are dropped first.
const MAX_PER_CLIENT: usize = 8;

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

/// The pending passwords, keyed by client certificate fingerprint, in the store.
pub struct Challenges {
    store: Arc<Store>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn hash(password: &str) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, password.as_bytes())
}

impl Challenges {
    /// The pending passwords kept in `store`.
    pub fn new(store: Arc<Store>) -> Challenges {
        Challenges { store }
    }

    /// Creates a fresh password for the client with this fingerprint.
    pub fn issue(&self, client_fp: &str, ttl: Duration) -> Result<Zeroizing<String>, MefError> {
        let mut raw = Zeroizing::new([0u8; 18]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), raw.as_mut())
            .map_err(|_| MefError::Crypto("random number generator failed".into()))?;
        let password =
            Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*raw));
        let now = now_ms();
        let expires = now.saturating_add(ttl.as_millis().min(i64::MAX as u128) as i64);
        // Forgets everything expired, for every client, so the table cannot grow without bound.
        self.store.insert_challenge(
            client_fp,
            hash(&password).as_ref(),
            expires,
            now,
            MAX_PER_CLIENT,
        )?;
        Ok(password)
    }

    fn find(&self, client_fp: &str, presented: &str) -> Result<Option<ChallengeRow>, MefError> {
        let presented = hash(presented);
        // Constant-time comparison for every candidate; no early exit on the first match.
        let mut found = None;
        for row in self.store.challenges_for(client_fp)? {
            if bool::from(row.password_hash.ct_eq(presented.as_ref())) {
                found = Some(row);
            }
        }
        Ok(found)
    }

    /// Checks a presented password without consuming it.
    pub fn check(&self, client_fp: &str, presented: &str) -> Result<ChallengeCheck, MefError> {
        Ok(match self.find(client_fp, presented)? {
            Some(row) if row.expires_ms > now_ms() => ChallengeCheck::Valid,
            Some(_) => ChallengeCheck::Expired,
            None => ChallengeCheck::Unknown,
        })
    }

    /// Removes a presented password (single use). Returns whether this call claimed it: of
    /// concurrent calls, at any replica, at most one does.
    pub fn consume(&self, client_fp: &str, presented: &str) -> Result<bool, MefError> {
        match self.find(client_fp, presented)? {
            Some(row) => self.store.claim_challenge(row.id),
            None => Ok(false),
        }
    }

    /// [`Challenges::consume`] on the way to a refusal: a failure is logged (the password then
    /// expires with its TTL), the refusal stands.
    pub(crate) fn discard(&self, client_fp: &str, presented: &str) {
        if let Err(e) = self.consume(client_fp, presented) {
            log::warn!("could not discard a challengePassword: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_bound_to_client() {
        let dir = crate::scratch_dir("challenge");
        let c = Challenges::new(Arc::new(Store::open(&dir).unwrap()));
        let pw = c.issue("a", Duration::from_secs(60)).unwrap();
        assert_eq!(pw.len(), 24);
        assert_eq!(c.check("b", &pw).unwrap(), ChallengeCheck::Unknown);
        assert_eq!(c.check("a", "nope").unwrap(), ChallengeCheck::Unknown);
        assert_eq!(c.check("a", &pw).unwrap(), ChallengeCheck::Valid);
        assert!(!c.consume("b", &pw).unwrap());
        assert!(c.consume("a", &pw).unwrap());
        assert!(!c.consume("a", &pw).unwrap());
        assert_eq!(c.check("a", &pw).unwrap(), ChallengeCheck::Unknown);
        let pw = c.issue("a", Duration::ZERO).unwrap();
        assert_eq!(c.check("a", &pw).unwrap(), ChallengeCheck::Expired);
        // The per-client cap: the oldest goes first.
        let first = c.issue("a", Duration::from_secs(60)).unwrap();
        for _ in 0..MAX_PER_CLIENT {
            c.issue("a", Duration::from_secs(60)).unwrap();
        }
        assert_eq!(c.check("a", &first).unwrap(), ChallengeCheck::Unknown);
        // Only a hash is stored, never the password.
        let last = c.issue("c", Duration::from_secs(60)).unwrap();
        let db = std::fs::read(dir.join(crate::store::DB_FILE)).unwrap();
        let wal =
            std::fs::read(dir.join(format!("{}-wal", crate::store::DB_FILE))).unwrap_or_default();
        for bytes in [&db, &wal] {
            assert!(!bytes.windows(last.len()).any(|w| w == last.as_bytes()));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
