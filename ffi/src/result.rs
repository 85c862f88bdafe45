//! Result codes, their texts and their CERT_PROV cmdStatusCode class (TS-0003 8.3.9.7).

use std::ffi::c_char;

use est::certprov::CmdStatus;
use est::error::Error;

/// The result of a library call: one of the `MEF_OK` / `MEF_ERR_*` values. The numbers are
/// stable forever; new codes only get new numbers.
pub type mef_result = u32;
/// Success.
pub const MEF_OK: mef_result = 0;
/// A pointer argument was NULL.
pub const MEF_ERR_NULL_ARGUMENT: mef_result = 1;
/// An argument is malformed: invalid UTF-8, an out-of-range enumeration value, unparsable
/// PEM, an invalid URI or identifier, an inconsistent configuration.
pub const MEF_ERR_INVALID_ARGUMENT: mef_result = 2;
/// The library panicked (a bug); the handle, if any, has the message in its last error.
pub const MEF_ERR_PANIC: mef_result = 3;
/// A host callback (key, identity) returned failure or garbage (a zero or too large length,
/// a public key or signature that does not verify). Credential callback failures are
/// `MEF_ERR_STORE`.
pub const MEF_ERR_CALLBACK: mef_result = 4;
/// The TCP connection to the MEF could not be made.
pub const MEF_ERR_CONNECT: mef_result = 10;
/// A timeout expired (connect, TLS handshake, response).
pub const MEF_ERR_TIMEOUT: mef_result = 11;
/// The server is not authorised as this client's EST server (RFC 7030 3.6).
pub const MEF_ERR_SERVER_NOT_AUTHORIZED: mef_result = 12;
/// The TLS layer failed for another reason.
pub const MEF_ERR_TLS: mef_result = 13;
/// The connection broke (reset, closed early, truncated body).
pub const MEF_ERR_TRANSPORT: mef_result = 14;
/// The server asked for HTTP authentication, which oneM2M provisioning never uses.
pub const MEF_ERR_HTTP_AUTH_REQUESTED: mef_result = 15;
/// The server refused the request (4xx) or failed (5xx).
pub const MEF_ERR_SERVER_STATUS: mef_result = 16;
/// A redirect to another authority was refused.
pub const MEF_ERR_REDIRECT: mef_result = 17;
/// The response is malformed or not what the operation returns.
pub const MEF_ERR_BAD_RESPONSE: mef_result = 18;
/// The server kept answering 202 Accepted beyond the polling bounds.
pub const MEF_ERR_STILL_PENDING: mef_result = 19;
/// A certificate the server returned failed validation.
pub const MEF_ERR_CERTIFICATE_REJECTED: mef_result = 20;
/// A response body could not be decoded (base64, CMS, CsrAttrs, multipart).
pub const MEF_ERR_DECODE: mef_result = 21;
/// The server answered 202 Accepted with a Retry-After longer than the polling bounds allow
/// (RFC 7030 4.2.3): nothing was resent early; the message says how long the server asked for,
/// run the procedure again after that time.
pub const MEF_ERR_RETRY_LATER: mef_result = 22;
/// The server requires something this client cannot do (a key type, a hash).
pub const MEF_ERR_UNSUPPORTED: mef_result = 30;
/// The configured identity conflicts with the one the server asks for.
pub const MEF_ERR_IDENTITY_CONFLICT: mef_result = 31;
/// Key generation, loading or signing failed on this device.
pub const MEF_ERR_KEY: mef_result = 32;
/// The CSR could not be built.
pub const MEF_ERR_CSR: mef_result = 33;
/// The credential store failed (store directory, or the `store`/`load` credential
/// callbacks); nothing was installed.
pub const MEF_ERR_STORE: mef_result = 34;
/// Re-provisioning needs installed credentials and there are none.
pub const MEF_ERR_NOT_PROVISIONED: mef_result = 35;

/// A MEF Client command status (TS-0003 8.3.9.7 cmdStatusCode): one of the `MEF_CMD_*`
/// values. The numbers are this library's; TS-0003 names the statuses, see
/// `mef_cmd_status_name`.
pub type mef_cmd_status = u32;
/// MEF_CLIENT_CMD_OK.
pub const MEF_CMD_OK: mef_cmd_status = 0;
/// MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS.
pub const MEF_CMD_UNACCEPTABLE_ARGUMENTS: mef_cmd_status = 1;
/// MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR.
pub const MEF_CMD_CERT_PROV_SERVER_ERROR: mef_cmd_status = 2;
/// MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR.
pub const MEF_CMD_CERT_PROV_CLIENT_ERROR: mef_cmd_status = 3;
// The numbers are the core's (`CmdStatus::code`), written out for cbindgen: checked here.
const _: () = assert!(
    MEF_CMD_OK == CmdStatus::Ok.code()
        && MEF_CMD_UNACCEPTABLE_ARGUMENTS == CmdStatus::UnacceptableArguments.code()
        && MEF_CMD_CERT_PROV_SERVER_ERROR == CmdStatus::CertProvServerError.code()
        && MEF_CMD_CERT_PROV_CLIENT_ERROR == CmdStatus::CertProvClientError.code()
);

/// The result code of a library error: one code per [`Error`] variant.
pub(crate) fn result_of(e: &Error) -> mef_result {
    match e {
        Error::InvalidArgument { .. } => MEF_ERR_INVALID_ARGUMENT,
        Error::Connect { .. } => MEF_ERR_CONNECT,
        Error::Timeout { .. } => MEF_ERR_TIMEOUT,
        Error::ServerNotAuthorized { .. } => MEF_ERR_SERVER_NOT_AUTHORIZED,
        Error::Tls { .. } => MEF_ERR_TLS,
        Error::Transport { .. } => MEF_ERR_TRANSPORT,
        Error::HttpAuthenticationRequested { .. } => MEF_ERR_HTTP_AUTH_REQUESTED,
        Error::ServerStatus { .. } => MEF_ERR_SERVER_STATUS,
        Error::Redirect { .. } => MEF_ERR_REDIRECT,
        Error::BadResponse { .. } => MEF_ERR_BAD_RESPONSE,
        Error::Decode { .. } => MEF_ERR_DECODE,
        Error::StillPending { .. } => MEF_ERR_STILL_PENDING,
        Error::RetryAfterTooLong { .. } => MEF_ERR_RETRY_LATER,
        Error::CertificateRejected { .. } => MEF_ERR_CERTIFICATE_REJECTED,
        Error::Unsupported { .. } => MEF_ERR_UNSUPPORTED,
        Error::IdentityConflict { .. } => MEF_ERR_IDENTITY_CONFLICT,
        Error::Key { .. } => MEF_ERR_KEY,
        Error::Csr { .. } => MEF_ERR_CSR,
        Error::Store { .. } => MEF_ERR_STORE,
        Error::NotProvisioned { .. } => MEF_ERR_NOT_PROVISIONED,
        // `Error` is non_exhaustive (the core may grow): a variant this layer does not know yet
        // still gets a code of its class, never a panic.
        other => match other.class() {
            est::ErrorClass::BadArguments => MEF_ERR_INVALID_ARGUMENT,
            est::ErrorClass::Client => MEF_ERR_CALLBACK,
            _ => MEF_ERR_BAD_RESPONSE,
        },
    }
}

fn text_of(r: mef_result) -> Option<&'static str> {
    Some(match r {
        MEF_OK => "success\0",
        MEF_ERR_NULL_ARGUMENT => "a pointer argument was NULL\0",
        MEF_ERR_INVALID_ARGUMENT => "invalid argument\0",
        MEF_ERR_PANIC => "internal error (panic)\0",
        MEF_ERR_CALLBACK => "a host callback failed or returned garbage\0",
        MEF_ERR_CONNECT => "cannot connect to the MEF\0",
        MEF_ERR_TIMEOUT => "timed out\0",
        MEF_ERR_SERVER_NOT_AUTHORIZED => "the EST server is not authorised\0",
        MEF_ERR_TLS => "TLS failure\0",
        MEF_ERR_TRANSPORT => "the connection to the MEF failed\0",
        MEF_ERR_HTTP_AUTH_REQUESTED => "the server requested HTTP authentication\0",
        MEF_ERR_SERVER_STATUS => "the server refused the request or failed\0",
        MEF_ERR_REDIRECT => "redirect refused\0",
        MEF_ERR_BAD_RESPONSE => "malformed response\0",
        MEF_ERR_STILL_PENDING => "the request is still pending at the MEF\0",
        MEF_ERR_CERTIFICATE_REJECTED => "the returned certificate was rejected\0",
        MEF_ERR_DECODE => "cannot decode the response\0",
        MEF_ERR_RETRY_LATER => {
            "the MEF asked to be asked again later than the polling bounds allow\0"
        }
        MEF_ERR_UNSUPPORTED => "not supported (a key type, hash or feature this client lacks)\0",
        MEF_ERR_IDENTITY_CONFLICT => "identity conflict\0",
        MEF_ERR_KEY => "key operation failed\0",
        MEF_ERR_CSR => "cannot build the CSR\0",
        MEF_ERR_STORE => "credential store failure\0",
        MEF_ERR_NOT_PROVISIONED => "no provisioned credentials\0",
        _ => return None,
    })
}

/// The CERT_PROV class of a result code; `None` for unknown codes.
fn cmd_status_of(r: mef_result) -> Option<CmdStatus> {
    Some(match r {
        MEF_OK => CmdStatus::Ok,
        MEF_ERR_NULL_ARGUMENT | MEF_ERR_INVALID_ARGUMENT => CmdStatus::UnacceptableArguments,
        MEF_ERR_CONNECT..=MEF_ERR_RETRY_LATER => CmdStatus::CertProvServerError,
        MEF_ERR_PANIC | MEF_ERR_CALLBACK | MEF_ERR_UNSUPPORTED..=MEF_ERR_NOT_PROVISIONED => {
            CmdStatus::CertProvClientError
        }
        _ => return None,
    })
}

/// A short English text for a result code: a static string, never NULL ("unknown result"
/// for a value that is not a `mef_result`). The details of a failed client call are in
/// `mef_client_last_error`.
#[no_mangle]
pub extern "C" fn mef_result_text(result: mef_result) -> *const c_char {
    super::guard_value(c"internal error (panic)".as_ptr(), || {
        text_of(result)
            .unwrap_or("unknown result\0")
            .as_ptr()
            .cast()
    })
}

/// The TS-0003 8.3.9.7 cmdStatusCode class of a result: `MEF_CMD_OK` for `MEF_OK`;
/// `MEF_CMD_UNACCEPTABLE_ARGUMENTS` for `MEF_ERR_NULL_ARGUMENT` and `MEF_ERR_INVALID_ARGUMENT`;
/// `MEF_CMD_CERT_PROV_SERVER_ERROR` for codes 10 to 29 (communication with the MEF, or the
/// MEF failed); `MEF_CMD_CERT_PROV_CLIENT_ERROR` for `MEF_ERR_PANIC`, `MEF_ERR_CALLBACK` and
/// codes 30 to 49 (this device failed), and for unknown values.
#[no_mangle]
pub extern "C" fn mef_result_cmd_status(result: mef_result) -> mef_cmd_status {
    super::guard_value(MEF_CMD_CERT_PROV_CLIENT_ERROR, || {
        cmd_status_of(result)
            .unwrap_or(CmdStatus::CertProvClientError)
            .code()
    })
}

/// The TS-0003 name of a command status ("MEF_CLIENT_CMD_OK", ...): a static string, never
/// NULL ("unknown status" for a value that is not a `mef_cmd_status`).
#[no_mangle]
pub extern "C" fn mef_cmd_status_name(status: mef_cmd_status) -> *const c_char {
    super::guard_value(c"unknown status".as_ptr(), || {
        CmdStatus::from_code(status)
            .map_or(c"unknown status", CmdStatus::c_name)
            .as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn text(r: mef_result) -> String {
        // SAFETY: mef_result_text returns a static NUL-terminated string.
        unsafe { CStr::from_ptr(mef_result_text(r)) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn every_code_has_text_and_unknown_codes_do_not() {
        for r in (0..=4).chain(10..=22).chain(30..=35) {
            assert!(text_of(r).is_some(), "{r}");
            assert_ne!(text(r), "unknown result");
        }
        for r in [5, 9, 23, 29, 36, 1000, u32::MAX] {
            assert_eq!(text(r), "unknown result");
        }
    }

    /// Every core error variant (`Error::examples`) has its own code, and the code's class is
    /// the variant's (the core's `Error::class` and `CmdStatus`).
    #[test]
    fn cmd_status_agrees_with_error_class() {
        let mut codes = std::collections::BTreeSet::new();
        for e in Error::examples() {
            let expected = CmdStatus::from(e.class()).code();
            assert_eq!(mef_result_cmd_status(result_of(&e)), expected, "{e}");
            assert!(
                codes.insert(result_of(&e)),
                "two variants share a code: {e:?}"
            );
        }
        assert_eq!(
            mef_result_cmd_status(MEF_ERR_CALLBACK),
            MEF_CMD_CERT_PROV_CLIENT_ERROR
        );
        assert_eq!(
            mef_result_cmd_status(MEF_ERR_NULL_ARGUMENT),
            MEF_CMD_UNACCEPTABLE_ARGUMENTS
        );
        assert_eq!(mef_result_cmd_status(77), MEF_CMD_CERT_PROV_CLIENT_ERROR);
    }

    #[test]
    fn status_names_are_the_cores() {
        for status in CmdStatus::ALL {
            // SAFETY: mef_cmd_status_name returns a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(mef_cmd_status_name(status.code())) };
            assert_eq!(name.to_str().unwrap(), status.name());
        }
        // SAFETY: as above.
        let unknown = unsafe { CStr::from_ptr(mef_cmd_status_name(4)) };
        assert_eq!(unknown.to_str().unwrap(), "unknown status");
    }
}
