//! EST operations (RFC 7030 4.1, 4.2, 4.4, 4.5 with RFC 8951) and the MEF checks of the CR
//! clause 8.3.Z.2.

use crate::challenge::ChallengeCheck;
use crate::conn::{ConnInfo, Peer};
use crate::http::{Request, Response};
use crate::identity::{hex, Identity};
use crate::state::Shared;
use onem2m_est_proto::csrattrs::{
    self, ChallengePassword, CsrRequirements, Curve, HashAlg, KeyRequirement, RequestedExtension,
};
use onem2m_est_proto::media::{self, MediaType};
use onem2m_est_proto::san::GeneralName;
use onem2m_est_proto::{base64body, certs_only, multipart, oids};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

const PREFIX: &str = "/.well-known/est/";

type Outcome = Result<Response, Response>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    CaCerts,
    CsrAttrs,
    SimpleEnroll,
    SimpleReenroll,
    ServerKeygen,
}

/// Routes and answers one request.
pub(crate) fn handle(shared: &Shared, conn: &ConnInfo, req: &Request) -> Response {
    match handle_inner(shared, conn, req) {
        Ok(r) => r,
        // Every refusal is returned through here: one warn line each (crate::logging).
        Err(r) => {
            crate::logging::refused(conn, req, &r);
            r
        }
    }
}

fn handle_inner(shared: &Shared, conn: &ConnInfo, req: &Request) -> Outcome {
    // TS-0003 8.3.6.2.1 (CR 8.3.Z.2.1, 8.3.Z.2.2 Note 2): no HTTP-based client authentication
    // of any kind; the MEF never asks for it (no 401/WWW-Authenticate) and refuses requests
    // that offer it, to the origin (Authorization) or to a proxy (Proxy-Authorization).
    for name in ["Authorization", "Proxy-Authorization"] {
        if req.header(name).is_some() {
            return Err(Response::text(
                400,
                format!(
                    "HTTP-based client authentication is not used (TS-0003 8.3.6.2.1): remove \
                     the {name} header and authenticate with a TLS client certificate"
                ),
            ));
        }
    }
    // Tolerate empty path segments ("//"): strongSwan's pki appends "/.well-known/est/..." to
    // its --url, so a URL given with a trailing slash yields "//.well-known/est/...".
    let mut path = String::with_capacity(req.path.len());
    for c in req.path.chars() {
        if !(c == '/' && path.ends_with('/')) {
            path.push(c);
        }
    }
    // RFC 5280 4.2.1.13 / RFC 2585 3: the CRL, to anyone (relying parties fetch it without
    // credentials).
    if path == crate::ca::CRL_PATH {
        if req.method != "GET" {
            return Err(
                Response::text(405, "the CRL is fetched with GET").with_header("Allow", "GET")
            );
        }
        let der = shared.current_crl().map_err(failed)?;
        return Ok(Response::new(200, "application/pkix-crl", der));
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Err(Response::text(
            404,
            "not an EST path (expected /.well-known/est/...)",
        ));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let (label, op_name) = match segments.as_slice() {
        [op] => (None, *op),
        [label, op] => (Some(*label), *op),
        _ => return Err(Response::text(404, "unknown EST path")),
    };
    if let Some(l) = label {
        // RFC 7030 3.2.2: an arbitrary label segment; every label is served by this one CA.
        if !valid_label(l) {
            return Err(Response::text(
                404,
                "invalid EST label: 1 to 64 characters of A-Z a-z 0-9 - _ . starting with a \
                 letter or digit",
            ));
        }
    }
    let op = match op_name {
        "cacerts" => Op::CaCerts,
        "csrattrs" => Op::CsrAttrs,
        "simpleenroll" => Op::SimpleEnroll,
        "simplereenroll" => Op::SimpleReenroll,
        "serverkeygen" => Op::ServerKeygen,
        "fullcmc" => {
            return Err(Response::text(
                501,
                "fullcmc (RFC 7030 4.3) is not implemented by this MEF",
            ))
        }
        _ => {
            return Err(Response::text(
                404,
                format!("unknown EST operation {op_name:?}"),
            ))
        }
    };
    let method = match op {
        Op::CaCerts | Op::CsrAttrs => "GET",
        _ => "POST",
    };
    if req.method != method {
        return Err(
            Response::text(405, format!("{op_name} expects {method}")).with_header("Allow", method)
        );
    }
    match op {
        Op::CaCerts => cacerts(shared),
        Op::CsrAttrs => csr_attrs(shared, &authorize(shared, conn, op)?),
        _ => enroll(shared, conn, req, op, &authorize(shared, conn, op)?),
    }
}

/// The EST labels this MEF serves. RFC 7030 3.2.2 gives the label no grammar, so the MEF picks
/// a conservative one: 1 to 64 of `[A-Za-z0-9_.-]`, the first a letter or digit. That keeps out
/// dot segments (`.`, `..`, RFC 3986 5.2.4), percent-encodings, and anything a proxy or file
/// system could read as something else.
fn valid_label(label: &str) -> bool {
    let b = label.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

fn internal(e: impl std::fmt::Display) -> Response {
    log::error!("internal error: {e}");
    Response::text(500, "internal error")
}

/// Seconds a client is told to wait (Retry-After) while the database is unreachable.
pub(crate) const DATABASE_RETRY_AFTER_SECS: u64 = 10;

/// A failure of the MEF's own: while the database is unreachable, 503 with Retry-After (RFC
/// 7030 4.2.3: a suitable 5xx code; the client repeats the request later), else 500.
fn failed(e: crate::MefError) -> Response {
    if let crate::MefError::DatabaseUnavailable { .. } = e {
        log::error!("{e}");
        Response::text(503, "the MEF's database is unavailable: retry later")
            .with_header("Retry-After", DATABASE_RETRY_AFTER_SECS.to_string())
    } else {
        internal(e)
    }
}

fn forbidden(msg: impl Into<String>) -> Response {
    Response::text(403, msg)
}

fn bad(msg: impl Into<String>) -> Response {
    Response::text(400, msg)
}

/// The client a request is served for, as [`authorize`] authenticated it.
struct Client {
    /// Its principal key: certificate fingerprint, or `psk:KpmID`.
    principal: String,
    /// Its associated identity.
    identity: Identity,
    /// For a MEF-issued client certificate, that certificate's record (the one
    /// /simplereenroll renews).
    renewed: Option<crate::IssuedCert>,
}

/// Certificate-based RSPF (CR 8.3.Z.2.2 pre-condition B.ii, 8.3.Z.2.3 pre-condition C) and
/// PPSK-based RSPF (B.i): the client, if it may use `op`.
fn authorize(shared: &Shared, conn: &ConnInfo, op: Op) -> Result<Client, Response> {
    let (principal, identity, renewed) = authorize_principal(shared, conn, op)?;
    // TS-0003 10.1.1.5: the MEF CA's nameConstraints are the SP domains; identities outside
    // them are never served, whatever the registry says.
    if !identity.within_domains(&shared.config.sp_domains) {
        return Err(forbidden(format!(
            "the identity {identity} lies outside the SP domains of this MEF ({}): \
             nameConstraints of TS-0003 10.1.1.5",
            shared.config.sp_domains.join(", ")
        )));
    }
    Ok(Client {
        principal,
        identity,
        renewed,
    })
}

fn authorize_principal(
    shared: &Shared,
    conn: &ConnInfo,
    op: Op,
) -> Result<(String, Identity, Option<crate::IssuedCert>), Response> {
    match shared.classify(conn).map_err(failed)? {
        Peer::Anonymous => Err(forbidden(
            "this operation requires a TLS client certificate (certificate-based RSPF)",
        )),
        Peer::Unknown => Err(forbidden(
            "the client certificate is neither issued by this MEF nor trusted as a third-party \
             EST client certificate",
        )),
        Peer::ThirdParty {
            fingerprint,
            identity,
            within_validity,
        } => {
            // The handshake checked validity once; a keep-alive connection can outlive the
            // certificate, so every request checks again (RFC 5280 6.1.3 (a)(2)).
            if !within_validity {
                return Err(forbidden(
                    "the client certificate is not within its validity period",
                ));
            }
            if op == Op::SimpleReenroll {
                return Err(forbidden(
                    "/simplereenroll requires a client certificate issued by this MEF; a \
                     third-party client certificate can only be used with /simpleenroll",
                ));
            }
            match identity {
                Some(id) => Ok((fingerprint, id, None)),
                None => Err(forbidden(
                    "the third-party client certificate is not registered with an identity at \
                     this MEF",
                )),
            }
        }
        Peer::Psk { kpm_id, identity } => {
            // CR 8.3.Z.2.3 pre-condition C: re-provisioning authenticates with the certificate
            // this MEF issued, never with the PSK.
            if op == Op::SimpleReenroll {
                return Err(forbidden(
                    "/simplereenroll is not available over TLS-PSK: re-provisioning \
                     authenticates with the certificate this MEF issued (TS-0003 8.3.6.2.3, CR \
                     8.3.Z.2.3 pre-condition C)",
                ));
            }
            match identity {
                // The challengePassword is bound to the KpmID principal.
                Some(id) => Ok((crate::store::psk_principal_key(&kpm_id), id, None)),
                None => Err(forbidden(
                    "the KpmID is no longer registered with an identity at this MEF",
                )),
            }
        }
        Peer::Issued {
            fingerprint,
            record,
        } => {
            if record.revoked {
                return Err(forbidden(
                    "the client certificate has been revoked by this MEF",
                ));
            }
            let now = crate::store::now_secs();
            if now < record.not_before || now > record.not_after {
                return Err(forbidden(
                    "the client certificate is not within its validity period",
                ));
            }
            let id = record.identity.clone();
            Ok((fingerprint, id, Some(record)))
        }
    }
}

fn certs_only_response(certs: &[&[u8]]) -> Outcome {
    let der = certs_only::encode(certs).map_err(internal)?;
    Ok(Response::new(
        200,
        media::CERTS_ONLY_CONTENT_TYPE,
        base64body::encode(&der).into_bytes(),
    )
    // RFC 7030 compatibility; readers ignore it (RFC 8951 3.1).
    .with_header("Content-Transfer-Encoding", "base64"))
}

/// RFC 7030 4.1: the MEF CA certificate, to anyone (no client certificate needed); during a
/// CA rollover overlap also OldWithOld, OldWithNew and NewWithOld (4.1.3).
fn cacerts(shared: &Shared) -> Outcome {
    let certs = shared.ca.cacerts();
    let refs: Vec<&[u8]> = certs.iter().map(|c| c.as_ref()).collect();
    certs_only_response(&refs)
}

/// RFC 7030 4.5 and CR 8.3.Z.2.2 step 2: a fresh challengePassword, the subjectAltName of the
/// client's identity, the extendedKeyUsage of the issuance policy for its subject type (CR
/// 8.3.Z.2.3 step 3d validates the CSR against it), P-256 and ecdsa-with-SHA256 (TS-0003
/// 10.1.1.1).
fn csr_attrs(shared: &Shared, client: &Client) -> Outcome {
    let (fp, identity) = (client.principal.as_str(), &client.identity);
    let password = shared
        .challenges
        .issue(fp, shared.config.challenge_ttl)
        .map_err(failed)?;
    let san = onem2m_est_proto::san::encode(&[identity.general_name()]).map_err(internal)?;
    let reqs = CsrRequirements {
        challenge_password: ChallengePassword::Value(password),
        extensions: vec![
            RequestedExtension {
                oid: oids::SUBJECT_ALT_NAME.into(),
                critical: false,
                value: san,
            },
            RequestedExtension {
                oid: oids::EXT_KEY_USAGE.into(),
                critical: false,
                value: eku_value(shared, identity).map_err(internal)?,
            },
        ],
        key: Some(KeyRequirement::Ec(Curve::P256)),
        hash: Some(HashAlg::Sha256),
        unrecognized: Vec::new(),
    };
    let items = reqs.to_items().map_err(internal)?;
    let der = Zeroizing::new(csrattrs::encode(&items).map_err(internal)?);
    Ok(
        Response::new(200, media::CSRATTRS, base64body::encode(&der).into_bytes())
            .with_header("Content-Transfer-Encoding", "base64"),
    )
}

/// The extendedKeyUsage extnValue of the issuance policy for the identity's subject type.
fn eku_value(
    shared: &Shared,
    identity: &Identity,
) -> Result<Vec<u8>, onem2m_est_proto::ProtoError> {
    let oids: Vec<&str> = shared
        .config
        .eku_policy
        .for_type(identity.subject_type())
        .iter()
        .map(|p| p.oid())
        .collect();
    onem2m_est_proto::eku::encode(&oids)
}

/// The CSR checks common to /simpleenroll, /simplereenroll and /serverkeygen, up to the
/// challengePassword. Returns the password presented (valid and pending) and the CSR's SPKI DER.
struct CheckedCsr {
    password: Zeroizing<String>,
    spki_der: Vec<u8>,
    digest: String,
}

fn check_csr(
    shared: &Shared,
    conn: &ConnInfo,
    req: &Request,
    op: Op,
    client: &Client,
) -> Result<CheckedCsr, Response> {
    let (fp, identity) = (client.principal.as_str(), &client.identity);
    let renewed = client.renewed.as_ref();
    let der = decode_csr_body(req.header("content-type"), &req.body)?;
    let csr = if op == Op::ServerKeygen {
        // RFC 7030 4.4.1: "the server MUST ignore the public key values and signature in the
        // CSR": the certificate is for a key the MEF generates.
        parse_csr_structure(&der)?
    } else {
        parse_csr(&der)?
    };
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let requested = csr_request(&csr)?;
    match (op, requested.encryption_key) {
        (_, None) if requested.smime_capabilities && op != Op::ServerKeygen => {
            return Err(bad(
                "the smimeCapabilities attribute is only used with /serverkeygen (RFC 7030 4.4.1)",
            ))
        }
        (_, None) => {}
        // RFC 7030 4.4.1.1/4.4.1.2: "If the server does not have a secret [public] key matching
        // the identifier specified by the client, the request MUST be terminated and an error
        // returned". This MEF holds no such keys: it returns a generated key only inside TLS.
        (Op::ServerKeygen, Some(k)) => {
            return Err(bad(format!(
                "this MEF has no {} matching the {} of the CSR (RFC 7030 {}): it does not \
                 encrypt server-generated keys beyond TLS; omit the attribute to receive the key \
                 over TLS only",
                k.key_kind(),
                k.attribute(),
                k.clause()
            )))
        }
        (_, Some(k)) => {
            return Err(bad(format!(
                "the {} attribute is only used with /serverkeygen (RFC 7030 {})",
                k.attribute(),
                k.clause()
            )))
        }
    }
    // challengePassword (CR 8.3.Z.2.2 step 3: "the MEF shall validate the challengePassword").
    let Some(password) = requested.password else {
        return Err(forbidden(
            "the CSR has no challengePassword attribute: fetch /csrattrs and echo its challengePassword",
        ));
    };
    match shared.challenges.check(fp, &password).map_err(failed)? {
        ChallengeCheck::Valid => {}
        ChallengeCheck::Expired => {
            shared.challenges.discard(fp, &password);
            return Err(forbidden(
                "the challengePassword has expired: fetch /csrattrs again",
            ));
        }
        ChallengeCheck::Unknown => {
            return Err(forbidden(
                "the challengePassword does not match one issued to this client by /csrattrs \
                 (wrong, already used, or issued to another client)",
            ))
        }
    }
    let digest = hex(ring::digest::digest(&ring::digest::SHA256, &der).as_ref());
    let checked = CheckedCsr {
        password,
        spki_der: spki.raw.to_vec(),
        digest,
    };
    // From here on a failure consumes the password: a rejected CSR must not leave it reusable.
    let consume_and = |resp: Response| {
        shared.challenges.discard(fp, &checked.password);
        resp
    };
    // Identity (CR 8.3.Z.2.2 step 3: "validate the identity attribute against the authenticated
    // identity"): exactly one subjectAltName entry, equal to the associated identity.
    let Some(sans) = requested.subject_alt_names else {
        return Err(consume_and(bad(format!(
            "the CSR has no subjectAltName: it must carry exactly the identity {identity}"
        ))));
    };
    match sans.as_slice() {
        [one] if identity.matches(one) => {}
        [_] => {
            return Err(consume_and(bad(format!(
                "the CSR subjectAltName does not match the identity associated with the \
                 authenticated client ({identity})"
            ))))
        }
        _ => {
            return Err(consume_and(bad(format!(
                "the CSR subjectAltName must hold exactly one name, the identity {identity} \
                 (no extra names)"
            ))))
        }
    }
    // CR 8.3.Z.2.3 step 3d: "The MEF shall validate the ... EKU(s) against those provided in
    // step 2": the CSR's purposes are exactly those /csrattrs requested for this subject type.
    // A CSR without extendedKeyUsage is accepted (peers such as strongSwan pki --req cannot
    // add one) and the certificate carries the policy's purposes all the same.
    if let Some(ekus) = &requested.ekus {
        let policy = shared.config.eku_policy.for_type(identity.subject_type());
        let same =
            ekus.len() == policy.len() && policy.iter().all(|p| ekus.iter().any(|e| e == p.oid()));
        if !same {
            return Err(consume_and(bad(format!(
                "the CSR extendedKeyUsage ({}) is not the one /csrattrs requested for a {} \
                 ({}): EKU check of CR 8.3.Z.2.3 step 3d",
                ekus.join(", "),
                identity.subject_type(),
                policy
                    .iter()
                    .map(|p| p.oid())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))));
        }
    }
    if op == Op::SimpleReenroll {
        // RFC 7030 4.2.2: Subject and subjectAltName unchanged from the certificate being renewed.
        // The identity associated with a MEF-issued certificate is the one recorded when it
        // was issued, so the subjectAltName check above already pins it.
        if renewed.is_none() {
            return Err(consume_and(forbidden("no certificate to renew")));
        }
        if !info.subject.as_raw().is_empty() && info.subject.iter().next().is_some() {
            let current = conn
                .certs()
                .first()
                .and_then(|c| x509_parser::parse_x509_certificate(c).ok())
                .map(|(_, c)| c.subject().to_string());
            if current.as_deref() != Some(info.subject.to_string().as_str()) {
                return Err(consume_and(bad(
                    "re-enrollment must keep the subject of the certificate being renewed \
                     (RFC 7030 4.2.2)",
                )));
            }
        }
    }
    Ok(checked)
}

// The stateless part of `check_csr`: what a hostile request body reaches before any MEF state
// is consulted. Public but hidden (re-exported by lib.rs) so the fuzz target `mef_csr` drives
// this exact code.

/// The CSR DER of an enrollment request: Content-Type application/pkcs10 (parameters
/// tolerated, RFC 7030 4.2.1) and a base64 body (RFC 8951 3.1). Errors are the 415/400 answers.
#[doc(hidden)]
pub fn decode_csr_body(content_type: Option<&str>, body: &[u8]) -> Result<Vec<u8>, Response> {
    let ct = content_type
        .ok_or_else(|| Response::text(415, "missing Content-Type: expected application/pkcs10"))?;
    match MediaType::parse(ct) {
        Ok(m) if m.is(media::PKCS10) => {}
        _ => {
            return Err(Response::text(
                415,
                format!("unsupported Content-Type {ct:?}: expected application/pkcs10"),
            ))
        }
    }
    base64body::decode(body).map_err(|e| bad(format!("malformed base64 body: {e}")))
}

/// Parses a PKCS #10 CSR (RFC 2986) with no trailing data, and nothing else: what /serverkeygen
/// reads (RFC 7030 4.4.1: the public key and signature are ignored). Errors are the 400 answers.
#[doc(hidden)]
pub fn parse_csr_structure(der: &[u8]) -> Result<X509CertificationRequest<'_>, Response> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| bad(format!("malformed CSR DER (PKCS #10): {e}")))?;
    if !rest.is_empty() {
        return Err(bad(
            "malformed CSR DER (PKCS #10): trailing data after the CSR",
        ));
    }
    Ok(csr)
}

/// Parses a PKCS #10 CSR (RFC 2986) and checks what needs no MEF state: no trailing data, proof
/// of possession, an ECDSA P-256 key and an ecdsa-with-SHA256 signature (TS-0003 10.1.1.1).
/// Errors are the 400 answers.
#[doc(hidden)]
pub fn parse_csr(der: &[u8]) -> Result<X509CertificationRequest<'_>, Response> {
    let csr = parse_csr_structure(der)?;
    // Proof of possession (RFC 7030 3.4 / RFC 2986): the CSR is signed with its own key.
    csr.verify_signature()
        .map_err(|_| bad("CSR signature does not verify (proof of possession failed)"))?;
    // TS-0003 10.1.1.1: ECDSA P-256 keys, ecdsa-with-SHA256 signatures.
    let spki = &csr.certification_request_info.subject_pki;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    if spki.algorithm.algorithm.to_id_string() != oids::EC_PUBLIC_KEY
        || curve.as_deref() != Some(oids::SECP256R1)
    {
        return Err(bad(
            "CSR key type is not allowed: the key must be ECDSA P-256 (secp256r1)",
        ));
    }
    if csr.signature_algorithm.algorithm.to_id_string() != oids::ECDSA_WITH_SHA256 {
        return Err(bad(
            "CSR signature algorithm is not allowed: it must be ecdsa-with-SHA256",
        ));
    }
    Ok(csr)
}

/// What a CSR requests, read from every attribute and every value (RFC 2986 4.1), each checked
/// in full: the challengePassword and the requested subjectAltName names.
#[doc(hidden)]
#[derive(Default)]
pub struct CsrRequest {
    /// The challengePassword (PKCS #9, RFC 2985 5.4.1), if present.
    pub password: Option<Zeroizing<String>>,
    /// The names of the requested subjectAltName, if one is requested.
    pub subject_alt_names: Option<Vec<GeneralName>>,
    /// The requested extendedKeyUsage purposes (dotted OIDs, each once), if requested.
    pub ekus: Option<Vec<String>>,
    /// The key a /serverkeygen client asks its private key to be encrypted to (RFC 7030
    /// 4.4.1.1/4.4.1.2), if it asks.
    pub encryption_key: Option<EncryptionKeyRequest>,
    /// Whether an smimeCapabilities attribute (RFC 7030 4.4.1) is present.
    pub smime_capabilities: bool,
}

/// A request to encrypt a server-generated private key (RFC 7030 4.4.1.1/4.4.1.2).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncryptionKeyRequest {
    /// DecryptKeyIdentifier: a secret key known to both sides.
    Symmetric,
    /// AsymmetricDecryptKeyIdentifier: the client's key pair.
    Asymmetric,
}

impl EncryptionKeyRequest {
    fn attribute(self) -> &'static str {
        match self {
            Self::Symmetric => "DecryptKeyIdentifier",
            Self::Asymmetric => "AsymmetricDecryptKeyIdentifier",
        }
    }

    fn key_kind(self) -> &'static str {
        match self {
            Self::Symmetric => "secret key",
            Self::Asymmetric => "public key",
        }
    }

    fn clause(self) -> &'static str {
        match self {
            Self::Symmetric => "4.4.1.1",
            Self::Asymmetric => "4.4.1.2",
        }
    }
}

/// One DER element: its parsed header and content, and its full encoding.
type Element<'a> = (x509_parser::asn1_rs::Any<'a>, &'a [u8]);

/// Splits DER content into its elements; anything that is not a sequence of whole DER elements
/// is an error (no trailing bytes).
fn der_elements(mut content: &[u8]) -> Option<Vec<Element<'_>>> {
    use x509_parser::asn1_rs::FromDer as _;
    let mut out = Vec::new();
    while !content.is_empty() {
        let (rest, any) = x509_parser::asn1_rs::Any::from_der(content).ok()?;
        out.push((any, &content[..content.len() - rest.len()]));
        content = rest;
    }
    Some(out)
}

/// The content of `der` if it is exactly one element with this tag (universal class).
fn der_only(der: &[u8], tag: x509_parser::asn1_rs::Tag) -> Option<&[u8]> {
    match der_elements(der)?.as_slice() {
        [(any, _)] if any.header.is_universal() && any.header.tag() == tag => Some(any.data),
        _ => None,
    }
}

fn oid_text(der: &[u8]) -> Option<String> {
    use x509_parser::asn1_rs::FromDer as _;
    match x509_parser::asn1_rs::Oid::from_der(der) {
        Ok(([], oid)) => Some(oid.to_id_string()),
        _ => None,
    }
}

/// Reads every attribute of the CSR and every value of each (RFC 2986 4.1, RFC 2985 5.4), so
/// that nothing a CSR carries goes unexamined: an attribute given twice, a second value of a
/// single-valued attribute, an attribute this MEF does not know, an extension that does not
/// parse or comes twice, bytes after a value, and extensions the MEF would never grant
/// (CA:TRUE, keyUsage beyond digitalSignature, unknown extensions) are all refused; the
/// requested EKUs are returned for `check_csr` to hold against the issuance policy. The issued certificate is built from the registered identity
/// alone (`ca::MefCa::issue`); refusing what it would not grant keeps a CSR from ever meaning
/// more than what is issued. Errors are the 400 answers.
#[doc(hidden)]
pub fn csr_request(csr: &X509CertificationRequest<'_>) -> Result<CsrRequest, Response> {
    use x509_parser::asn1_rs::{Class, Tag};
    let malformed = || bad("malformed CSR attributes (PKCS #10, RFC 2986 4.1)");
    // CertificationRequestInfo ::= SEQUENCE { version, subject, subjectPKInfo, [0] attributes }
    let info = der_only(csr.certification_request_info.raw, Tag::Sequence).ok_or_else(malformed)?;
    let fields = der_elements(info).ok_or_else(malformed)?;
    let [_, _, _, (attrs, _)] = fields.as_slice() else {
        return Err(malformed());
    };
    if attrs.header.class() != Class::ContextSpecific
        || attrs.header.tag() != Tag(0)
        || !attrs.header.is_constructed()
    {
        return Err(malformed());
    }
    let mut out = CsrRequest::default();
    let mut seen: Vec<String> = Vec::new();
    for (_, attr_der) in der_elements(attrs.data).ok_or_else(malformed)? {
        // Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE(1..MAX) OF ANY }
        let content = der_only(attr_der, Tag::Sequence).ok_or_else(malformed)?;
        let parts = der_elements(content).ok_or_else(malformed)?;
        let [(_, oid_der), (_, set_der)] = parts.as_slice() else {
            return Err(malformed());
        };
        let oid = oid_text(oid_der).ok_or_else(malformed)?;
        let values = der_only(set_der, Tag::Set)
            .and_then(der_elements)
            .ok_or_else(malformed)?;
        if seen.contains(&oid) {
            return Err(bad(format!("the CSR carries the attribute {oid} twice")));
        }
        seen.push(oid.clone());
        // challengePassword and extensionRequest are both SINGLE VALUE (RFC 2985 5.4.1, 5.4.2).
        let [(value, value_der)] = values.as_slice() else {
            return Err(bad(format!(
                "the CSR attribute {oid} must have exactly one value (it has {})",
                values.len()
            )));
        };
        match oid.as_str() {
            oids::CHALLENGE_PASSWORD => {
                // DirectoryString; UTF8String and PrintableString are what EST clients send.
                let text = match value.header.tag() {
                    Tag::Utf8String | Tag::PrintableString if value.header.is_universal() => {
                        std::str::from_utf8(value.data).ok()
                    }
                    _ => None,
                };
                let Some(text) = text else {
                    return Err(bad(
                        "the challengePassword must be a UTF8String or PrintableString",
                    ));
                };
                out.password = Some(Zeroizing::new(text.to_owned()));
            }
            oids::EXTENSION_REQUEST => {
                (out.subject_alt_names, out.ekus) = requested_extensions(value_der)?;
            }
            // Both identifiers are OCTET STRINGs (RFC 4108 2.2.5, RFC 7030 4.4.1.2); at most one.
            oids::DECRYPT_KEY_ID | oids::ASYMM_DECRYPT_KEY_ID => {
                if der_only(value_der, Tag::OctetString).is_none() {
                    return Err(bad(format!(
                        "the CSR attribute {oid} must be an OCTET STRING"
                    )));
                }
                if out.encryption_key.is_some() {
                    return Err(bad("the CSR names both a DecryptKeyIdentifier and an \
                         AsymmetricDecryptKeyIdentifier (RFC 7030 4.4.1)"));
                }
                out.encryption_key = Some(if oid == oids::DECRYPT_KEY_ID {
                    EncryptionKeyRequest::Symmetric
                } else {
                    EncryptionKeyRequest::Asymmetric
                });
            }
            // SMIMECapabilities ::= SEQUENCE OF SMIMECapability (RFC 8551 2.5.2).
            oids::SMIME_CAPABILITIES => {
                if der_only(value_der, Tag::Sequence).is_none() {
                    return Err(bad(format!("the CSR attribute {oid} must be a SEQUENCE")));
                }
                out.smime_capabilities = true;
            }
            other => {
                return Err(bad(format!(
                    "the CSR carries an attribute this MEF does not accept ({other}): only \
                     challengePassword and extensionRequest (and, for /serverkeygen, the RFC \
                     7030 4.4.1 ones)"
                )))
            }
        }
    }
    Ok(out)
}

/// The extensionRequest value (`Extensions`, RFC 5280 4.1): every extension parsed, none
/// twice, only what the MEF's certificate profile grants. Returns the subjectAltName names and
/// the extendedKeyUsage purposes (checked against the issuance policy by `check_csr`).
type Requested = (Option<Vec<GeneralName>>, Option<Vec<String>>);
fn requested_extensions(value_der: &[u8]) -> Result<Requested, Response> {
    use x509_parser::asn1_rs::Tag;
    let malformed = || bad("malformed extensionRequest (RFC 5280 4.1 Extensions)");
    let exts = der_only(value_der, Tag::Sequence)
        .and_then(der_elements)
        .ok_or_else(malformed)?;
    let mut seen: Vec<String> = Vec::new();
    let mut sans = None;
    let mut ekus = None;
    for (_, ext_der) in exts {
        // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
        let parts = der_only(ext_der, Tag::Sequence)
            .and_then(der_elements)
            .ok_or_else(malformed)?;
        if !(2..=3).contains(&parts.len()) {
            return Err(malformed());
        }
        let (rest, ext) =
            x509_parser::extensions::X509Extension::from_der(ext_der).map_err(|_| malformed())?;
        if !rest.is_empty() {
            return Err(malformed());
        }
        let oid = ext.oid.to_id_string();
        if seen.contains(&oid) {
            return Err(bad(format!(
                "the CSR requests the extension {oid} twice (RFC 5280 4.2)"
            )));
        }
        seen.push(oid.clone());
        match ext.parsed_extension() {
            // Strict GeneralNames: no bytes after the SEQUENCE, every name well-formed.
            _ if oid == oids::SUBJECT_ALT_NAME => {
                let names = onem2m_est_proto::san::decode(ext.value).map_err(|e| {
                    bad(format!("the requested subjectAltName does not parse: {e}"))
                })?;
                sans = Some(names);
            }
            ParsedExtension::ParseError { .. } => {
                return Err(bad(format!("the requested extension {oid} does not parse")))
            }
            ParsedExtension::BasicConstraints(bc) if bc.ca => {
                return Err(bad(
                    "the CSR requests basicConstraints CA:TRUE: this MEF issues end-entity \
                     certificates only",
                ))
            }
            ParsedExtension::BasicConstraints(_) => {}
            ParsedExtension::KeyUsage(ku) => {
                if ku.key_cert_sign() || ku.crl_sign() {
                    return Err(bad(
                        "the CSR requests keyUsage keyCertSign or cRLSign: this MEF issues \
                         end-entity certificates only",
                    ));
                }
                if ku.flags & !1 != 0 {
                    return Err(bad(
                        "the CSR requests a keyUsage other than digitalSignature, which this \
                         MEF does not grant (TS-0003 10.1.1.1)",
                    ));
                }
            }
            // Strict ExtKeyUsageSyntax; whether the purposes are the policy's is checked with
            // the identity (`check_csr`, CR 8.3.Z.2.3 step 3d).
            _ if oid == oids::EXT_KEY_USAGE => {
                let purposes = onem2m_est_proto::eku::decode(ext.value).map_err(|e| {
                    bad(format!(
                        "the requested extendedKeyUsage does not parse: {e}"
                    ))
                })?;
                if purposes
                    .iter()
                    .enumerate()
                    .any(|(i, p)| purposes[..i].contains(p))
                {
                    return Err(bad("the requested extendedKeyUsage names a purpose twice"));
                }
                ekus = Some(purposes);
            }
            ParsedExtension::SubjectKeyIdentifier(_) => {}
            _ => {
                return Err(bad(format!(
                    "the CSR requests the extension {oid}, which this MEF does not grant"
                )))
            }
        }
    }
    Ok((sans, ekus))
}

/// Records an issued certificate with the principal that authenticated its request
/// (`Store::insert_issued`): refused if that principal was revoked or removed meanwhile.
fn record_issued(
    shared: &Shared,
    record: &crate::IssuedCert,
    cert: &[u8],
    principal: &str,
) -> Result<(), Response> {
    if shared
        .store
        .insert_issued(record, cert, principal)
        .map_err(failed)?
    {
        Ok(())
    } else {
        Err(forbidden(
            "the client's authorisation was withdrawn while the request was handled (its \
             certificate was revoked or its registration removed)",
        ))
    }
}

fn enroll(shared: &Shared, conn: &ConnInfo, req: &Request, op: Op, client: &Client) -> Outcome {
    let (fp, identity) = (client.principal.as_str(), &client.identity);
    let checked = check_csr(shared, conn, req, op, client)?;
    // Manual-approval simulation (RFC 7030 4.2.3): 202 + Retry-After for the first N attempts
    // of this CSR. The password stays pending: the client repeats the same CSR.
    // The entry is the client's own (keyed by its principal, then the CSR), bounded per client
    // and expiring with the challengePassword it waits with.
    if shared.approvals.must_wait(
        fp,
        &checked.digest,
        shared.config.approval_polls,
        shared.config.challenge_ttl,
    ) {
        return Ok(Response::text(
            202,
            "the request is pending manual approval: retry later with the same CSR",
        )
        .with_header("Retry-After", shared.config.retry_after_secs.to_string()));
    }
    // Single use: exactly one request wins a password, even under concurrency.
    if !shared
        .challenges
        .consume(fp, &checked.password)
        .map_err(failed)?
    {
        return Err(forbidden("the challengePassword has already been used"));
    }
    let lifetime = shared.config.cert_lifetime;
    let purposes = shared.config.eku_policy.for_type(identity.subject_type());
    let (cert, key_pkcs8) = if op == Op::ServerKeygen {
        // RFC 7030 4.4: the certificate is for a key the MEF generates; the CSR's key only
        // proved possession of the requesting key.
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(internal)?;
        let (cert, record) = shared
            .ca
            .issue(identity, &key, lifetime, purposes)
            .map_err(internal)?;
        record_issued(shared, &record, &cert, fp)?;
        (cert, Some(Zeroizing::new(key.serialize_der())))
    } else {
        let spki = rcgen::SubjectPublicKeyInfo::from_der(&checked.spki_der)
            .map_err(|e| bad(format!("unusable CSR public key: {e}")))?;
        let (cert, record) = shared
            .ca
            .issue(identity, &spki, lifetime, purposes)
            .map_err(internal)?;
        record_issued(shared, &record, &cert, fp)?;
        (cert, None)
    };
    log::info!(
        "issued a certificate for {identity} ({})",
        match op {
            Op::SimpleReenroll => "re-enrollment",
            Op::ServerKeygen => "server-side key generation",
            _ => "enrollment",
        }
    );
    match key_pkcs8 {
        None => certs_only_response(&[cert.as_ref()]),
        Some(key) => {
            let (ct, body) =
                multipart::encode_serverkeygen(&key, &[cert.as_ref()]).map_err(internal)?;
            Ok(Response::new(200, &ct, body))
        }
    }
}
