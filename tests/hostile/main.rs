//! The hostile-MEF matrix: whole procedures (`MefClient::reprovision`, and `provision` where the
//! case is about bootstrapping) against the test kit's procedure server
//! (`onem2m_est_testkit::server::ProcedureServer`), which behaves like a MEF except for one
//! deliberate misbehaviour per case.
//!
//! Every case asserts the exact [`Error`] variant and its [`ErrorClass`], that nothing was
//! installed (the store directory is byte-identical: files, symlink targets, generations),
//! that no key was created when the failure comes before key generation, and that the previous
//! credentials still load, still match, and still authenticate: a final re-provisioning
//! against a well-behaved server with the same CA succeeds.
//!
//! Timeouts are small (1 s per response), so the slow cases finish in about a second each.
//! One module per family of cases; the last, `tolerated`, holds the field quirks the procedure
//! tolerates (it succeeds there). The modules share the imports below (`use super::*`); a
//! family of like cases is a table of named rows run by one loop ([`run`]).

use onem2m_est::client::{Config, MefClient, Reprovision};
use onem2m_est::error::Operation;
use onem2m_est::identity::{SubjectIdentity, SubjectType};
use onem2m_est::keys::{KeyAlgorithm, PrivateKey};
use onem2m_est::proto::csrattrs::{Curve, KeyRequirement};
use onem2m_est::proto::{base64body, certs_only, media};
use onem2m_est::store::{CredentialStore, Credentials, FileStore};
use onem2m_est::uri::EstUri;
use onem2m_est::{Error, ErrorClass};
use onem2m_est_testkit::hostile::*;
use onem2m_est_testkit::{pki::*, server::*};
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

mod base64_bodies;
mod bodies;
mod cms;
mod content_types;
mod csrattrs;
mod http;
mod pending;
mod reenrolment;
mod rollover;
mod switching;
mod tls;
mod tolerated;

/// Whether `err` is a bad response to `op` whose reason contains `expected`.
fn bad_response_saying(err: &Error, op: Operation, expected: &str) -> bool {
    matches!(err, Error::BadResponse { operation, reason }
        if *operation == op && reason.contains(expected))
}

/// Whether `err` is a bad response to `op`.
fn bad_response_in(err: &Error, op: Operation) -> bool {
    matches!(err, Error::BadResponse { operation, .. } if *operation == op)
}

/// Whether `err` is a body of `op` that does not decode.
fn decode_error_in(err: &Error, op: Operation) -> bool {
    matches!(err, Error::Decode { operation, .. } if *operation == op)
}

/// Whether `err` is a transport failure of `op`.
fn transport_error_in(err: &Error, op: Operation) -> bool {
    matches!(err, Error::Transport { operation, .. } if *operation == op)
}

/// The misbehaviour of a case: the `hook` of [`case_with`].
type Hook = Box<dyn Fn(&MefPki, &Request, Response) -> Action + Send + Sync>;

/// One named case of a table: the misbehaviour (the server's TLS options and its answers),
/// how the procedure runs, and what its error must be.
struct Row {
    name: &'static str,
    options: fn(&mut ServerOptions, &MefPki),
    hook: Hook,
    proc: Proc,
    class: ErrorClass,
    may_create_key: bool,
    expected: fn(&Error) -> bool,
}

/// A row run like [`case`]: default TLS options, a rekey whose error is of class Server.
fn row(
    name: &'static str,
    hook: impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static,
    expected: fn(&Error) -> bool,
) -> Row {
    Row {
        name,
        options: |_, _| {},
        hook: Box::new(hook),
        proc: Proc::Reprovision(Reprovision::Rekey),
        class: ErrorClass::Server,
        may_create_key: true,
        expected,
    }
}

impl Row {
    /// The case runs `mode`, and the client refuses the answer before it generates a key
    /// (class Client).
    fn refused_by_the_client(self, mode: Reprovision) -> Row {
        Row {
            proc: Proc::Reprovision(mode),
            class: ErrorClass::Client,
            may_create_key: false,
            ..self
        }
    }
}

/// Runs each row's case with all the checks of [`case_with`], then checks its error. The
/// row's name is printed first: the harness shows a failed test's output, so a failure
/// anywhere in the case names its row.
fn run(rows: Vec<Row>) {
    for r in rows {
        println!("case: {}", r.name);
        let err = case_with(r.options, r.hook, r.proc, r.class, r.may_create_key);
        assert!((r.expected)(&err), "{}: {err:?}", r.name);
    }
}
