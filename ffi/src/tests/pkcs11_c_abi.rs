//! The C ABI with a key in a SoftHSM2 token: `mef_config_set_pkcs11_key` with the store
//! directory; provision, rekey, and a wrong PIN refused by `mef_client_new` with MEF_ERR_KEY.
//! (Moved from tests/pkcs11.rs with the C ABI; the fixture is shared: tests/pkcs11/fixture.rs.)

use super::super::*;
use super::pkcs11_fixture::*;
use est::pkcs11::PinSource;

/// The C ABI: `mef_config_set_pkcs11_key` with the store directory; provision, rekey, and a wrong
/// PIN refused by `mef_client_new` with MEF_ERR_KEY.
#[test]
fn the_c_abi_keeps_the_key_in_the_token() {
    let _serial = one_at_a_time();
    use std::ffi::{CStr, CString};
    let s = setup();
    softhsm();
    let module = CString::new(module_path().to_str().unwrap()).unwrap();
    let base = s.mef.base_uri(None);
    let dir = CString::new(s.creds().to_str().unwrap()).unwrap();
    let tas = onem2m_est::store::certs_to_pem(&[s.mef.ca_cert_der()]);
    let chain = onem2m_est::store::certs_to_pem(&s.device.chain);
    let pin = pin_file(s.out.path(), PIN);
    let PinSource::File(pin_path) = &pin else {
        unreachable!()
    };
    let pin_path = CString::new(pin_path.to_str().unwrap()).unwrap();
    let wrong = s.out.path().join("wrong");
    std::fs::write(&wrong, "111111").unwrap();
    let wrong = CString::new(wrong.to_str().unwrap()).unwrap();

    // SAFETY: every pointer is a live CString or buffer of this test; handles are freed once.
    unsafe {
        let config = |token: &str, pin: &CString| {
            let cfg = super::cse_config(&base, CSE_ID);
            assert_eq!(
                mef_config_set_trust_anchors_pem(cfg, tas.as_ptr(), tas.len()),
                MEF_OK
            );
            assert_eq!(
                mef_config_set_client_cert_pem(
                    cfg,
                    chain.as_ptr(),
                    chain.len(),
                    s.device_key_pem.as_ptr(),
                    s.device_key_pem.len()
                ),
                MEF_OK
            );
            assert_eq!(mef_config_set_store_dir(cfg, dir.as_ptr()), MEF_OK);
            let uri = CString::new(format!("pkcs11:token={token};object=device")).unwrap();
            assert_eq!(
                mef_config_set_pkcs11_key(
                    cfg,
                    module.as_ptr(),
                    uri.as_ptr(),
                    pin.as_ptr(),
                    std::ptr::null()
                ),
                MEF_OK
            );
            cfg
        };

        // Exactly one PIN source; a pin-value URI is refused.
        let cfg = config("ffi", &pin_path);
        assert_eq!(
            mef_config_set_pkcs11_key(
                cfg,
                module.as_ptr(),
                std::ptr::null(),
                pin_path.as_ptr(),
                pin_path.as_ptr()
            ),
            MEF_ERR_INVALID_ARGUMENT
        );
        let pin_uri = CString::new("pkcs11:token=ffi;object=d?pin-value=1").unwrap();
        assert_eq!(
            mef_config_set_pkcs11_key(
                cfg,
                module.as_ptr(),
                pin_uri.as_ptr(),
                pin_path.as_ptr(),
                std::ptr::null()
            ),
            MEF_ERR_INVALID_ARGUMENT
        );

        let mut client = std::ptr::null_mut();
        assert_eq!(mef_client_new(cfg, &mut client), MEF_OK);
        let code = mef_client_provision(client, MEF_KEY_GENERATE);
        let text = CStr::from_ptr(mef_client_last_error(client)).to_string_lossy();
        assert_eq!(code, MEF_OK, "{text}");
        let first = s.key_uri();
        assert_eq!(
            mef_client_reprovision(client, MEF_REPROVISION_REKEY),
            MEF_OK
        );
        assert_ne!(s.key_uri(), first);
        assert_eq!(private_keys("ffi").len(), 1);
        s.assert_no_key_pem();
        mef_client_free(client);
        mef_config_free(cfg);

        let cfg = config("c-abi-wrong-pin", &wrong);
        let mut client = std::ptr::null_mut();
        assert_eq!(mef_client_new(cfg, &mut client), MEF_ERR_KEY);
        assert!(client.is_null());
        mef_config_free(cfg);
    }
}
