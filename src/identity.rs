//! The certificate subject identity: certSubjectType and certSubjectID of the CERT_PROV command
//! (TS-0003 8.3.9.7), and how each is carried in subjectAltName (TS-0003 10.1.1.5/7/8, 10.1.4).
//!
//! The grammar of the identifiers (the AE-ID, CSE-ID and Node-ID forms of TS-0001 7.2) and the
//! one subjectAltName entry each maps to live in [`crate::proto::identity`], shared with the
//! reference MEF; see the table there. In short:
//!
//! | subject | accepted | subjectAltName |
//! |---|---|---|
//! | AE   | `https://sp.example.com/cse01/CAE01`, `//sp.example.com/cse01/CAE01`, `/cse01/CAE01` (with the SP-ID) | URI `https://sp.example.com/cse01/CAE01` (10.1.1.5) |
//! | CSE  | `cse01.sp.example.com`, `//sp.example.com/cse01`, `/cse01` or `cse01` (with the SP-ID) | dNSName `cse01.sp.example.com` (10.1.1.7) |
//! | Node | `urn:oid:1.3.6.1.4.1.99999.1`, `1.3.6.1.4.1.99999.1` | URI `urn:oid:1.3.6.1.4.1.99999.1` (10.1.1.8) |
//!
//! A malformed value is [`Error::InvalidArgument`]: these are the certSubjectType /
//! certSubjectID verifications of TS-0003 8.3.9.7, whose failure is
//! MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS.

use crate::error::{Error, Result};
use crate::proto::identity::{self as m2m, M2mId};
use crate::proto::san::GeneralName;
use std::fmt;

pub use crate::proto::identity::{
    describe_general_name, general_name_eq, SpId, MAX_DNS_NAME_LEN, MAX_URI_LEN,
};

/// What the provisioned certificate is for (certSubjectType, TS-0003 8.3.9.7): the one type of
/// proto, shared with the MEF (ARCHITECTURE.md, "One source of facts"). TS-0003 defines exactly
/// these three, and the C ABI maps each to a constant: the enum is exhaustive.
pub use crate::proto::identity::SubjectType;

/// Parses a certSubjectType ("ae", "cse" or "node", ignoring ASCII case) as a bad argument of
/// this crate when it is none of them.
pub fn parse_subject_type(s: &str) -> Result<SubjectType> {
    s.parse()
        .map_err(|e: m2m::IdError| Error::invalid("certSubjectType", e.reason()))
}

/// A validated certificate subject identity (certSubjectType + certSubjectID).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectIdentity {
    subject_type: SubjectType,
    id: String,
    parsed: M2mId,
    sp_id: Option<SpId>,
}

impl SubjectIdentity {
    /// Validates `id` as the identifier `subject_type` calls for (TS-0003 8.3.9.7 certSubjectID
    /// checks) in any form [`crate::proto::identity`] accepts without an SP-ID: an AE-ID as its
    /// full URI or absolute (`//SP-ID/CSE-ID/AE-ID`), a CSE-ID as its public domain name or
    /// absolute (`//SP-ID/CSE-ID`), a Node-ID as a URI or a dotted OID. All ASCII, no wildcards.
    pub fn new(subject_type: SubjectType, id: impl Into<String>) -> Result<SubjectIdentity> {
        SubjectIdentity::parse(subject_type, id.into(), None)
    }

    /// As [`SubjectIdentity::new`], and the SP-relative forms (`/CSE-ID/AE-ID`, `S…`,
    /// `/CSE-ID`, a bare CSE-ID) resolve against `sp_id` (TS-0001 7.2).
    pub fn with_sp_id(
        subject_type: SubjectType,
        id: impl Into<String>,
        sp_id: &SpId,
    ) -> Result<SubjectIdentity> {
        SubjectIdentity::parse(subject_type, id.into(), Some(sp_id))
    }

    fn parse(subject_type: SubjectType, id: String, sp: Option<&SpId>) -> Result<SubjectIdentity> {
        let parsed = M2mId::parse(subject_type, &id, sp).map_err(|e| {
            Error::invalid(
                "certSubjectID",
                format!("{id:?} is not a valid {}: {e}", subject_type.id_name()),
            )
        })?;
        Ok(SubjectIdentity {
            subject_type,
            id,
            parsed,
            sp_id: sp.cloned(),
        })
    }

    /// The SP-ID relative forms were resolved against, when one was given.
    pub fn sp_id(&self) -> Option<&SpId> {
        self.sp_id.as_ref()
    }

    /// The subject type.
    pub fn subject_type(&self) -> SubjectType {
        self.subject_type
    }

    /// The identifier, as given.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The subjectAltName entry carrying this identity (TS-0003 10.1.4).
    pub fn general_name(&self) -> GeneralName {
        self.parsed.general_name().clone()
    }

    /// Reads an identity back from a subjectAltName entry. With `subject_type` given, the entry
    /// must have that type's form; without it, a dNSName is a CSE-ID, a URI with an authority
    /// (`scheme://host/…`) an AE-ID, and any other URI (a URN) a Node-ID.
    pub fn from_general_name(
        subject_type: Option<SubjectType>,
        name: &GeneralName,
    ) -> Result<SubjectIdentity> {
        let parsed = M2mId::from_general_name(subject_type, name)
            .map_err(|e| Error::invalid("certSubjectID", e.to_string()))?;
        Ok(SubjectIdentity {
            subject_type: parsed.subject_type(),
            id: parsed.san_value().to_owned(),
            parsed,
            sp_id: None,
        })
    }

    /// Whether `names` (a subjectAltName) carries this identity. DNS names compare without
    /// regard to ASCII case (RFC 5280 7.2); URIs compare with scheme and host case-insensitive
    /// and everything else exact (RFC 3986 6.2.2.1, RFC 5280 7.4).
    pub fn is_in(&self, names: &[GeneralName]) -> bool {
        names.iter().any(|n| self.matches(n))
    }

    /// Whether one subjectAltName entry is this identity.
    pub fn matches(&self, name: &GeneralName) -> bool {
        self.parsed.matches(name)
    }
}

impl fmt::Display for SubjectIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject_type.id_name(), self.id)
    }
}

/// The first name that holds a wildcard (`*`), described for an error: a dNSName, or the host
/// of a URI (a `*` in a URI path is no wildcard, RFC 3986 sub-delims). TS-0003 10.1.1.5,
/// 10.1.1.7, 10.1.1.8: certificates "shall not include wildcards"; the CSR (from the MEF's
/// CSR attributes) and the issued certificate are both held to it.
pub fn wildcard_general_name(names: &[GeneralName]) -> Option<String> {
    names
        .iter()
        .find(|name| match name {
            GeneralName::Dns(dns) => dns.contains('*'),
            GeneralName::Uri(uri) => match fluent_uri::Uri::parse(uri.as_str()) {
                Ok(parsed) => parsed.authority().is_some_and(|a| a.host().contains('*')),
                // Not a URI we can split: any `*` counts.
                Err(_) => uri.contains('*'),
            },
            GeneralName::Other(_) => false,
        })
        .map(describe_general_name)
}

/// A list of GeneralNames for messages.
pub fn describe_general_names(names: &[GeneralName]) -> String {
    if names.is_empty() {
        return "no names".into();
    }
    names
        .iter()
        .map(describe_general_name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(t: SubjectType, id: &str) -> SubjectIdentity {
        SubjectIdentity::new(t, id).unwrap_or_else(|e| panic!("{id:?} rejected: {e}"))
    }

    fn bad(t: SubjectType, id: &str) {
        match SubjectIdentity::new(t, id) {
            Err(Error::InvalidArgument { argument, .. }) => assert_eq!(argument, "certSubjectID"),
            other => panic!("{t:?} {id:?} accepted or wrong error: {other:?}"),
        }
    }

    #[test]
    fn subject_type_parse_and_display() {
        for (s, t) in [
            ("ae", SubjectType::Ae),
            ("AE", SubjectType::Ae),
            ("Cse", SubjectType::Cse),
            ("NODE", SubjectType::Node),
        ] {
            let parsed: SubjectType = s.parse().unwrap();
            assert_eq!(parsed, t);
            assert_eq!(parsed.to_string().parse::<SubjectType>().unwrap(), t);
        }
        let err = parse_subject_type("mn").unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidArgument {
                argument: "certSubjectType",
                ..
            }
        ));
        assert!(
            err.to_string().contains("\"mn\" is not a subject type"),
            "{err}"
        );
        assert_eq!(SubjectType::Cse.to_string(), "cse");
    }

    #[test]
    fn ae_ids() {
        let id = ok(SubjectType::Ae, "https://sp.example.com/cse01/CAE01");
        assert_eq!(
            id.general_name(),
            GeneralName::Uri("https://sp.example.com/cse01/CAE01".into())
        );
        ok(SubjectType::Ae, "coaps://sp.example.com:5684/cse01/Sae-1");
        bad(SubjectType::Ae, "CAE01"); // relative
        bad(SubjectType::Ae, "/cse01/CAE01"); // SP-relative, no SP-ID known
        bad(SubjectType::Ae, "urn:oid:1.2.3"); // no host
        bad(SubjectType::Ae, "https://sp.example.com/"); // no AE path
        bad(SubjectType::Ae, "https://*.example.com/cse01/CAE01"); // wildcard
        bad(SubjectType::Ae, "https://sp.example.com/cse01/*");
        bad(SubjectType::Ae, "https://sp.exämple.com/cse01/CAE01"); // not ASCII
        bad(SubjectType::Ae, "https://user@sp.example.com/cse01/CAE01");
        bad(SubjectType::Ae, "https://192.0.2.1/cse01/CAE01");
        bad(SubjectType::Ae, "https://sp.example.com/cse01/CAE01#x");
        bad(SubjectType::Ae, "https://sp.example.com/cse 01/CAE01");
        bad(SubjectType::Ae, "https://sp.example.com:99999/c/a");
        bad(SubjectType::Ae, "");
        let long = format!("https://sp.example.com/{}", "a".repeat(MAX_URI_LEN));
        bad(SubjectType::Ae, &long);
    }

    #[test]
    fn onem2m_forms_map_to_one_subject_alt_name() {
        // The form of the issue: SP-ID + SP-relative AE-ID (TS-0001 7.2).
        let ae = ok(SubjectType::Ae, "//example.net/mn-cse/CAE-device1");
        assert_eq!(ae.id(), "//example.net/mn-cse/CAE-device1");
        assert_eq!(
            ae.general_name(),
            GeneralName::Uri("https://example.net/mn-cse/CAE-device1".into())
        );
        let sp = SpId::parse("//example.net").unwrap();
        let relative =
            SubjectIdentity::with_sp_id(SubjectType::Ae, "/mn-cse/CAE-device1", &sp).unwrap();
        assert_eq!(relative.general_name(), ae.general_name());
        let cse = SubjectIdentity::with_sp_id(SubjectType::Cse, "/mn-cse", &sp).unwrap();
        assert_eq!(
            cse.general_name(),
            GeneralName::Dns("mn-cse.example.net".into())
        );
        assert_eq!(
            ok(SubjectType::Cse, "//example.net/mn-cse").general_name(),
            cse.general_name()
        );
        match SubjectIdentity::new(SubjectType::Cse, "mn-cse") {
            Err(e @ Error::InvalidArgument { argument, .. }) => {
                assert_eq!(argument, "certSubjectID");
                assert_eq!(e.class(), crate::ErrorClass::BadArguments);
                assert!(e.to_string().contains("SP-ID"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cse_ids() {
        let id = ok(SubjectType::Cse, "cse01.sp.example.com");
        assert_eq!(
            id.general_name(),
            GeneralName::Dns("cse01.sp.example.com".into())
        );
        ok(SubjectType::Cse, "in-cse.m2m-sp.org");
        bad(SubjectType::Cse, "cse01"); // single label
        bad(SubjectType::Cse, "*.sp.example.com");
        bad(SubjectType::Cse, "cse01.sp.example.com."); // trailing dot
        bad(SubjectType::Cse, "-cse.example.com");
        bad(SubjectType::Cse, "cse_01.example.com");
        bad(SubjectType::Cse, "192.0.2.1");
        bad(SubjectType::Cse, "https://cse01.example.com");
        bad(SubjectType::Cse, &format!("{}.example.com", "a".repeat(64)));
        bad(
            SubjectType::Cse,
            &format!("{}.com", vec!["a".repeat(60); 5].join(".")),
        );
    }

    #[test]
    fn node_ids() {
        ok(SubjectType::Node, "urn:oid:1.3.6.1.4.1.99999.1.2.3");
        ok(SubjectType::Node, "urn:imei:490154203237518");
        ok(SubjectType::Node, "urn:dev:mac:0024befffe804ff1");
        bad(SubjectType::Node, "urn:oid:1.3.x");
        bad(SubjectType::Node, "urn:oid:");
        bad(SubjectType::Node, "urn:x:abc"); // NID too short
        bad(SubjectType::Node, "1"); // one arc is not an OID
                                     // A dotted OID (TS-0001 Annex H) is carried as urn:oid (RFC 3061).
        assert_eq!(
            ok(SubjectType::Node, "1.3.6.1.4.1").general_name(),
            GeneralName::Uri("urn:oid:1.3.6.1.4.1".into())
        );
        bad(SubjectType::Node, "urn:oid:1.2.*");
        bad(SubjectType::Node, "cse01.sp.example.com");
    }

    #[test]
    fn from_general_name_and_matching() {
        let cse = SubjectIdentity::from_general_name(
            None,
            &GeneralName::Dns("cse01.sp.example.com".into()),
        )
        .unwrap();
        assert_eq!(cse.subject_type(), SubjectType::Cse);
        let ae = SubjectIdentity::from_general_name(
            None,
            &GeneralName::Uri("https://sp.example.com/cse01/CAE01".into()),
        )
        .unwrap();
        assert_eq!(ae.subject_type(), SubjectType::Ae);
        let node =
            SubjectIdentity::from_general_name(None, &GeneralName::Uri("urn:oid:1.2.3".into()))
                .unwrap();
        assert_eq!(node.subject_type(), SubjectType::Node);
        assert!(SubjectIdentity::from_general_name(
            Some(SubjectType::Cse),
            &GeneralName::Uri("urn:oid:1.2.3".into())
        )
        .is_err());

        let names = vec![
            GeneralName::Other(vec![0x87, 4, 192, 0, 2, 1]),
            GeneralName::Dns("CSE01.SP.example.com".into()),
            GeneralName::Uri("HTTPS://SP.EXAMPLE.COM/cse01/CAE01".into()),
        ];
        assert!(cse.is_in(&names));
        assert!(ae.is_in(&names));
        assert!(!node.is_in(&names));
        // Paths are case-sensitive.
        assert!(!ae.is_in(&[GeneralName::Uri(
            "https://sp.example.com/CSE01/cae01".into()
        )]));
        // The same text in the wrong GeneralName form is not the identity.
        assert!(!cse.is_in(&[GeneralName::Uri("cse01.sp.example.com".into())]));
        assert!(node.is_in(&[GeneralName::Uri("URN:OID:1.2.3".into())]));
        assert!(!node.is_in(&[GeneralName::Uri("urn:oid:1.2.4".into())]));
    }

    #[test]
    fn display() {
        let ae = ok(SubjectType::Ae, "https://sp.example.com/cse01/CAE01");
        assert_eq!(ae.to_string(), "AE-ID https://sp.example.com/cse01/CAE01");
        assert_eq!(
            describe_general_names(&[ae.general_name()]),
            "URI:https://sp.example.com/cse01/CAE01"
        );
    }
}
