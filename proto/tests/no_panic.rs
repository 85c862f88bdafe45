//! Every decoder must return (Ok or Err) on any input, never panic: truncated prefixes, bit flips
//! and pseudo-random bytes around valid seeds. A deterministic generator keeps failures
//! reproducible; the failing input is printed in hex.

use onem2m_est_proto::csrattrs::{self, CsrRequirements};
use onem2m_est_proto::media::MediaType;
use onem2m_est_proto::retry_after::RetryAfter;
use onem2m_est_proto::{base64body, certs_only, multipart, san};
use std::panic::{catch_unwind, AssertUnwindSafe};

const P7B: &[u8] = include_bytes!("data/certs-only-openssl.p7b");
const EE: &[u8] = include_bytes!("data/ee.der");

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Truncations, single bit flips, multi-byte corruptions, splices and random bytes.
fn inputs(seeds: &[Vec<u8>], count: usize, rng_seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(rng_seed);
    let mut out = Vec::new();
    for s in seeds {
        for n in 0..=s.len() {
            out.push(s[..n].to_vec());
        }
    }
    for _ in 0..count {
        let s = &seeds[rng.below(seeds.len())];
        let mut v = s.clone();
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len() * 8);
                v[i / 8] ^= 1 << (i % 8);
            }
            1 if !v.is_empty() => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(v.len());
                    v[i] = rng.next() as u8;
                }
            }
            2 if !v.is_empty() => {
                // Length-ish bytes: 0x80 (indefinite), 0xff, 0x00, 0x84.
                let i = rng.below(v.len());
                v[i] = [0x80, 0xff, 0x00, 0x84, 0x30, 0xa0][rng.below(6)];
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let j = rng.below(v.len());
                let (a, b) = (i.min(j), i.max(j));
                v.drain(a..b);
                let insert: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                v.splice(a..a, insert);
            }
            _ => {
                v = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
            }
        }
        out.push(v);
    }
    out
}

fn check(name: &str, inputs: &[Vec<u8>], f: impl Fn(&[u8])) {
    for input in inputs {
        if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
            panic!("{name} panicked on input {}", hex::encode(input));
        }
    }
}

/// [`check`] for a parser of text (header values, identifiers): `count` inputs around the
/// `seeds`, each read as lossy UTF-8.
fn check_text(name: &str, seeds: &[&str], count: usize, rng_seed: u64, f: impl Fn(&str)) {
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    check(name, &inputs(&seeds, count, rng_seed), |b| {
        f(&String::from_utf8_lossy(b))
    });
}

#[test]
fn base64body_decode() {
    let seeds = vec![
        base64body::encode(P7B).into_bytes(),
        b"Zm8=\r\nYg\r\n".to_vec(),
        // libest's framing: text, LF, the C string's NUL.
        b"Zm9vYmFy\n\0".to_vec(),
    ];
    check("base64body::decode", &inputs(&seeds, 3000, 1), |b| {
        let _ = base64body::decode(b);
    });
}

#[test]
fn media_type_parse() {
    let seeds = [
        "application/pkcs7-mime; smime-type=certs-only",
        "multipart/mixed; boundary=\"a\\\"b c\"; x=1;",
    ];
    check_text("MediaType::parse", &seeds, 3000, 2, |text| {
        let _ = MediaType::parse(text);
    });
}

#[test]
fn certs_only_decode() {
    let der = P7B.to_vec();
    // Some indefinite-length variants: outer SEQUENCE and [0] as 0x80 ... 00 00.
    let mut ber = vec![0x30, 0x80];
    ber.extend_from_slice(&P7B[4..]);
    ber.extend([0, 0]);
    let empty = certs_only::encode(&[]).unwrap();
    check(
        "certs_only::decode",
        &inputs(&[der, ber, empty], 3000, 3),
        |b| {
            let _ = certs_only::decode(b);
        },
    );
}

#[test]
fn csrattrs_decode_and_interpret() {
    let rfc = base64body::decode(
        b"MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==",
    )
    .unwrap();
    let san_der = san::encode(&[san::GeneralName::Uri("CAE-x".into())]).unwrap();
    let req = CsrRequirements {
        challenge_password: csrattrs::ChallengePassword::Value("pw".to_string().into()),
        extensions: vec![csrattrs::RequestedExtension {
            oid: "2.5.29.17".into(),
            critical: false,
            value: san_der,
        }],
        key: Some(csrattrs::KeyRequirement::Rsa { bits: Some(2048) }),
        hash: Some(csrattrs::HashAlg::Sha256),
        unrecognized: vec![],
    };
    let ours = csrattrs::encode(&req.to_items().unwrap()).unwrap();
    check("csrattrs", &inputs(&[rfc, ours], 4000, 4), |b| {
        if let Ok(items) = csrattrs::decode(b) {
            if let Ok(r) = CsrRequirements::from_items(&items) {
                let _ = r.subject_alt_name();
                if let Ok(items) = r.to_items() {
                    let _ = csrattrs::encode(&items);
                }
            }
        }
    });
}

#[test]
fn san_decode() {
    let seeds = vec![
        san::encode(&[
            san::GeneralName::Dns("a.example".into()),
            san::GeneralName::Uri("CAE-1".into()),
            san::GeneralName::Other(vec![0x87, 4, 127, 0, 0, 1]),
        ])
        .unwrap(),
        EE[EE.len() - 120..].to_vec(),
    ];
    check("san::decode", &inputs(&seeds, 3000, 5), |b| {
        if let Ok(names) = san::decode(b) {
            let _ = san::encode(&names);
        }
    });
}

#[test]
fn multipart_parse_and_serverkeygen() {
    let (ct, body) =
        multipart::encode_serverkeygen(&[0x30, 0x03, 0x02, 0x01, 0x00], &[EE]).unwrap();
    let boundary = MediaType::parse(&ct)
        .unwrap()
        .param("boundary")
        .unwrap()
        .to_string();
    let lf: Vec<u8> = body.iter().copied().filter(|&b| b != b'\r').collect();
    check("multipart", &inputs(&[body, lf], 3000, 6), |b| {
        let _ = multipart::parse(&boundary, b);
        let _ = multipart::decode_serverkeygen(&ct, b);
    });
    // Mutated Content-Type values too.
    check(
        "serverkeygen content type",
        &inputs(&[ct.clone().into_bytes()], 1000, 7),
        |c| {
            let _ =
                multipart::decode_serverkeygen(&String::from_utf8_lossy(c), b"--x\r\n\r\n--x--");
        },
    );
}

#[test]
fn retry_after_parse() {
    let seeds = [
        "120",
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "99999999999999999999999",
    ];
    check_text("RetryAfter::parse", &seeds, 3000, 8, |text| {
        let _ = RetryAfter::parse(text);
    });
}

#[test]
fn identity_parse_and_from_general_name() {
    use onem2m_est_proto::identity::{M2mId, SpId, SubjectType};
    let seeds = [
        "//example.net/mn-cse/CAE-device1",
        "https://sp.example.com:8443/cse01/Sae-1",
        "/mn-cse",
        "cse01.sp.example.com",
        "urn:oid:1.3.6.1.4.1.99999.1",
        "1.3.6.1.4.1",
    ];
    let sp = SpId::parse("example.net").unwrap();
    check_text("M2mId::parse", &seeds, 4000, 9, |text| {
        for t in SubjectType::ALL {
            for sp in [None, Some(&sp)] {
                // Whatever is accepted maps to a SAN value that stands on its own.
                if let Ok(id) = M2mId::parse(t, text, sp) {
                    let again = M2mId::parse(t, id.san_value(), None).expect("SAN value reparses");
                    assert_eq!(again.general_name(), id.general_name());
                }
            }
            let _ = M2mId::from_general_name(Some(t), &san::GeneralName::Uri(text.to_string()));
        }
        let _ = M2mId::from_general_name(None, &san::GeneralName::Dns(text.to_string()));
        let _ = SpId::parse(text);
    });
}
