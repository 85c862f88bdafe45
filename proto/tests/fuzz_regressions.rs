//! Inputs the fuzz targets (`fuzz/`, see FUZZING.md) found crashing, kept as regression tests.
//! Each file in `tests/data/fuzz/` is the input exactly as libFuzzer wrote it.

use onem2m_est_proto::multipart::{self, Part};
use onem2m_est_proto::ProtoError;

/// Splits a `multipart` target input: first line (boundary / Content-Type), then the body.
fn split_first_line(input: &[u8]) -> (&str, &[u8]) {
    let i = input.iter().position(|&b| b == b'\n').unwrap();
    (std::str::from_utf8(&input[..i]).unwrap(), &input[i + 1..])
}

fn empty_part() -> Part {
    Part {
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// `multipart` target: a delimiter line directly followed by the close delimiter line made
/// `parse` slice `body[content_start..line_start]` backwards (the line break before the close
/// delimiter is the one ending the first delimiter line) and panic.
#[test]
fn multipart_back_to_back_delimiters() {
    let input = include_bytes!("data/fuzz/multipart-back-to-back-delimiters");
    let (boundary, body) = split_first_line(input);
    assert_eq!(boundary, "p");
    assert_eq!(
        multipart::parse(boundary, body).unwrap(),
        vec![empty_part()]
    );
    // As a Content-Type, "p" is no media type.
    assert!(matches!(
        multipart::decode_serverkeygen(boundary, body),
        Err(ProtoError::MediaType { .. })
    ));

    // The same shape, readable: LF and CRLF line ends, with an epilogue.
    for body in [
        &b"--b\n--b--"[..],
        b"--b\r\n--b--\r\n",
        b"preamble\n--b\n--b--\nepilogue",
    ] {
        assert_eq!(multipart::parse("b", body).unwrap(), vec![empty_part()]);
    }
    // A serverkeygen response whose parts are empty has no key part.
    assert!(matches!(
        multipart::decode_serverkeygen("multipart/mixed; boundary=b", b"--b\n--b--"),
        Err(ProtoError::Multipart(_))
    ));
}
