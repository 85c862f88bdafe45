//! Re-enrolment identity (RFC 7030 4.2.2): a server that inspects the CSR.

use super::*;

/// What a CSR carried: the subject (DER), the subjectAltName (value DER, critical) and the
/// extendedKeyUsage purposes (dotted).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CsrNames {
    subject: Vec<u8>,
    san: Option<(Vec<u8>, bool)>,
    ekus: Vec<String>,
}

fn csr_names(req: &Request) -> CsrNames {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::cri_attributes::ParsedCriAttribute;
    use x509_parser::prelude::FromDer;
    let der = base64body::decode(&req.body).unwrap();
    let (_, csr) = X509CertificationRequest::from_der(&der).unwrap();
    let info = &csr.certification_request_info;
    let mut names = CsrNames {
        subject: info.subject.as_raw().to_vec(),
        san: None,
        ekus: Vec::new(),
    };
    for attr in info.iter_attributes() {
        if let ParsedCriAttribute::ExtensionRequest(er) = attr.parsed_attribute() {
            for ext in &er.extensions {
                match ext.oid.to_id_string().as_str() {
                    "2.5.29.17" => names.san = Some((ext.value.to_vec(), ext.critical)),
                    "2.5.29.37" => {
                        let x509_parser::extensions::ParsedExtension::ExtendedKeyUsage(eku) =
                            ext.parsed_extension()
                        else {
                            panic!("malformed EKU in the CSR")
                        };
                        names.ekus = eku.other.iter().map(|o| o.to_id_string()).collect();
                        if eku.client_auth {
                            names.ekus.push("1.3.6.1.5.5.7.3.2".into());
                        }
                        if eku.server_auth {
                            names.ekus.push("1.3.6.1.5.5.7.3.1".into());
                        }
                        names.ekus.sort();
                    }
                    _ => {}
                }
            }
        }
    }
    names
}

/// The same fields of a certificate.
fn cert_names(der: &[u8]) -> CsrNames {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    let mut names = CsrNames {
        subject: cert.subject().as_raw().to_vec(),
        san: None,
        ekus: Vec::new(),
    };
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == "2.5.29.17" {
            names.san = Some((ext.value.to_vec(), ext.critical));
        }
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        names.ekus = eku.value.other.iter().map(|o| o.to_id_string()).collect();
        if eku.value.client_auth {
            names.ekus.push("1.3.6.1.5.5.7.3.2".into());
        }
        if eku.value.server_auth {
            names.ekus.push("1.3.6.1.5.5.7.3.1".into());
        }
        names.ekus.sort();
    }
    names
}

/// A device whose certificate has a subject the client would not write itself
/// (C=FR as PrintableString, O, CN "device 0001"), a critical subjectAltName with the MEF
/// identity, and extendedKeyUsage clientAuth + serverAuth (a CSE that also serves).
fn distinctive_device(pki: &MefPki) -> Device {
    let key = onem2m_est::keys::SoftwareKey::generate(KeyAlgorithm::EcdsaP256Sha256).unwrap();
    let leaf = pki.issue_for(key.public_key_info(), &[&pki.identity], |p| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(
            rcgen::DnType::CountryName,
            rcgen::DnValue::PrintableString("FR".try_into().unwrap()),
        );
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme Devices");
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "device 0001");
        p.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ];
        // Critical SAN: with rcgen, only through a custom extension.
        let san = p.subject_alt_names.clone();
        p.subject_alt_names.clear();
        let value = onem2m_est::proto::san::encode(
            &san.iter()
                .map(|n| match n {
                    rcgen::SanType::DnsName(d) => {
                        onem2m_est::proto::san::GeneralName::Dns(d.as_str().into())
                    }
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 17], value);
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    });
    let creds = Credentials {
        trust_anchors: vec![pki.ca.cert.clone()],
        chain: vec![leaf],
        key: Arc::new(key),
    };
    let dir = TempDir::new().unwrap();
    FileStore::new(dir.path()).unwrap().install(&creds).unwrap();
    Device { dir, before: creds }
}

/// A MEF that records the names of every enrolment CSR and answers /serverkeygen too.
fn recording_mef(
    seen: Arc<std::sync::Mutex<Vec<CsrNames>>>,
    requirements: impl Fn(&MefPki) -> onem2m_est::proto::csrattrs::CsrRequirements
        + Send
        + Sync
        + 'static,
) -> impl Fn(&MefPki, &Request, Response) -> Action + Send + Sync + 'static {
    move |pki, req, good| match req.path.rsplit('/').next() {
        Some("csrattrs") => MefPki::csrattrs_response(&requirements(pki)).into(),
        Some("simplereenroll") => {
            seen.lock().unwrap().push(csr_names(req));
            good.into()
        }
        Some("serverkeygen") => {
            seen.lock().unwrap().push(csr_names(req));
            pki.check_csr(req).expect("the client's CSR is valid");
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = pki.issue_for(
                &rcgen::PublicKeyData::subject_public_key_info(&key),
                &[&pki.identity],
                |_| {},
            );
            let (content_type, body) = onem2m_est::proto::multipart::encode_serverkeygen(
                &key.serialize_der(),
                &[cert.as_ref()],
            )
            .unwrap();
            Response::new(200)
                .header("Content-Type", &content_type)
                .body(body)
                .into()
        }
        _ => good.into(),
    }
}

fn reenrolment_keeps_the_current_names(mode: Reprovision, request_eku: bool) {
    let pki = Arc::new(MefPki::new("Inspecting MEF CA"));
    let device = distinctive_device(&pki);
    let current = cert_names(device.before.chain[0].as_ref());
    assert_eq!(current.ekus, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let server = ProcedureServer::start(
        pki.clone(),
        |_| {},
        recording_mef(seen.clone(), move |pki| {
            let mut reqs = pki.requirements();
            if request_eku {
                // SEQUENCE { id-kp-clientAuth }, as a MEF asks for it.
                reqs.extensions
                    .push(onem2m_est::proto::csrattrs::RequestedExtension {
                        oid: "2.5.29.37".into(),
                        critical: false,
                        value: vec![
                            0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
                        ],
                    });
            }
            reqs
        }),
    );
    device.reprovision(&server, mode).unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    // RFC 7030 4.2.2: Subject and SubjectAltName identical (the SAN's criticality too); the
    // current certificate's EKUs carried, with the requested one (issue #11).
    assert_eq!(seen[0], current);
}

#[test]
fn renew_csr_keeps_subject_san_and_ekus() {
    reenrolment_keeps_the_current_names(Reprovision::Renew, false);
}

#[test]
fn rekey_csr_keeps_subject_san_and_ekus_with_requested_ekus() {
    reenrolment_keeps_the_current_names(Reprovision::Rekey, true);
}

#[test]
fn serverkeygen_reprovisioning_csr_keeps_subject_san_and_ekus() {
    reenrolment_keeps_the_current_names(Reprovision::ServerKeygen, false);
}

#[test]
fn reenrolment_follows_a_mef_that_requests_another_identity() {
    // The MEF asks for a new name (its CSR attributes are the source of truth): the CSR
    // carries what it asks, not the current certificate's names.
    let pki = Arc::new(MefPki::new("Renaming MEF CA"));
    let device = distinctive_device(&pki);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let renamed = "cse02.sp.example.com";
    let recorder = seen.clone();
    let server = ProcedureServer::start(
        pki.clone(),
        |_| {},
        move |pki: &MefPki, req: &Request, good: Response| -> Action {
            let mut reqs = pki.requirements();
            reqs.extensions[0].value =
                onem2m_est::proto::san::encode(&[onem2m_est::proto::san::GeneralName::Dns(
                    renamed.into(),
                )])
                .unwrap();
            match req.path.rsplit('/').next() {
                Some("csrattrs") => MefPki::csrattrs_response(&reqs).into(),
                Some("simplereenroll") => {
                    recorder.lock().unwrap().push(csr_names(req));
                    let spki = pki.check_csr(req).expect("valid CSR");
                    certs_only_response(&[pki.issue_for(&spki, &[renamed], |_| {})]).into()
                }
                _ => good.into(),
            }
        },
    );
    let client = MefClient::new(
        Config::new(EstUri::parse(&server.base()).unwrap()).transport(quick_transport()),
    );
    client
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    let (san, _) = seen[0].san.clone().unwrap();
    assert_eq!(
        onem2m_est::proto::san::decode(&san).unwrap(),
        [onem2m_est::proto::san::GeneralName::Dns(renamed.into())]
    );
    assert_ne!(
        seen[0].subject,
        cert_names(device.before.chain[0].as_ref()).subject
    );
}

#[test]
fn reenrolment_with_a_configured_identity_the_certificate_does_not_carry() {
    // No subjectAltName requested, and the configured identity is not the current
    // certificate's: RFC 7030 4.2.2 keeps the identity, so this is the caller's mistake.
    let (device, server) = device_and_server(
        "Quiet MEF CA",
        |_, _| {},
        |pki, req, good| match req.path.rsplit('/').next() {
            Some("csrattrs") => {
                let mut reqs = pki.requirements();
                reqs.extensions.clear();
                MefPki::csrattrs_response(&reqs).into()
            }
            _ => good.into(),
        },
    );
    let before = snapshot(device.dir.path());
    let client = MefClient::new(
        Config::new(EstUri::parse(&server.base()).unwrap())
            .identity(SubjectIdentity::new(SubjectType::Cse, "cse09.sp.example.com").unwrap())
            .transport(quick_transport()),
    );
    let err = client
        .reprovision(
            &mut FileStore::new(device.dir.path()).unwrap(),
            Reprovision::Rekey,
        )
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadArguments, "{err:?}");
    assert!(err.to_string().contains("RFC 7030 4.2.2"), "{err}");
    assert_eq!(snapshot(device.dir.path()), before);
    assert!(
        !server
            .server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/simplereenroll")),
        "refused before enrolment"
    );
}
