//! CSR attributes the client cannot satisfy.

use super::*;

#[test]
fn csrattrs_demanding_an_unsupported_key_type() {
    let err = case_with(
        |_, _| {},
        demanding(KeyRequirement::Ec(Curve::P521)),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Client,
        false,
    );
    assert!(
        matches!(&err, Error::Unsupported { what } if what.contains("P-521")),
        "{err:?}"
    );
}

#[test]
fn csrattrs_demanding_an_absurd_rsa_size_refused_before_key_generation() {
    let err = case_with(
        |_, _| {},
        demanding(KeyRequirement::Rsa {
            bits: Some(1 << 30),
        }),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Client,
        false,
    );
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
}

#[test]
fn csrattrs_demanding_rsa_when_renewing_an_ec_key() {
    let err = case_with(
        |_, _| {},
        demanding(KeyRequirement::Rsa { bits: Some(2048) }),
        Proc::Reprovision(Reprovision::Renew),
        ErrorClass::Client,
        false,
    );
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
}

#[test]
fn csrattrs_asking_for_another_identity_than_configured() {
    let err = case_with(
        |_, _| {},
        on("csrattrs", |pki, _, _| {
            let mut other = MefPki::new("unused");
            other.challenge = pki.challenge.clone();
            other.identity = "cse02.sp.example.com".into();
            MefPki::csrattrs_response(&other.requirements()).into()
        }),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Client,
        false,
    );
    assert!(matches!(err, Error::IdentityConflict { .. }), "{err:?}");
}

#[test]
fn csrattrs_asking_for_channel_binding() {
    let err = case_with(
        |_, _| {},
        on("csrattrs", |pki, _, _| {
            let mut reqs = pki.requirements();
            reqs.challenge_password =
                onem2m_est::proto::csrattrs::ChallengePassword::ChannelBinding;
            MefPki::csrattrs_response(&reqs).into()
        }),
        Proc::Reprovision(Reprovision::Rekey),
        ErrorClass::Client,
        false,
    );
    assert!(
        matches!(&err, Error::Unsupported { what } if what.contains("channel binding")),
        "{err:?}"
    );
}
