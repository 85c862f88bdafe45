//! Tolerated: what servers in the field send that the procedure accepts.

use super::*;

/// A libest-based MEF: its /serverkeygen puts OpenSSL's traditional form of the key (SEC1
/// ECPrivateKey, from `i2d_PrivateKey`) in the application/pkcs8 part where RFC 7030 4.4.2
/// wants PKCS #8. The client wraps it and installs it.
#[test]
fn server_keygen_with_a_sec1_key_as_libest_sends_it() {
    use der::Encode as _;
    let pki = Arc::new(MefPki::new("libest-like MEF CA"));
    let device = Device::new(&pki);
    let generated = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let spki = rcgen::PublicKeyData::subject_public_key_info(&generated);
    let pkcs8 = generated.serialize_der();
    let info = pkcs8::PrivateKeyInfoRef::try_from(pkcs8.as_slice()).unwrap();
    let inner = sec1::EcPrivateKey::try_from(info.private_key.as_bytes()).unwrap();
    // What OpenSSL writes: the named curve and the public key inside the ECPrivateKey.
    let sec1_key = sec1::EcPrivateKey {
        private_key: inner.private_key,
        parameters: Some(sec1::EcParameters::NamedCurve(
            "1.2.840.10045.3.1.7".parse().unwrap(),
        )),
        public_key: inner.public_key,
    }
    .to_der()
    .unwrap();
    assert!(onem2m_est::keys::SoftwareKey::from_pkcs8_der(&sec1_key).is_err());
    let server = ProcedureServer::start(
        pki.clone(),
        |_| {},
        move |pki, req, good| {
            if req.path.ends_with("/serverkeygen") {
                let cert = pki.issue_for(&spki, &[&pki.identity], |_| {});
                let (ct, body) =
                    onem2m_est::proto::multipart::encode_serverkeygen(&sec1_key, &[cert.as_ref()])
                        .unwrap();
                Response::new(200)
                    .header("Content-Type", &ct)
                    .body(body)
                    .into()
            } else {
                good.into()
            }
        },
    );
    let mut store = FileStore::new(device.dir.path()).unwrap();
    client_for(&server.base())
        .reprovision(&mut store, Reprovision::ServerKeygen)
        .unwrap();
    let now = store.load().unwrap().unwrap();
    assert_eq!(
        now.key.public_key_info(),
        rcgen::PublicKeyData::subject_public_key_info(&generated).as_slice(),
        "the server-generated key is installed"
    );
    assert_ne!(now.chain, device.before.chain);
}
