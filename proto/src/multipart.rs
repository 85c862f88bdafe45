//! multipart/mixed (RFC 2046 5.1) as server-side key generation returns it (RFC 7030 4.4.2):
//! an `application/pkcs8` part (the private key; CMS-enveloped keys are not supported) and an
//! `application/pkcs7-mime; smime-type=certs-only` part, each base64 per RFC 8951.

use crate::media::{self, MediaType};
use crate::{base64body, certs_only, ProtoError};
use der::{AnyRef, Decode, Tag, Tagged};
use std::hash::{DefaultHasher, Hash, Hasher};
use zeroize::{Zeroize, Zeroizing};

/// One body part: its headers (names lower-cased) and its raw body bytes (not yet base64-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    /// The part's Content-Type header value, if present.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a multipart body given the boundary parameter of its Content-Type. Preamble and
/// epilogue are ignored; CRLF and bare LF line ends are both accepted; a missing close
/// delimiter is an error.
///
/// At least one part is required (RFC 2046 5.1.1); the boundary must be 1 to 70 characters.
/// A part without the blank line that ends its headers is read as headers only (empty body).
pub fn parse(boundary: &str, body: &[u8]) -> Result<Vec<Part>, ProtoError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(ProtoError::Multipart(format!(
            "boundary must be 1 to 70 characters, got {}",
            boundary.len()
        )));
    }
    let dash_boundary = [b"--".as_slice(), boundary.as_bytes()].concat();
    let delimiters = find_delimiters(body, &dash_boundary);
    let Some(first) = delimiters.first() else {
        return Err(ProtoError::Multipart("no boundary delimiter found".into()));
    };
    if first.close {
        return Err(ProtoError::Multipart("no body parts".into()));
    }
    let Some(close_idx) = delimiters.iter().position(|d| d.close) else {
        return Err(ProtoError::Multipart("missing close delimiter".into()));
    };
    let mut parts = Vec::with_capacity(close_idx);
    for pair in delimiters[..=close_idx].windows(2) {
        // Back-to-back delimiter lines ("--b\n--b--"): the line break before the second is
        // also the end of the first, so the part between them is empty (found by fuzzing).
        let end = pair[1].line_start.max(pair[0].content_start);
        parts.push(parse_part(&body[pair[0].content_start..end])?);
    }
    Ok(parts)
}

/// A delimiter line found in the body.
struct Delimiter {
    /// Where the line break before the delimiter starts (the CRLF or LF belongs to it,
    /// RFC 2046 5.1.1); the start of the line for the first delimiter.
    line_start: usize,
    /// Just after the delimiter line's own line break.
    content_start: usize,
    /// `--boundary--`.
    close: bool,
}

/// Finds every delimiter line: `--boundary` at the start of a line, then `--` for the close
/// delimiter, then only transport padding (SP/HT) up to the line end. A line that merely starts
/// with `--boundary` followed by other characters is content.
fn find_delimiters(body: &[u8], dash_boundary: &[u8]) -> Vec<Delimiter> {
    let mut found = Vec::new();
    let mut line_start = 0;
    while line_start <= body.len() {
        let line_end = body[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| line_start + i);
        let mut line = &body[line_start..line_end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if let Some(rest) = line.strip_prefix(dash_boundary) {
            let (close, rest) = match rest.strip_prefix(b"--") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            if rest.iter().all(|&b| b == b' ' || b == b'\t') {
                // The preceding line break belongs to the delimiter.
                let mut start = line_start;
                if start > 0 {
                    start -= 1; // the LF
                    if start > 0 && body[start - 1] == b'\r' {
                        start -= 1;
                    }
                }
                found.push(Delimiter {
                    line_start: start,
                    content_start: (line_end + 1).min(body.len()),
                    close,
                });
                if close {
                    break; // what follows is the epilogue
                }
            }
        }
        line_start = line_end + 1;
    }
    found
}

/// Splits one body part into headers (RFC 5322 2.2, unfolded, names lower-cased) and body.
fn parse_part(raw: &[u8]) -> Result<Part, ProtoError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    let mut body_start = raw.len();
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i);
        let mut line = &raw[pos..end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let next = (end + 1).min(raw.len());
        if line.is_empty() {
            body_start = next;
            break;
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| ProtoError::Multipart("part header is not UTF-8".into()))?;
        if text.starts_with([' ', '\t']) {
            // Folded continuation of the previous header.
            let Some(last) = headers.last_mut() else {
                return Err(ProtoError::Multipart(
                    "part headers start with a continuation line".into(),
                ));
            };
            last.1.push(' ');
            last.1.push_str(text.trim());
        } else {
            let (name, value) = text
                .split_once(':')
                .ok_or_else(|| ProtoError::Multipart("part header line without ':'".into()))?;
            let name = name.trim_end();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ProtoError::Multipart("malformed part header name".into()));
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        pos = next;
    }
    Ok(Part {
        headers,
        body: raw[body_start..].to_vec(),
    })
}

/// A decoded serverkeygen response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeygenResponse {
    /// The DER of the application/pkcs8 part: a PKCS #8 PrivateKeyInfo (OneAsymmetricKey) per
    /// RFC 7030 4.4.2, or, from servers on OpenSSL's `i2d_PrivateKey` (libest), the
    /// traditional form; the client's `SoftwareKey::from_server_key_der` reads both. Only
    /// checked to be a SEQUENCE here. Zeroized on drop.
    pub private_key_pkcs8: Zeroizing<Vec<u8>>,
    /// The certificates of the certs-only part, each DER.
    pub certificates: Vec<Vec<u8>>,
}

/// Decodes a whole serverkeygen response from its Content-Type header value and body: finds the
/// application/pkcs8 part and the certs-only part (in any order), base64-decodes both, and
/// decodes the certs-only CMS. A missing part, a duplicated part, or an
/// `application/pkcs7-mime; smime-type=server-generated-key` (encrypted key) part is an error.
///
/// Content-Transfer-Encoding headers are ignored (RFC 8951 3.1: bodies are base64 regardless);
/// parts of other types are ignored. A part without Content-Type is an error (its type would be
/// text/plain, RFC 2046 5.1, which neither expected part is).
pub fn decode_serverkeygen(
    content_type: &str,
    body: &[u8],
) -> Result<ServerKeygenResponse, ProtoError> {
    let mt = MediaType::parse(content_type)?;
    if !mt.is(media::MULTIPART_MIXED) {
        return Err(ProtoError::Multipart(format!(
            "Content-Type is {}, not multipart/mixed",
            mt.essence
        )));
    }
    let boundary = mt
        .param("boundary")
        .ok_or_else(|| ProtoError::Multipart("Content-Type has no boundary parameter".into()))?;
    let mut parts = parse(boundary, body)?;
    let result = find_serverkeygen_parts(&parts);
    // The raw bodies hold the private key in base64.
    for p in &mut parts {
        p.body.zeroize();
    }
    let (key_part, certs_part) = result?;
    let private_key_pkcs8 = Zeroizing::new(base64body::decode(&key_part)?);
    // PKCS #8 / OneAsymmetricKey is a SEQUENCE (RFC 5958 2); checked without echoing content.
    if !matches!(AnyRef::from_der(&private_key_pkcs8), Ok(a) if a.tag() == Tag::Sequence) {
        return Err(ProtoError::Asn1 {
            what: "serverkeygen private key",
            reason: "application/pkcs8 part is not a DER SEQUENCE".into(),
        });
    }
    let certificates = certs_only::decode(&base64body::decode(&certs_part)?)?;
    Ok(ServerKeygenResponse {
        private_key_pkcs8,
        certificates,
    })
}

/// The bodies (still base64) of the application/pkcs8 part and of the certs-only part.
fn find_serverkeygen_parts(parts: &[Part]) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), ProtoError> {
    let mut key: Option<Zeroizing<Vec<u8>>> = None;
    let mut certs: Option<Vec<u8>> = None;
    for (i, part) in parts.iter().enumerate() {
        let ct = part
            .content_type()
            .ok_or_else(|| ProtoError::Multipart(format!("part {i} has no Content-Type")))?;
        let mt = MediaType::parse(ct)?;
        if mt.is(media::PKCS8) {
            if key.is_some() {
                return Err(ProtoError::Multipart("two application/pkcs8 parts".into()));
            }
            key = Some(Zeroizing::new(part.body.clone()));
        } else if mt.is(media::PKCS7_MIME) {
            match mt
                .param("smime-type")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                // RFC 7030 4.4.2 / 4.2.3: readers tolerate a missing smime-type.
                Some("certs-only") | None => {
                    if certs.is_some() {
                        return Err(ProtoError::Multipart("two certs-only parts".into()));
                    }
                    certs = Some(part.body.clone());
                }
                // RFC 7030 4.4.2: the key encrypted for the client (CMS EnvelopedData).
                Some("server-generated-key") => {
                    return Err(ProtoError::Unsupported(
                        "encrypted server-generated keys (smime-type=server-generated-key) \
                         are not supported"
                            .into(),
                    ))
                }
                Some(other) => {
                    return Err(ProtoError::Multipart(format!(
                        "part {i}: unexpected smime-type {other:?}"
                    )))
                }
            }
        }
    }
    match (key, certs) {
        (Some(k), Some(c)) => Ok((k, c)),
        (None, _) => Err(ProtoError::Multipart("no application/pkcs8 part".into())),
        (_, None) => Err(ProtoError::Multipart("no certs-only part".into())),
    }
}

/// Encodes a serverkeygen response (the MEF side). Returns the Content-Type header value
/// (`multipart/mixed; boundary=...`, a boundary that occurs in neither part) and the body:
/// the PKCS #8 part first, then the certs-only part, each base64 per [`crate::base64body::encode`].
///
/// The boundary is derived by hashing the certificates with an attempt counter (no randomness
/// or clock, so the function stays pure); the private key is never hashed into it. Each
/// candidate is checked against both parts (base64 text cannot contain `-` anyway).
pub fn encode_serverkeygen(
    private_key_pkcs8: &[u8],
    certs: &[&[u8]],
) -> Result<(String, Vec<u8>), ProtoError> {
    let key_b64 = Zeroizing::new(base64body::encode(private_key_pkcs8));
    let certs_b64 = base64body::encode(&certs_only::encode(certs)?);
    let boundary = (0u64..)
        .map(|attempt| {
            let mut h = DefaultHasher::new();
            certs.hash(&mut h);
            attempt.hash(&mut h);
            let a = h.finish();
            a.hash(&mut h);
            format!("est-skg-{a:016x}{:016x}", h.finish())
        })
        .find(|b| !key_b64.contains(b.as_str()) && !certs_b64.contains(b.as_str()))
        .ok_or_else(|| ProtoError::Multipart("no usable boundary".into()))?;

    // RFC 2046 5.1.1: the CRLF before each delimiter belongs to the delimiter; here it is the
    // CRLF that base64body::encode appends to the base64 text.
    let headers = |ct: &str| {
        format!("--{boundary}\r\nContent-Type: {ct}\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    };
    let mut body = Vec::with_capacity(key_b64.len() + certs_b64.len() + 256);
    body.extend_from_slice(headers(media::PKCS8).as_bytes());
    body.extend_from_slice(key_b64.as_bytes());
    body.extend_from_slice(headers(media::CERTS_ONLY_CONTENT_TYPE).as_bytes());
    body.extend_from_slice(certs_b64.as_bytes());
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((
        format!("{}; boundary={boundary}", media::MULTIPART_MIXED),
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EE: &[u8] = include_bytes!("../tests/data/ee.der");
    const CA: &[u8] = include_bytes!("../tests/data/ca.der");
    /// A syntactically valid PKCS #8 stand-in (SEQUENCE { INTEGER 0 }); no real key needed here.
    const KEY: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x00];

    #[test]
    fn parse_rfc2046_example_shape() {
        let body = b"preamble line\r\n--simple boundary\r\n\r\nimplicitly typed plain text\r\n\
--simple boundary  \r\nContent-type: text/plain; charset=us-ascii\r\n\r\nexplicit\r\nsecond line\r\n\
--simple boundary--\r\nepilogue\r\n";
        let parts = parse("simple boundary", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].headers.is_empty());
        assert_eq!(parts[0].body, b"implicitly typed plain text");
        assert_eq!(
            parts[1].content_type(),
            Some("text/plain; charset=us-ascii")
        );
        assert_eq!(parts[1].body, b"explicit\r\nsecond line");
    }

    #[test]
    fn parse_bare_lf_and_folding() {
        let body = b"--b\nContent-Type: a/b;\n x=1\nX-Other:  v \n\nbody\n--b--";
        let parts = parse("b", body).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].headers,
            vec![
                ("content-type".to_string(), "a/b; x=1".to_string()),
                ("x-other".to_string(), "v".to_string())
            ]
        );
        assert_eq!(parts[0].body, b"body");
    }

    #[test]
    fn boundary_prefix_lines_are_content() {
        let body = b"--b\r\n\r\n--bx\r\n--b-\r\n--b--\r\n";
        let parts = parse("b", body).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, b"--bx\r\n--b-");
    }

    #[test]
    fn parse_errors() {
        assert!(parse("b", b"--b\r\n\r\nx\r\n").is_err()); // no close delimiter
        assert!(parse("b", b"no delimiters").is_err());
        assert!(parse("b", b"--b--\r\n").is_err()); // no parts
        assert!(parse("", b"--\r\n\r\n----").is_err());
        assert!(parse(&"x".repeat(71), b"").is_err());
        assert!(parse("b", b"--b\r\n no-name\r\n\r\n--b--").is_err());
        assert!(parse("b", b"--b\r\nnocolon\r\n\r\n--b--").is_err());
    }

    #[test]
    fn serverkeygen_roundtrip() {
        let (ct, body) = encode_serverkeygen(KEY, &[EE, CA]).unwrap();
        let mt = MediaType::parse(&ct).unwrap();
        assert!(mt.is(media::MULTIPART_MIXED));
        let boundary = mt.param("boundary").unwrap();
        assert!(boundary.len() <= 70);
        let parts = parse(boundary, &body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type(), Some(media::PKCS8));
        assert_eq!(
            parts[1].content_type(),
            Some(media::CERTS_ONLY_CONTENT_TYPE)
        );
        let r = decode_serverkeygen(&ct, &body).unwrap();
        assert_eq!(r.private_key_pkcs8.as_slice(), KEY);
        let mut certs = r.certificates;
        certs.sort();
        let mut want = vec![EE.to_vec(), CA.to_vec()];
        want.sort();
        assert_eq!(certs, want);
        // Deterministic: same input, same output.
        assert_eq!(encode_serverkeygen(KEY, &[EE, CA]).unwrap().0, ct);
    }

    fn build(boundary: &str, parts: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
        let mut body = b"This is a preamble.\r\n".to_vec();
        for (ct, content) in parts {
            body.extend(format!("--{boundary}\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
            body.extend(content);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").as_bytes());
        (format!("multipart/mixed; boundary=\"{boundary}\""), body)
    }

    fn b64(d: &[u8]) -> Vec<u8> {
        // Line-wrapped base64, as some servers send it.
        let s = base64body::encode(d);
        let s = s.trim_end();
        let mut out = Vec::new();
        for chunk in s.as_bytes().chunks(64) {
            out.extend(chunk);
            out.extend(b"\r\n");
        }
        out.truncate(out.len() - 2);
        out
    }

    #[test]
    fn serverkeygen_any_order_quoted_boundary_wrapped_base64() {
        let certs = b64(&certs_only::encode(&[EE]).unwrap());
        let (ct, body) = build(
            "=_a b'c",
            &[
                ("application/pkcs7-mime", certs),
                ("text/plain", b"ignored".to_vec()),
                ("Application/PKCS8", b64(KEY)),
            ],
        );
        let r = decode_serverkeygen(&ct, &body).unwrap();
        assert_eq!(r.private_key_pkcs8.as_slice(), KEY);
        assert_eq!(r.certificates, vec![EE.to_vec()]);
    }

    #[test]
    fn serverkeygen_errors() {
        let certs = || b64(&certs_only::encode(&[EE]).unwrap());
        let key = || b64(KEY);
        let cases: Vec<Vec<(&str, Vec<u8>)>> = vec![
            vec![("application/pkcs8", key())],
            vec![(media::CERTS_ONLY_CONTENT_TYPE, certs())],
            vec![
                ("application/pkcs8", key()),
                ("application/pkcs8", key()),
                (media::CERTS_ONLY_CONTENT_TYPE, certs()),
            ],
            vec![
                ("application/pkcs8", key()),
                (media::CERTS_ONLY_CONTENT_TYPE, certs()),
                (media::CERTS_ONLY_CONTENT_TYPE, certs()),
            ],
            vec![
                (
                    "application/pkcs7-mime; smime-type=server-generated-key",
                    key(),
                ),
                (media::CERTS_ONLY_CONTENT_TYPE, certs()),
            ],
            vec![
                ("application/pkcs8", b"not base64!".to_vec()),
                (media::CERTS_ONLY_CONTENT_TYPE, certs()),
            ],
            vec![
                ("application/pkcs8", b64(b"\x04\x01\x00")),
                (media::CERTS_ONLY_CONTENT_TYPE, certs()),
            ],
            vec![
                ("application/pkcs8", key()),
                (media::CERTS_ONLY_CONTENT_TYPE, key()),
            ],
        ];
        for (i, parts) in cases.iter().enumerate() {
            let (ct, body) = build("bnd", parts);
            assert!(decode_serverkeygen(&ct, &body).is_err(), "case {i}");
        }
        let (_, body) = build("bnd", &cases[0]);
        assert!(decode_serverkeygen("multipart/mixed", &body).is_err());
        assert!(decode_serverkeygen("application/pkcs8; boundary=bnd", &body).is_err());
        let encrypted = &cases[4];
        let (ct, body) = build("bnd", encrypted);
        assert!(matches!(
            decode_serverkeygen(&ct, &body),
            Err(ProtoError::Unsupported(_))
        ));
    }

    #[test]
    fn python_email_parser_reads_our_encoding() {
        let (ct, body) = encode_serverkeygen(KEY, &[EE]).unwrap();
        let mut msg = format!("Content-Type: {ct}\r\nMIME-Version: 1.0\r\n\r\n").into_bytes();
        msg.extend(&body);
        let script = concat!(
            "import sys, email, base64\n",
            "m = email.message_from_bytes(sys.stdin.buffer.read())\n",
            "for p in m.get_payload(): print(p.get_content_type(), p.get_param('smime-type'), ",
            "base64.b64decode(p.get_payload()).hex())\n",
        );
        let child = std::process::Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            // A cross-check that needs a tool fails without it, rather than passing untested.
            Err(e) => panic!("running python3 (the independent MIME parser): {e}"),
        };
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&msg).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            lines[0],
            format!("application/pkcs8 None {}", hex::encode(KEY))
        );
        let certs_hex = hex::encode(certs_only::encode(&[EE]).unwrap());
        assert_eq!(
            lines[1],
            format!("application/pkcs7-mime certs-only {certs_hex}")
        );
    }
}
