//! Building the PKCS #10 certification request (RFC 2986) a MEF Client sends to /simpleenroll
//! and /simplereenroll: TS-0003 10.1.4 (CSR profile), RFC 7030 4.5.2 (CSR attributes),
//! CR 8.3.Z.2.2 step 3b ("generate a CSR with the requested CSR attributes using the key pair").
//!
//! The request carries:
//! - subjectPublicKeyInfo: exactly the key's [`PrivateKey::public_key_info`];
//! - subject: CN = the subject identity when it fits ub-common-name (64, RFC 5280 A.1), else an
//!   empty subject with subjectAltName critical (RFC 5280 4.2.1.6);
//! - extensionRequest: subjectAltName with the subject identity (TS-0003 8.3.9.7 step 5,
//!   10.1.4), then every other extension the server asked for, verbatim with its criticality;
//! - challengePassword (PKCS #9, RFC 2985 5.4.1), when the server asked for one.
//!
//! A re-enrolment CSR ([`build_reenrol_csr`]) instead repeats the subject and subjectAltName of
//! the certificate being renewed or rekeyed (RFC 7030 4.2.2) and carries its extendedKeyUsage.
//!
//! Signing goes through [`PrivateKey::sign`] only, so the key may live outside the process.

use crate::error::{Error, Operation, Result};
use crate::identity::{describe_general_names, wildcard_general_name, SubjectIdentity};
use crate::keys::{check_key_satisfies, spki_public_key_bytes, KeyAlgorithm, PrivateKey};
use crate::proto::csrattrs::{ChallengePassword, CsrRequirements, RequestedExtension};
use crate::proto::oids;
use crate::proto::san::{self, GeneralName};
use base64::Engine as _;
use der::asn1::{Any, ObjectIdentifier, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::Encode;
use std::cell::RefCell;
use zeroize::Zeroizing;

/// ub-common-name (RFC 5280 appendix A.1).
const UB_COMMON_NAME: usize = 64;
/// pkcs-9-ub-challengePassword (RFC 2985 appendix A; RFC 7030 3.5 "limited to 255 bytes").
const UB_CHALLENGE_PASSWORD: usize = 255;
/// pkcs-9-at-challengePassword, as rcgen takes attribute types.
const CHALLENGE_PASSWORD_ARCS: &[u64] = &[1, 2, 840, 113549, 1, 9, 7];

/// A built CSR.
///
/// `der` holds the challengePassword when one was requested: it is what the server asked to
/// receive, but treat the bytes as sensitive (`Debug` prints only their length).
#[derive(Clone, PartialEq, Eq)]
pub struct BuiltCsr {
    /// The DER CertificationRequest (RFC 2986 4.2).
    pub der: Vec<u8>,
    /// The names in its subjectAltName, in order: what the issued certificate must carry.
    pub san: Vec<GeneralName>,
}

impl std::fmt::Debug for BuiltCsr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltCsr")
            .field("der_len", &self.der.len())
            .field("san", &self.san)
            .finish()
    }
}

fn csr_error(reason: impl Into<String>) -> Error {
    Error::Csr {
        reason: reason.into(),
    }
}

/// The server sent CSR attributes that cannot be honoured as written.
fn bad_csrattrs(reason: impl Into<String>) -> Error {
    Error::BadResponse {
        operation: Operation::CsrAttrs,
        reason: reason.into(),
    }
}

/// Builds and signs the CSR.
///
/// Subject identity rules (TS-0003 8.3.9.7 step 5, 10.1.4; CR 8.3.Z.2.2 step 2b):
/// - `identity` and a requested subjectAltName: the requested names must include the identity
///   (else [`Error::IdentityConflict`]); the CSR carries the requested names as given, so the
///   MEF finds exactly what it asked for;
/// - only `identity`: the CSR carries the identity's name;
/// - only a requested subjectAltName: the CSR carries it as given;
/// - neither: [`Error::InvalidArgument`] (there is no identity to request a certificate for).
///
/// challengePassword (RFC 2985 5.4.1): a value the server supplied is echoed exactly; a bare
/// challengePassword OID asks for channel binding (RFC 7030 3.5) and is answered with the
/// base64 of `channel_binding` (the caller obtains it from the TLS session, e.g. tls-exporter
/// per RFC 9266); without one, [`Error::Unsupported`]. When the server did not ask, no
/// challengePassword is sent even if `channel_binding` is given: a server that does not
/// verify the binding could reject the request. The value is encoded as PrintableString when
/// every character allows it and as UTF8String otherwise, as RFC 2985 5.4.1 recommends.
///
/// The key must satisfy the requested key type and hash ([`check_key_satisfies`]).
pub fn build_csr(
    key: &dyn PrivateKey,
    identity: Option<&SubjectIdentity>,
    reqs: &CsrRequirements,
    channel_binding: Option<&[u8]>,
) -> Result<BuiltCsr> {
    build_request(key, identity, reqs, channel_binding, None)
}

/// Builds and signs the CSR of a re-enrolment (`/simplereenroll`, or `/serverkeygen` when
/// re-provisioning) of `current`, the certificate being renewed or rekeyed.
///
/// RFC 7030 4.2.2: "the Subject field and SubjectAltName extension MUST be identical to the
/// corresponding fields in the certificate being renewed or rekeyed". So the CSR carries the
/// current certificate's subject and subjectAltName as they are encoded there (the SAN with
/// its criticality), and its extendedKeyUsage purposes, together with any the server asks
/// for. Exceptions and errors:
///
/// - the server's CSR attributes request a subjectAltName with other names: the MEF asks for
///   a change, which this client honours (it is the source of truth for the identity, CR
///   8.3.Z.2.3 step 2b): the CSR is then built as [`build_csr`] builds it. The
///   ChangeSubjectName attribute (RFC 6402 2.1) that RFC 7030 4.2.2 mentions is not sent;
///   a MEF that renames a device says so in its CSR attributes;
/// - a configured `identity` that the current certificate does not carry (and the server
///   does not request) is [`Error::InvalidArgument`]: re-provisioning keeps the identity;
/// - a subject this client cannot reproduce byte for byte (multi-valued RDNs, repeated
///   attribute types, string types other than UTF8String, PrintableString, IA5String and
///   BMPString) is [`Error::Csr`], rather than a CSR the RFC forbids.
pub fn build_reenrol_csr(
    key: &dyn PrivateKey,
    identity: Option<&SubjectIdentity>,
    reqs: &CsrRequirements,
    channel_binding: Option<&[u8]>,
    current: &CurrentCertificate,
) -> Result<BuiltCsr> {
    build_request(key, identity, reqs, channel_binding, Some(current))
}

/// What RFC 7030 4.2.2 keeps from the certificate being renewed or rekeyed: its subject, its
/// subjectAltName and its extendedKeyUsage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentCertificate {
    /// The subject Name, DER, as encoded in the certificate.
    subject: Vec<u8>,
    /// The subject's attributes as rcgen can write them, in order; `Err` says why it cannot.
    subject_attributes: std::result::Result<Vec<(rcgen::DnType, rcgen::DnValue)>, String>,
    /// The subjectAltName: names, the extension value as encoded, criticality.
    san: Option<(Vec<GeneralName>, Vec<u8>, bool)>,
    /// The extendedKeyUsage purposes and criticality.
    eku: Option<(Vec<ObjectIdentifier>, bool)>,
}

impl CurrentCertificate {
    /// Reads the fields of a DER certificate (the first of the installed chain).
    pub fn from_der(der: &[u8]) -> Result<CurrentCertificate> {
        let fail = |e: String| csr_error(format!("the certificate being re-provisioned: {e}"));
        let cert = crate::x509::parse_certificate(der)
            .map_err(|e| fail(format!("does not parse: {e}")))?;
        let tbs = cert.tbs_certificate();
        let subject = tbs
            .subject()
            .to_der()
            .map_err(|e| fail(format!("subject: {e}")))?;
        let mut san = None;
        let mut eku = None;
        for ext in tbs.extensions().into_iter().flatten() {
            if ext.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME {
                let value = ext.extn_value.as_bytes().to_vec();
                let names = san::decode(&value)
                    .map_err(|e| fail(format!("malformed subjectAltName: {e}")))?;
                san = Some((names, value, ext.critical));
            } else if ext.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE {
                let purposes = decode_eku(ext.extn_value.as_bytes())
                    .map_err(|e| fail(format!("malformed extendedKeyUsage: {e}")))?;
                eku = Some((purposes, ext.critical));
            }
        }
        Ok(CurrentCertificate {
            subject,
            subject_attributes: subject_attributes(tbs.subject()),
            san,
            eku,
        })
    }

    /// The names of its subjectAltName (empty when it has none).
    pub fn san_names(&self) -> &[GeneralName] {
        self.san.as_ref().map_or(&[], |(names, _, _)| names)
    }
}

/// The attributes of `name` as rcgen writes them, when that reproduces `name` exactly.
fn subject_attributes(
    name: &x509_cert::name::Name,
) -> std::result::Result<Vec<(rcgen::DnType, rcgen::DnValue)>, String> {
    use der::{Tag, Tagged};
    let mut out: Vec<(rcgen::DnType, rcgen::DnValue)> = Vec::new();
    for rdn in name.iter_rdn() {
        let mut atvs = rdn.iter();
        let (Some(atv), None) = (atvs.next(), atvs.next()) else {
            return Err("it has a multi-valued RDN".into());
        };
        let arcs: Vec<u64> = atv.oid.arcs().map(u64::from).collect();
        let ty = rcgen::DnType::from_oid(&arcs);
        if out.iter().any(|(t, _)| *t == ty) {
            return Err(format!("attribute {} appears twice", atv.oid));
        }
        let bytes = atv.value.value().to_vec();
        let text = || String::from_utf8(bytes.clone()).map_err(|e| e.to_string());
        let unrepresentable = |e: String| format!("attribute {}: {e}", atv.oid);
        let value = match atv.value.tag() {
            Tag::Utf8String => rcgen::DnValue::Utf8String(text().map_err(unrepresentable)?),
            Tag::PrintableString => rcgen::DnValue::PrintableString(
                text()
                    .and_then(|t| {
                        rcgen::string::PrintableString::try_from(t).map_err(|e| e.to_string())
                    })
                    .map_err(unrepresentable)?,
            ),
            Tag::Ia5String => rcgen::DnValue::Ia5String(
                text()
                    .and_then(|t| rcgen::string::Ia5String::try_from(t).map_err(|e| e.to_string()))
                    .map_err(unrepresentable)?,
            ),
            Tag::BmpString => rcgen::DnValue::BmpString(
                rcgen::string::BmpString::from_utf16be(bytes.clone())
                    .map_err(|e| unrepresentable(e.to_string()))?,
            ),
            other => return Err(format!("attribute {} is a {other}", atv.oid)),
        };
        out.push((ty, value));
    }
    Ok(out)
}

/// ExtKeyUsageSyntax (RFC 5280 4.2.1.12): SEQUENCE SIZE (1..MAX) OF KeyPurposeId.
fn decode_eku(value: &[u8]) -> std::result::Result<Vec<ObjectIdentifier>, der::Error> {
    use der::Decode;
    Ok(x509_cert::ext::pkix::ExtendedKeyUsage::from_der(value)?.0)
}

/// How the CSR's names are made.
enum Names {
    /// From the identity or the requested subjectAltName ([`build_csr`]'s rules).
    Fresh {
        san: Vec<GeneralName>,
        requested_critical: bool,
    },
    /// Copied from the certificate being renewed or rekeyed (RFC 7030 4.2.2).
    Kept(Vec<GeneralName>),
}

/// The subjectAltName a CSR carries: [`san_names_for`] for a first enrolment; for a
/// re-enrolment the current certificate's, unless the server requests other names.
fn names_for(
    identity: Option<&SubjectIdentity>,
    reqs: &CsrRequirements,
    current: Option<&CurrentCertificate>,
) -> Result<Names> {
    let fresh = || {
        san_names_for(identity, reqs).map(|(san, requested_critical)| Names::Fresh {
            san,
            requested_critical,
        })
    };
    let Some(current) = current.filter(|c| c.san.is_some()) else {
        return fresh();
    };
    let kept = current.san_names();
    if let Some((requested, _)) = requested_san(reqs)? {
        if !same_names(&requested, kept) {
            // The MEF asks for another identity: it is the source of truth (CR 8.3.Z.2.3).
            log::info!(
                "re-enrolment: the CSR attributes request subjectAltName {} where the current \
                 certificate has {}; following the MEF",
                describe_general_names(&requested),
                describe_general_names(kept)
            );
            return fresh();
        }
    }
    if let Some(id) = identity {
        if !id.is_in(kept) {
            return Err(Error::invalid(
                "certSubjectID",
                format!(
                    "{id} is not the identity of the certificate being re-provisioned ({}); \
                     RFC 7030 4.2.2 keeps the subject and subjectAltName unless the MEF's CSR \
                     attributes ask for a change",
                    describe_general_names(kept)
                ),
            ));
        }
    }
    Ok(Names::Kept(kept.to_vec()))
}

/// The same names, in any order.
fn same_names(a: &[GeneralName], b: &[GeneralName]) -> bool {
    use crate::identity::general_name_eq;
    a.iter().all(|x| b.iter().any(|y| general_name_eq(x, y)))
        && b.iter().all(|y| a.iter().any(|x| general_name_eq(x, y)))
}

fn build_request(
    key: &dyn PrivateKey,
    identity: Option<&SubjectIdentity>,
    reqs: &CsrRequirements,
    channel_binding: Option<&[u8]>,
    current: Option<&CurrentCertificate>,
) -> Result<BuiltCsr> {
    check_key_satisfies(key, reqs)?;

    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let (san_names, kept) = match names_for(identity, reqs, current)? {
        Names::Fresh {
            san: san_names,
            requested_critical,
        } => {
            // The subject CN repeats the identity when it fits; otherwise the subject is empty
            // and the SAN must be critical (RFC 5280 4.2.1.6).
            let subject_text = match identity {
                Some(id) => Some(id.id().to_string()),
                None => san_names.iter().find_map(|n| match n {
                    GeneralName::Dns(s) | GeneralName::Uri(s) => Some(s.clone()),
                    GeneralName::Other(_) => None,
                }),
            };
            let subject_empty = match subject_text {
                Some(cn) if cn.len() <= UB_COMMON_NAME => {
                    params
                        .distinguished_name
                        .push(rcgen::DnType::CommonName, rcgen::DnValue::Utf8String(cn));
                    false
                }
                _ => true,
            };
            let san_der = san::encode(&san_names)
                .map_err(|e| csr_error(format!("cannot encode the subjectAltName: {e}")))?;
            let mut san_ext = rcgen::CustomExtension::from_oid_content(
                &oid_arcs(oids::SUBJECT_ALT_NAME)?,
                san_der,
            );
            san_ext.set_criticality(subject_empty || requested_critical);
            params.custom_extensions.push(san_ext);
            (san_names, None)
        }
        Names::Kept(san_names) => {
            // RFC 7030 4.2.2: subject and subjectAltName identical to the current certificate.
            let current = current.expect("Names::Kept comes from a current certificate");
            let attributes = current.subject_attributes.as_ref().map_err(|why| {
                csr_error(format!(
                    "the subject of the certificate being re-provisioned cannot be repeated \
                     exactly in the CSR ({why}); RFC 7030 4.2.2 requires it identical"
                ))
            })?;
            for (ty, value) in attributes {
                params.distinguished_name.push(ty.clone(), value.clone());
            }
            let (_, san_der, critical) = current.san.as_ref().expect("filtered on Some");
            let mut san_ext = rcgen::CustomExtension::from_oid_content(
                &oid_arcs(oids::SUBJECT_ALT_NAME)?,
                san_der.clone(),
            );
            san_ext.set_criticality(*critical);
            params.custom_extensions.push(san_ext);
            (san_names, Some(current))
        }
    };
    let current_eku = current.and_then(|c| c.eku.as_ref());
    let mut eku_written = false;
    for ext in other_extensions(&reqs.extensions)? {
        let (value, critical) = match current_eku {
            // The requested purposes, then those of the current certificate (issue #11).
            Some((purposes, current_critical)) if ext.oid == oids::EXT_KEY_USAGE => {
                eku_written = true;
                let mut merged = decode_eku(&ext.value).map_err(|e| {
                    bad_csrattrs(format!("the requested extendedKeyUsage is malformed: {e}"))
                })?;
                for p in purposes {
                    if !merged.contains(p) {
                        merged.push(*p);
                    }
                }
                (encode_eku(merged)?, ext.critical || *current_critical)
            }
            _ => (ext.value.clone(), ext.critical),
        };
        let mut custom = rcgen::CustomExtension::from_oid_content(&oid_arcs(&ext.oid)?, value);
        custom.set_criticality(critical);
        params.custom_extensions.push(custom);
    }
    if let (Some((purposes, critical)), false) = (current_eku, eku_written) {
        // Re-enrolment keeps the purposes of the certificate being renewed (issue #11).
        let mut custom = rcgen::CustomExtension::from_oid_content(
            &oid_arcs(oids::EXT_KEY_USAGE)?,
            encode_eku(purposes.clone())?,
        );
        custom.set_criticality(*critical);
        params.custom_extensions.push(custom);
    }

    let mut attributes = Vec::new();
    if let Some(password) = challenge_password(&reqs.challenge_password, channel_binding)? {
        let values = encode_directory_string_set(&password)?;
        // rcgen owns this copy until the request is serialised; it is not zeroized there.
        attributes.push(rcgen::Attribute {
            oid: CHALLENGE_PASSWORD_ARCS,
            values: values.to_vec(),
        });
    }

    let signer = KeySigner::new(key)?;
    let csr = params.serialize_request_with_attributes(&signer, attributes);
    if let Some(key_error) = signer.error.into_inner() {
        return Err(key_error);
    }
    let csr = csr.map_err(|e| csr_error(format!("cannot serialise the request: {e}")))?;
    if let Some(current) = kept {
        // The subject went through rcgen's model of a name: check it came out identical.
        use der::Decode;
        let written = x509_cert::request::CertReq::from_der(csr.der())
            .map_err(|e| csr_error(format!("the CSR just built does not parse: {e}")))?
            .info
            .subject
            .to_der()
            .map_err(|e| csr_error(format!("the CSR's subject: {e}")))?;
        if written != current.subject {
            return Err(csr_error(
                "the subject of the certificate being re-provisioned cannot be repeated \
                 exactly in the CSR; RFC 7030 4.2.2 requires it identical",
            ));
        }
    }
    Ok(BuiltCsr {
        der: csr.der().to_vec(),
        san: san_names,
    })
}

/// The checks of [`build_csr`] that do not depend on the key: the identity against the
/// requested subjectAltName, the requested extensions, the challengePassword (channel binding
/// included). The procedure runs them before it creates a key, so a request this client
/// cannot satisfy costs no key generation (slow, and possibly persistent, in an HSM or a
/// secure element).
pub fn check_requirements(
    identity: Option<&SubjectIdentity>,
    reqs: &CsrRequirements,
    channel_binding: Option<&[u8]>,
) -> Result<()> {
    check_reenrol_requirements(identity, reqs, channel_binding, None)
}

/// [`check_requirements`] for a re-enrolment of `current` (the identity rules of
/// [`build_reenrol_csr`]).
pub fn check_reenrol_requirements(
    identity: Option<&SubjectIdentity>,
    reqs: &CsrRequirements,
    channel_binding: Option<&[u8]>,
    current: Option<&CurrentCertificate>,
) -> Result<()> {
    names_for(identity, reqs, current)?;
    other_extensions(&reqs.extensions)?;
    challenge_password(&reqs.challenge_password, channel_binding)?;
    Ok(())
}

/// The names the CSR's subjectAltName carries and whether the server asked for it critical
/// (the identity rules of [`build_csr`]).
fn san_names_for(
    identity: Option<&SubjectIdentity>,
    reqs: &CsrRequirements,
) -> Result<(Vec<GeneralName>, bool)> {
    Ok(match (identity, requested_san(reqs)?) {
        (Some(id), Some((names, critical))) => {
            if !id.is_in(&names) {
                return Err(Error::IdentityConflict {
                    configured: id.to_string(),
                    requested: format!("subjectAltName {}", describe_general_names(&names)),
                });
            }
            (names, critical)
        }
        (Some(id), None) => (vec![id.general_name()], false),
        (None, Some((names, critical))) => (names, critical),
        (None, None) => {
            return Err(Error::invalid(
                "certSubjectID",
                "no subject identity is configured and the server's CSR attributes request no \
                 subjectAltName: the CSR has no identity to carry (TS-0003 10.1.4)",
            ))
        }
    })
}

/// The subjectAltName the server asked for: its names and criticality.
fn requested_san(reqs: &CsrRequirements) -> Result<Option<(Vec<GeneralName>, bool)>> {
    let Some(ext) = reqs
        .extensions
        .iter()
        .find(|e| e.oid == oids::SUBJECT_ALT_NAME)
    else {
        return Ok(None);
    };
    let names = san::decode(&ext.value)
        .map_err(|e| bad_csrattrs(format!("the requested subjectAltName is malformed: {e}")))?;
    if names.is_empty() {
        return Err(bad_csrattrs("the requested subjectAltName holds no names"));
    }
    // TS-0003 10.1.1.5/7/8: no wildcards, whichever side names the identity. Refused here,
    // before a key is made, rather than after issuance.
    if let Some(name) = wildcard_general_name(&names) {
        return Err(bad_csrattrs(format!(
            "the requested subjectAltName names {name} with a wildcard; a MEF-issued certificate \
             shall not include wildcards (TS-0003 10.1.1.5-10.1.1.8)"
        )));
    }
    Ok(Some((names, ext.critical)))
}

/// The requested extensions other than subjectAltName (which is always built here), each
/// once: an extension appears at most once in a certificate (RFC 5280 4.2), so identical
/// repeats collapse and conflicting repeats are refused.
fn other_extensions(requested: &[RequestedExtension]) -> Result<Vec<&RequestedExtension>> {
    let mut out: Vec<&RequestedExtension> = Vec::new();
    for ext in requested.iter().filter(|e| e.oid != oids::SUBJECT_ALT_NAME) {
        match out.iter().find(|e| e.oid == ext.oid) {
            Some(prev) if *prev == ext => {}
            Some(_) => {
                return Err(bad_csrattrs(format!(
                    "extension {} is requested twice with different contents",
                    ext.oid
                )))
            }
            None => out.push(ext),
        }
    }
    Ok(out)
}

fn encode_eku(purposes: Vec<ObjectIdentifier>) -> Result<Vec<u8>> {
    x509_cert::ext::pkix::ExtendedKeyUsage(purposes)
        .to_der()
        .map_err(|e| csr_error(format!("cannot encode the extendedKeyUsage: {e}")))
}

fn oid_arcs(dotted: &str) -> Result<Vec<u64>> {
    let oid = ObjectIdentifier::new(dotted)
        .map_err(|e| bad_csrattrs(format!("malformed extension OID {dotted:?}: {e}")))?;
    Ok(oid.arcs().map(u64::from).collect())
}

/// The challengePassword to send, if any.
fn challenge_password(
    requested: &ChallengePassword,
    channel_binding: Option<&[u8]>,
) -> Result<Option<Zeroizing<String>>> {
    let password = match requested {
        ChallengePassword::NotRequested => return Ok(None),
        ChallengePassword::Value(value) => value.clone(),
        ChallengePassword::ChannelBinding => match channel_binding {
            // RFC 7030 3.5: the binding value, base64 (RFC 4648 4).
            Some(binding) => {
                Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(binding))
            }
            None => {
                return Err(Error::Unsupported {
                    what: "the server asks for identity/POP linking (a challengePassword \
                           holding the TLS channel binding, RFC 7030 3.5); tls-unique and \
                           tls-exporter linking are not supported over this TLS connection"
                        .into(),
                })
            }
        },
    };
    if password.is_empty() {
        return Err(bad_csrattrs(
            "the challengePassword the server supplied is empty",
        ));
    }
    if password.len() > UB_CHALLENGE_PASSWORD {
        return Err(bad_csrattrs(format!(
            "the challengePassword is longer than {UB_CHALLENGE_PASSWORD} bytes (RFC 2985)"
        )));
    }
    Ok(Some(password))
}

/// `SET { DirectoryString }`: PrintableString when possible, else UTF8String (RFC 2985 5.4.1).
fn encode_directory_string_set(value: &str) -> Result<Zeroizing<Vec<u8>>> {
    let fail = |e: der::Error| csr_error(format!("cannot encode the challengePassword: {e}"));
    let any = match PrintableStringRef::new(value) {
        Ok(printable) => Any::encode_from(&printable),
        Err(_) => Any::encode_from(&Utf8StringRef::new(value).map_err(fail)?),
    }
    .map_err(fail)?;
    let set = SetOfVec::try_from(vec![any]).map_err(fail)?;
    let mut out = Zeroizing::new(Vec::new());
    set.encode_to_vec(&mut out).map_err(fail)?;
    Ok(out)
}

/// rcgen's signing interface over a [`PrivateKey`] (also how tests issue certificates for
/// a [`PrivateKey`]). rcgen cannot carry our error through its
/// own error type, so the key's error is kept here and returned instead of rcgen's.
pub(crate) struct KeySigner<'a> {
    key: &'a dyn PrivateKey,
    algorithm: &'static rcgen::SignatureAlgorithm,
    /// The subjectPublicKey BIT STRING contents (what `PublicKeyData::der_bytes` means).
    public_key: Vec<u8>,
    error: RefCell<Option<Error>>,
}

impl<'a> KeySigner<'a> {
    pub(crate) fn new(key: &'a dyn PrivateKey) -> Result<KeySigner<'a>> {
        let algorithm = match key.algorithm() {
            KeyAlgorithm::EcdsaP256Sha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384Sha384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        };
        Ok(KeySigner {
            key,
            algorithm,
            public_key: spki_public_key_bytes(key.public_key_info())?,
            error: RefCell::new(None),
        })
    }
}

impl rcgen::PublicKeyData for KeySigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

impl rcgen::SigningKey for KeySigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        crate::keys::sign_checked(self.key, msg).map_err(|e| {
            *self.error.borrow_mut() = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SubjectType;
    use crate::keys::SoftwareKey;
    use crate::proto::csrattrs::{Curve, HashAlg, KeyRequirement};
    use ring::signature::{self, UnparsedPublicKey};
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::cri_attributes::ParsedCriAttribute;
    use x509_parser::prelude::FromDer;

    const AE: &str = "https://sp.example.com/cse01/CAE01";

    fn reqs() -> CsrRequirements {
        CsrRequirements {
            challenge_password: ChallengePassword::NotRequested,
            extensions: vec![],
            key: None,
            hash: None,
            unrecognized: vec![],
        }
    }

    fn ae() -> SubjectIdentity {
        SubjectIdentity::new(SubjectType::Ae, AE).unwrap()
    }

    fn san_ext(names: &[GeneralName], critical: bool) -> RequestedExtension {
        RequestedExtension {
            oid: oids::SUBJECT_ALT_NAME.into(),
            critical,
            value: san::encode(names).unwrap(),
        }
    }

    #[test]
    fn a_key_whose_signature_does_not_verify_gets_no_csr() {
        // Before the core checked every signature, this CSR went to the MEF and the MEF
        // refused it (a server-side error for a device-side fault).
        let key = crate::keys::tests::misbehaving(true, false, KeyAlgorithm::EcdsaP256Sha256);
        let err = build_csr(&key, Some(&ae()), &reqs(), None).unwrap_err();
        assert!(matches!(err, Error::Key { .. }), "{err:?}");
        assert_eq!(err.class(), crate::ErrorClass::Client);
        assert!(err.to_string().contains("does not verify"), "{err}");
    }

    /// TS-0003 10.1.1.5/7/8: a wildcard the MEF's CSR attributes ask for (no identity
    /// configured, so the MEF's request is the identity) is refused before any CSR is built.
    #[test]
    fn a_requested_wildcard_subject_alt_name_is_refused() {
        for names in [
            vec![GeneralName::Dns("*.sp.example.com".into())],
            vec![GeneralName::Uri("https://*.example.com/cse01/CAE01".into())],
        ] {
            let mut r = reqs();
            r.extensions.push(san_ext(&names, false));
            let err = san_names_for(None, &r).unwrap_err();
            assert!(
                matches!(&err, Error::BadResponse { operation: Operation::CsrAttrs, reason }
                    if reason.contains("wildcard")),
                "{err:?}"
            );
            assert_eq!(err.class(), crate::error::ErrorClass::Server);
        }
        // A `*` in a URI path is no wildcard (RFC 3986 sub-delims).
        let mut r = reqs();
        let path_star = vec![GeneralName::Uri(
            "https://sp.example.com/cse01/CAE*1".into(),
        )];
        r.extensions.push(san_ext(&path_star, false));
        assert!(san_names_for(None, &r).is_ok());
    }

    /// EKU clientAuth, as a MEF would request it: SEQUENCE { id-kp-clientAuth }.
    fn eku_client_auth() -> RequestedExtension {
        RequestedExtension {
            oid: oids::EXT_KEY_USAGE.into(),
            critical: false,
            value: vec![
                0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
            ],
        }
    }

    /// Parses the CSR, checks its SPKI is the key's and its signature verifies with it.
    fn parse_and_verify<'a>(der: &'a [u8], key: &SoftwareKey) -> X509CertificationRequest<'a> {
        let (rest, csr) = X509CertificationRequest::from_der(der).unwrap();
        assert!(rest.is_empty());
        let info = &csr.certification_request_info;
        assert_eq!(info.subject_pki.raw, key.public_key_info());
        let alg: &dyn signature::VerificationAlgorithm = match key.algorithm() {
            KeyAlgorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_ASN1,
            KeyAlgorithm::Ed25519 => &signature::ED25519,
        };
        let public = spki_public_key_bytes(key.public_key_info()).unwrap();
        UnparsedPublicKey::new(alg, public)
            .verify(info.raw, &csr.signature_value.data)
            .expect("CSR signature verifies with the key");
        csr
    }

    fn extensions(csr: &X509CertificationRequest<'_>) -> Vec<(String, bool, Vec<u8>)> {
        csr.certification_request_info
            .iter_attributes()
            .filter_map(|a| match a.parsed_attribute() {
                ParsedCriAttribute::ExtensionRequest(er) => Some(er.extensions.clone()),
                _ => None,
            })
            .flatten()
            .map(|e| (e.oid.to_id_string(), e.critical, e.value.to_vec()))
            .collect()
    }

    fn challenge_attr<'a>(csr: &'a X509CertificationRequest<'a>) -> Option<&'a [u8]> {
        csr.certification_request_info
            .iter_attributes()
            .find(|a| a.oid.to_id_string() == oids::CHALLENGE_PASSWORD)
            .map(|a| a.value)
    }

    fn openssl_verify(der: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("req.der");
        std::fs::write(&path, der).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["req", "-verify", "-noout", "-inform", "DER", "-in"])
            .arg(&path)
            .output()
            .expect("the openssl CLI is required for this test");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "openssl req -verify failed: {text}");
        assert!(
            text.contains("verify OK")
                || text.contains("Certificate request self-signature verify OK"),
            "{text}"
        );
    }

    #[test]
    fn full_request_as_the_mef_asks() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let id = ae();
        let requested = vec![id.general_name()];
        let mut r = reqs();
        r.challenge_password = ChallengePassword::Value(Zeroizing::new("s3cret-Pass.42".into()));
        r.extensions = vec![
            eku_client_auth(),
            san_ext(&requested, false),
            eku_client_auth(),
        ];
        r.key = Some(KeyRequirement::Ec(Curve::P256));
        r.hash = Some(HashAlg::Sha256);
        let built = build_csr(&key, Some(&id), &r, None).unwrap();
        assert_eq!(built.san, requested);
        assert!(!format!("{built:?}").contains("s3cret"));

        let csr = parse_and_verify(&built.der, &key);
        let cn: Vec<_> = csr
            .certification_request_info
            .subject
            .iter_common_name()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cn, vec![AE.to_string()]);
        // SAN exactly ours, once; EKU verbatim, once (the duplicate collapsed).
        let exts = extensions(&csr);
        assert_eq!(
            exts,
            vec![
                (
                    oids::SUBJECT_ALT_NAME.to_string(),
                    false,
                    san::encode(&requested).unwrap()
                ),
                (
                    oids::EXT_KEY_USAGE.to_string(),
                    false,
                    eku_client_auth().value
                ),
            ]
        );
        // challengePassword: SET { PrintableString "s3cret-Pass.42" }.
        let mut expected = vec![0x31, 16, 0x13, 14];
        expected.extend_from_slice(b"s3cret-Pass.42");
        assert_eq!(challenge_attr(&csr), Some(expected.as_slice()));
        openssl_verify(&built.der);
    }

    #[test]
    fn every_key_algorithm_signs_a_verifiable_request() {
        for alg in [
            KeyAlgorithm::EcdsaP256Sha256,
            KeyAlgorithm::EcdsaP384Sha384,
            KeyAlgorithm::Ed25519,
        ] {
            let key = SoftwareKey::generate(alg).unwrap();
            let id = SubjectIdentity::new(SubjectType::Cse, "cse01.sp.example.com").unwrap();
            let built = build_csr(&key, Some(&id), &reqs(), None).unwrap();
            assert_eq!(
                built.san,
                vec![GeneralName::Dns("cse01.sp.example.com".into())]
            );
            let csr = parse_and_verify(&built.der, &key);
            assert!(challenge_attr(&csr).is_none());
            openssl_verify(&built.der);
        }
    }

    #[test]
    fn identity_conflict() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let mut r = reqs();
        r.extensions = vec![san_ext(
            &[GeneralName::Uri(
                "https://sp.example.com/cse01/COTHER".into(),
            )],
            false,
        )];
        match build_csr(&key, Some(&ae()), &r, None) {
            Err(Error::IdentityConflict {
                configured,
                requested,
            }) => {
                assert!(configured.contains("CAE01"));
                assert!(requested.contains("COTHER"));
            }
            other => panic!("expected IdentityConflict, got {other:?}"),
        }
    }

    #[test]
    fn requested_san_used_as_given_without_identity() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let names = vec![
            GeneralName::Uri("urn:oid:1.3.6.1.4.1.99999.1.2.3".into()),
            GeneralName::Dns("node.example.com".into()),
        ];
        let mut r = reqs();
        r.extensions = vec![san_ext(&names, true)];
        let built = build_csr(&key, None, &r, None).unwrap();
        assert_eq!(built.san, names);
        let csr = parse_and_verify(&built.der, &key);
        assert_eq!(
            extensions(&csr),
            vec![(
                oids::SUBJECT_ALT_NAME.to_string(),
                true,
                san::encode(&names).unwrap()
            )]
        );

        let err = build_csr(&key, None, &reqs(), None).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    }

    #[test]
    fn long_identity_gives_empty_subject_and_critical_san() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let long = format!("https://sp.example.com/cse01/{}", "A".repeat(60));
        let id = SubjectIdentity::new(SubjectType::Ae, long.clone()).unwrap();
        let built = build_csr(&key, Some(&id), &reqs(), None).unwrap();
        let csr = parse_and_verify(&built.der, &key);
        assert_eq!(csr.certification_request_info.subject.iter().count(), 0);
        let exts = extensions(&csr);
        assert_eq!(exts.len(), 1);
        assert!(exts[0].1, "SAN must be critical with an empty subject");
        openssl_verify(&built.der);
    }

    #[test]
    fn channel_binding() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let mut r = reqs();
        r.challenge_password = ChallengePassword::ChannelBinding;
        let err = build_csr(&key, Some(&ae()), &r, None).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("tls-exporter"));

        let binding = [0xfbu8; 32];
        let built = build_csr(&key, Some(&ae()), &r, Some(&binding)).unwrap();
        let csr = parse_and_verify(&built.der, &key);
        let attr = csr
            .certification_request_info
            .iter_attributes()
            .find_map(|a| match a.parsed_attribute() {
                ParsedCriAttribute::ChallengePassword(p) => Some(p.0.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            attr,
            base64::engine::general_purpose::STANDARD.encode(binding)
        );
    }

    #[test]
    fn non_printable_password_is_utf8string() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let mut r = reqs();
        r.challenge_password = ChallengePassword::Value(Zeroizing::new("pass_wörd!".into()));
        let built = build_csr(&key, Some(&ae()), &r, None).unwrap();
        let csr = parse_and_verify(&built.der, &key);
        let value = challenge_attr(&csr).unwrap();
        assert_eq!(value[2], 0x0c, "UTF8String tag");
        assert_eq!(&value[4..], "pass_wörd!".as_bytes());

        r.challenge_password = ChallengePassword::Value(Zeroizing::new("x".repeat(256)));
        assert!(build_csr(&key, Some(&ae()), &r, None).is_err());
    }

    #[test]
    fn key_requirements_are_enforced() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let mut r = reqs();
        r.key = Some(KeyRequirement::Ec(Curve::P384));
        let err = build_csr(&key, Some(&ae()), &r, None).unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    }

    #[test]
    fn conflicting_duplicate_extensions_are_refused() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let mut other = eku_client_auth();
        other.critical = true;
        let mut r = reqs();
        r.extensions = vec![eku_client_auth(), other];
        let err = build_csr(&key, Some(&ae()), &r, None).unwrap_err();
        assert!(matches!(err, Error::BadResponse { .. }), "{err}");
    }

    /// A key whose signing fails, as an HSM or a C callback can.
    #[derive(Debug)]
    struct FailingKey(SoftwareKey);

    impl PrivateKey for FailingKey {
        fn algorithm(&self) -> KeyAlgorithm {
            self.0.algorithm()
        }
        fn public_key_info(&self) -> &[u8] {
            self.0.public_key_info()
        }
        fn sign(&self, _message: &[u8]) -> Result<Vec<u8>> {
            Err(Error::Key {
                reason: "token removed".into(),
                source: None,
            })
        }
    }

    #[test]
    fn signing_failure_is_the_keys_error() {
        let key = FailingKey(SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap());
        match build_csr(&key, Some(&ae()), &reqs(), None) {
            Err(Error::Key { reason, .. }) => assert_eq!(reason, "token removed"),
            other => panic!("expected the key's error, got {other:?}"),
        }
    }

    /// A certificate (self-signed, a test stand-in for the installed one) with the subject
    /// `rdns` (in order), subjectAltName `AE` (critical when `critical_san`) and EKUs `ekus`.
    fn current_cert(
        rdns: Vec<(rcgen::DnType, rcgen::DnValue)>,
        critical_san: bool,
        ekus: Vec<rcgen::ExtendedKeyUsagePurpose>,
    ) -> CurrentCertificate {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in rdns {
            p.distinguished_name.push(ty, value);
        }
        p.extended_key_usages = ekus;
        let mut san = rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 17],
            san::encode(&[GeneralName::Uri(AE.into())]).unwrap(),
        );
        san.set_criticality(critical_san);
        p.custom_extensions.push(san);
        let cert = p.self_signed(&key).unwrap();
        CurrentCertificate::from_der(cert.der()).unwrap()
    }

    #[test]
    fn reenrolment_repeats_subject_and_san_exactly_and_merges_ekus() {
        use rcgen::{DnType, DnValue, ExtendedKeyUsagePurpose as Eku};
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let country = DnValue::PrintableString("FR".try_into().unwrap());
        let current = current_cert(
            vec![
                (DnType::CountryName, country),
                (DnType::CommonName, "device 0001".into()),
            ],
            true,
            vec![Eku::ServerAuth, Eku::ClientAuth],
        );
        // The server requests clientAuth only: the CSR asks for it and keeps serverAuth.
        let mut r = reqs();
        r.extensions.push(eku_client_auth());
        let csr = build_reenrol_csr(&key, Some(&ae()), &r, None, &current).unwrap();
        let parsed = parse_and_verify(&csr.der, &key);
        let info = &parsed.certification_request_info;
        assert_eq!(info.subject.as_raw(), current.subject.as_slice());
        let mut san_seen = false;
        let mut eku_seen = false;
        for attr in info.iter_attributes() {
            if let ParsedCriAttribute::ExtensionRequest(er) = attr.parsed_attribute() {
                for ext in &er.extensions {
                    match ext.oid.to_id_string().as_str() {
                        "2.5.29.17" => {
                            san_seen = true;
                            assert!(ext.critical, "the current SAN's criticality is kept");
                        }
                        "2.5.29.37" => {
                            eku_seen = true;
                            let purposes = decode_eku(ext.value).unwrap();
                            assert_eq!(
                                purposes.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
                                ["1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.1"],
                                "requested first, then the current certificate's, once each"
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
        assert!(san_seen && eku_seen);
        assert_eq!(csr.san, [GeneralName::Uri(AE.into())]);
    }

    #[test]
    fn reenrolment_refuses_a_subject_it_cannot_repeat() {
        use rcgen::{DnType, DnValue};
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let teletex = DnValue::TeletexString("device".try_into().unwrap());
        let current = current_cert(vec![(DnType::CommonName, teletex)], false, vec![]);
        match build_reenrol_csr(&key, Some(&ae()), &reqs(), None, &current) {
            Err(Error::Csr { reason }) => assert!(reason.contains("4.2.2"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reenrolment_refuses_a_configured_identity_the_certificate_lacks() {
        let key = SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
        let current = current_cert(vec![], false, vec![]);
        let other =
            SubjectIdentity::new(SubjectType::Ae, "https://sp.example.com/cse01/CAE02").unwrap();
        let err = build_reenrol_csr(&key, Some(&other), &reqs(), None, &current).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::InvalidArgument {
                    argument: "certSubjectID",
                    ..
                }
            ),
            "{err:?}"
        );
        // Empty subject kept as it is.
        let csr = build_reenrol_csr(&key, Some(&ae()), &reqs(), None, &current).unwrap();
        let parsed = parse_and_verify(&csr.der, &key);
        assert_eq!(
            parsed.certification_request_info.subject.as_raw(),
            current.subject.as_slice()
        );
    }
}
