//! What a MEF's CSR attributes ask for, in words (RFC 7030 4.5.2): one description for the CLI,
//! the C ABI (`mef_csrattrs_describe`) and Python (`Client.csrattrs()`), so every language shows
//! the same (issue #14). The challengePassword's value is never part of it.

use crate::proto::csrattrs::{ChallengePassword, CsrRequirements};

/// `(field, value)` pairs, in this order: `challenge_password` (`not requested`, `channel
/// binding`, `supplied`), `subject_alt_name` (e.g. `DNS:cse01.sp.example.com`; absent when not
/// asked for), one `extension` per other requested extension (`OID[ critical] N bytes`),
/// `key_type` (`EC P-256`...) and `signature_hash` (`SHA-256`...) when asked for, one
/// `unrecognised` per attribute OID this client ignores.
pub fn csr_attributes(reqs: &CsrRequirements) -> Vec<(&'static str, String)> {
    let mut out = vec![(
        "challenge_password",
        match reqs.challenge_password {
            ChallengePassword::NotRequested => "not requested",
            ChallengePassword::ChannelBinding => "channel binding",
            ChallengePassword::Value(_) => "supplied",
        }
        .to_string(),
    )];
    if let Some(san) = reqs.subject_alt_name() {
        let text = match crate::proto::san::decode(san) {
            Ok(names) => crate::identity::describe_general_names(&names),
            Err(e) => format!("undecodable ({e})"),
        };
        out.push(("subject_alt_name", text));
    }
    for ext in &reqs.extensions {
        if ext.oid != crate::proto::oids::SUBJECT_ALT_NAME {
            let critical = if ext.critical { " critical" } else { "" };
            out.push((
                "extension",
                format!("{}{critical} {} bytes", ext.oid, ext.value.len()),
            ));
        }
    }
    if let Some(k) = reqs.key {
        out.push(("key_type", k.to_string()));
    }
    if let Some(h) = reqs.hash {
        out.push(("signature_hash", h.to_string()));
    }
    for oid in &reqs.unrecognized {
        out.push(("unrecognised", oid.to_string()));
    }
    out
}
