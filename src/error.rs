//! Errors, each classified for the CERT_PROV cmdStatusCode of TS-0003 8.3.9.7.
//!
//! A MEF Client reports one of three outcomes besides success:
//! `MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS` (the command's arguments failed verification),
//! `MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR` ("an error regarding communicating with the
//! Certificate Provisioning server or an error internal to the Certificate Provisioning server")
//! and `MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR` ("an error occurring in the Certificate
//! Provisioning client"). [`Error::class`] gives that class for every error.
//!
//! The rule we follow: anything the server sent, refused or failed to send is
//! [`ErrorClass::Server`] (including a TLS handshake it failed, a 4xx rejection of our CSR, and a
//! response that does not validate); anything that failed on this device (key generation, a
//! signing callback, the credential store, a requirement we cannot satisfy) is
//! [`ErrorClass::Client`]; arguments that are malformed before any I/O are
//! [`ErrorClass::BadArguments`].
//!
//! No variant ever carries private key material, a challengePassword or a PSK.

use onem2m_est_proto::ProtoError;

/// Which side a failure belongs to (TS-0003 8.3.9.7 cmdStatusCode classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
// Not #[non_exhaustive]: the three classes are TS-0003 8.3.9.7's; the C ABI and
// the CLI map each one-to-one (exit codes, cmdStatusCode).
pub enum ErrorClass {
    /// The arguments are unacceptable: MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS.
    BadArguments,
    /// The failure happened in the MEF Client: MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR.
    Client,
    /// Communicating with the server failed or the server failed:
    /// MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR.
    Server,
}

/// The EST operation an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    CaCerts,
    CsrAttrs,
    SimpleEnroll,
    SimpleReenroll,
    ServerKeygen,
}

impl Operation {
    /// The path segment of the operation (RFC 7030 3.2.2).
    pub fn path_segment(self) -> &'static str {
        match self {
            Operation::CaCerts => "cacerts",
            Operation::CsrAttrs => "csrattrs",
            Operation::SimpleEnroll => "simpleenroll",
            Operation::SimpleReenroll => "simplereenroll",
            Operation::ServerKeygen => "serverkeygen",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}", self.path_segment())
    }
}

/// Every failure of this library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is malformed or inconsistent (checked before any I/O).
    #[error("invalid argument {argument}: {reason}")]
    InvalidArgument {
        argument: &'static str,
        reason: String,
    },

    /// The TCP connection could not be made.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },

    /// A timeout expired (connect, TLS handshake, or waiting for a response).
    #[error("timed out during {phase}")]
    Timeout { phase: String },

    /// The server is not authorised as this client's EST server (RFC 7030 3.6): its certificate
    /// does not chain to the explicit trust anchors, or matches neither the base URI's host nor
    /// carries id-kp-cmcRA (3.6.1).
    #[error("EST server not authorised: {reason}")]
    ServerNotAuthorized { reason: String },

    /// The TLS layer failed (handshake failure, alert, protocol violation) for a reason other
    /// than server authorisation.
    #[error("TLS failure: {reason}")]
    Tls {
        reason: String,
        /// The TLS stack's own error (rustls's, OpenSSL's), when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// The connection broke (reset, closed early, truncated body).
    #[error("connection to the server failed during {operation}: {reason}")]
    Transport {
        operation: Operation,
        reason: String,
    },

    /// The server asked for HTTP authentication (401). oneM2M certificate provisioning never uses
    /// HTTP-based client authentication (TS-0003 8.3.6.2.1, CR 8.3.Z.2.1), so nothing was sent.
    #[error(
        "{operation}: the server requested HTTP authentication ({challenge}); HTTP-based client \
         authentication is not used by oneM2M certificate provisioning (TS-0003 8.3.6.2.1), so no \
         credentials were sent"
    )]
    HttpAuthenticationRequested {
        operation: Operation,
        challenge: String,
    },

    /// The server refused the request (4xx) or failed (5xx); `message` is its text body.
    #[error("{operation}: the server answered {status}: {message}")]
    ServerStatus {
        operation: Operation,
        status: u16,
        message: String,
    },

    /// The server redirected to another authority (or redirected at all where EST allows none).
    #[error("{operation}: redirect to {location} refused (only the same authority is followed)")]
    Redirect {
        operation: Operation,
        location: String,
    },

    /// The response is malformed or not what the operation returns.
    #[error("{operation}: malformed response: {reason}")]
    BadResponse {
        operation: Operation,
        reason: String,
    },

    /// A response body could not be decoded.
    #[error("{operation}: cannot decode response: {source}")]
    Decode {
        operation: Operation,
        #[source]
        source: ProtoError,
    },

    /// The server kept answering 202 Accepted beyond the polling bounds.
    #[error("{operation}: still pending after {attempts} attempts and {waited_secs} s")]
    StillPending {
        operation: Operation,
        attempts: u32,
        waited_secs: u64,
    },

    /// The server answered 202 Accepted with a Retry-After longer than this client may wait
    /// (`bound`, of [`crate::transport::PollPolicy`]). RFC 7030 4.2.3: "the client MUST wait at
    /// least the specified retry-after time", so the request was not resent early; run the
    /// procedure again once `retry_after` has passed.
    #[error(
        "{operation}: the server asked to be asked again in {} s (202 Accepted, Retry-After), \
         longer than {bound} of {limit:?}; not resent early (RFC 7030 4.2.3: the client must \
         wait at least the Retry-After time): run the procedure again after that time \
         ({attempts} attempt(s) made)",
        retry_after_secs(retry_after)
    )]
    RetryAfterTooLong {
        operation: Operation,
        /// What the server asked for (an HTTP-date converted to the time left until it).
        retry_after: std::time::Duration,
        /// Which bound it exceeds.
        bound: &'static str,
        /// The value of that bound.
        limit: std::time::Duration,
        /// Requests sent so far.
        attempts: u32,
    },

    /// A certificate the server returned failed validation (key, chain, identity, validity).
    #[error("returned certificate rejected: {reason}")]
    CertificateRejected { reason: String },

    /// Something this client cannot do: a key type, hash or channel binding the server requires,
    /// or a key it was given (RSA). `what` says which, and whose requirement it is.
    #[error("not supported: {what}")]
    Unsupported { what: String },

    /// The identity the client was configured with conflicts with what the server asks for.
    #[error("identity conflict: configured {configured}, the server's CSR attributes ask for {requested}")]
    IdentityConflict {
        configured: String,
        requested: String,
    },

    /// Key generation, loading or signing failed on this device.
    #[error("key operation failed: {reason}")]
    Key {
        reason: String,
        /// What failed underneath: a token's error, the C callback that failed, the check a
        /// key's output failed ([`crate::keys::KeyCheckError`]).
        #[source]
        source: Option<BoxError>,
    },

    /// The CSR could not be built.
    #[error("cannot build the CSR: {reason}")]
    Csr { reason: String },

    /// The credential store failed; nothing was installed.
    #[error("credential store: {operation}: {reason}")]
    Store {
        operation: &'static str,
        reason: String,
        /// The file or directory concerned, when there is one.
        path: Option<std::path::PathBuf>,
        /// The I/O error, when the store failed on one.
        #[source]
        source: Option<std::io::Error>,
    },

    /// Re-provisioning needs installed credentials and there are none (TS-0003 8.3.6.2.3
    /// pre-condition B).
    #[error("no provisioned credentials to re-provision with: {reason}")]
    NotProvisioned { reason: String },
}

impl Error {
    /// The CERT_PROV class of this error (TS-0003 8.3.9.7).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidArgument { .. } => ErrorClass::BadArguments,
            Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::ServerNotAuthorized { .. }
            | Error::Tls { .. }
            | Error::Transport { .. }
            | Error::HttpAuthenticationRequested { .. }
            | Error::ServerStatus { .. }
            | Error::Redirect { .. }
            | Error::BadResponse { .. }
            | Error::Decode { .. }
            | Error::StillPending { .. }
            | Error::RetryAfterTooLong { .. }
            | Error::CertificateRejected { .. } => ErrorClass::Server,
            Error::Unsupported { .. }
            | Error::IdentityConflict { .. }
            | Error::Key { .. }
            | Error::Csr { .. }
            | Error::Store { .. }
            | Error::NotProvisioned { .. } => ErrorClass::Client,
        }
    }

    /// The causes in this error's source chain, outermost first, leaving out each one that the
    /// error's text or an earlier cause already quotes (a connect error quotes its `io::Error`).
    pub fn unquoted_causes(&self) -> Vec<String> {
        let mut quoted = self.to_string();
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !quoted.contains(&text) {
                quoted.push_str(&text);
                causes.push(text);
            }
            source = cause.source();
        }
        causes
    }

    /// This error's text, then its [`unquoted_causes`](Error::unquoted_causes) (`": "` between
    /// them): the one message the CLI's JSON and the agent's log show and the C ABI (and so
    /// Python) hands out, so every caller reads the same reason.
    pub fn text_with_causes(&self) -> String {
        let mut text = self.to_string();
        for cause in self.unquoted_causes() {
            text.push_str(": ");
            text.push_str(&cause);
        }
        text
    }

    /// A TLS failure without an underlying error of the TLS stack.
    pub fn tls(reason: impl Into<String>) -> Error {
        Error::Tls {
            reason: reason.into(),
            source: None,
        }
    }

    /// A key failure; `source`, when given, is what failed underneath.
    pub fn key(reason: impl Into<String>, source: Option<BoxError>) -> Error {
        Error::Key {
            reason: reason.into(),
            source,
        }
    }

    /// A store failure that is not an I/O error.
    pub fn store(operation: &'static str, reason: impl Into<String>) -> Error {
        Error::Store {
            operation,
            reason: reason.into(),
            path: None,
            source: None,
        }
    }

    /// A bad argument: `argument` names it, `reason` says what is wrong (never a secret).
    pub fn invalid(argument: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidArgument {
            argument,
            reason: reason.into(),
        }
    }
}

#[cfg(any(test, feature = "test-hooks"))]
impl Error {
    /// One value of every variant, in declaration order: for tests that must cover every
    /// variant (the CERT_PROV status table, the C ABI's result codes). A new variant does not
    /// compile until [`Error::variant_index`] and this list have it.
    pub fn examples() -> Vec<Error> {
        use std::time::Duration;
        let op = Operation::SimpleEnroll;
        let all = vec![
            Error::invalid("argument", "reason"),
            Error::Connect {
                address: "127.0.0.1:1".into(),
                source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            },
            Error::Timeout {
                phase: "response".into(),
            },
            Error::ServerNotAuthorized { reason: "r".into() },
            Error::Tls {
                reason: "r".into(),
                source: None,
            },
            Error::Transport {
                operation: op,
                reason: "r".into(),
            },
            Error::HttpAuthenticationRequested {
                operation: op,
                challenge: "Basic".into(),
            },
            Error::ServerStatus {
                operation: op,
                status: 400,
                message: "m".into(),
            },
            Error::Redirect {
                operation: op,
                location: "https://elsewhere/".into(),
            },
            Error::BadResponse {
                operation: op,
                reason: "r".into(),
            },
            Error::Decode {
                operation: op,
                source: ProtoError::Base64("b".into()),
            },
            Error::StillPending {
                operation: op,
                attempts: 1,
                waited_secs: 1,
            },
            Error::RetryAfterTooLong {
                operation: op,
                retry_after: Duration::from_secs(3600),
                bound: "max_delay",
                limit: Duration::from_secs(120),
                attempts: 1,
            },
            Error::CertificateRejected { reason: "r".into() },
            Error::Unsupported { what: "w".into() },
            Error::IdentityConflict {
                configured: "a".into(),
                requested: "b".into(),
            },
            Error::Key {
                reason: "r".into(),
                source: None,
            },
            Error::Csr { reason: "r".into() },
            Error::Store {
                operation: "install",
                reason: "r".into(),
                path: None,
                source: None,
            },
            Error::NotProvisioned { reason: "r".into() },
        ];
        for (i, e) in all.iter().enumerate() {
            assert_eq!(
                e.variant_index(),
                i,
                "Error::examples is in declaration order"
            );
        }
        assert_eq!(
            all.len(),
            Error::VARIANTS,
            "Error::examples has every variant"
        );
        all
    }

    /// How many variants there are.
    const VARIANTS: usize = 20;

    /// The variant's position in the declaration. No wildcard: a new variant fails to
    /// compile here until it is added (and to [`Error::examples`]).
    fn variant_index(&self) -> usize {
        match self {
            Error::InvalidArgument { .. } => 0,
            Error::Connect { .. } => 1,
            Error::Timeout { .. } => 2,
            Error::ServerNotAuthorized { .. } => 3,
            Error::Tls { .. } => 4,
            Error::Transport { .. } => 5,
            Error::HttpAuthenticationRequested { .. } => 6,
            Error::ServerStatus { .. } => 7,
            Error::Redirect { .. } => 8,
            Error::BadResponse { .. } => 9,
            Error::Decode { .. } => 10,
            Error::StillPending { .. } => 11,
            Error::RetryAfterTooLong { .. } => 12,
            Error::CertificateRejected { .. } => 13,
            Error::Unsupported { .. } => 14,
            Error::IdentityConflict { .. } => 15,
            Error::Key { .. } => 16,
            Error::Csr { .. } => 17,
            Error::Store { .. } => 18,
            Error::NotProvisioned { .. } => 19,
        }
    }
}

/// [`Error::Decode`] of `op`, for `map_err` on what `onem2m_est_proto` refuses to decode.
pub(crate) fn decode_error(op: Operation) -> impl FnOnce(ProtoError) -> Error {
    move |source| Error::Decode {
        operation: op,
        source,
    }
}

/// Whole seconds of a Retry-After, rounded up (what the server asked for is never understated).
fn retry_after_secs(d: &std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// An underlying error of another library or of a caller (a C callback), kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Cause(&'static str, #[source] Option<std::io::Error>);

    #[test]
    fn text_with_causes_adds_the_causes_the_text_does_not_quote() {
        let e = Error::Tls {
            reason: "handshake failed".into(),
            source: Some(Box::new(Cause(
                "peer sent no certificate",
                Some(std::io::Error::other("connection reset")),
            ))),
        };
        assert_eq!(
            e.text_with_causes(),
            "TLS failure: handshake failed: peer sent no certificate: connection reset"
        );
        // A cause the text already quotes is not repeated (connect errors quote their io::Error).
        let e = Error::Tls {
            reason: "handshake failed: peer sent no certificate".into(),
            source: Some(Box::new(Cause("peer sent no certificate", None))),
        };
        assert_eq!(
            e.text_with_causes(),
            "TLS failure: handshake failed: peer sent no certificate"
        );
        assert_eq!(Error::tls("x").text_with_causes(), "TLS failure: x");
        assert!(Error::tls("x").unquoted_causes().is_empty());
    }
}
