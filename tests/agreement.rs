//! The facts the client library and the MEF must agree on, where each side validates with its
//! own code and errors (ARCHITECTURE.md, "One source of facts"): the same inputs are accepted
//! or refused by both. The constants themselves come from `onem2m_est_proto` on both sides.

use onem2m_est::psk::PskCredential;

/// PPSK credentials (TS-0003 8.3.2.1; RFC 4279 5.3 and 7.2 limits): a KpmID and Kpm the MEF
/// registers are exactly those the client can present.
#[test]
fn client_and_mef_accept_and_refuse_the_same_psk_credentials() {
    use onem2m_est::proto::psk::{MAX_IDENTITY_LEN, MAX_KEY_LEN, MIN_KEY_LEN};
    let ids = [
        String::new(),
        "kpm-1".to_owned(),
        "k".repeat(MAX_IDENTITY_LEN),
        "k".repeat(MAX_IDENTITY_LEN + 1),
        "kpm\u{7}bell".to_owned(),
        "kpm\nline".to_owned(),
        "kpm-é".to_owned(),
    ];
    let keys = [
        0,
        1,
        MIN_KEY_LEN - 1,
        MIN_KEY_LEN,
        32,
        MAX_KEY_LEN,
        MAX_KEY_LEN + 1,
    ];
    let mut rows = 0;
    for id in &ids {
        for &len in &keys {
            let kpm = vec![0x5a; len];
            let client = PskCredential::new(id.clone(), kpm.clone()).is_ok();
            let mef = onem2m_mef::psk::validate(id, &kpm).is_ok();
            assert_eq!(
                client,
                mef,
                "KpmID {id:?} ({} bytes), Kpm of {len} bytes: client accepts: {client}, MEF \
                 accepts: {mef}",
                id.len()
            );
            rows += 1;
        }
    }
    assert_eq!(rows, ids.len() * keys.len());
}
