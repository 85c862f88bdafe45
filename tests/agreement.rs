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

/// A Kpm written as hexadecimal text (the CLI's `--psk-key-hex`/`--psk-key-file`, C and Python;
/// the MEF's `psk add --kpm-hex/--kpm-file`): both sides read the same bytes from the same text
/// and refuse the same text.
#[test]
fn client_and_mef_read_the_same_kpm_from_the_same_hex_text() {
    let key = "00112233445566778899aabbccddeeff";
    let texts = [
        key.to_owned(),
        key.to_uppercase(),
        "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff".to_owned(),
        "0011 2233 4455 6677\n8899 aabb ccdd eeff\n".to_owned(),
        format!("  {key}\r\n"),
        String::new(),
        format!("{key}0"),
        format!("zz{key}"),
        "0x0011223344556677".to_owned(),
    ];
    for text in &texts {
        let client = PskCredential::from_hex("kpm-1", text).map(|c| c.key().to_vec());
        let mef = onem2m_mef::psk::decode_hex(text).map(|k| k.to_vec());
        match (&client, &mef) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text:?}"),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "{text:?}: the client accepts it: {}, the MEF: {}",
                client.is_ok(),
                mef.is_ok()
            ),
        }
    }
}
