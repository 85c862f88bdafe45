//! The manual-approval simulation (RFC 7030 4.2.3: `202 Accepted` and `Retry-After` until the
//! request is approved): how many times each pending CSR has been presented.
//!
//! Entries are keyed by the authenticated client (certificate fingerprint or `psk:KpmID`) and
//! then by the SHA-256 of the CSR, so one client's requests can never touch another's: each
//! client holds at most [`MAX_PER_CLIENT`] pending CSRs (its oldest is dropped first), and an
//! entry expires after a TTL (the challengePassword it waits with expires then too). Kept in
//! memory, like the challengePasswords: a restart forgets them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many pending CSRs per client.
pub const MAX_PER_CLIENT: usize = 8;

struct Pending {
    csr_digest: String,
    attempts: u32,
    since: Instant,
}

/// The table of pending approvals.
#[derive(Default)]
pub struct Approvals {
    table: Mutex<HashMap<String, Vec<Pending>>>,
}

impl Approvals {
    /// Records one attempt of `client` with the CSR whose digest is `csr_digest`. Returns
    /// `true` while the CSR must still wait (answer 202): its first `polls` attempts within
    /// `ttl` of the first one. The attempt after those is approved and the entry forgotten.
    pub fn must_wait(&self, client: &str, csr_digest: &str, polls: u32, ttl: Duration) -> bool {
        if polls == 0 {
            return false;
        }
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        // Forget expired entries of every client, so the table stays bounded by the clients
        // active within one TTL.
        table.retain(|_, list| {
            list.retain(|p| now.duration_since(p.since) < ttl);
            !list.is_empty()
        });
        let list = table.entry(client.to_owned()).or_default();
        let i = match list.iter().position(|p| p.csr_digest == csr_digest) {
            Some(i) => i,
            None => {
                if list.len() >= MAX_PER_CLIENT {
                    list.remove(0);
                }
                list.push(Pending {
                    csr_digest: csr_digest.to_owned(),
                    attempts: 0,
                    since: now,
                });
                list.len() - 1
            }
        };
        if list[i].attempts < polls {
            list[i].attempts += 1;
            return true;
        }
        list.remove(i);
        if list.is_empty() {
            table.remove(client);
        }
        false
    }

    /// Pending entries of one client (tests).
    #[cfg(test)]
    fn pending(&self, client: &str) -> usize {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.get(client).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn counts_per_client_and_csr() {
        let a = Approvals::default();
        assert!(a.must_wait("alice", "csr1", 2, TTL));
        assert!(a.must_wait("alice", "csr1", 2, TTL));
        // The same CSR digest from another client is another entry.
        assert!(a.must_wait("mallory", "csr1", 2, TTL));
        assert!(!a.must_wait("alice", "csr1", 2, TTL));
        assert_eq!(a.pending("alice"), 0);
        assert_eq!(a.pending("mallory"), 1);
    }

    #[test]
    fn one_client_cannot_reset_another() {
        let a = Approvals::default();
        assert!(a.must_wait("alice", "csr", 1, TTL));
        for i in 0..10_050 {
            assert!(a.must_wait("mallory", &format!("junk{i}"), 1, TTL));
        }
        assert_eq!(a.pending("mallory"), MAX_PER_CLIENT);
        // Alice's one poll still counts: her next attempt is approved.
        assert!(!a.must_wait("alice", "csr", 1, TTL));
    }

    #[test]
    fn entries_expire_by_age() {
        let a = Approvals::default();
        assert!(a.must_wait("alice", "csr", 1, Duration::ZERO));
        // Expired: the next attempt starts a new wait instead of being approved.
        assert!(a.must_wait("alice", "csr", 1, Duration::ZERO));
        assert!(a.must_wait("bob", "csr", 1, Duration::ZERO));
        assert_eq!(a.pending("alice"), 0);
    }
}
