//! CsrAttrs (RFC 7030 4.5.2, RFC 8951 4): `csrattrs::decode` and
//! `CsrRequirements::from_items` never panic, and whatever `from_items` accepts survives the MEF
//! side's `to_items` → `encode` → `decode` → `from_items` unchanged (when `to_items` accepts it:
//! its documented refusals are a hash with an Ed25519 key and an unrecognised OID that
//! `from_items` would interpret).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onem2m_est_proto::csrattrs::{self, CsrRequirements};

fuzz_target!(|data: &[u8]| {
    let Ok(items) = csrattrs::decode(data) else {
        return;
    };
    // Debug output must not panic either (it redacts challengePasswords).
    let _ = format!("{items:?}");
    let _ = csrattrs::encode(&items);
    let Ok(reqs) = CsrRequirements::from_items(&items) else {
        return;
    };
    let _ = reqs.subject_alt_name();
    let Ok(sent) = reqs.to_items() else {
        return;
    };
    let der = csrattrs::encode(&sent).expect("to_items output encodes");
    let back = csrattrs::decode(&der).expect("our own CsrAttrs decode");
    assert_eq!(back, sent, "CsrAttrs encode/decode changed the items");
    let again = CsrRequirements::from_items(&back).expect("to_items output is accepted");
    assert_eq!(
        again, reqs,
        "CsrRequirements roundtrip changed the requirements"
    );
});
