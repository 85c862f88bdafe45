//! The reference MEF's enrollment CSR checks (`mef/src/est.rs`, CR 8.3.Z.2.2 step 3.d) on
//! hostile requests: Content-Type and base64 body (`decode_csr_body`), PKCS #10 parsing, proof
//! of possession and the key/signature profile (`parse_csr`), then the walk over every CSR
//! attribute and value (`csr_request`: challengePassword, extensionRequest, the extension
//! policy) and the identity comparison the MEF makes next. Never panics; an accepted CSR is
//! P-256 and its signature verifies.
//!
//! Input: the Content-Type line, then the request body (`est_fuzz::header_and_body`); a first
//! line of `-` means no Content-Type header.
#![no_main]

use est_fuzz::header_and_body;
use libfuzzer_sys::fuzz_target;
use onem2m_mef::{csr_request, decode_csr_body, parse_csr, Identity, SubjectType};
use std::sync::OnceLock;

fn identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| Identity::new(SubjectType::Cse, "cse01.sp.example.com").unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((ct, body)) = header_and_body(data) else {
        return;
    };
    let ct = (ct != "-").then_some(ct);
    let der = match decode_csr_body(ct, body) {
        Ok(der) => der,
        Err(resp) => {
            assert!(matches!(resp.status, 400 | 415), "status {}", resp.status);
            return;
        }
    };
    let csr = match parse_csr(&der) {
        Ok(csr) => csr,
        Err(resp) => {
            assert_eq!(resp.status, 400);
            return;
        }
    };
    csr.verify_signature()
        .expect("parse_csr accepted a CSR that does not verify");
    match csr_request(&csr) {
        Ok(request) => {
            let _ = request.password.map(|p| p.len());
            for n in request.subject_alt_names.iter().flatten() {
                let _ = identity().matches(n);
            }
        }
        Err(resp) => assert_eq!(resp.status, 400),
    }
});
