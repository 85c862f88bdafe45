//! The EST server's base URI (RFC 7030 3.2.2) and host-name comparison.
//!
//! An EST base URI is `https://<host>[:<port>]/.well-known/est[/<label>]`. Operation URLs are the
//! base followed by the operation's path segment (`/cacerts`, `/simpleenroll`, ...). The URI is
//! also the server's identity for authorisation (RFC 7030 3.6.1): its host is what the server
//! certificate must match (unless the certificate carries id-kp-cmcRA).

use crate::error::{Error, Operation, Result};
use rustls_pki_types::ServerName;
use std::fmt;
use std::net::IpAddr;

/// The well-known path prefix of every EST operation (RFC 7030 3.2.2).
const WELL_KNOWN_EST: &str = "/.well-known/est";

/// The default port of `https` (RFC 9110 4.2.2).
const HTTPS_PORT: u16 = 443;

/// A validated EST base URI.
///
/// Accepted forms (RFC 7030 3.2.2): `https://host`, `https://host/`,
/// `https://host/.well-known/est[/]` and `https://host/.well-known/est/<label>[/]`, with an
/// optional port. The host is a DNS name or an IP literal (IPv6 in brackets). Userinfo is
/// refused (no credentials are ever sent: TS-0003 8.3.6.2.1), as are a query and a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EstUri {
    /// Host without brackets, as written (DNS names keep their case; comparisons ignore it).
    host: String,
    /// The host parsed as an IP address, when it is an IP literal.
    ip: Option<IpAddr>,
    port: u16,
    label: Option<String>,
}

impl EstUri {
    /// Parses and validates an EST base URI. Every failure is [`Error::InvalidArgument`].
    pub fn parse(input: &str) -> Result<EstUri> {
        let bad = |reason: &str| Error::invalid("EST base URI", format!("{input:?}: {reason}"));

        if input
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_control())
        {
            return Err(bad("contains white space or control characters"));
        }
        // http::Uri does not know fragments; refuse them before it sees one.
        if input.contains('#') {
            return Err(bad("a fragment is not allowed"));
        }
        let uri: ureq::http::Uri = input
            .parse()
            .map_err(|e: ureq::http::uri::InvalidUri| bad(&e.to_string()))?;

        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => {}
            Some(_) => return Err(bad("the scheme must be https (RFC 7030 3.3)")),
            None => return Err(bad("an absolute https URI is required")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| bad("the URI has no authority"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "userinfo is not allowed: no credentials are sent (TS-0003 8.3.6.2.1)",
            ));
        }
        if uri.query().is_some() {
            return Err(bad("a query is not allowed"));
        }

        // Host: a bracketed IPv6 literal, an IPv4 literal, or a DNS name.
        let raw_host = authority.host();
        let (host, ip) =
            if let Some(inner) = raw_host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                let ip: std::net::Ipv6Addr = inner
                    .parse()
                    .map_err(|_| bad("the bracketed host is not an IPv6 address"))?;
                (inner.to_string(), Some(IpAddr::V6(ip)))
            } else if let Ok(ip) = raw_host.parse::<std::net::Ipv4Addr>() {
                (raw_host.to_string(), Some(IpAddr::V4(ip)))
            } else {
                if raw_host.is_empty() {
                    return Err(bad("the host is empty"));
                }
                // pki-types validates DNS names (letters, digits, hyphens, labels of at most 63
                // octets; like webpki it also tolerates `_`, which occurs in practice).
                match ServerName::try_from(raw_host) {
                    Ok(ServerName::DnsName(_)) => {}
                    _ => return Err(bad("the host is not a valid DNS name or IP literal")),
                }
                (raw_host.to_string(), None)
            };

        // Port: what follows the host. `host:` with an empty port is allowed by RFC 3986 and
        // means the default.
        let after_host = &authority.as_str()[raw_host.len()..];
        let port = match after_host.strip_prefix(':') {
            None | Some("") => HTTPS_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n != 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad("the port is not a number in 1..=65535")),
            },
        };

        let label = parse_path(uri.path(), &bad)?;
        Ok(EstUri {
            host,
            ip,
            port,
            label,
        })
    }

    /// The host: a DNS name as configured, or an IP address without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// True when the host is an IP literal (no SNI is sent then: RFC 6066 section 3).
    pub fn is_ip_literal(&self) -> bool {
        self.ip.is_some()
    }

    /// The port (443 when the URI has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The optional CA label (RFC 7030 3.2.2), e.g. `arbitraryLabel1`.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// `host[:port]` as it goes in a URL: IPv6 in brackets, the port omitted when it is 443.
    pub fn authority(&self) -> String {
        let host = match self.ip {
            Some(IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        };
        if self.port == HTTPS_PORT {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The base path: `/.well-known/est` or `/.well-known/est/<label>`, without a trailing slash.
    pub fn base_path(&self) -> String {
        match &self.label {
            Some(l) => format!("{WELL_KNOWN_EST}/{l}"),
            None => WELL_KNOWN_EST.to_string(),
        }
    }

    /// The full URL of an operation, e.g. `https://mef.example.com/.well-known/est/cacerts`.
    pub fn operation_url(&self, op: Operation) -> String {
        format!(
            "https://{}{}/{}",
            self.authority(),
            self.base_path(),
            op.path_segment()
        )
    }

    /// The name the TLS layer authenticates the server against (and sends as SNI when it is a
    /// DNS name).
    pub fn server_name(&self) -> ServerName<'static> {
        match self.ip {
            Some(ip) => ServerName::IpAddress(ip.into()),
            None => ServerName::try_from(self.host.clone())
                // Validated in `parse`, so this cannot fail.
                .expect("host validated as a DNS name in EstUri::parse"),
        }
    }

    /// True when `scheme://authority` of `url` is this URI's (same scheme, host and port):
    /// the only redirect target we follow.
    pub fn same_origin(&self, url: &str) -> bool {
        let Ok(uri) = url.parse::<ureq::http::Uri>() else {
            return false;
        };
        let Some(auth) = uri.authority() else {
            return false;
        };
        if !uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
            || auth.as_str().contains('@')
        {
            return false;
        }
        let port = auth.port_u16().unwrap_or(HTTPS_PORT);
        let host = auth.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let same_host = match (self.ip, host.parse::<IpAddr>()) {
            (Some(a), Ok(b)) => a == b,
            (None, Err(_)) => fqdn_matches(&self.host, host),
            _ => false,
        };
        same_host && port == self.port
    }
}

/// Validates the path of a base URI and returns its label.
fn parse_path(path: &str, bad: &dyn Fn(&str) -> Error) -> Result<Option<String>> {
    let path = if path.is_empty() { "/" } else { path };
    if path == "/" {
        return Ok(None);
    }
    let rest = path.strip_prefix(WELL_KNOWN_EST).ok_or_else(|| {
        bad(&format!(
            "the path must be empty, / or start with {WELL_KNOWN_EST}"
        ))
    })?;
    let rest = match rest {
        "" | "/" => return Ok(None),
        r => r
            .strip_prefix('/')
            .ok_or_else(|| bad(&format!("the path must be {WELL_KNOWN_EST}[/<label>]")))?,
    };
    let label = rest.strip_suffix('/').unwrap_or(rest);
    if label.is_empty() || label.contains('/') {
        return Err(bad(
            "the label must be one non-empty path segment (RFC 7030 3.2.2)",
        ));
    }
    check_label(label, bad)?;
    const OPERATIONS: [Operation; 5] = [
        Operation::CaCerts,
        Operation::CsrAttrs,
        Operation::SimpleEnroll,
        Operation::SimpleReenroll,
        Operation::ServerKeygen,
    ];
    if OPERATIONS
        .iter()
        .any(|op| op.path_segment().eq_ignore_ascii_case(label))
        // fullcmc (RFC 7030 3.2.2) is an operation too, though this client does not use it.
        || label.eq_ignore_ascii_case("fullcmc")
    {
        return Err(bad(&format!(
            "{label:?} is an EST operation name, not a CA label: give the base URI without it"
        )));
    }
    Ok(Some(label.to_string()))
}

/// A label is unreserved / pct-encoded / sub-delims characters (RFC 3986 2.1-2.3).
fn check_label(label: &str, bad: &dyn Fn(&str) -> Error) -> Result<()> {
    let bytes = label.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(bad("the label has a malformed percent-encoding"));
            }
            i += 3;
            continue;
        }
        let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
        let sub_delims = b"!$&'()*+,;=".contains(&b);
        if !(unreserved || sub_delims) {
            return Err(bad(&format!(
                "the label contains {:?}, which is not allowed in a CA label",
                b as char
            )));
        }
        i += 1;
    }
    Ok(())
}

impl fmt::Display for EstUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}{}", self.authority(), self.base_path())
    }
}

impl std::str::FromStr for EstUri {
    type Err = Error;

    fn from_str(s: &str) -> Result<EstUri> {
        EstUri::parse(s)
    }
}

/// Compares two fully qualified domain names: ASCII case-insensitive, one trailing dot ignored
/// on either side (the CERT_PROV target check of TS-0003 8.3.9.7).
pub fn fqdn_matches(a: &str, b: &str) -> bool {
    let a = a.strip_suffix('.').unwrap_or(a);
    let b = b.strip_suffix('.').unwrap_or(b);
    !a.is_empty() && a.eq_ignore_ascii_case(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> EstUri {
        EstUri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn refused(s: &str) {
        match EstUri::parse(s) {
            Err(Error::InvalidArgument { .. }) => {}
            other => panic!("{s}: expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn accepted_forms() {
        for s in [
            "https://mef.example.com",
            "https://mef.example.com/",
            "https://mef.example.com/.well-known/est",
            "https://mef.example.com/.well-known/est/",
        ] {
            let u = ok(s);
            assert_eq!(u.host(), "mef.example.com");
            assert_eq!(u.port(), 443);
            assert_eq!(u.label(), None);
            assert_eq!(
                u.operation_url(Operation::CaCerts),
                "https://mef.example.com/.well-known/est/cacerts"
            );
            assert_eq!(u.to_string(), "https://mef.example.com/.well-known/est");
        }
        let u = ok("https://MEF.example.com:8443/.well-known/est/arbitraryLabel1/");
        assert_eq!(u.host(), "MEF.example.com");
        assert_eq!(u.port(), 8443);
        assert_eq!(u.label(), Some("arbitraryLabel1"));
        assert_eq!(u.authority(), "MEF.example.com:8443");
        assert_eq!(
            u.operation_url(Operation::SimpleReenroll),
            "https://MEF.example.com:8443/.well-known/est/arbitraryLabel1/simplereenroll"
        );
        assert!(matches!(u.server_name(), ServerName::DnsName(_)));
        assert_eq!(ok("HTTPS://h.example/").host(), "h.example");
        assert_eq!(
            ok("https://h.example/.well-known/est/a%20b").label(),
            Some("a%20b")
        );
    }

    #[test]
    fn ip_literals() {
        let u = ok("https://127.0.0.1:8443/");
        assert_eq!(u.host(), "127.0.0.1");
        assert!(u.is_ip_literal());
        assert!(matches!(u.server_name(), ServerName::IpAddress(_)));
        let u = ok("https://[::1]:8443/.well-known/est/x");
        assert_eq!(u.host(), "::1");
        assert_eq!(u.authority(), "[::1]:8443");
        assert_eq!(
            u.operation_url(Operation::CsrAttrs),
            "https://[::1]:8443/.well-known/est/x/csrattrs"
        );
        assert!(matches!(u.server_name(), ServerName::IpAddress(_)));
        refused("https://[not-an-ip]/");
    }

    #[test]
    fn refused_forms() {
        for s in [
            "http://mef.example.com/",
            "mef.example.com",
            "/.well-known/est",
            "https://user@mef.example.com/",
            "https://user:pw@mef.example.com/",
            "https://mef.example.com/?x=1",
            "https://mef.example.com/#frag",
            "https://mef.example.com/other",
            "https://mef.example.com/.well-known/estx",
            "https://mef.example.com/.well-known/est/a/b",
            "https://mef.example.com/.well-known/est//",
            "https://mef.example.com/.well-known/est/cacerts",
            "https://mef.example.com/.well-known/est/simpleenroll/",
            "https://mef.example.com/.well-known/est/SimpleReEnroll",
            "https://mef.example.com/.well-known/est/fullcmc",
            "https://mef.example.com/.well-known/est/a%2",
            "https://mef.example.com/.well-known/est/a:b",
            "https://mef.example.com:0/",
            "https://mef.example.com:99999/",
            "https://mef .example.com/",
            "https:///",
            "",
        ] {
            refused(s);
        }
    }

    #[test]
    fn same_origin_rules() {
        let u = ok("https://mef.example.com:8443/");
        assert!(u.same_origin("https://MEF.example.com:8443/.well-known/est/cacerts"));
        assert!(!u.same_origin("https://mef.example.com/.well-known/est/cacerts"));
        assert!(!u.same_origin("http://mef.example.com:8443/x"));
        assert!(!u.same_origin("https://evil.example.com:8443/x"));
        assert!(!u.same_origin("https://u@mef.example.com:8443/x"));
        assert!(!u.same_origin("/relative"));
        let ip = ok("https://127.0.0.1/");
        assert!(ip.same_origin("https://127.0.0.1:443/x"));
        assert!(!ip.same_origin("https://localhost/x"));
    }

    #[test]
    fn fqdn_comparison() {
        assert!(fqdn_matches("MEF.Example.com", "mef.example.com."));
        assert!(fqdn_matches("a.b.", "a.b"));
        assert!(!fqdn_matches("a.b", "a.c"));
        assert!(!fqdn_matches("a.b", "a.b.."));
        assert!(!fqdn_matches("", "."));
    }
}
