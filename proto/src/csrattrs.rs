//! CSR Attributes (RFC 7030 4.5.2; RFC 8951 section 4 corrects the ASN.1) and their meaning for
//! a oneM2M MEF Client (TS-0003 10.1.4, CR 8.3.Z.2.2 step 2).
//!
//! ```text
//! CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//! AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
//! Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE(1..MAX) OF ANY }
//! ```

use crate::oids;
use crate::raw::{RawSeq, RawSet};
use crate::ProtoError;
use der::asn1::{
    Ia5StringRef, ObjectIdentifier, OctetString, PrintableStringRef, TeletexStringRef,
    Utf8StringRef,
};
use der::{AnyRef, Decode, Encode, Sequence, Tag, Tagged};
use std::fmt;
use x509_cert::ext::{Extension, Extensions};
use zeroize::Zeroizing;

/// One element of CsrAttrs, kept close to the wire.
///
/// `Debug` shows the values of a challengePassword attribute as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub enum AttrOrOid {
    /// A bare OBJECT IDENTIFIER, in dotted form ("1.2.840.113549.1.9.7").
    Oid(String),
    /// An Attribute: its type in dotted form and each value as the DER of one ANY.
    Attribute { oid: String, values: Vec<Vec<u8>> },
}

impl fmt::Debug for AttrOrOid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrOrOid::Oid(oid) => f.debug_tuple("Oid").field(oid).finish(),
            AttrOrOid::Attribute { oid, values } if oid == oids::CHALLENGE_PASSWORD => f
                .debug_struct("Attribute")
                .field("oid", oid)
                .field("values", &format_args!("<{} redacted>", values.len()))
                .finish(),
            AttrOrOid::Attribute { oid, values } => {
                let hex: Vec<String> = values
                    .iter()
                    .map(|v| v.iter().map(|b| format!("{b:02x}")).collect())
                    .collect();
                f.debug_struct("Attribute")
                    .field("oid", oid)
                    .field("values", &hex)
                    .finish()
            }
        }
    }
}

fn asn1_err(reason: impl ToString) -> ProtoError {
    ProtoError::Asn1 {
        what: "CsrAttrs",
        reason: reason.to_string(),
    }
}

/// `Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE(1..MAX) OF ANY }`
/// (RFC 8951 section 4), values kept as received.
#[derive(Sequence)]
struct RawAttribute<'a> {
    oid: ObjectIdentifier,
    values: RawSet<'a>,
}

fn parse_oid(s: &str) -> Result<ObjectIdentifier, ProtoError> {
    ObjectIdentifier::new(s).map_err(|e| asn1_err(format!("invalid OID {s:?}: {e}")))
}

fn decode_with(der: &[u8], ber: bool) -> Result<Vec<AttrOrOid>, ProtoError> {
    let seq = if ber {
        RawSeq::from_ber(der)
    } else {
        RawSeq::from_der(der)
    }
    .map_err(asn1_err)?;
    let mut items = Vec::with_capacity(seq.0.len());
    for (i, tlv) in seq.0.iter().enumerate() {
        let ctx = |e: der::Error| asn1_err(format!("item {i}: {e}"));
        // AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
        match tlv.first() {
            Some(0x06) => {
                let oid = <ObjectIdentifier>::from_der(tlv).map_err(ctx)?;
                items.push(AttrOrOid::Oid(oid.to_string()));
            }
            Some(0x30) => {
                let attr = if ber {
                    RawAttribute::from_ber(tlv)
                } else {
                    RawAttribute::from_der(tlv)
                }
                .map_err(ctx)?;
                if attr.values.0.is_empty() {
                    return Err(asn1_err(format!(
                        "item {i}: attribute {} has no values (SET SIZE(1..MAX))",
                        attr.oid
                    )));
                }
                items.push(AttrOrOid::Attribute {
                    oid: attr.oid.to_string(),
                    values: attr.values.0.iter().map(|v| v.to_vec()).collect(),
                });
            }
            _ => {
                return Err(asn1_err(format!(
                    "item {i} is neither an OBJECT IDENTIFIER nor an Attribute"
                )))
            }
        }
    }
    Ok(items)
}

/// Decodes a CsrAttrs body (after base64). An empty SEQUENCE is valid and yields no items.
///
/// DER is expected; BER (indefinite lengths) is accepted as a fallback, in which case attribute
/// values are returned as received. Values keep their encoding order.
pub fn decode(der: &[u8]) -> Result<Vec<AttrOrOid>, ProtoError> {
    match decode_with(der, false) {
        Ok(items) => Ok(items),
        Err(der_err) => decode_with(der, true).map_err(|_| der_err),
    }
}

/// Encodes CsrAttrs as DER.
///
/// Each attribute value must be one complete DER TLV; values are sorted as DER orders a SET OF
/// (X.690 11.6). An attribute without values is an error (RFC 8951 section 4: SIZE(1..MAX)).
pub fn encode(items: &[AttrOrOid]) -> Result<Vec<u8>, ProtoError> {
    let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let ctx = |e: der::Error| asn1_err(format!("item {i}: {e}"));
        match item {
            AttrOrOid::Oid(oid) => encoded.push(parse_oid(oid)?.to_der().map_err(ctx)?),
            AttrOrOid::Attribute { oid, values } => {
                if values.is_empty() {
                    return Err(asn1_err(format!(
                        "item {i}: attribute {oid} has no values (SET SIZE(1..MAX))"
                    )));
                }
                for v in values {
                    AnyRef::from_der(v).map_err(|e| {
                        asn1_err(format!(
                            "item {i}: a value of {oid} is not one DER TLV: {e}"
                        ))
                    })?;
                }
                let mut sorted: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                sorted.sort();
                let attr = RawAttribute {
                    oid: parse_oid(oid)?,
                    values: RawSet(sorted),
                };
                encoded.push(attr.to_der().map_err(ctx)?);
            }
        }
    }
    RawSeq(encoded.iter().map(Vec::as_slice).collect())
        .to_der()
        .map_err(asn1_err)
}

/// What the server asks for the challengePassword (PKCS #9, 1.2.840.113549.1.9.7).
///
/// `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub enum ChallengePassword {
    /// Not mentioned.
    NotRequested,
    /// Mentioned as a bare OID: RFC 7030 3.5 asks the client to put the tls-unique (or, over
    /// TLS 1.3, tls-exporter) channel binding value there.
    ChannelBinding,
    /// An Attribute with a value: the MEF supplied the password to echo (oneM2M CSR profile).
    /// Zeroized on drop.
    Value(Zeroizing<String>),
}

impl fmt::Debug for ChallengePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengePassword::NotRequested => f.write_str("NotRequested"),
            ChallengePassword::ChannelBinding => f.write_str("ChannelBinding"),
            ChallengePassword::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// Elliptic curves a key-type requirement may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

/// A key type the server requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRequirement {
    /// id-ecPublicKey with the named curve (an Attribute whose value is the curve OID).
    Ec(Curve),
    /// rsaEncryption, with the modulus size when the server gave one (an INTEGER value).
    Rsa { bits: Option<u32> },
    /// id-Ed25519.
    Ed25519,
}

/// A signature hash the server requires (from ecdsa-with-SHAxxx / shaxxxWithRSAEncryption OIDs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

// Names as people write them (P-256, SHA-256), for messages and the CLI: never the Rust form.
impl core::fmt::Display for Curve {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        })
    }
}

impl core::fmt::Display for KeyRequirement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KeyRequirement::Ec(curve) => write!(f, "EC {curve}"),
            KeyRequirement::Rsa { bits: Some(bits) } => write!(f, "RSA {bits}-bit"),
            KeyRequirement::Rsa { bits: None } => f.write_str("RSA"),
            KeyRequirement::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

impl core::fmt::Display for HashAlg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
        })
    }
}

/// One extension the server asks the CSR to carry, from an extensionRequest attribute
/// (PKCS #9 1.2.840.113549.1.9.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedExtension {
    /// Dotted OID of the extension ("2.5.29.17" for subjectAltName).
    pub oid: String,
    pub critical: bool,
    /// The DER inside the extnValue OCTET STRING.
    pub value: Vec<u8>,
}

/// What a CsrAttrs response asks of the CSR, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrRequirements {
    pub challenge_password: ChallengePassword,
    /// Extensions from extensionRequest attributes, in order (the subjectAltName carrying the
    /// identity the MEF associates with the client is one of them).
    pub extensions: Vec<RequestedExtension>,
    /// The key type, if any was named.
    pub key: Option<KeyRequirement>,
    /// The signature hash, if any was named.
    pub hash: Option<HashAlg>,
    /// OIDs and attribute types not understood, in dotted form; ignored by the client
    /// (RFC 7030 4.5.2: "the client SHOULD ignore" what it does not recognise) but kept for logs.
    pub unrecognized: Vec<String>,
}

impl CsrRequirements {
    /// Interprets decoded items. Recognised items with malformed values (a challengePassword
    /// that is not a DirectoryString, an extensionRequest that is not Extensions, two different
    /// key types) are errors; unrecognised ones go to `unrecognized`.
    ///
    /// Conventions (RFC 9908 for key types):
    /// - challengePassword: bare OID → `ChannelBinding`; Attribute with one DirectoryString
    ///   (UTF8String, PrintableString; IA5String and TeletexString accepted) → `Value`, which
    ///   wins over a bare OID also present.
    /// - id-ecPublicKey Attribute: value = curve OID (first supported one if several; none
    ///   supported → `Unsupported`); a bare id-ecPublicKey names no curve → `unrecognized`.
    /// - rsaEncryption: bare → `Rsa { bits: None }`; Attribute with one INTEGER → `Some(bits)`.
    /// - id-Ed25519 bare or Attribute → `Ed25519`.
    /// - ecdsa-with-SHA256/384/512 and sha256/384/512WithRSAEncryption bare OIDs → `hash`
    ///   (two different hashes are an error).
    /// - extensionRequest values: Extensions; a bare OID value (the RFC 7030 4.5.2 example's
    ///   macAddress) goes to `unrecognized`.
    /// - id-aa-certificationRequestInfoTemplate (RFC 9908): templates are not interpreted yet;
    ///   the OID goes to `unrecognized`.
    pub fn from_items(items: &[AttrOrOid]) -> Result<CsrRequirements, ProtoError> {
        let mut req = CsrRequirements {
            challenge_password: ChallengePassword::NotRequested,
            extensions: Vec::new(),
            key: None,
            hash: None,
            unrecognized: Vec::new(),
        };
        for item in items {
            match item {
                AttrOrOid::Oid(oid) => match oid.as_str() {
                    // RFC 7030 3.5 / 4.5.2: a bare challengePassword OID asks for channel binding.
                    oids::CHALLENGE_PASSWORD => {
                        if req.challenge_password == ChallengePassword::NotRequested {
                            req.challenge_password = ChallengePassword::ChannelBinding;
                        }
                    }
                    // RFC 9908: key types without parameters are named by their bare OID.
                    oids::RSA_ENCRYPTION => req.set_key(KeyRequirement::Rsa { bits: None })?,
                    oids::ED25519 => req.set_key(KeyRequirement::Ed25519)?,
                    o => match hash_of_signature_oid(o) {
                        Some(h) => req.set_hash(h)?,
                        // Includes a bare id-ecPublicKey (no curve to act on) and a bare
                        // extensionRequest (nothing to add).
                        None => req.unrecognized.push(o.to_string()),
                    },
                },
                AttrOrOid::Attribute { oid, values } => match oid.as_str() {
                    oids::CHALLENGE_PASSWORD => {
                        // PKCS #9 (RFC 2985 5.4.1): SINGLE VALUE.
                        let [v] = values.as_slice() else {
                            return Err(ProtoError::Unsupported(format!(
                                "challengePassword attribute has {} values, expected one",
                                values.len()
                            )));
                        };
                        req.challenge_password =
                            ChallengePassword::Value(Zeroizing::new(directory_string(v)?));
                    }
                    oids::EXTENSION_REQUEST => {
                        for v in values {
                            req.add_extension_request(v)?;
                        }
                    }
                    oids::EC_PUBLIC_KEY => {
                        let curve = ec_curve(values)?;
                        req.set_key(KeyRequirement::Ec(curve))?;
                    }
                    oids::RSA_ENCRYPTION => {
                        let bits = rsa_bits(values)?;
                        req.set_key(KeyRequirement::Rsa { bits: Some(bits) })?;
                    }
                    oids::ED25519 => req.set_key(KeyRequirement::Ed25519)?,
                    // Includes id-aa-certificationRequestInfoTemplate (RFC 9908): templates are
                    // not interpreted yet, so a server relying on one is reported, not obeyed.
                    o => req.unrecognized.push(o.to_string()),
                },
            }
        }
        Ok(req)
    }

    fn set_key(&mut self, key: KeyRequirement) -> Result<(), ProtoError> {
        self.key = match (self.key, key) {
            (None, k) => Some(k),
            (Some(a), b) if a == b => Some(a),
            // rsaEncryption both bare and with a size: the size refines the bare OID.
            (Some(KeyRequirement::Rsa { bits: a }), KeyRequirement::Rsa { bits: b })
                if a.is_none() || b.is_none() =>
            {
                Some(KeyRequirement::Rsa { bits: a.or(b) })
            }
            (Some(a), b) => {
                return Err(ProtoError::Unsupported(format!(
                    "CsrAttrs name two different key types ({a} and {b})"
                )))
            }
        };
        Ok(())
    }

    fn set_hash(&mut self, hash: HashAlg) -> Result<(), ProtoError> {
        match self.hash {
            Some(h) if h != hash => Err(ProtoError::Unsupported(format!(
                "CsrAttrs name two different signature hashes ({h} and {hash})"
            ))),
            _ => {
                self.hash = Some(hash);
                Ok(())
            }
        }
    }

    /// One value of an extensionRequest attribute: Extensions (RFC 2985 5.4.2, RFC 9908).
    fn add_extension_request(&mut self, value: &[u8]) -> Result<(), ProtoError> {
        // The RFC 7030 4.5.2 example puts a bare OID (macAddress) here; RFC 9908 says such an
        // OID names something the client should include without giving a value. Nothing can
        // be added for it, so it is reported as unrecognised rather than failing the response.
        if value.first() == Some(&0x06) {
            let oid = <ObjectIdentifier>::from_der(value)
                .or_else(|_| <ObjectIdentifier>::from_ber(value))
                .map_err(|e| asn1_err(format!("extensionRequest OID value: {e}")))?;
            self.unrecognized.push(oid.to_string());
            return Ok(());
        }
        let exts = Extensions::from_der(value)
            .or_else(|_| Extensions::from_ber(value))
            .map_err(|e| asn1_err(format!("extensionRequest value is not Extensions: {e}")))?;
        self.extensions
            .extend(exts.into_iter().map(|e| RequestedExtension {
                oid: e.extn_id.to_string(),
                critical: e.critical,
                value: e.extn_value.into_bytes().into_vec(),
            }));
        Ok(())
    }

    /// The requested subjectAltName extension value (DER of GeneralNames), if any.
    pub fn subject_alt_name(&self) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|e| e.oid == crate::oids::SUBJECT_ALT_NAME)
            .map(|e| e.value.as_slice())
    }

    /// Builds the items a server sends for these requirements (the MEF side): challengePassword
    /// as an Attribute with a UTF8String value (or a bare OID for `ChannelBinding`), one
    /// extensionRequest attribute holding all `extensions`, the key type as an Attribute
    /// (id-ecPublicKey with the curve OID; rsaEncryption with an INTEGER when bits is known;
    /// id-Ed25519 as a bare OID) and the hash as a bare signature-algorithm OID
    /// (ecdsa-with-SHAxxx for EC keys, shaxxxWithRSAEncryption for RSA).
    ///
    /// With no key type, a hash is sent as ecdsa-with-SHAxxx; a hash with an Ed25519 key is an
    /// error. `unrecognized` OIDs are sent as bare OIDs (an OID that [`Self::from_items`] would
    /// interpret is an error), so `from_items(to_items(r)) == r`.
    pub fn to_items(&self) -> Result<Vec<AttrOrOid>, ProtoError> {
        let mut items = Vec::new();
        match &self.challenge_password {
            ChallengePassword::NotRequested => {}
            ChallengePassword::ChannelBinding => {
                items.push(AttrOrOid::Oid(oids::CHALLENGE_PASSWORD.to_string()))
            }
            ChallengePassword::Value(p) => {
                let value = Utf8StringRef::new(p.as_str())
                    .and_then(|s| s.to_der())
                    .map_err(|e| asn1_err(format!("challengePassword: {e}")))?;
                items.push(AttrOrOid::Attribute {
                    oid: oids::CHALLENGE_PASSWORD.to_string(),
                    values: vec![value],
                });
            }
        }
        if !self.extensions.is_empty() {
            let mut exts: Extensions = Vec::with_capacity(self.extensions.len());
            for e in &self.extensions {
                exts.push(Extension {
                    extn_id: parse_oid(&e.oid)?,
                    critical: e.critical,
                    extn_value: OctetString::new(e.value.clone()).map_err(asn1_err)?,
                });
            }
            items.push(AttrOrOid::Attribute {
                oid: oids::EXTENSION_REQUEST.to_string(),
                values: vec![exts.to_der().map_err(asn1_err)?],
            });
        }
        match self.key {
            None => {}
            Some(KeyRequirement::Ec(curve)) => items.push(AttrOrOid::Attribute {
                oid: oids::EC_PUBLIC_KEY.to_string(),
                values: vec![parse_oid(curve_oid(curve))?.to_der().map_err(asn1_err)?],
            }),
            Some(KeyRequirement::Rsa { bits: Some(bits) }) => items.push(AttrOrOid::Attribute {
                oid: oids::RSA_ENCRYPTION.to_string(),
                values: vec![bits.to_der().map_err(asn1_err)?],
            }),
            Some(KeyRequirement::Rsa { bits: None }) => {
                items.push(AttrOrOid::Oid(oids::RSA_ENCRYPTION.to_string()))
            }
            Some(KeyRequirement::Ed25519) => items.push(AttrOrOid::Oid(oids::ED25519.to_string())),
        }
        if let Some(hash) = self.hash {
            let oid = match self.key {
                Some(KeyRequirement::Rsa { .. }) => match hash {
                    HashAlg::Sha256 => oids::SHA256_WITH_RSA,
                    HashAlg::Sha384 => oids::SHA384_WITH_RSA,
                    HashAlg::Sha512 => oids::SHA512_WITH_RSA,
                },
                // Ed25519 signs without a separate hash choice (RFC 8410 6).
                Some(KeyRequirement::Ed25519) => {
                    return Err(ProtoError::Unsupported(
                        "a signature hash cannot be requested with an Ed25519 key".to_string(),
                    ))
                }
                // EC, or no key type named: oneM2M profiles use ECDSA (TS-0003 10.1.1).
                Some(KeyRequirement::Ec(_)) | None => match hash {
                    HashAlg::Sha256 => oids::ECDSA_WITH_SHA256,
                    HashAlg::Sha384 => oids::ECDSA_WITH_SHA384,
                    HashAlg::Sha512 => oids::ECDSA_WITH_SHA512,
                },
            };
            items.push(AttrOrOid::Oid(oid.to_string()));
        }
        // Unrecognised OIDs go back out as bare OIDs, which from_items reports as unrecognised
        // again; an OID it would interpret cannot stand for "unrecognised".
        for o in &self.unrecognized {
            if interpreted_bare_oid(o) {
                return Err(ProtoError::Unsupported(format!(
                    "{o} is interpreted by CsrAttrs readers and cannot be listed as unrecognized"
                )));
            }
            parse_oid(o)?;
            items.push(AttrOrOid::Oid(o.clone()));
        }
        Ok(items)
    }
}

/// Whether [`CsrRequirements::from_items`] gives a bare `oid` a meaning.
fn interpreted_bare_oid(oid: &str) -> bool {
    matches!(
        oid,
        oids::CHALLENGE_PASSWORD | oids::RSA_ENCRYPTION | oids::ED25519
    ) || hash_of_signature_oid(oid).is_some()
}

/// The hash of an ECDSA (RFC 5758 3.2) or RSA PKCS #1 v1.5 (RFC 4055 5) signature algorithm.
fn hash_of_signature_oid(oid: &str) -> Option<HashAlg> {
    match oid {
        oids::ECDSA_WITH_SHA256 | oids::SHA256_WITH_RSA => Some(HashAlg::Sha256),
        oids::ECDSA_WITH_SHA384 | oids::SHA384_WITH_RSA => Some(HashAlg::Sha384),
        oids::ECDSA_WITH_SHA512 | oids::SHA512_WITH_RSA => Some(HashAlg::Sha512),
        _ => None,
    }
}

fn curve_oid(curve: Curve) -> &'static str {
    match curve {
        Curve::P256 => oids::SECP256R1,
        Curve::P384 => oids::SECP384R1,
        Curve::P521 => oids::SECP521R1,
    }
}

/// RFC 9908: an id-ecPublicKey attribute's value is the named curve's OID. With several
/// values, the first curve this crate supports (in encoding order) is taken.
fn ec_curve(values: &[Vec<u8>]) -> Result<Curve, ProtoError> {
    let mut named = Vec::new();
    for v in values {
        let oid = <ObjectIdentifier>::from_der(v)
            .or_else(|_| <ObjectIdentifier>::from_ber(v))
            .map_err(|e| asn1_err(format!("id-ecPublicKey value is not a curve OID: {e}")))?
            .to_string();
        let curve = match oid.as_str() {
            oids::SECP256R1 => Some(Curve::P256),
            oids::SECP384R1 => Some(Curve::P384),
            oids::SECP521R1 => Some(Curve::P521),
            _ => None,
        };
        if let Some(c) = curve {
            return Ok(c);
        }
        named.push(oid);
    }
    Err(ProtoError::Unsupported(format!(
        "unsupported elliptic curve(s) requested: {}",
        named.join(", ")
    )))
}

/// RFC 9908: an rsaEncryption attribute's value is the modulus size in bits, an INTEGER.
fn rsa_bits(values: &[Vec<u8>]) -> Result<u32, ProtoError> {
    let [v] = values else {
        return Err(ProtoError::Unsupported(format!(
            "rsaEncryption attribute has {} values, expected one key size",
            values.len()
        )));
    };
    let bits = u32::from_der(v).map_err(|e| {
        asn1_err(format!(
            "rsaEncryption value is not a key size INTEGER: {e}"
        ))
    })?;
    if bits == 0 {
        return Err(asn1_err("rsaEncryption key size is zero"));
    }
    Ok(bits)
}

/// A DirectoryString (RFC 2985 5.4.1, X.520) as challengePassword values use it: UTF8String or
/// PrintableString, and leniently IA5String and TeletexString (the latter only when ASCII-safe
/// as the `der` crate reads it).
fn directory_string(v: &[u8]) -> Result<String, ProtoError> {
    let not_string = || asn1_err("challengePassword value is not a DirectoryString");
    let tag = AnyRef::from_der(v).map_err(|_| not_string())?.tag();
    let s = match tag {
        Tag::Utf8String => Utf8StringRef::from_der(v).map(|s| s.as_str().to_string()),
        Tag::PrintableString => PrintableStringRef::from_der(v).map(|s| s.as_str().to_string()),
        Tag::Ia5String => Ia5StringRef::from_der(v).map(|s| s.as_str().to_string()),
        Tag::TeletexString => TeletexStringRef::from_der(v).map(|s| s.as_str().to_string()),
        _ => return Err(not_string()),
    };
    // The decoder's error could quote content; report structure only.
    s.map_err(|_| asn1_err("challengePassword value is a malformed string"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base64body;

    /// RFC 7030 4.5.2 example.
    const RFC7030_EXAMPLE: &str = "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==";

    fn oid_der(s: &str) -> Vec<u8> {
        parse_oid(s).unwrap().to_der().unwrap()
    }

    #[test]
    fn rfc7030_example_decodes() {
        let der = base64body::decode(RFC7030_EXAMPLE.as_bytes()).unwrap();
        let items = decode(&der).unwrap();
        assert_eq!(
            items,
            vec![
                AttrOrOid::Oid(oids::CHALLENGE_PASSWORD.into()),
                AttrOrOid::Attribute {
                    oid: oids::EC_PUBLIC_KEY.into(),
                    values: vec![oid_der(oids::SECP384R1)],
                },
                AttrOrOid::Attribute {
                    oid: oids::EXTENSION_REQUEST.into(),
                    values: vec![oid_der(oids::MAC_ADDRESS)],
                },
                AttrOrOid::Oid(oids::ECDSA_WITH_SHA384.into()),
            ]
        );
        // DER in, same DER out.
        assert_eq!(encode(&items).unwrap(), der);
    }

    #[test]
    fn rfc7030_example_interprets() {
        let der = base64body::decode(RFC7030_EXAMPLE.as_bytes()).unwrap();
        let req = CsrRequirements::from_items(&decode(&der).unwrap()).unwrap();
        assert_eq!(req.challenge_password, ChallengePassword::ChannelBinding);
        assert_eq!(req.key, Some(KeyRequirement::Ec(Curve::P384)));
        assert_eq!(req.hash, Some(HashAlg::Sha384));
        assert!(req.extensions.is_empty());
        assert_eq!(req.unrecognized, vec![oids::MAC_ADDRESS.to_string()]);
        assert_eq!(req.subject_alt_name(), None);
    }

    #[test]
    fn empty_sequence() {
        assert_eq!(decode(&[0x30, 0x00]).unwrap(), vec![]);
        assert_eq!(encode(&[]).unwrap(), vec![0x30, 0x00]);
        let req = CsrRequirements::from_items(&[]).unwrap();
        assert_eq!(req.challenge_password, ChallengePassword::NotRequested);
        assert_eq!(req.key, None);
        assert_eq!(req.to_items().unwrap(), vec![]);
    }

    fn sample() -> CsrRequirements {
        let san = crate::san::encode(&[crate::san::GeneralName::Uri("CAE-dev1".into())]).unwrap();
        CsrRequirements {
            challenge_password: ChallengePassword::Value(Zeroizing::new("s3cr\u{e9}t".into())),
            extensions: vec![
                RequestedExtension {
                    oid: oids::SUBJECT_ALT_NAME.into(),
                    critical: false,
                    value: san,
                },
                RequestedExtension {
                    oid: oids::KEY_USAGE.into(),
                    critical: true,
                    value: vec![0x03, 0x02, 0x07, 0x80],
                },
            ],
            key: Some(KeyRequirement::Ec(Curve::P256)),
            hash: Some(HashAlg::Sha256),
            unrecognized: vec![oids::CSR_TEMPLATE.into(), "1.2.3.4".into()],
        }
    }

    #[test]
    fn to_items_roundtrips_through_der() {
        let mut cases = vec![sample()];
        let mut rsa = sample();
        rsa.key = Some(KeyRequirement::Rsa { bits: Some(3072) });
        rsa.hash = Some(HashAlg::Sha512);
        rsa.challenge_password = ChallengePassword::ChannelBinding;
        cases.push(rsa);
        let mut rsa_bare = sample();
        rsa_bare.key = Some(KeyRequirement::Rsa { bits: None });
        rsa_bare.extensions.clear();
        cases.push(rsa_bare);
        let mut ed = sample();
        ed.key = Some(KeyRequirement::Ed25519);
        ed.hash = None;
        ed.unrecognized.clear();
        cases.push(ed);
        let mut hash_only = sample();
        hash_only.key = None;
        hash_only.hash = Some(HashAlg::Sha384);
        hash_only.challenge_password = ChallengePassword::NotRequested;
        cases.push(hash_only);
        for c in [Curve::P384, Curve::P521] {
            let mut ec = sample();
            ec.key = Some(KeyRequirement::Ec(c));
            cases.push(ec);
        }
        for req in cases {
            let items = req.to_items().unwrap();
            let der = encode(&items).unwrap();
            let back = decode(&der).unwrap();
            assert_eq!(back, items);
            assert_eq!(CsrRequirements::from_items(&back).unwrap(), req);
        }
    }

    #[test]
    fn to_items_shape() {
        let items = sample().to_items().unwrap();
        assert_eq!(
            items[0],
            AttrOrOid::Attribute {
                oid: oids::CHALLENGE_PASSWORD.into(),
                values: vec![Utf8StringRef::new("s3cr\u{e9}t").unwrap().to_der().unwrap()],
            }
        );
        assert!(
            matches!(&items[1], AttrOrOid::Attribute { oid, values } if oid == oids::EXTENSION_REQUEST && values.len() == 1)
        );
        assert_eq!(
            items[2],
            AttrOrOid::Attribute {
                oid: oids::EC_PUBLIC_KEY.into(),
                values: vec![oid_der(oids::SECP256R1)],
            }
        );
        assert_eq!(items[3], AttrOrOid::Oid(oids::ECDSA_WITH_SHA256.into()));
        assert_eq!(items[4], AttrOrOid::Oid(oids::CSR_TEMPLATE.into()));
        let mut rsa = sample();
        rsa.key = Some(KeyRequirement::Rsa { bits: Some(2048) });
        let items = rsa.to_items().unwrap();
        assert_eq!(
            items[2],
            AttrOrOid::Attribute {
                oid: oids::RSA_ENCRYPTION.into(),
                values: vec![vec![0x02, 0x02, 0x08, 0x00]],
            }
        );
        assert_eq!(items[3], AttrOrOid::Oid(oids::SHA256_WITH_RSA.into()));
    }

    #[test]
    fn to_items_rejects_what_cannot_roundtrip() {
        let mut ed = sample();
        ed.key = Some(KeyRequirement::Ed25519);
        assert!(ed.to_items().is_err());
        let mut bad = sample();
        bad.unrecognized = vec![oids::CHALLENGE_PASSWORD.into()];
        assert!(bad.to_items().is_err());
        let mut bad = sample();
        bad.unrecognized = vec!["not an oid".into()];
        assert!(bad.to_items().is_err());
        let mut bad = sample();
        bad.extensions[0].oid = "x".into();
        assert!(bad.to_items().is_err());
    }

    #[test]
    fn challenge_password_string_types() {
        for (tag, ok) in [
            (0x0c, true),
            (0x13, true),
            (0x16, true),
            (0x14, true),
            (0x04, false),
            (0x1e, false),
        ] {
            let items = vec![AttrOrOid::Attribute {
                oid: oids::CHALLENGE_PASSWORD.into(),
                values: vec![vec![tag, 3, b'a', b'b', b'c']],
            }];
            let r = CsrRequirements::from_items(&items);
            if ok {
                assert_eq!(
                    r.unwrap().challenge_password,
                    ChallengePassword::Value(Zeroizing::new("abc".into())),
                    "tag {tag:#x}"
                );
            } else {
                assert!(r.is_err(), "tag {tag:#x}");
            }
        }
        // Two values, or a PrintableString with a forbidden character.
        let two = vec![AttrOrOid::Attribute {
            oid: oids::CHALLENGE_PASSWORD.into(),
            values: vec![vec![0x0c, 1, b'a'], vec![0x0c, 1, b'b']],
        }];
        assert!(CsrRequirements::from_items(&two).is_err());
        let bad = vec![AttrOrOid::Attribute {
            oid: oids::CHALLENGE_PASSWORD.into(),
            values: vec![vec![0x13, 1, b'@']],
        }];
        let err = CsrRequirements::from_items(&bad).unwrap_err();
        assert!(!err.to_string().contains('@'));
    }

    #[test]
    fn value_beats_bare_oid() {
        let items = vec![
            AttrOrOid::Attribute {
                oid: oids::CHALLENGE_PASSWORD.into(),
                values: vec![vec![0x0c, 1, b'p']],
            },
            AttrOrOid::Oid(oids::CHALLENGE_PASSWORD.into()),
        ];
        let req = CsrRequirements::from_items(&items).unwrap();
        assert_eq!(
            req.challenge_password,
            ChallengePassword::Value(Zeroizing::new("p".into()))
        );
    }

    #[test]
    fn key_conflicts_and_merges() {
        let ec = AttrOrOid::Attribute {
            oid: oids::EC_PUBLIC_KEY.into(),
            values: vec![oid_der(oids::SECP256R1)],
        };
        let rsa_bare = AttrOrOid::Oid(oids::RSA_ENCRYPTION.into());
        let rsa_sized = AttrOrOid::Attribute {
            oid: oids::RSA_ENCRYPTION.into(),
            values: vec![4096u32.to_der().unwrap()],
        };
        assert!(CsrRequirements::from_items(&[ec.clone(), rsa_bare.clone()]).is_err());
        assert!(CsrRequirements::from_items(&[ec.clone(), ec.clone()]).is_ok());
        let r = CsrRequirements::from_items(&[rsa_bare, rsa_sized]).unwrap();
        assert_eq!(r.key, Some(KeyRequirement::Rsa { bits: Some(4096) }));
        let two_hashes = [
            AttrOrOid::Oid(oids::ECDSA_WITH_SHA256.into()),
            AttrOrOid::Oid(oids::ECDSA_WITH_SHA384.into()),
        ];
        assert!(CsrRequirements::from_items(&two_hashes).is_err());
    }

    #[test]
    fn ec_curves() {
        let attr = |vals: Vec<Vec<u8>>| AttrOrOid::Attribute {
            oid: oids::EC_PUBLIC_KEY.into(),
            values: vals,
        };
        // brainpoolP256r1 is not supported; P-521 offered beside it is taken.
        let r = CsrRequirements::from_items(&[attr(vec![
            oid_der("1.3.36.3.3.2.8.1.1.7"),
            oid_der(oids::SECP521R1),
        ])])
        .unwrap();
        assert_eq!(r.key, Some(KeyRequirement::Ec(Curve::P521)));
        assert!(matches!(
            CsrRequirements::from_items(&[attr(vec![oid_der("1.3.36.3.3.2.8.1.1.7")])]),
            Err(ProtoError::Unsupported(_))
        ));
        assert!(CsrRequirements::from_items(&[attr(vec![vec![0x02, 1, 1]])]).is_err());
        // A bare id-ecPublicKey names no curve: reported, not an error.
        let r = CsrRequirements::from_items(&[AttrOrOid::Oid(oids::EC_PUBLIC_KEY.into())]).unwrap();
        assert_eq!(r.key, None);
        assert_eq!(r.unrecognized, vec![oids::EC_PUBLIC_KEY.to_string()]);
    }

    #[test]
    fn rsa_size_must_be_integer() {
        let attr = |v: Vec<u8>| {
            [AttrOrOid::Attribute {
                oid: oids::RSA_ENCRYPTION.into(),
                values: vec![v],
            }]
        };
        assert!(CsrRequirements::from_items(&attr(oid_der("1.2.3"))).is_err());
        assert!(CsrRequirements::from_items(&attr(vec![0x02, 1, 0])).is_err());
        assert!(CsrRequirements::from_items(&attr(vec![0x02, 1, 0xff])).is_err());
        // negative
    }

    #[test]
    fn extension_request_must_be_extensions() {
        let items = [AttrOrOid::Attribute {
            oid: oids::EXTENSION_REQUEST.into(),
            values: vec![vec![0x04, 1, 0]],
        }];
        assert!(CsrRequirements::from_items(&items).is_err());
    }

    #[test]
    fn template_is_unrecognized() {
        let items = [AttrOrOid::Attribute {
            oid: oids::CSR_TEMPLATE.into(),
            values: vec![vec![0x30, 0x00]],
        }];
        let r = CsrRequirements::from_items(&items).unwrap();
        assert_eq!(r.unrecognized, vec![oids::CSR_TEMPLATE.to_string()]);
    }

    #[test]
    fn debug_redacts_password() {
        let req = sample();
        let items = req.to_items().unwrap();
        assert!(!format!("{req:?}").contains("s3cr"));
        assert!(!format!("{items:?}").contains("73 33 63 72"));
        assert!(!format!("{items:?}").contains("73336372"));
        assert!(format!("{:?}", items[2]).contains("06082a8648ce3d030107"));
    }

    #[test]
    fn encode_and_decode_reject_malformed() {
        assert!(encode(&[AttrOrOid::Attribute {
            oid: oids::EXTENSION_REQUEST.into(),
            values: vec![]
        }])
        .is_err());
        assert!(encode(&[AttrOrOid::Attribute {
            oid: "1.2.3".into(),
            values: vec![vec![0x04, 5, 0]]
        }])
        .is_err());
        assert!(encode(&[AttrOrOid::Oid("1".into())]).is_err());
        // Attribute with an empty SET, an INTEGER item, trailing bytes, wrong outer tag.
        assert!(decode(&[0x30, 0x07, 0x30, 0x05, 0x06, 0x01, 0x2a, 0x31, 0x00]).is_err());
        assert!(decode(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert!(decode(&[0x30, 0x00, 0x00]).is_err());
        assert!(decode(&[0x31, 0x00]).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn values_are_sorted_on_encode_and_kept_in_order_on_decode() {
        let items = [AttrOrOid::Attribute {
            oid: "1.2.3".into(),
            values: vec![vec![0x02, 1, 5], vec![0x02, 1, 3]],
        }];
        let der = encode(&items).unwrap();
        assert_eq!(
            der,
            [0x30, 0x0e, 0x30, 0x0c, 0x06, 0x02, 0x2a, 0x03, 0x31, 0x06, 0x02, 1, 3, 0x02, 1, 5]
        );
        // A non-canonical order as received is kept.
        let unsorted = [
            0x30, 0x0e, 0x30, 0x0c, 0x06, 0x02, 0x2a, 0x03, 0x31, 0x06, 0x02, 1, 5, 0x02, 1, 3,
        ];
        assert_eq!(decode(&unsorted).unwrap(), items);
    }

    #[test]
    fn ber_indefinite_is_accepted() {
        // SEQUENCE (indefinite) { OID 1.2.3, Attribute (indefinite) { OID, SET (indefinite) { INTEGER } } }
        let ber = [
            0x30, 0x80, 0x06, 0x02, 0x2a, 0x03, 0x30, 0x80, 0x06, 0x02, 0x2a, 0x04, 0x31, 0x80,
            0x02, 0x01, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(
            decode(&ber).unwrap(),
            vec![
                AttrOrOid::Oid("1.2.3".into()),
                AttrOrOid::Attribute {
                    oid: "1.2.4".into(),
                    values: vec![vec![0x02, 0x01, 0x07]],
                }
            ]
        );
    }

    #[test]
    fn openssl_asn1parse_accepts_encoding() {
        let der = encode(&sample().to_items().unwrap()).unwrap();
        let text = crate::openssl_cli::openssl_output(
            "csrattrs",
            "csrattrs.der",
            &["asn1parse", "-inform", "DER", "-in"],
            &der,
        );
        for want in [
            "challengePassword",
            "Extension Request",
            "id-ecPublicKey",
            "prime256v1",
            "ecdsa-with-SHA256",
        ] {
            assert!(text.contains(want), "{want} missing in:\n{text}");
        }
        assert!(!text.contains("error"), "{text}");
    }
}
