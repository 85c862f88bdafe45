//! The identity forms table (`tests/data/identity-forms.txt`) through `M2mId::parse`, plus the
//! round trip of every accepted value through `from_general_name`.

use onem2m_est_proto::identity::{M2mId, SpId, SubjectType};
use onem2m_est_proto::san::GeneralName;

const TABLE: &str = include_str!("data/identity-forms.txt");

fn rows() -> Vec<(SubjectType, Option<SpId>, &'static str, Option<GeneralName>)> {
    TABLE
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            assert_eq!(cols.len(), 4, "malformed row {l:?}");
            let t = SubjectType::from_name(cols[0]).expect("subject type");
            let sp = (cols[1] != "-").then(|| SpId::parse(cols[1]).expect("SP-ID"));
            let expected = match cols[3] {
                "ERR" => None,
                v if v.starts_with("DNS:") => Some(GeneralName::Dns(v[4..].into())),
                v if v.starts_with("URI:") => Some(GeneralName::Uri(v[4..].into())),
                v => panic!("bad expectation {v:?}"),
            };
            (t, sp, cols[2], expected)
        })
        .collect()
}

#[test]
fn every_row_maps_as_the_table_says() {
    let rows = rows();
    assert!(rows.len() > 50, "table read: {} rows", rows.len());
    for (t, sp, input, expected) in rows {
        let got = M2mId::parse(t, input, sp.as_ref());
        match (&got, &expected) {
            (Ok(id), Some(name)) => {
                assert_eq!(id.general_name(), name, "{t} {input:?} (SP {sp:?})");
                // The SAN value stands on its own: it parses back without an SP-ID and reads
                // back from the certificate as the same identity.
                let again = M2mId::parse(t, id.san_value(), None).unwrap();
                assert_eq!(again.general_name(), name);
                let read = M2mId::from_general_name(Some(t), name).unwrap();
                assert_eq!(read.general_name(), name);
                assert!(id.matches(name));
            }
            (Err(_), None) => {}
            _ => panic!("{t} {input:?} (SP {sp:?}): got {got:?}, table says {expected:?}"),
        }
    }
}

#[test]
fn refusals_say_why() {
    let e = M2mId::parse(SubjectType::Ae, "/mn-cse/CAE-device1", None).unwrap_err();
    assert!(e.reason().contains("//SP-ID/CSE-ID/AE-ID"), "{e}");
    let e = M2mId::parse(SubjectType::Cse, "cse01", None).unwrap_err();
    assert!(e.reason().contains("SP-ID"), "{e}");
    let e = M2mId::parse(SubjectType::Ae, "CAE01", None).unwrap_err();
    assert!(e.reason().contains("registrar CSE"), "{e}");
}

#[test]
fn sp_id_forms() {
    assert_eq!(
        SpId::parse("//example.net").unwrap().domain(),
        "example.net"
    );
    assert_eq!(
        SpId::parse("example.net").unwrap().to_string(),
        "//example.net"
    );
    for bad in [
        "",
        "//",
        "example",
        "//*.example.net",
        "//example.net/x",
        "exa mple.net",
    ] {
        assert!(SpId::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn matching_is_case_insensitive_where_rfc_5280_says() {
    let ae = M2mId::parse(SubjectType::Ae, "//example.net/mn-cse/CAE1", None).unwrap();
    assert!(ae.matches(&GeneralName::Uri("HTTPS://EXAMPLE.NET/mn-cse/CAE1".into())));
    assert!(!ae.matches(&GeneralName::Uri("https://example.net/MN-CSE/CAE1".into())));
    assert!(!ae.matches(&GeneralName::Dns("example.net".into())));
    let cse = M2mId::parse(SubjectType::Cse, "//example.net/mn-cse", None).unwrap();
    assert!(cse.matches(&GeneralName::Dns("MN-CSE.example.NET".into())));
    // A relative form is not a subjectAltName value: it cannot be read back from one.
    assert!(M2mId::from_general_name(None, &GeneralName::Uri("urn:oid:1.2".into())).is_ok());
    assert!(M2mId::from_general_name(None, &GeneralName::Dns("cse01".into())).is_err());
}
