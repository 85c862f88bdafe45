//! The CERT_PROV MEF Client Command (TS-0003 8.3.9.7): checking its arguments before a
//! procedure runs, and the cmdStatusCode a procedure's outcome maps to.
//!
//! The MEF sends `certProvArgs { certProvProtocol, URI, certSubjectType, certSubjectID }`; the
//! MEF Client verifies each element and answers `MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS` when one
//! fails, otherwise runs the procedure and answers `MEF_CLIENT_CMD_OK`,
//! `MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR` or `MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR`.
//!
//! The published text of the certSubjectID check has the CSE and AE cases swapped ("If
//! certSubjectType indicates a CSE, then verification of this element succeeds only if the value
//! is a AE-ID"); we implement the evident intent: the ID must be of the indicated type.

use crate::client::Config;
use crate::error::{Error, ErrorClass, Result};
use crate::identity::{SpId, SubjectIdentity, SubjectType};
use crate::uri::{fqdn_matches, EstUri};

/// What the MEF Client is, which bounds the subject types it accepts (8.3.9.7 step 4,
/// certSubjectType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MefClientRole {
    /// A Node acting on behalf of a CSE and/or AEs: Node, CSE or AE.
    Node,
    /// A CSE: CSE only.
    Cse,
    /// An AE: AE only.
    Ae,
}

impl MefClientRole {
    /// Whether a MEF Client in this role may be provisioned for `subject_type`.
    pub fn accepts(self, subject_type: SubjectType) -> bool {
        match self {
            MefClientRole::Node => true,
            MefClientRole::Cse => subject_type == SubjectType::Cse,
            MefClientRole::Ae => subject_type == SubjectType::Ae,
        }
    }
}

/// The certProvArgs of a CERT_PROV command, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertProvArgs {
    /// certProvProtocol: "EST" or "SCEP".
    pub protocol: String,
    /// URI: the base URI of the provisioning protocol.
    pub uri: String,
    /// certSubjectType: "node", "cse" or "ae".
    pub subject_type: String,
    /// certSubjectID: the Node-ID, CSE-ID or AE-ID.
    pub subject_id: String,
}

/// The verified arguments: what the procedure runs with.
#[derive(Debug, Clone)]
pub struct CertProvCommand {
    /// The EST base URI.
    pub base_uri: EstUri,
    /// The certificate subject identity.
    pub identity: SubjectIdentity,
}

/// Verifies certProvArgs (TS-0003 8.3.9.7 step 4) for a MEF Client in `role` that received the
/// command from the MEF whose FQDN is `mef_fqdn`. Every failure is
/// [`ErrorClass::BadArguments`], i.e. `MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS`.
pub fn verify_cert_prov_args(
    args: &CertProvArgs,
    mef_fqdn: &str,
    role: MefClientRole,
) -> Result<CertProvCommand> {
    verify_cert_prov_args_in(args, mef_fqdn, role, None)
}

/// As [`verify_cert_prov_args`], with SP-relative certSubjectIDs resolved against `sp_id`
/// (TS-0001 7.2).
pub fn verify_cert_prov_args_in(
    args: &CertProvArgs,
    mef_fqdn: &str,
    role: MefClientRole,
    sp_id: Option<&SpId>,
) -> Result<CertProvCommand> {
    // certProvProtocol: only EST is supported by this client.
    if !args.protocol.trim().eq_ignore_ascii_case("EST") {
        return Err(Error::invalid(
            "certProvProtocol",
            format!(
                "{:?} is not supported (this MEF Client supports EST)",
                args.protocol
            ),
        ));
    }
    // URI: its FQDN must match the FQDN of the MEF issuing the command.
    let base_uri = EstUri::parse(&args.uri)?;
    if !fqdn_matches(base_uri.host(), mef_fqdn) {
        return Err(Error::invalid(
            "URI",
            format!(
                "the base URI's host {:?} does not match the FQDN of the MEF issuing the command {:?}",
                base_uri.host(),
                mef_fqdn
            ),
        ));
    }
    // certSubjectType.
    let subject_type = crate::identity::parse_subject_type(&args.subject_type)?;
    if !role.accepts(subject_type) {
        return Err(Error::invalid(
            "certSubjectType",
            format!(
                "a MEF Client in a {role:?} cannot be provisioned for a {subject_type} subject"
            ),
        ));
    }
    // certSubjectID: must be an identifier of that type.
    let identity = match sp_id {
        None => SubjectIdentity::new(subject_type, args.subject_id.clone())?,
        Some(sp) => SubjectIdentity::with_sp_id(subject_type, args.subject_id.clone(), sp)?,
    };
    Ok(CertProvCommand { base_uri, identity })
}

/// The CERT_PROV argument check for a configured client (TS-0003 8.3.9.7 step 4; CR 8.3.Z.2.2
/// pre-condition A.ii: "the estBaseURI whose FQDN shall match the FQDN of the MEF"): with
/// [`Config::mef_fqdn`] set, the configured base URI, subject type and subject ID are the
/// command's certProvArgs (certProvProtocol is EST, the only one this client runs) and are
/// verified here, before any I/O, by every procedure and every binding. A command always names
/// its subject, so a missing identity is refused too. The client is taken to run on a Node,
/// which may be provisioned for a Node, CSE or AE subject ([`MefClientRole::Node`]).
///
/// This checks the command's arguments only. Whom the TLS server may be is RFC 7030 3.6.1:
/// its certificate must chain to the explicit trust anchors and either match the base URI's
/// host (now known to be the mefFQDN) or carry id-kp-cmcRA, in which case its names may
/// differ from the mefFQDN. An RA certified by the MEF's own CA for that purpose is how a MEF
/// delegates EST service, so the client accepts it rather than insist on the MEF's name.
pub fn verify_config(config: &Config) -> Result<()> {
    let Some(mef_fqdn) = &config.mef_fqdn else {
        return Ok(());
    };
    let identity = config.identity.as_ref().ok_or_else(|| {
        Error::invalid(
            "certSubjectID",
            "a CERT_PROV command names its subject (TS-0003 8.3.9.7): give the subject type \
             and ID with the MEF's FQDN",
        )
    })?;
    let args = CertProvArgs {
        protocol: "EST".into(),
        uri: config.base_uri.to_string(),
        subject_type: identity.subject_type().to_string(),
        subject_id: identity.id().to_owned(),
    };
    verify_cert_prov_args_in(&args, mef_fqdn, MefClientRole::Node, identity.sp_id())?;
    // A separate TLS-PSK estBaseURI names the same MEF (pre-condition A.ii), so it is held to
    // the same FQDN.
    if let Some(psk_uri) = &config.psk_base_uri {
        let args = CertProvArgs {
            uri: psk_uri.to_string(),
            ..args
        };
        verify_cert_prov_args_in(&args, mef_fqdn, MefClientRole::Node, identity.sp_id())?;
    }
    Ok(())
}

/// The cmdStatusCode a MEF Client reports after a CERT_PROV command (TS-0003 8.3.9.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CmdStatus {
    /// MEF_CLIENT_CMD_OK.
    Ok,
    /// MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS.
    UnacceptableArguments,
    /// MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR.
    CertProvServerError,
    /// MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR.
    CertProvClientError,
}

impl CmdStatus {
    /// The status for a procedure's outcome.
    pub fn of<T>(outcome: &Result<T>) -> CmdStatus {
        match outcome {
            Ok(_) => CmdStatus::Ok,
            Err(e) => CmdStatus::from(e.class()),
        }
    }

    /// Every status, in the order of their numbers.
    pub const ALL: [CmdStatus; 4] = [
        CmdStatus::Ok,
        CmdStatus::UnacceptableArguments,
        CmdStatus::CertProvServerError,
        CmdStatus::CertProvClientError,
    ];

    /// The name TS-0003 gives the status.
    pub fn name(self) -> &'static str {
        self.c_name().to_str().expect("the status names are ASCII")
    }

    /// [`CmdStatus::name`] NUL-terminated, for the C ABI's `mef_cmd_status_name`.
    pub fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            CmdStatus::Ok => c"MEF_CLIENT_CMD_OK",
            CmdStatus::UnacceptableArguments => c"MEF_CLIENT_CMD_UNACCEPTABLE_ARGUMENTS",
            CmdStatus::CertProvServerError => c"MEF_CLIENT_CMD_CERT_PROV_SERVER_ERROR",
            CmdStatus::CertProvClientError => c"MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR",
        }
    }

    /// This library's number for the status (TS-0003 names the statuses, it does not number
    /// them): the C ABI's `MEF_CMD_*` values and Python's `CmdStatus`. Stable.
    pub const fn code(self) -> u32 {
        match self {
            CmdStatus::Ok => 0,
            CmdStatus::UnacceptableArguments => 1,
            CmdStatus::CertProvServerError => 2,
            CmdStatus::CertProvClientError => 3,
        }
    }

    /// The status numbered `code` ([`CmdStatus::code`]), if any.
    pub fn from_code(code: u32) -> Option<CmdStatus> {
        CmdStatus::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl From<ErrorClass> for CmdStatus {
    fn from(class: ErrorClass) -> CmdStatus {
        match class {
            ErrorClass::BadArguments => CmdStatus::UnacceptableArguments,
            ErrorClass::Client => CmdStatus::CertProvClientError,
            ErrorClass::Server => CmdStatus::CertProvServerError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(protocol: &str, uri: &str, t: &str, id: &str) -> CertProvArgs {
        CertProvArgs {
            protocol: protocol.into(),
            uri: uri.into(),
            subject_type: t.into(),
            subject_id: id.into(),
        }
    }

    /// A separate TLS-PSK estBaseURI is a command argument too: held to the same mefFQDN.
    #[test]
    fn a_psk_base_uri_of_another_host_is_unacceptable() {
        use crate::client::Config;
        use crate::identity::{SubjectIdentity, SubjectType};
        use crate::uri::EstUri;
        let config = || {
            Config::new(EstUri::parse("https://mef.sp.example.com/.well-known/est").unwrap())
                .identity(SubjectIdentity::new(SubjectType::Cse, "cse01.sp.example.com").unwrap())
                .mef_fqdn("mef.sp.example.com")
        };
        assert!(verify_config(&config()).is_ok());
        let same = config().psk_base_uri(
            EstUri::parse("https://mef.sp.example.com:8444/.well-known/est").unwrap(),
        );
        assert!(verify_config(&same).is_ok());
        let other = config()
            .psk_base_uri(EstUri::parse("https://evil.example.net/.well-known/est").unwrap());
        let err = verify_config(&other).unwrap_err();
        assert_eq!(err.class(), crate::error::ErrorClass::BadArguments, "{err}");
    }

    #[test]
    fn accepts_est_with_matching_fqdn_and_consistent_identity() {
        let cmd = verify_cert_prov_args(
            &args(
                "EST",
                "https://mef.example.com/.well-known/est/cse",
                "cse",
                "cse01.sp.example.com",
            ),
            "MEF.example.com.",
            MefClientRole::Node,
        )
        .unwrap();
        assert_eq!(cmd.base_uri.label(), Some("cse"));
        assert_eq!(cmd.identity.subject_type(), SubjectType::Cse);
    }

    /// Each argument the MEF client cannot accept is refused by name (the CMD_STATUS
    /// UNACCEPTABLE_ARGUMENTS report says which one).
    #[test]
    fn unacceptable_arguments_are_named() {
        use MefClientRole::{Cse, Node};
        let (mef, evil) = ("https://mef.example.com/", "https://evil.example.net/");
        let (cse01, ae01) = ("cse01.sp.example.com", "https://sp.example.com/cse01/CAE01");
        // (case, certProvProtocol, URI, certSubjectType, certSubjectID, role, refused argument)
        for (case, protocol, uri, t, id, role, want) in [
            ("SCEP", "SCEP", mef, "cse", cse01, Node, "certProvProtocol"),
            ("other host", "EST", evil, "cse", cse01, Node, "URI"),
            ("cse as ae", "EST", mef, "ae", ae01, Cse, "certSubjectType"),
        ] {
            match verify_cert_prov_args(&args(protocol, uri, t, id), "mef.example.com", role) {
                Err(Error::InvalidArgument { argument, .. }) => {
                    assert_eq!(argument, want, "{case}")
                }
                other => panic!("{case}: expected an unacceptable argument, got {other:?}"),
            }
        }
    }

    #[test]
    fn subject_id_must_fit_its_type() {
        // A DNS name is not an AE-ID (10.1.1.5 wants the full URI).
        let r = verify_cert_prov_args(
            &args(
                "EST",
                "https://mef.example.com/",
                "ae",
                "cse01.sp.example.com",
            ),
            "mef.example.com",
            MefClientRole::Node,
        );
        assert!(
            matches!(r, Err(ref e) if e.class() == ErrorClass::BadArguments),
            "{r:?}"
        );
    }

    #[test]
    fn a_configured_client_is_checked_only_with_a_mef_fqdn() {
        let uri = EstUri::parse("https://mef.example.com/.well-known/est").unwrap();
        let ae = SubjectIdentity::new(SubjectType::Ae, "//example.net/mn-cse/CAE-device1").unwrap();
        let config = Config::new(uri).identity(ae);
        verify_config(&config).unwrap();
        verify_config(&config.clone().mef_fqdn("MEF.example.com")).unwrap();
        let err = verify_config(&config.clone().mef_fqdn("other.example.com")).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    argument: "URI",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            CmdStatus::from(err.class()),
            CmdStatus::UnacceptableArguments
        );
        let mut no_subject = config.mef_fqdn("mef.example.com");
        no_subject.identity = None;
        let err = verify_config(&no_subject).unwrap_err();
        assert_eq!(err.class(), ErrorClass::BadArguments);
        // An identity resolved against an SP-ID verifies against the same SP-ID.
        let sp = SpId::parse("example.net").unwrap();
        let cse = SubjectIdentity::with_sp_id(SubjectType::Cse, "/mn-cse", &sp).unwrap();
        let uri = EstUri::parse("https://mef.example.com/").unwrap();
        verify_config(&Config::new(uri).identity(cse).mef_fqdn("mef.example.com")).unwrap();
    }

    #[test]
    fn status_codes_follow_error_classes() {
        let server: Result<()> = Err(Error::Timeout {
            phase: "response".into(),
        });
        let client: Result<()> = Err(Error::Key {
            reason: "callback failed".into(),
            source: None,
        });
        assert_eq!(CmdStatus::of(&Ok::<(), Error>(())), CmdStatus::Ok);
        assert_eq!(CmdStatus::of(&server), CmdStatus::CertProvServerError);
        assert_eq!(CmdStatus::of(&client), CmdStatus::CertProvClientError);
        assert_eq!(
            CmdStatus::CertProvClientError.name(),
            "MEF_CLIENT_CMD_CERT_PROV_CLIENT_ERROR"
        );
    }

    #[test]
    fn status_numbers_and_names_are_one_table() {
        for (i, status) in CmdStatus::ALL.into_iter().enumerate() {
            assert_eq!(status.code() as usize, i);
            assert_eq!(CmdStatus::from_code(status.code()), Some(status));
            assert!(
                status.name().starts_with("MEF_CLIENT_CMD_"),
                "{}",
                status.name()
            );
        }
        assert_eq!(CmdStatus::from_code(4), None);
    }

    /// Every error variant has its class and status (TS-0003 8.3.9.7): one value of each
    /// (`Error::examples`, which a new variant does not compile without) against this table.
    #[test]
    fn every_error_variant_has_its_cmd_status() {
        use CmdStatus::{
            CertProvClientError as C, CertProvServerError as S, UnacceptableArguments as A,
        };
        let expected = [A, S, S, S, S, S, S, S, S, S, S, S, S, S, C, C, C, C, C, C];
        let examples = Error::examples();
        assert_eq!(
            examples.len(),
            expected.len(),
            "one expected status per variant"
        );
        for (e, want) in examples.iter().zip(expected) {
            assert_eq!(CmdStatus::from(e.class()), want, "{e:?}");
        }
    }
}
