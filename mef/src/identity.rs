//! oneM2M identities the MEF associates with authenticated clients, and how they map to the
//! subjectAltName of a certificate (TS-0003 10.1.1.5, 10.1.1.7, 10.1.1.8). The grammar and the
//! mapping are `onem2m_est_proto::identity`, the same code the client library uses.

use crate::MefError;
use onem2m_est_proto::identity::M2mId;
use onem2m_est_proto::san::GeneralName;
use std::fmt;

pub use onem2m_est_proto::identity::SpId;

/// The kind of oneM2M identifier a certificate is issued for (AE-ID: a URI subjectAltName,
/// 10.1.1.5; CSE-ID: a dNSName, 10.1.1.7; Node-ID: a URI, 10.1.1.8): proto's type, the one the
/// client library uses too; it parses "ae", "cse" or "node" (ignoring case) for the command line
/// and the database.
pub use onem2m_est_proto::identity::SubjectType;

/// A validated identity: its type, and its identifier as the subjectAltName value it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    subject_type: SubjectType,
    parsed: M2mId,
}

impl Identity {
    /// Validates `subject_id` for `subject_type` with the grammar and mapping shared with the
    /// client ([`onem2m_est_proto::identity`]): AE-IDs as their full URI
    /// (`https://sp.example.com/cse01/CAE01`) or absolute (`//sp.example.com/cse01/CAE01`),
    /// CSE-IDs as their public domain name (`cse01.sp.example.com`) or absolute
    /// (`//sp.example.com/cse01`), Node-IDs as URIs (`urn:oid:1.3.6.1.4.1.99999.1.2.3`) or
    /// dotted OIDs. Wildcards are refused (TS-0003 10.1.1.5/7/8). SP-relative forms need
    /// [`Identity::with_sp_id`].
    pub fn new(subject_type: SubjectType, subject_id: &str) -> Result<Identity, MefError> {
        Identity::parse(subject_type, subject_id, None)
    }

    /// As [`Identity::new`], and SP-relative forms (`/CSE-ID/AE-ID`, `/CSE-ID`, a bare
    /// CSE-ID) resolve against `sp_id` (TS-0001 7.2).
    pub fn with_sp_id(
        subject_type: SubjectType,
        subject_id: &str,
        sp_id: &SpId,
    ) -> Result<Identity, MefError> {
        Identity::parse(subject_type, subject_id, Some(sp_id))
    }

    fn parse(
        subject_type: SubjectType,
        subject_id: &str,
        sp_id: Option<&SpId>,
    ) -> Result<Identity, MefError> {
        let parsed = M2mId::parse(subject_type, subject_id, sp_id).map_err(|e| {
            MefError::InvalidIdentity(format!("{subject_type} identifier {subject_id:?}: {e}"))
        })?;
        Ok(Identity {
            subject_type,
            parsed,
        })
    }

    /// The subject type.
    pub fn subject_type(&self) -> SubjectType {
        self.subject_type
    }

    /// The identifier as its subjectAltName value (what the registry stores: it parses back
    /// without an SP-ID).
    pub fn subject_id(&self) -> &str {
        self.parsed.san_value()
    }

    /// The single subjectAltName entry that carries this identity.
    pub fn general_name(&self) -> GeneralName {
        self.parsed.general_name().clone()
    }

    /// The host name the identity names: a CSE-ID itself, the host of an AE-ID URI (TS-0003
    /// 10.1.1.5: "the hostname part of the full URI representation of the AE-ID"); none for a
    /// Node-ID (a URN, 10.1.1.8) or an AE-ID whose host is an IP literal.
    pub fn host(&self) -> Option<&str> {
        match self.subject_type {
            SubjectType::Cse => Some(self.subject_id()),
            SubjectType::Node => None,
            SubjectType::Ae => {
                let rest = self.subject_id().split_once("://")?.1;
                let authority = rest.split(['/', '?', '#']).next()?;
                let host_port = authority.rsplit('@').next()?;
                if host_port.starts_with('[') {
                    return None;
                }
                let host = host_port.split(':').next()?;
                // The SAN value is validated already (proto::identity): only IP literals
                // name no host a dNSName constraint can cover.
                (!host.is_empty() && host.parse::<std::net::Ipv4Addr>().is_err()).then_some(host)
            }
        }
    }

    /// Whether the identity lies within one of the SP domains (RFC 5280 4.2.1.10 dNSName
    /// subtree semantics: the domain itself or any name below it, case-insensitive). Node-IDs
    /// name no host and are not constrained; an empty list constrains nothing.
    pub fn within_domains(&self, domains: &[String]) -> bool {
        if domains.is_empty() || self.subject_type == SubjectType::Node {
            return true;
        }
        let Some(host) = self.host() else {
            return false;
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        domains.iter().any(|d| {
            let d = d.trim_start_matches('.').to_ascii_lowercase();
            host == d || host.ends_with(&format!(".{d}"))
        })
    }

    /// Whether a subjectAltName entry is this identity: DNS names without regard to case
    /// (RFC 5280 7.2), URIs with scheme and host case-insensitive (RFC 5280 7.4), as the
    /// client compares them.
    pub fn matches(&self, name: &GeneralName) -> bool {
        self.parsed.matches(name)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject_type, self.subject_id())
    }
}

/// SHA-256 fingerprint (lower-case hex) of a certificate's DER, the key of the identity registry.
pub fn fingerprint(cert_der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, cert_der).as_ref())
}

/// Normalises a fingerprint given by an operator: hex digits, optionally separated by ':',
/// case-insensitive; must be 32 bytes.
pub fn normalize_fingerprint(text: &str) -> Result<String, MefError> {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if cleaned.len() != 64 || !cleaned.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(MefError::InvalidIdentity(
            "a fingerprint is the SHA-256 of the certificate DER: 64 hex digits".into(),
        ));
    }
    Ok(cleaned)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    // Per request (fingerprints): one allocation instead of a formatted String per byte.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(Identity::new(SubjectType::Ae, "https://sp.example.com/cse01/CAE01").is_ok());
        assert!(Identity::new(SubjectType::Ae, "CAE01").is_err());
        assert!(Identity::new(SubjectType::Ae, "https:///x").is_err());
        assert!(Identity::new(SubjectType::Ae, "https://*.example.com/x").is_err());
        assert!(Identity::new(SubjectType::Cse, "cse01.sp.example.com").is_ok());
        assert!(Identity::new(SubjectType::Cse, "*.sp.example.com").is_err());
        assert!(Identity::new(SubjectType::Cse, "a b.com").is_err());
        assert!(Identity::new(SubjectType::Node, "urn:oid:1.3.6.1.4.1.99999.1.2.3").is_ok());
        assert!(Identity::new(SubjectType::Node, "1").is_err());
        // Forms of TS-0001 7.2, mapped as the client maps them (proto::identity).
        let ae = Identity::new(SubjectType::Ae, "//example.net/mn-cse/CAE-device1").unwrap();
        assert_eq!(ae.subject_id(), "https://example.net/mn-cse/CAE-device1");
        assert!(Identity::new(SubjectType::Cse, "cse01").is_err());
        let sp = SpId::parse("//example.net").unwrap();
        let cse = Identity::with_sp_id(SubjectType::Cse, "cse01", &sp).unwrap();
        assert_eq!(
            cse.general_name(),
            GeneralName::Dns("cse01.example.net".into())
        );
        assert!(Identity::new(SubjectType::Node, "").is_err());
    }

    #[test]
    fn sp_domains() {
        let d = vec!["sp.example.com".to_string()];
        let ok = |t, id| {
            Identity::new(t, id)
                .unwrap_or_else(|e| panic!("{id}: {e}"))
                .within_domains(&d)
        };
        assert!(ok(SubjectType::Cse, "sp.example.com"));
        assert!(ok(SubjectType::Cse, "cse01.SP.example.com"));
        assert!(!ok(SubjectType::Cse, "cse01.evilsp.example.com"));
        assert!(!ok(SubjectType::Cse, "sp.example.com.evil.net"));
        assert!(ok(
            SubjectType::Ae,
            "https://sp.example.com:8443/cse01/CAE01"
        ));
        // userinfo is refused by the grammar itself (proto::identity), before any domain check.
        assert!(Identity::new(SubjectType::Ae, "https://u@m2m.sp.example.com/x").is_err());
        assert!(ok(SubjectType::Ae, "https://m2m.sp.example.com/x"));
        assert!(!ok(
            SubjectType::Ae,
            "https://other.example.com/sp.example.com"
        ));
        // An IP literal is no public domain name: refused by the grammar.
        assert!(Identity::new(SubjectType::Ae, "https://[::1]/cse01/CAE01").is_err());
        assert!(ok(SubjectType::Node, "urn:oid:1.3.6.1.4.1.99999.1"));
        assert!(Identity::new(SubjectType::Cse, "x.other.net")
            .unwrap()
            .within_domains(&[]));
    }

    #[test]
    fn fingerprints() {
        let fp = fingerprint(b"x");
        assert_eq!(
            fp,
            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
        );
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(normalize_fingerprint(&fp.to_uppercase()).unwrap(), fp);
        assert!(normalize_fingerprint("abcd").is_err());
    }
}
