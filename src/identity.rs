//! The certificate subject identity: certSubjectType and certSubjectID of the CERT_PROV command
//! (TS-0003 8.3.9.7), and how each is carried in subjectAltName (TS-0003 10.1.1.5/7/8, 10.1.4).
//!
//! The mapping is fixed team-wide (the MEF uses the same):
//!
//! | subject | GeneralName | value | example |
//! |---|---|---|---|
//! | AE   | uniformResourceIdentifier | the full URI of the AE-ID (10.1.1.5) | `https://sp.example.com/cse01/CAE01` |
//! | CSE  | dNSName | the public domain name of the CSE-ID (10.1.1.7) | `cse01.sp.example.com` |
//! | Node | uniformResourceIdentifier | the Node-ID as a URI (10.1.1.8) | `urn:oid:1.3.6.1.4.1.99999.1.2.3` |
//!
//! Every value is ASCII (IA5String, RFC 5280 4.2.1.6) and never a wildcard (TS-0003 10.1.1.5,
//! 10.1.1.7, 10.1.1.8: "shall not include wildcards"). A malformed value is
//! [`Error::InvalidArgument`]: these are the certSubjectType / certSubjectID verifications of
//! TS-0003 8.3.9.7, whose failure is MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS.

use crate::error::{Error, Result};
use crate::proto::san::GeneralName;
use std::fmt;
use std::str::FromStr;

/// Longest DNS name accepted: 253 characters of text (RFC 1035 2.3.4, 255 octets on the wire).
pub const MAX_DNS_NAME_LEN: usize = 253;
/// Longest URI accepted in a subjectAltName. RFC 5280 sets no upper bound; this keeps
/// certificates small for constrained devices (TS-0003 10.1.1.3) and is far above any AE-ID.
pub const MAX_URI_LEN: usize = 1024;
/// Longest DNS label (RFC 1035 2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// What the provisioned certificate is for (certSubjectType, TS-0003 8.3.9.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectType {
    /// An Application Entity: the certificate carries the AE-ID.
    Ae,
    /// A Common Services Entity: the certificate carries the CSE-ID.
    Cse,
    /// A Node: the certificate carries the Node-ID.
    Node,
}

impl SubjectType {
    /// The name of the identifier this subject type carries ("AE-ID", "CSE-ID", "Node-ID").
    pub fn id_name(self) -> &'static str {
        match self {
            SubjectType::Ae => "AE-ID",
            SubjectType::Cse => "CSE-ID",
            SubjectType::Node => "Node-ID",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SubjectType::Ae => "ae",
            SubjectType::Cse => "cse",
            SubjectType::Node => "node",
        }
    }
}

/// Lower case ("ae", "cse", "node"), so it parses back with [`FromStr`].
impl fmt::Display for SubjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses "ae", "cse" or "node", ignoring ASCII case.
impl FromStr for SubjectType {
    type Err = Error;

    fn from_str(s: &str) -> Result<SubjectType> {
        [SubjectType::Ae, SubjectType::Cse, SubjectType::Node]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(
                    "certSubjectType",
                    format!("{s:?} is not a subject type (expected ae, cse or node)"),
                )
            })
    }
}

/// A validated certificate subject identity (certSubjectType + certSubjectID).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubjectIdentity {
    subject_type: SubjectType,
    id: String,
}

impl SubjectIdentity {
    /// Validates `id` as the identifier `subject_type` calls for (TS-0003 8.3.9.7 certSubjectID
    /// checks; name forms of 10.1.1.5/7/8): an AE-ID as an absolute URI whose host is a DNS
    /// name, a CSE-ID as a DNS host name (RFC 1123) of at least two labels, a Node-ID as an
    /// absolute URI (a URN such as `urn:oid:…` or `urn:imei:…`). All ASCII, no wildcards.
    pub fn new(subject_type: SubjectType, id: impl Into<String>) -> Result<SubjectIdentity> {
        let id = id.into();
        let bad = |reason: String| {
            Error::invalid(
                "certSubjectID",
                format!("{id:?} is not a valid {}: {reason}", subject_type.id_name()),
            )
        };
        check_common(&id).map_err(bad)?;
        match subject_type {
            SubjectType::Ae => check_ae_uri(&id),
            SubjectType::Cse => check_dns_name(&id),
            SubjectType::Node => check_node_uri(&id),
        }
        .map_err(bad)?;
        Ok(SubjectIdentity { subject_type, id })
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
        match self.subject_type {
            SubjectType::Cse => GeneralName::Dns(self.id.clone()),
            SubjectType::Ae | SubjectType::Node => GeneralName::Uri(self.id.clone()),
        }
    }

    /// Reads an identity back from a subjectAltName entry. With `subject_type` given, the entry
    /// must have that type's form; without it, a dNSName is a CSE-ID, a URI with an authority
    /// (`scheme://host/…`) an AE-ID, and any other URI (a URN) a Node-ID.
    pub fn from_general_name(
        subject_type: Option<SubjectType>,
        name: &GeneralName,
    ) -> Result<SubjectIdentity> {
        let subject_type = match (subject_type, name) {
            (Some(SubjectType::Cse), GeneralName::Dns(_)) => SubjectType::Cse,
            (Some(t @ (SubjectType::Ae | SubjectType::Node)), GeneralName::Uri(_)) => t,
            (None, GeneralName::Dns(_)) => SubjectType::Cse,
            (None, GeneralName::Uri(uri)) => {
                if uri.contains("://") {
                    SubjectType::Ae
                } else {
                    SubjectType::Node
                }
            }
            (t, other) => {
                return Err(Error::invalid(
                    "certSubjectID",
                    format!(
                        "subjectAltName entry {} cannot carry {}",
                        describe_general_name(other),
                        t.map_or("a oneM2M identity", SubjectType::id_name)
                    ),
                ))
            }
        };
        let id = match name {
            GeneralName::Dns(s) | GeneralName::Uri(s) => s.clone(),
            GeneralName::Other(_) => unreachable!("rejected above"),
        };
        SubjectIdentity::new(subject_type, id)
    }

    /// Whether `names` (a subjectAltName) carries this identity. DNS names compare without
    /// regard to ASCII case (RFC 5280 7.2); URIs compare with scheme and host case-insensitive
    /// and everything else exact (RFC 3986 6.2.2.1, RFC 5280 7.4).
    pub fn is_in(&self, names: &[GeneralName]) -> bool {
        names.iter().any(|n| self.matches(n))
    }

    /// Whether one subjectAltName entry is this identity.
    pub fn matches(&self, name: &GeneralName) -> bool {
        general_name_eq(&self.general_name(), name)
    }
}

impl fmt::Display for SubjectIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject_type.id_name(), self.id)
    }
}

/// Whether two subjectAltName entries name the same thing: dNSNames without regard to ASCII
/// case (RFC 5280 7.2), URIs with scheme and host case-insensitive (RFC 5280 7.4), other
/// forms byte for byte.
pub fn general_name_eq(a: &GeneralName, b: &GeneralName) -> bool {
    match (a, b) {
        (GeneralName::Dns(x), GeneralName::Dns(y)) => x.eq_ignore_ascii_case(y),
        (GeneralName::Uri(x), GeneralName::Uri(y)) => uri_eq(x, y),
        (GeneralName::Other(x), GeneralName::Other(y)) => x == y,
        _ => false,
    }
}

/// A GeneralName for messages: `dNSName "x"`, `uniformResourceIdentifier "y"`.
pub fn describe_general_name(name: &GeneralName) -> String {
    match name {
        GeneralName::Dns(d) => format!("dNSName {d:?}"),
        GeneralName::Uri(u) => format!("uniformResourceIdentifier {u:?}"),
        GeneralName::Other(der) => format!(
            "GeneralName with tag 0x{:02x}",
            der.first().copied().unwrap_or(0)
        ),
    }
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

/// Rules for every form: non-empty printable ASCII (IA5String, RFC 5280 4.2.1.6), no white
/// space, no wildcard.
fn check_common(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("it is empty".into());
    }
    if !id.is_ascii() {
        return Err("it must be ASCII (IA5String, RFC 5280 4.2.1.6)".into());
    }
    if id.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("it contains white space or control characters".into());
    }
    if id.contains('*') {
        return Err("wildcards are not allowed (TS-0003 10.1.1.5/7/8)".into());
    }
    Ok(())
}

/// An RFC 1123 host name: labels of letters, digits and hyphens, 1 to 63 characters, not
/// starting or ending with a hyphen; at least two labels (a public domain name, TS-0001);
/// not an IPv4 address; no trailing dot.
fn check_dns_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_DNS_NAME_LEN {
        return Err(format!("longer than {MAX_DNS_NAME_LEN} characters"));
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("an IP address is not a domain name".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("a public domain name has at least two labels".into());
    }
    for label in &labels {
        if label.is_empty() {
            return Err("empty label (leading, trailing or double dot)".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "label {label:?} is longer than {MAX_LABEL_LEN} characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "label {label:?} may hold only letters, digits and hyphens (RFC 1123 2.1)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with a hyphen"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the top-level label is all digits".into());
    }
    Ok(())
}

/// An absolute URI (RFC 3986 4.3) as RFC 5280 4.2.1.6 requires of uniformResourceIdentifier:
/// scheme and scheme-specific part; when there is an authority, its host is a fully qualified
/// domain name. No fragment: an identifier names the entity, not a part of a resource.
fn parse_absolute_uri(id: &str) -> Result<fluent_uri::Uri<&str>, String> {
    if id.len() > MAX_URI_LEN {
        return Err(format!("longer than {MAX_URI_LEN} characters"));
    }
    let uri = fluent_uri::Uri::parse(id).map_err(|e| format!("not a URI (RFC 3986): {e}"))?;
    if uri.has_fragment() {
        return Err("a fragment is not allowed".into());
    }
    Ok(uri)
}

/// AE-ID: the full URI (TS-0003 10.1.1.5), e.g. `https://sp.example.com/cse01/CAE01`. The host
/// must be a DNS name because the issuing CA's nameConstraints apply to it (10.1.1.5).
fn check_ae_uri(id: &str) -> Result<(), String> {
    let uri = parse_absolute_uri(id)?;
    let authority = uri
        .authority()
        .ok_or("the full URI of an AE-ID has a host (scheme://host/path)")?;
    if authority.has_userinfo() {
        return Err("userinfo is not allowed".into());
    }
    check_dns_name(authority.host()).map_err(|e| format!("host {:?}: {e}", authority.host()))?;
    if let Some(port) = authority.port() {
        if port.as_str().is_empty() || authority.port_to_u16().ok().flatten().is_none() {
            return Err(format!("port {:?} is not a valid port", port.as_str()));
        }
    }
    if uri.has_query() {
        return Err("a query is not allowed".into());
    }
    let path = uri.path().as_str();
    if path.trim_matches('/').is_empty() {
        return Err("the path naming the AE is missing".into());
    }
    Ok(())
}

/// Node-ID as a URI (TS-0003 10.1.1.8), typically a URN (RFC 8141): `urn:oid:<dotted OID>`
/// (the OID-based M2M Device ID, TS-0001 Annex H) or `urn:imei:…`. Any absolute URI is accepted;
/// URNs are checked for a NID and an NSS, and `urn:oid:` for a dotted numeric OID.
fn check_node_uri(id: &str) -> Result<(), String> {
    let uri = parse_absolute_uri(id)?;
    if let Some(authority) = uri.authority() {
        check_dns_name(authority.host())
            .map_err(|e| format!("host {:?}: {e}", authority.host()))?;
    } else if uri.path().as_str().is_empty() {
        return Err("the URI has no scheme-specific part".into());
    }
    if uri.scheme().as_str().eq_ignore_ascii_case("urn") {
        let rest = uri.path().as_str();
        let (nid, nss) = rest
            .split_once(':')
            .ok_or("a URN is urn:<NID>:<NSS> (RFC 8141)")?;
        let nid_ok = (2..=32).contains(&nid.len())
            && nid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !nid.starts_with('-');
        if !nid_ok {
            return Err(format!("URN namespace {nid:?} is malformed (RFC 8141 2)"));
        }
        if nss.is_empty() {
            return Err("the URN's namespace-specific string is empty".into());
        }
        if nid.eq_ignore_ascii_case("oid") {
            let arcs: Vec<&str> = nss.split('.').collect();
            let numeric = arcs
                .iter()
                .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
            if !numeric || arcs.len() < 2 {
                return Err(format!("{nss:?} is not a dotted object identifier"));
            }
        }
    }
    Ok(())
}

/// URI equivalence for identity matching: scheme and host without regard to case (RFC 3986
/// 6.2.2.1); for URNs also the NID (RFC 8141 3.1); the rest exact. Unparsable values compare
/// exactly.
fn uri_eq(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (Ok(ua), Ok(ub)) = (fluent_uri::Uri::parse(a), fluent_uri::Uri::parse(b)) else {
        return false;
    };
    if !ua
        .scheme()
        .as_str()
        .eq_ignore_ascii_case(ub.scheme().as_str())
    {
        return false;
    }
    match (ua.authority(), ub.authority()) {
        (None, None) => {}
        (Some(x), Some(y)) => {
            if !x.host().eq_ignore_ascii_case(y.host())
                || x.port().map(|p| p.as_str()) != y.port().map(|p| p.as_str())
                || x.userinfo().map(|u| u.as_str()) != y.userinfo().map(|u| u.as_str())
            {
                return false;
            }
        }
        _ => return false,
    }
    let (pa, pb) = (ua.path().as_str(), ub.path().as_str());
    let paths_equal = if ua.scheme().as_str().eq_ignore_ascii_case("urn") {
        match (pa.split_once(':'), pb.split_once(':')) {
            (Some((na, sa)), Some((nb, sb))) => na.eq_ignore_ascii_case(nb) && sa == sb,
            _ => pa == pb,
        }
    } else {
        pa == pb
    };
    paths_equal
        && ua.query().map(|q| q.as_str()) == ub.query().map(|q| q.as_str())
        && ua.fragment().map(|f| f.as_str()) == ub.fragment().map(|f| f.as_str())
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
        let err = "mn".parse::<SubjectType>().unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidArgument {
                argument: "certSubjectType",
                ..
            }
        ));
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
        bad(SubjectType::Ae, "/cse01/CAE01"); // no scheme
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
        bad(SubjectType::Node, "1.3.6.1.4.1"); // not a URI
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
            "uniformResourceIdentifier \"https://sp.example.com/cse01/CAE01\""
        );
    }
}
