//! EST operations (RFC 7030 4.1, 4.2, 4.4, 4.5 with RFC 8951) and the MEF checks of the CR
//! clause 8.3.Z.2.

use crate::challenge::ChallengeCheck;
use crate::http::{Request, Response};
use crate::identity::{hex, Identity};
use crate::server::{ConnInfo, Peer, Shared};
use onem2m_est_proto::csrattrs::{
    self, ChallengePassword, CsrRequirements, Curve, HashAlg, KeyRequirement, RequestedExtension,
};
use onem2m_est_proto::media::{self, MediaType};
use onem2m_est_proto::san::GeneralName;
use onem2m_est_proto::{base64body, certs_only, multipart, oids};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
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
    // TS-0003 8.3.6.2.1 (CR 8.3.Z.2.2 Note 2): no HTTP-based client authentication; the MEF
    // never asks for it (no 401/WWW-Authenticate) and refuses requests that offer it.
    if req.header("authorization").is_some() {
        return Err(Response::text(
            400,
            "HTTP-based client authentication is not used (TS-0003 8.3.6.2.1): remove the \
             Authorization header and authenticate with a TLS client certificate",
        ));
    }
    // Tolerate empty path segments ("//"): strongSwan's pki appends "/.well-known/est/..." to
    // its --url, so a URL given with a trailing slash yields "//.well-known/est/...".
    let mut path = String::with_capacity(req.path.len());
    for c in req.path.chars() {
        if !(c == '/' && path.ends_with('/')) {
            path.push(c);
        }
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
        if l.is_empty()
            || !l
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(Response::text(404, "invalid EST label"));
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
        Op::CsrAttrs => {
            let (fp, identity, _) = authorize(shared, conn, op)?;
            csr_attrs(shared, &fp, &identity)
        }
        _ => {
            let (fp, identity, renewed) = authorize(shared, conn, op)?;
            enroll(shared, conn, req, op, &fp, &identity, renewed)
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Response {
    log::error!("internal error: {e}");
    Response::text(500, "internal error")
}

fn forbidden(msg: impl Into<String>) -> Response {
    Response::text(403, msg)
}

fn bad(msg: impl Into<String>) -> Response {
    Response::text(400, msg)
}

/// Certificate-based RSPF (CR 8.3.Z.2.2 pre-condition B.ii, 8.3.Z.2.3 pre-condition C) and
/// PPSK-based RSPF (B.i): returns the client's principal key (certificate fingerprint, or
/// `psk:KpmID`), its associated identity, and, for a MEF-issued client certificate, that
/// certificate's record (the one /simplereenroll renews).
fn authorize(
    shared: &Shared,
    conn: &ConnInfo,
    op: Op,
) -> Result<(String, Identity, Option<crate::IssuedCert>), Response> {
    match shared.classify(conn).map_err(internal)? {
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
        } => {
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
                Some(id) => Ok((crate::server::psk_principal_key(&kpm_id), id, None)),
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

/// RFC 7030 4.1: the MEF CA certificate, to anyone (no client certificate needed).
fn cacerts(shared: &Shared) -> Outcome {
    certs_only_response(&[shared.ca.cert_der().as_ref()])
}

/// RFC 7030 4.5 and CR 8.3.Z.2.2 step 2: a fresh challengePassword, the subjectAltName of the
/// client's identity, P-256 and ecdsa-with-SHA256 (TS-0003 10.1.1.1).
fn csr_attrs(shared: &Shared, fp: &str, identity: &Identity) -> Outcome {
    let password = shared
        .challenges
        .issue(fp, shared.config.challenge_ttl)
        .map_err(internal)?;
    let san = onem2m_est_proto::san::encode(&[identity.general_name()]).map_err(internal)?;
    let reqs = CsrRequirements {
        challenge_password: ChallengePassword::Value(password),
        extensions: vec![RequestedExtension {
            oid: oids::SUBJECT_ALT_NAME.into(),
            critical: false,
            value: san,
        }],
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
    fp: &str,
    identity: &Identity,
    renewed: Option<&crate::IssuedCert>,
) -> Result<CheckedCsr, Response> {
    let der = decode_csr_body(req.header("content-type"), &req.body)?;
    let csr = parse_csr(&der)?;
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    // challengePassword (CR 8.3.Z.2.2 step 3: "the MEF shall validate the challengePassword").
    let Some(password) = csr_challenge_password(&csr) else {
        return Err(forbidden(
            "the CSR has no challengePassword attribute: fetch /csrattrs and echo its challengePassword",
        ));
    };
    match shared.challenges.check(fp, &password) {
        ChallengeCheck::Valid => {}
        ChallengeCheck::Expired => {
            shared.challenges.consume(fp, &password);
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
        shared.challenges.consume(fp, &checked.password);
        resp
    };
    // Identity (CR 8.3.Z.2.2 step 3: "validate the identity attribute against the authenticated
    // identity"): exactly one subjectAltName entry, equal to the associated identity.
    let sans = csr_subject_alt_names(&csr).map_err(|e| consume_and(bad(e)))?;
    let Some(sans) = sans else {
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

/// Parses a PKCS #10 CSR (RFC 2986) and checks what needs no MEF state: no trailing data, proof
/// of possession, an ECDSA P-256 key and an ecdsa-with-SHA256 signature (TS-0003 10.1.1.1).
/// Errors are the 400 answers.
#[doc(hidden)]
pub fn parse_csr(der: &[u8]) -> Result<X509CertificationRequest<'_>, Response> {
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| bad(format!("malformed CSR DER (PKCS #10): {e}")))?;
    if !rest.is_empty() {
        return Err(bad(
            "malformed CSR DER (PKCS #10): trailing data after the CSR",
        ));
    }
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

/// The challengePassword attribute of a CSR (PKCS #9, RFC 2985 5.4.1), if any.
#[doc(hidden)]
pub fn csr_challenge_password(csr: &X509CertificationRequest<'_>) -> Option<Zeroizing<String>> {
    csr.certification_request_info
        .iter_attributes()
        .find_map(|a| match a.parsed_attribute() {
            ParsedCriAttribute::ChallengePassword(p) => Some(Zeroizing::new(p.0.clone())),
            _ => None,
        })
}

/// The names of the CSR's requested subjectAltName, `None` without one. Requesting it twice is
/// an error (the text of the 400 answer).
#[doc(hidden)]
pub fn csr_subject_alt_names(
    csr: &X509CertificationRequest<'_>,
) -> Result<Option<Vec<GeneralName>>, &'static str> {
    let mut sans: Option<Vec<GeneralName>> = None;
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(s) = ext {
                let names = s.general_names.iter().map(to_general_name).collect();
                if sans.replace(names).is_some() {
                    return Err("the CSR requests subjectAltName twice");
                }
            }
        }
    }
    Ok(sans)
}

fn to_general_name(g: &x509_parser::extensions::GeneralName<'_>) -> GeneralName {
    use x509_parser::extensions::GeneralName as X;
    match g {
        X::DNSName(d) => GeneralName::Dns((*d).to_owned()),
        X::URI(u) => GeneralName::Uri((*u).to_owned()),
        other => GeneralName::Other(format!("{other:?}").into_bytes()),
    }
}

fn enroll(
    shared: &Shared,
    conn: &ConnInfo,
    req: &Request,
    op: Op,
    fp: &str,
    identity: &Identity,
    renewed: Option<crate::IssuedCert>,
) -> Outcome {
    let checked = check_csr(shared, conn, req, op, fp, identity, renewed.as_ref())?;
    // Manual-approval simulation (RFC 7030 4.2.3): 202 + Retry-After for the first N attempts
    // of this CSR. The password stays pending: the client repeats the same CSR.
    if shared.config.approval_polls > 0 {
        let mut approvals = shared.approvals.lock().unwrap_or_else(|p| p.into_inner());
        // Only authenticated clients reach this point, but keep the table bounded anyway.
        if approvals.len() >= 10_000 {
            approvals.clear();
        }
        let count = approvals.entry(checked.digest.clone()).or_insert(0);
        if *count < shared.config.approval_polls {
            *count += 1;
            return Ok(Response::text(
                202,
                "the request is pending manual approval: retry later with the same CSR",
            )
            .with_header("Retry-After", shared.config.retry_after_secs.to_string()));
        }
        approvals.remove(&checked.digest);
    }
    // Single use: exactly one request wins a password, even under concurrency.
    if !shared.challenges.consume(fp, &checked.password) {
        return Err(forbidden("the challengePassword has already been used"));
    }
    let lifetime = shared.config.cert_lifetime;
    let (cert, key_pkcs8) = if op == Op::ServerKeygen {
        // RFC 7030 4.4: the certificate is for a key the MEF generates; the CSR's key only
        // proved possession of the requesting key.
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(internal)?;
        let (cert, record) = shared
            .ca
            .issue(identity, &key, lifetime)
            .map_err(internal)?;
        shared
            .store
            .insert_issued(&record, &cert)
            .map_err(internal)?;
        (cert, Some(Zeroizing::new(key.serialize_der())))
    } else {
        let spki = rcgen::SubjectPublicKeyInfo::from_der(&checked.spki_der)
            .map_err(|e| bad(format!("unusable CSR public key: {e}")))?;
        let (cert, record) = shared
            .ca
            .issue(identity, &spki, lifetime)
            .map_err(internal)?;
        shared
            .store
            .insert_issued(&record, &cert)
            .map_err(internal)?;
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
