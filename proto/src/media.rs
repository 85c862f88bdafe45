//! Content-Type values (RFC 9110 8.3.1) and the media types EST uses.

use crate::ProtoError;

/// `application/pkcs7-mime` (RFC 7030 4.1.3, 4.2.3); the `smime-type=certs-only` parameter is
/// expected but its absence is tolerated by readers.
pub const PKCS7_MIME: &str = "application/pkcs7-mime";
/// `application/csrattrs` (RFC 7030 4.5.2).
pub const CSRATTRS: &str = "application/csrattrs";
/// `application/pkcs10` (RFC 5967), the body of enrollment requests.
pub const PKCS10: &str = "application/pkcs10";
/// `application/pkcs8` (RFC 5958), the private key part of a serverkeygen response.
pub const PKCS8: &str = "application/pkcs8";
/// `multipart/mixed`, the serverkeygen response (RFC 7030 4.4.2).
pub const MULTIPART_MIXED: &str = "multipart/mixed";
/// `text/plain`, error bodies.
pub const TEXT_PLAIN: &str = "text/plain";
/// The full Content-Type a certs-only response carries.
pub const CERTS_ONLY_CONTENT_TYPE: &str = "application/pkcs7-mime; smime-type=certs-only";

/// A parsed media type: lower-cased `type/subtype` and its parameters in order
/// (names lower-cased, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

/// RFC 9110 5.6.2 tchar.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_tchar)
}

/// RFC 9110 5.6.3 OWS.
fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

impl MediaType {
    /// Parses a Content-Type header value. Tolerates white space around `;` and `=`,
    /// quoted-string parameter values, and a trailing `;`.
    pub fn parse(value: &str) -> Result<MediaType, ProtoError> {
        let err = |reason: &str| ProtoError::MediaType {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let (essence_part, mut rest) = match value.find(';') {
            Some(i) => (&value[..i], &value[i..]),
            None => (value, ""),
        };
        let essence = trim_ows(essence_part);
        let (ty, sub) = essence
            .split_once('/')
            .ok_or_else(|| err("no '/' between type and subtype"))?;
        if !is_token(ty) || !is_token(sub) {
            return Err(err("type and subtype must be non-empty tokens"));
        }
        let essence = essence.to_ascii_lowercase();

        // RFC 9110 5.6.6: parameters = *( OWS ";" OWS [ parameter ] )
        let mut params = Vec::new();
        loop {
            rest = trim_ows(rest);
            if rest.is_empty() {
                break;
            }
            rest = rest
                .strip_prefix(';')
                .ok_or_else(|| err("expected ';' before a parameter"))?;
            rest = trim_ows(rest);
            if rest.is_empty() || rest.starts_with(';') {
                // Empty parameter (a trailing or doubled ';').
                continue;
            }
            let eq = rest
                .find(['=', ';'])
                .filter(|&i| rest.as_bytes()[i] == b'=')
                .ok_or_else(|| err("parameter without '='"))?;
            let name = trim_ows(&rest[..eq]);
            if !is_token(name) {
                return Err(err("parameter name is not a token"));
            }
            rest = trim_ows(&rest[eq + 1..]);
            let val;
            if let Some(q) = rest.strip_prefix('"') {
                // RFC 9110 5.6.4 quoted-string with quoted-pair.
                let mut out = String::new();
                let mut chars = q.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        '\\' => match chars.next() {
                            Some((_, e)) if e == '\t' || (' '..='\u{7e}').contains(&e) => {
                                out.push(e)
                            }
                            _ => return Err(err("bad quoted-pair in quoted-string")),
                        },
                        c if c == '\t' || (' '..='\u{7e}').contains(&c) => out.push(c),
                        _ => return Err(err("control or non-ASCII character in quoted-string")),
                    }
                }
                let end = end.ok_or_else(|| err("unterminated quoted-string"))?;
                val = out;
                rest = &q[end..];
            } else {
                let end = rest.find([';', ' ', '\t']).unwrap_or(rest.len());
                let token = &rest[..end];
                if !is_token(token) {
                    return Err(err(
                        "parameter value is neither a token nor a quoted-string",
                    ));
                }
                val = token.to_string();
                rest = &rest[end..];
            }
            params.push((name.to_ascii_lowercase(), val));
        }
        Ok(MediaType { essence, params })
    }

    /// True when the essence equals `essence` (ASCII case-insensitive).
    pub fn is(&self, essence: &str) -> bool {
        self.essence.eq_ignore_ascii_case(essence)
    }

    /// The value of parameter `name` (ASCII case-insensitive), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let m = MediaType::parse("application/csrattrs").unwrap();
        assert_eq!(m.essence, "application/csrattrs");
        assert!(m.params.is_empty());
        assert!(m.is(CSRATTRS));
    }

    #[test]
    fn certs_only_with_whitespace_and_case() {
        let m = MediaType::parse(" Application/PKCS7-MIME ;  Smime-Type = certs-only ;").unwrap();
        assert_eq!(m.essence, PKCS7_MIME);
        assert_eq!(m.params, vec![("smime-type".into(), "certs-only".into())]);
        assert_eq!(m.param("SMIME-TYPE"), Some("certs-only"));
        assert_eq!(
            MediaType::parse(CERTS_ONLY_CONTENT_TYPE)
                .unwrap()
                .param("smime-type"),
            Some("certs-only")
        );
    }

    #[test]
    fn quoted_values() {
        let m = MediaType::parse(r#"multipart/mixed; boundary="a b;c\"d"; x=1"#).unwrap();
        assert!(m.is(MULTIPART_MIXED));
        assert_eq!(m.param("boundary"), Some("a b;c\"d"));
        assert_eq!(m.param("x"), Some("1"));
        assert_eq!(m.param("y"), None);
    }

    #[test]
    fn value_case_is_kept() {
        let m = MediaType::parse("multipart/mixed;boundary=AbC").unwrap();
        assert_eq!(m.param("boundary"), Some("AbC"));
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            "application",
            "application/",
            "/json",
            "app lication/json",
            "text/plain; charset",
            "text/plain; charset=",
            "text/plain; =utf-8",
            "text/plain; charset=\"utf-8",
            "text/plain; charset=\"utf-8\"x",
            "text/plain; charset=utf 8",
            "text/plain charset=utf-8",
        ] {
            assert!(MediaType::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
