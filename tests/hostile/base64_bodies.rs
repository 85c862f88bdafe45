//! base64 bodies (RFC 8951 3): garbage, NULs, foreign white space, PEM armour, not CMS.

use super::*;

#[test]
fn garbage_base64() {
    let err = case(on("cacerts", |_, _, good| {
        with_body(good, "!!! this is not base64 !!!")
    }));
    assert!(decode_error_in(&err, Operation::CaCerts), "{err:?}");
}

/// NULs after the base64 text are tolerated (libest sends one; RFC 8951 3, see
/// `tests/transport.rs`), but base64 resuming after them is garbage inside the text.
#[test]
fn nul_padded_base64_followed_by_more_text() {
    let err = case(on("simplereenroll", |_, _, good| {
        let mut body = good.body.clone();
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(b"AAAA\r\n");
        with_body(good, body)
    }));
    assert!(decode_error_in(&err, Operation::SimpleReenroll), "{err:?}");
}

#[test]
fn nul_inside_base64() {
    let err = case(on("cacerts", |_, _, good| {
        let mut body = good.body.clone();
        body.insert(8, 0);
        with_body(good, body)
    }));
    assert!(decode_error_in(&err, Operation::CaCerts), "{err:?}");
}

#[test]
fn base64_with_foreign_white_space() {
    // Vertical tab and form feed are not the white space RFC 8951 lets a server add.
    let err = case(on("csrattrs", |_, _, good| {
        let text = String::from_utf8(good.body.clone()).unwrap();
        let (a, b) = text.split_at(10);
        with_body(good, format!("{a}\x0b\x0c{b}"))
    }));
    assert!(decode_error_in(&err, Operation::CsrAttrs), "{err:?}");
}

#[test]
fn pem_armoured_instead_of_base64() {
    let err = case(on("simplereenroll", |_, _, good| {
        let text = String::from_utf8(good.body.clone()).unwrap();
        with_body(
            good,
            format!(
                "-----BEGIN PKCS7-----\n{}-----END PKCS7-----\n",
                text.trim_end()
            ),
        )
    }));
    assert!(decode_error_in(&err, Operation::SimpleReenroll), "{err:?}");
}

#[test]
fn base64_of_something_that_is_not_cms() {
    let err = case(on("simplereenroll", |_, _, good| {
        with_body(good, base64body::encode(b"\x30\x03\x02\x01\x00"))
    }));
    assert!(decode_error_in(&err, Operation::SimpleReenroll), "{err:?}");
}

/// Not a failure case: wrapped and white-space-laden base64 is what RFC 8951 says real servers
/// send, so the procedure must succeed (and install the new set).
#[test]
fn wrapped_and_white_space_laden_base64_is_tolerated() {
    let (device, server) = device_and_server(
        "Wrapping MEF CA",
        |_, _| {},
        |_, _, good| {
            let text = String::from_utf8(good.body.clone()).unwrap();
            let compact = text.trim_end();
            let mut wrapped = String::from(" \t\r\n");
            for (i, c) in compact.chars().enumerate() {
                if i > 0 && i % 64 == 0 {
                    wrapped.push_str("\r\n\t ");
                }
                wrapped.push(c);
            }
            wrapped.push_str("\n\n  ");
            with_body(good, wrapped)
        },
    );
    let done = device.reprovision(&server, Reprovision::Rekey).unwrap();
    let now = FileStore::new(device.dir.path())
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    assert_eq!(now.chain, done.chain);
}
