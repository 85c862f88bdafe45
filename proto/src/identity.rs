//! oneM2M identifiers (AE-ID, CSE-ID, Node-ID in the forms of TS-0001 7.2) and the one
//! subjectAltName entry each maps to (TS-0003 10.1.1.5/7/8, 10.1.4). The client library and the
//! reference MEF both call [`M2mId::parse`], so they accept the same inputs and put the same
//! name in a CSR or certificate.
//!
//! # Accepted forms and their subjectAltName
//!
//! `SP` is the M2M-SP-ID's domain (TS-0001 7.2: the SP-ID is `//` + a domain name). Forms marked
//! "needs SP-ID" are SP-relative: they name an entity only inside one service provider, so they
//! are accepted only when the caller knows the SP-ID ([`SpId`]); otherwise they are refused with
//! a reason saying so.
//!
//! | type | input form | example | subjectAltName |
//! |---|---|---|---|
//! | AE | full URI (10.1.1.5) | `https://sp.example.com/cse01/CAE01` | `URI:` the same text |
//! | AE | absolute AE-ID `//SP/CSE-ID/AE-ID-Stem` | `//example.net/mn-cse/CAE-device1` | `URI:https://example.net/mn-cse/CAE-device1` |
//! | AE | absolute S-AE-ID `//SP/S…` | `//example.net/Sapp1` | `URI:https://example.net/Sapp1` |
//! | AE | SP-relative `/CSE-ID/AE-ID-Stem` (needs SP-ID) | `/mn-cse/CAE-device1` | `URI:https://SP/mn-cse/CAE-device1` |
//! | AE | SP-relative S-AE-ID `S…` (needs SP-ID) | `Sapp1` | `URI:https://SP/Sapp1` |
//! | CSE | public domain name (10.1.1.7) | `cse01.sp.example.com` | `DNS:` the same text |
//! | CSE | absolute `//SP/CSE-ID` | `//example.net/mn-cse` | `DNS:mn-cse.example.net` |
//! | CSE | SP-relative `/CSE-ID` (needs SP-ID) | `/mn-cse` | `DNS:mn-cse.SP` |
//! | CSE | bare CSE-ID (needs SP-ID) | `mn-cse` | `DNS:mn-cse.SP` |
//! | Node | URI, typically a URN (10.1.1.8) | `urn:oid:1.3.6.1.4.1.99999.1` | `URI:` the same text |
//! | Node | dotted OID (TS-0001 Annex H M2M-Node-ID) | `1.3.6.1.4.1.99999.1` | `URI:urn:oid:1.3.6.1.4.1.99999.1` |
//!
//! Why these mappings:
//! - AE: 10.1.1.5 wants "the full URI representation of the AE-ID", and an RFC 5280 4.2.1.6
//!   uniformResourceIdentifier must be an absolute URI with a scheme. The oneM2M absolute form
//!   `//SP/…` is an RFC 3986 4.2 network-path reference, which takes its scheme from the base it
//!   is resolved against (RFC 3986 5.2.2); we resolve it with `https`, the scheme of every
//!   estBaseURI (RFC 7030 3.2.2). The host is the SP domain, the name the issuing CA's
//!   nameConstraints apply to (10.1.1.5), and `https://SP/CSE-ID/AE-ID` is the form earlier
//!   versions of this project already wrote, so existing identities keep their certificates.
//! - CSE: 10.1.1.7 wants a dNSName holding "the public domain name representation of the
//!   CSE-ID". The CSE-ID becomes the leftmost label under the SP domain (`CSE-ID.SP`), so the
//!   CSE-ID must be a DNS label (RFC 1123). A name of two or more labels is taken to be that
//!   public domain name already. A single label is a bare CSE-ID, unique only inside its SP.
//! - Node: 10.1.1.8 puts the Node-ID in subjectAltName; as a URI it needs a scheme, and the
//!   `urn:oid:` namespace (RFC 3061) is the URI of an object identifier.
//!
//! Every value is ASCII (IA5String, RFC 5280 4.2.1.6) and never holds a wildcard (TS-0003
//! 10.1.1.5, 10.1.1.7, 10.1.1.8: "shall not include wildcards"). CSE-IDs and AE-ID-Stems in the
//! oneM2M forms use the RFC 3986 2.3 unreserved characters, so they sit in a URI path without
//! percent-encoding; an AE-ID-Stem starts with `C` or `S` (TS-0001 7.2).
//!
//! Where the MEF's CSR attributes name the identity, that name is the source of truth (RFC 7030
//! 4.5.2); this module only says what a configured identifier means.

use crate::san::GeneralName;
use std::fmt;

/// Longest DNS name accepted: 253 characters of text (RFC 1035 2.3.4, 255 octets on the wire).
pub const MAX_DNS_NAME_LEN: usize = 253;
/// Longest URI accepted in a subjectAltName. RFC 5280 sets no upper bound; this keeps
/// certificates small for constrained devices (TS-0003 10.1.1.3) and is far above any AE-ID.
pub const MAX_URI_LEN: usize = 1024;
/// Longest DNS label (RFC 1035 2.3.4).
const MAX_LABEL_LEN: usize = 63;
/// The scheme an absolute AE-ID (a network-path reference) is resolved with (see the module
/// documentation).
pub const AE_ID_SCHEME: &str = "https";

/// Why an identifier was refused: a sentence for the user, never secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdError(String);

impl IdError {
    fn new(reason: impl Into<String>) -> IdError {
        IdError(reason.into())
    }

    /// The reason, as text.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

type Result<T> = std::result::Result<T, IdError>;

/// What a certificate is for (certSubjectType, TS-0003 8.3.9.7).
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
    /// Every subject type.
    pub const ALL: [SubjectType; 3] = [SubjectType::Ae, SubjectType::Cse, SubjectType::Node];

    /// The lower-case name ("ae", "cse", "node").
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectType::Ae => "ae",
            SubjectType::Cse => "cse",
            SubjectType::Node => "node",
        }
    }

    /// The name of the identifier it carries ("AE-ID", "CSE-ID", "Node-ID").
    pub fn id_name(self) -> &'static str {
        match self {
            SubjectType::Ae => "AE-ID",
            SubjectType::Cse => "CSE-ID",
            SubjectType::Node => "Node-ID",
        }
    }

    /// "ae", "cse" or "node", ignoring ASCII case.
    pub fn from_name(name: &str) -> Option<SubjectType> {
        SubjectType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for SubjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses "ae", "cse" or "node", ignoring ASCII case: the one parser of the client library, its
/// C and Python callers and the MEF's command line.
impl std::str::FromStr for SubjectType {
    type Err = IdError;

    fn from_str(s: &str) -> Result<SubjectType> {
        SubjectType::from_name(s).ok_or_else(|| {
            IdError::new(format!(
                "{s:?} is not a subject type (expected ae, cse or node)"
            ))
        })
    }
}

/// An M2M Service Provider ID (TS-0001 7.2): `//` + domain name. Accepted as `//example.net`
/// or `example.net`; kept as the domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpId(String);

impl SpId {
    /// Parses an SP-ID; the domain must be a DNS host name of at least two labels.
    pub fn parse(text: &str) -> Result<SpId> {
        let domain = text.strip_prefix("//").unwrap_or(text);
        check_common(domain).map_err(|e| IdError::new(format!("SP-ID {text:?}: {e}")))?;
        check_dns_name(domain).map_err(|e| IdError::new(format!("SP-ID {text:?}: {e}")))?;
        Ok(SpId(domain.to_owned()))
    }

    /// The SP's domain name.
    pub fn domain(&self) -> &str {
        &self.0
    }
}

/// `//example.net`, the form TS-0001 writes.
impl fmt::Display for SpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "//{}", self.0)
    }
}

/// Which of the accepted forms an identifier was given in (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdForm {
    /// Already the subjectAltName value: an AE-ID or Node-ID URI, a CSE public domain name.
    SanValue,
    /// Absolute (`//SP/…`).
    Absolute,
    /// SP-relative (`/CSE-ID…`, or an S-AE-ID stem), resolved with the known SP-ID.
    SpRelative,
    /// A bare CSE-ID, resolved with the known SP-ID.
    Bare,
    /// A dotted object identifier, as `urn:oid:`.
    Oid,
}

/// A validated oneM2M identifier and the subjectAltName entry that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct M2mId {
    subject_type: SubjectType,
    form: IdForm,
    name: GeneralName,
}

impl M2mId {
    /// Validates `id` as the identifier `subject_type` calls for, in any form of the module
    /// table, and maps it to its subjectAltName entry. SP-relative forms need `sp_id`.
    pub fn parse(subject_type: SubjectType, id: &str, sp_id: Option<&SpId>) -> Result<M2mId> {
        check_common(id).map_err(IdError::new)?;
        let (form, name) = match subject_type {
            SubjectType::Ae => parse_ae(id, sp_id)?,
            SubjectType::Cse => parse_cse(id, sp_id)?,
            SubjectType::Node => parse_node(id)?,
        };
        Ok(M2mId {
            subject_type,
            form,
            name,
        })
    }

    /// Reads an identity back from a subjectAltName entry. With `subject_type` given the entry
    /// must have that type's form; without it a dNSName is a CSE-ID, a URI with an authority
    /// (`scheme://host/…`) an AE-ID, and any other URI (a URN) a Node-ID.
    pub fn from_general_name(
        subject_type: Option<SubjectType>,
        name: &GeneralName,
    ) -> Result<M2mId> {
        let subject_type = match (subject_type, name) {
            (Some(SubjectType::Cse), GeneralName::Dns(_)) | (None, GeneralName::Dns(_)) => {
                SubjectType::Cse
            }
            (Some(t @ (SubjectType::Ae | SubjectType::Node)), GeneralName::Uri(_)) => t,
            (None, GeneralName::Uri(uri)) if uri.contains("://") => SubjectType::Ae,
            (None, GeneralName::Uri(_)) => SubjectType::Node,
            (t, other) => {
                return Err(IdError::new(format!(
                    "subjectAltName entry {} cannot carry {}",
                    describe_general_name(other),
                    t.map_or("a oneM2M identity", SubjectType::id_name)
                )))
            }
        };
        let (GeneralName::Dns(text) | GeneralName::Uri(text)) = name else {
            unreachable!("other forms are refused above")
        };
        let id = M2mId::parse(subject_type, text, None)?;
        if id.form != IdForm::SanValue {
            return Err(IdError::new(format!(
                "{} is not a subjectAltName value of a {}",
                describe_general_name(name),
                subject_type.id_name()
            )));
        }
        Ok(id)
    }

    /// The subject type.
    pub fn subject_type(&self) -> SubjectType {
        self.subject_type
    }

    /// The form the identifier was given in.
    pub fn form(&self) -> IdForm {
        self.form
    }

    /// The subjectAltName entry (TS-0003 10.1.4).
    pub fn general_name(&self) -> &GeneralName {
        &self.name
    }

    /// The subjectAltName value as text; it parses back to the same entry without an SP-ID.
    pub fn san_value(&self) -> &str {
        match &self.name {
            GeneralName::Dns(s) | GeneralName::Uri(s) => s,
            GeneralName::Other(_) => unreachable!("only DNS and URI names are built"),
        }
    }

    /// Whether one subjectAltName entry is this identity ([`general_name_eq`]).
    pub fn matches(&self, name: &GeneralName) -> bool {
        general_name_eq(&self.name, name)
    }
}

/// Whether two subjectAltName entries name the same thing: dNSNames without regard to ASCII
/// case (RFC 5280 7.2), URIs with scheme and host case-insensitive (RFC 5280 7.4, RFC 3986
/// 6.2.2.1) and for URNs the NID too (RFC 8141 3.1), other forms byte for byte.
pub fn general_name_eq(a: &GeneralName, b: &GeneralName) -> bool {
    match (a, b) {
        (GeneralName::Dns(x), GeneralName::Dns(y)) => x.eq_ignore_ascii_case(y),
        (GeneralName::Uri(x), GeneralName::Uri(y)) => uri_eq(x, y),
        (GeneralName::Other(x), GeneralName::Other(y)) => x == y,
        _ => false,
    }
}

/// A GeneralName for messages, as OpenSSL prints it: `DNS:x`, `URI:y` (issue #14: what
/// operators know from `openssl x509 -text`). Values are IA5String, checked ASCII by the
/// identity grammar; control characters are escaped.
pub fn describe_general_name(name: &GeneralName) -> String {
    match name {
        GeneralName::Dns(d) => format!("DNS:{}", d.escape_default()),
        GeneralName::Uri(u) => format!("URI:{}", u.escape_default()),
        GeneralName::Other(der) => format!(
            "GeneralName with tag 0x{:02x}",
            der.first().copied().unwrap_or(0)
        ),
    }
}

/// The SP-ID a relative form needs, or why it cannot be used.
fn need_sp<'a>(sp_id: Option<&'a SpId>, what: &str, absolute: &str) -> Result<&'a SpId> {
    sp_id.ok_or_else(|| {
        IdError::new(format!(
            "{what} is unique only inside its service provider; without a known SP-ID give the \
             absolute form {absolute} (TS-0001 7.2)"
        ))
    })
}

/// The SP-ID and the SP-relative rest of an absolute ID, `rest` being what follows its `//`;
/// without the `/` after the SP-ID the error is `shape`, the form the ID should have.
fn split_absolute<'a>(rest: &'a str, shape: &str) -> Result<(SpId, &'a str)> {
    let (domain, relative) = rest
        .split_once('/')
        .ok_or_else(|| IdError::new(format!("{shape} (TS-0001 7.2)")))?;
    Ok((SpId::parse(domain)?, relative))
}

fn parse_ae(id: &str, sp_id: Option<&SpId>) -> Result<(IdForm, GeneralName)> {
    let (form, sp, rest) = if let Some(rest) = id.strip_prefix("//") {
        // Absolute: //SP-ID/SP-relative-AE-ID.
        let (sp, path) = split_absolute(rest, "an absolute AE-ID is //SP-ID/CSE-ID/AE-ID")?;
        (IdForm::Absolute, sp, path.to_owned())
    } else if let Some(path) = id.strip_prefix('/') {
        let sp = need_sp(sp_id, "an SP-relative AE-ID", "//SP-ID/CSE-ID/AE-ID")?;
        (IdForm::SpRelative, sp.clone(), path.to_owned())
    } else if id.starts_with('S') && !id.contains([':', '/']) {
        // An S-AE-ID stem is itself SP-relative (TS-0001 7.2).
        let sp = need_sp(sp_id, "an S-AE-ID without SP-ID", "//SP-ID/S…")?;
        (IdForm::SpRelative, sp.clone(), id.to_owned())
    } else if id.starts_with('C') && !id.contains([':', '/']) {
        return Err(IdError::new(
            "a C-AE-ID is unique only under its registrar CSE: give /CSE-ID/AE-ID with the \
             SP-ID, or //SP-ID/CSE-ID/AE-ID (TS-0001 7.2)",
        ));
    } else {
        check_ae_uri(id).map_err(IdError::new)?;
        return Ok((IdForm::SanValue, GeneralName::Uri(id.to_owned())));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let stem = match segments.as_slice() {
        [cse, stem] => {
            check_oneid_segment(cse, "CSE-ID")?;
            stem
        }
        [stem] if stem.starts_with('S') => stem,
        [stem] => {
            return Err(IdError::new(format!(
                "{stem:?} lacks its registrar CSE-ID: only an S-AE-ID stands alone after the \
                 SP-ID (TS-0001 7.2)"
            )))
        }
        _ => {
            return Err(IdError::new(
                "an AE-ID is [//SP-ID]/CSE-ID/AE-ID-Stem: one CSE-ID, one stem (TS-0001 7.2)",
            ))
        }
    };
    check_oneid_segment(stem, "AE-ID-Stem")?;
    if !stem.starts_with(['C', 'S']) {
        return Err(IdError::new(format!(
            "AE-ID-Stem {stem:?} starts with C or S (TS-0001 7.2)"
        )));
    }
    let uri = format!("{AE_ID_SCHEME}://{}/{rest}", sp.domain());
    check_ae_uri(&uri).map_err(IdError::new)?;
    Ok((form, GeneralName::Uri(uri)))
}

fn parse_cse(id: &str, sp_id: Option<&SpId>) -> Result<(IdForm, GeneralName)> {
    let (form, sp, cse) = if let Some(rest) = id.strip_prefix("//") {
        let (sp, cse) = split_absolute(rest, "an absolute CSE-ID is //SP-ID/CSE-ID")?;
        (IdForm::Absolute, sp, cse)
    } else if let Some(cse) = id.strip_prefix('/') {
        let sp = need_sp(sp_id, "an SP-relative CSE-ID", "//SP-ID/CSE-ID")?;
        (IdForm::SpRelative, sp.clone(), cse)
    } else if id.contains('.') {
        // Two or more labels: the public domain name representation itself (10.1.1.7).
        check_dns_name(id).map_err(IdError::new)?;
        return Ok((IdForm::SanValue, GeneralName::Dns(id.to_owned())));
    } else {
        check_oneid_segment(id, "CSE-ID")?;
        let sp = need_sp(
            sp_id,
            "a single-label CSE-ID (not a public domain name)",
            "//SP-ID/CSE-ID",
        )?;
        (IdForm::Bare, sp.clone(), id)
    };
    check_oneid_segment(cse, "CSE-ID")?;
    check_label(cse).map_err(|e| {
        IdError::new(format!(
            "CSE-ID {cse:?} cannot be the leftmost label of its public domain name: {e}"
        ))
    })?;
    let name = format!("{cse}.{}", sp.domain());
    check_dns_name(&name).map_err(IdError::new)?;
    Ok((form, GeneralName::Dns(name)))
}

fn parse_node(id: &str) -> Result<(IdForm, GeneralName)> {
    if id.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        check_oid(id)?;
        return Ok((IdForm::Oid, GeneralName::Uri(format!("urn:oid:{id}"))));
    }
    check_node_uri(id).map_err(IdError::new)?;
    Ok((IdForm::SanValue, GeneralName::Uri(id.to_owned())))
}

/// A CSE-ID or AE-ID-Stem in a oneM2M form: non-empty RFC 3986 2.3 unreserved characters.
fn check_oneid_segment(segment: &str, what: &str) -> Result<()> {
    if segment.is_empty() {
        return Err(IdError::new(format!("the {what} is empty")));
    }
    if !segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(IdError::new(format!(
            "{what} {segment:?} may hold only letters, digits and - . _ ~ (RFC 3986 2.3)"
        )));
    }
    Ok(())
}

/// A dotted object identifier: two or more arcs of decimal digits.
fn check_oid(oid: &str) -> Result<()> {
    let arcs: Vec<&str> = oid.split('.').collect();
    if arcs.len() < 2 || arcs.iter().any(|a| a.is_empty()) {
        return Err(IdError::new(format!(
            "{oid:?} is not a dotted object identifier"
        )));
    }
    Ok(())
}

/// Rules for every form: non-empty printable ASCII (IA5String, RFC 5280 4.2.1.6), no white
/// space, no wildcard.
fn check_common(id: &str) -> std::result::Result<(), String> {
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

/// One RFC 1123 label: letters, digits and hyphens, 1 to 63 characters, no hyphen at either end.
fn check_label(label: &str) -> std::result::Result<(), String> {
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
    Ok(())
}

/// An RFC 1123 host name of at least two labels (a public domain name, TS-0001); not an IPv4
/// address; no trailing dot.
pub fn check_dns_name(name: &str) -> std::result::Result<(), String> {
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
        check_label(label)?;
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
/// scheme and scheme-specific part. No fragment: an identifier names the entity, not a part of
/// a resource.
fn parse_absolute_uri(id: &str) -> std::result::Result<fluent_uri::Uri<&str>, String> {
    if id.len() > MAX_URI_LEN {
        return Err(format!("longer than {MAX_URI_LEN} characters"));
    }
    let uri = fluent_uri::Uri::parse(id).map_err(|e| format!("not a URI (RFC 3986): {e}"))?;
    if uri.has_fragment() {
        return Err("a fragment is not allowed".into());
    }
    Ok(uri)
}

/// AE-ID as its full URI (TS-0003 10.1.1.5), e.g. `https://sp.example.com/cse01/CAE01`. The
/// host must be a DNS name because the issuing CA's nameConstraints apply to it (10.1.1.5).
fn check_ae_uri(id: &str) -> std::result::Result<(), String> {
    let uri = parse_absolute_uri(id)?;
    let authority = uri.authority().ok_or(
        "an AE-ID is a full URI (scheme://SP/CSE-ID/AE-ID) or //SP-ID/CSE-ID/AE-ID (TS-0001 7.2)",
    )?;
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
    if uri.path().as_str().trim_matches('/').is_empty() {
        return Err("the path naming the AE is missing".into());
    }
    Ok(())
}

/// Node-ID as a URI (TS-0003 10.1.1.8), typically a URN (RFC 8141): `urn:oid:<dotted OID>`
/// (the OID-based M2M Node-ID, TS-0001 Annex H) or `urn:imei:…`. Any absolute URI is accepted;
/// URNs are checked for a NID and an NSS, and `urn:oid:` for a dotted numeric OID.
fn check_node_uri(id: &str) -> std::result::Result<(), String> {
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
            let numeric = nss.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if !numeric || check_oid(nss).is_err() {
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
