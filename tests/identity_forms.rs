//! One table of identity inputs (`proto/tests/data/identity-forms.txt`) through the client's
//! `SubjectIdentity` and the reference MEF's `Identity`: both accept and refuse the same
//! inputs, and map each accepted one to the same subjectAltName entry, the table's. The MEF
//! does not depend on the client crate; this test is where the two meet.

use onem2m_est::identity::{SpId, SubjectIdentity, SubjectType};
use onem2m_est::proto::san::GeneralName;
use onem2m_est::ErrorClass;
use onem2m_mef::identity::Identity;

const TABLE: &str = include_str!("../proto/tests/data/identity-forms.txt");

#[test]
fn client_and_mef_accept_the_same_forms_and_map_them_alike() {
    let mut rows = 0;
    for line in TABLE.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        rows += 1;
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cols.len(), 4, "malformed row {line:?}");
        let (t, sp, input) = (cols[0], cols[1], cols[2]);
        let expected = match cols[3] {
            "ERR" => None,
            v if v.starts_with("DNS:") => Some(GeneralName::Dns(v[4..].into())),
            v if v.starts_with("URI:") => Some(GeneralName::Uri(v[4..].into())),
            v => panic!("bad expectation {v:?}"),
        };
        let client_type: SubjectType = t.parse().unwrap();
        let mef_type: onem2m_mef::SubjectType = t.parse().unwrap();
        let sp = (sp != "-").then(|| SpId::parse(sp).unwrap());
        let client = match &sp {
            None => SubjectIdentity::new(client_type, input),
            Some(sp) => SubjectIdentity::with_sp_id(client_type, input, sp),
        };
        let mef = match &sp {
            None => Identity::new(mef_type, input),
            Some(sp) => Identity::with_sp_id(mef_type, input, sp),
        };
        match (&client, &mef, &expected) {
            (Ok(c), Ok(m), Some(name)) => {
                assert_eq!(&c.general_name(), name, "client: {line}");
                assert_eq!(&m.general_name(), name, "MEF: {line}");
                // What the MEF registers and asks for is what the client would put in its CSR.
                assert!(c.matches(&m.general_name()) && m.matches(&c.general_name()));
            }
            (Err(e), Err(_), None) => {
                // A refused certSubjectID is MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS (8.3.9.7).
                assert_eq!(e.class(), ErrorClass::BadArguments, "{line}: {e}");
            }
            _ => panic!("{line}: client {client:?}, MEF {mef:?}, table {expected:?}"),
        }
    }
    assert!(rows > 50, "{rows} rows read");
}
