//! CSR attributes the client cannot satisfy: refused by the client before it generates a key.

use super::*;

#[test]
fn csrattrs_the_client_cannot_satisfy() {
    run(vec![
        row(
            "csrattrs demanding an unsupported key type",
            demanding(KeyRequirement::Ec(Curve::P521)),
            |err| matches!(err, Error::Unsupported { what } if what.contains("P-521")),
        )
        .refused_by_the_client(Reprovision::Rekey),
        row(
            "csrattrs demanding an absurd RSA size",
            demanding(KeyRequirement::Rsa {
                bits: Some(1 << 30),
            }),
            |err| matches!(err, Error::Unsupported { .. }),
        )
        .refused_by_the_client(Reprovision::Rekey),
        row(
            "csrattrs demanding RSA when renewing an EC key",
            demanding(KeyRequirement::Rsa { bits: Some(2048) }),
            |err| matches!(err, Error::Unsupported { .. }),
        )
        .refused_by_the_client(Reprovision::Renew),
        row(
            "csrattrs asking for another identity than configured",
            on("csrattrs", |pki, _, _| {
                let mut other = MefPki::new("unused");
                other.challenge = pki.challenge.clone();
                other.identity = "cse02.sp.example.com".into();
                MefPki::csrattrs_response(&other.requirements()).into()
            }),
            |err| matches!(err, Error::IdentityConflict { .. }),
        )
        .refused_by_the_client(Reprovision::Rekey),
        row(
            "csrattrs asking for channel binding",
            on("csrattrs", |pki, _, _| {
                let mut reqs = pki.requirements();
                reqs.challenge_password =
                    onem2m_est::proto::csrattrs::ChallengePassword::ChannelBinding;
                MefPki::csrattrs_response(&reqs).into()
            }),
            |err| matches!(err, Error::Unsupported { what } if what.contains("channel binding")),
        )
        .refused_by_the_client(Reprovision::Rekey),
    ]);
}
