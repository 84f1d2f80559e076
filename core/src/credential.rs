//! The credential a citizen holds: COSE_Sign1 over a CWT, and its `HZ1:` QR text.
//!
//! Layout (docs/credential-format.md has it byte by byte):
//! `HZ1:` + base45(zlib(COSE_Sign1)), where COSE_Sign1 has alg EdDSA (-8) and the issuer's
//! 8-byte key id in the protected header, and the payload is a CWT with `iss`, `iat`,
//! `nbf`, `exp`, `cti` (the licence id) and one private claim (-65537) holding the licence.
//!
//! Decoding is bounded at every stage (text length, base45 output, inflated size, CBOR
//! nesting via ciborium's recursion limit, field counts and lengths) and total: every
//! failure is a `DecodeError`, never a panic. A `VerifiedCredential` can only be obtained
//! by checking the signature or by matching a commitment the issuer signed on its chain.

use std::collections::BTreeMap;

use ciborium::value::Value;
use coset::cwt::{ClaimName, ClaimsSet, ClaimsSetBuilder, Timestamp};
use coset::{
    iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable,
};
use serde::Serialize;

use crate::crypto::{Hash32, KeyId, PublicKey, SecretKey, Signature};
use crate::ids::{DepartmentId, LicenceId, LicenceType, RegionCode};

pub const QR_PREFIX: &str = "HZ1:";
/// The most characters any QR code holds in alphanumeric mode (version 40, level L). Huren
/// renders at level M (at most 3391), but reads whatever a scanner typed.
pub const QR_TEXT_CHARS_MAX: usize = 4296;
/// Cap on the inflated COSE bytes: a decompression bomb stops here.
pub const COSE_BYTES_MAX: usize = 8 * 1024;
pub const HOLDER_FIELDS_MAX: usize = 16;
pub const EXTRA_FIELDS_MAX: usize = 16;
pub use crate::ids::FIELD_NAME_BYTES_MAX;
pub const FIELD_VALUE_BYTES_MAX: usize = 256;
pub const SALT_BYTES: usize = 16;
/// The CWT private-use claim that carries the licence (RFC 8392: keys below -65536).
pub const LICENCE_CLAIM: i64 = -65537;

// Keys of the licence claim map: small integers keep the QR short.
const K_TYPE: i64 = 1;
const K_REGION: i64 = 2;
const K_HOLDER: i64 = 3;
const K_FIELDS: i64 = 4;
const K_SALT: i64 = 5;

/// A licence credential's content, before signing or after decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credential {
    pub issuer: DepartmentId,
    pub licence_id: LicenceId,
    pub region: RegionCode,
    /// Unix seconds.
    pub issued_at: i64,
    pub not_before: i64,
    pub expires_at: i64,
    /// Holder fields the verifier shows the clerk (name, id number, class…).
    pub holder: BTreeMap<String, String>,
    /// Further licence fields (national 证照标识, vehicle classes, scope of business…).
    pub fields: BTreeMap<String, String>,
    #[serde(skip)]
    pub salt: [u8; SALT_BYTES],
}

impl Credential {
    pub fn licence_type(&self) -> &LicenceType {
        self.licence_id.licence_type()
    }

    /// Checks the field bounds that `decode` enforces, so that nothing is signed that
    /// could not be read back.
    pub fn check_bounds(&self) -> Result<(), DecodeError> {
        check_map("holder", &self.holder, HOLDER_FIELDS_MAX)?;
        check_map("fields", &self.fields, EXTRA_FIELDS_MAX)?;
        if self.licence_id.department() != &self.issuer {
            return Err(DecodeError::Inconsistent(
                "the licence id names another department than iss",
            ));
        }
        if !(self.not_before <= self.expires_at) {
            return Err(DecodeError::Inconsistent("nbf is after exp"));
        }
        Ok(())
    }

    /// Signs with the issuer key and returns the COSE bytes and QR text.
    pub fn sign(&self, key: &SecretKey) -> Result<SignedCredential, DecodeError> {
        self.check_bounds()?;
        let kid = key.public().key_id();
        let payload = self
            .claims()
            .to_vec()
            .map_err(|e| DecodeError::Cbor(e.to_string()))?;
        let sign1 = CoseSign1Builder::new()
            .protected(
                HeaderBuilder::new()
                    .algorithm(iana::Algorithm::EdDSA)
                    .key_id(kid.0.to_vec())
                    .build(),
            )
            .payload(payload)
            .create_signature(b"", |tbs| key.sign(tbs).to_bytes().to_vec())
            .build();
        let cose = sign1
            .to_tagged_vec()
            .map_err(|e| DecodeError::Cbor(e.to_string()))?;
        Ok(SignedCredential {
            qr_text: cose_to_qr(&cose),
            commitment: Hash32::digest(&cose),
            cose,
            kid,
        })
    }

    fn claims(&self) -> ClaimsSet {
        let text_map = |m: &BTreeMap<String, String>| {
            Value::Map(
                m.iter()
                    .map(|(k, v)| (Value::Text(k.clone()), Value::Text(v.clone())))
                    .collect(),
            )
        };
        let mut licence = vec![
            (
                Value::Integer(K_TYPE.into()),
                Value::Text(self.licence_type().to_string()),
            ),
            (
                Value::Integer(K_REGION.into()),
                Value::Text(self.region.to_string()),
            ),
            (Value::Integer(K_HOLDER.into()), text_map(&self.holder)),
        ];
        if !self.fields.is_empty() {
            licence.push((Value::Integer(K_FIELDS.into()), text_map(&self.fields)));
        }
        licence.push((
            Value::Integer(K_SALT.into()),
            Value::Bytes(self.salt.to_vec()),
        ));
        ClaimsSetBuilder::new()
            .issuer(self.issuer.to_string())
            .issued_at(Timestamp::WholeSeconds(self.issued_at))
            .not_before(Timestamp::WholeSeconds(self.not_before))
            .expiration_time(Timestamp::WholeSeconds(self.expires_at))
            .cwt_id(self.licence_id.to_string().into_bytes())
            .private_claim(LICENCE_CLAIM, Value::Map(licence))
            .build()
    }
}

fn check_map(
    what: &'static str,
    m: &BTreeMap<String, String>,
    max: usize,
) -> Result<(), DecodeError> {
    if m.len() > max {
        return Err(DecodeError::BadClaim {
            claim: what,
            problem: format!("{} entries, at most {max}", m.len()),
        });
    }
    for (k, v) in m {
        if crate::ids::FieldName::parse(k).is_err() {
            return Err(DecodeError::BadClaim {
                claim: what,
                problem: format!(
                    "field name {:?} must be 1-{FIELD_NAME_BYTES_MAX} characters of a-z, 0-9, '_'",
                    k.chars().take(40).collect::<String>()
                ),
            });
        }
        if v.len() > FIELD_VALUE_BYTES_MAX || v.chars().any(char::is_control) {
            return Err(DecodeError::BadClaim {
                claim: what,
                problem: format!(
                    "field {k}: value must be at most {FIELD_VALUE_BYTES_MAX} bytes without control characters"
                ),
            });
        }
    }
    Ok(())
}

/// A freshly signed credential.
#[derive(Debug, Clone)]
pub struct SignedCredential {
    pub cose: Vec<u8>,
    pub qr_text: String,
    /// SHA-256 of `cose`: what the ledger records.
    pub commitment: Hash32,
    pub kid: KeyId,
}

/// Why a QR text or COSE byte string could not be read. Always the holder's or the
/// scanner's problem, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("no text was given")]
    Empty,
    #[error("the text is {chars} characters long; a Huren QR holds at most {max}")]
    TooLong { chars: usize, max: usize },
    #[error("the text does not start with {QR_PREFIX} (is this a Huren licence QR?)")]
    Prefix,
    #[error("the text after {QR_PREFIX} is not valid base45: {0}")]
    Base45(String),
    #[error("the compressed credential is corrupt: {0}")]
    Inflate(String),
    #[error("the credential inflates to more than {max} bytes")]
    TooLarge { max: usize },
    #[error("the credential is not valid CBOR/COSE: {0}")]
    Cbor(String),
    #[error("the credential uses algorithm {0}; only EdDSA (-8) is accepted")]
    Algorithm(String),
    #[error("the credential has no 8-byte key id (kid) in its protected header")]
    KeyId,
    #[error("the credential has no payload")]
    NoPayload,
    #[error("the credential lacks the {0} claim")]
    MissingClaim(&'static str),
    #[error("the {claim} claim is malformed: {problem}")]
    BadClaim {
        claim: &'static str,
        problem: String,
    },
    #[error("the credential is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// `HZ1:` + base45(zlib(cose)).
pub fn cose_to_qr(cose: &[u8]) -> String {
    thread_local! {
        // A deflate compressor carries ~300 KB of tables: allocating and clearing one per
        // credential dominated bulk issuance, so each thread keeps one and resets it.
        static ZLIB: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::best(), true));
    }
    let compressed = ZLIB.with(|z| {
        let mut z = z.borrow_mut();
        z.reset();
        // zlib's worst case is a few bytes per 16 KiB block plus header and checksum.
        let mut out = Vec::with_capacity(cose.len() + cose.len() / 1000 + 64);
        loop {
            let before = z.total_in() as usize;
            let status = z
                .compress_vec(&cose[before..], &mut out, flate2::FlushCompress::Finish)
                .expect("deflate into a Vec cannot fail");
            if status == flate2::Status::StreamEnd {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        out
    });
    format!("{QR_PREFIX}{}", base45::encode(&compressed))
}

/// Reverses `cose_to_qr`, bounded. Surrounding whitespace (a scanner's Enter, a pasted
/// newline) is ignored.
pub fn qr_to_cose(text: &str) -> Result<Vec<u8>, DecodeError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DecodeError::Empty);
    }
    if text.len() > QR_TEXT_CHARS_MAX {
        return Err(DecodeError::TooLong {
            chars: text.chars().count(),
            max: QR_TEXT_CHARS_MAX,
        });
    }
    let body = text.strip_prefix(QR_PREFIX).ok_or(DecodeError::Prefix)?;
    let compressed = base45::decode(body).map_err(|_| {
        DecodeError::Base45(
            "a character outside the base45 alphabet, a bad length or an out-of-range triple"
                .into(),
        )
    })?;
    // The base45 crate accepts a final pair over 255 and keeps its low byte, so two texts
    // would decode to the same bytes. RFC 9285 refuses such a pair: only the one
    // (canonical) encoding of the bytes is accepted.
    if base45::encode(&compressed) != body {
        return Err(DecodeError::Base45(
            "a final pair over 255 (not the canonical encoding of its bytes)".into(),
        ));
    }
    thread_local! {
        // Reused per thread for the same reason as the compressor in `cose_to_qr`.
        static INFLATE: std::cell::RefCell<flate2::Decompress> =
            std::cell::RefCell::new(flate2::Decompress::new(true));
    }
    INFLATE.with(|z| {
        let mut z = z.borrow_mut();
        z.reset(true);
        // One byte past the cap, so that "exactly at the cap" and "over it" differ: the
        // output can never grow beyond this, whatever the input claims.
        let mut out = Vec::with_capacity(COSE_BYTES_MAX + 1);
        let status = z
            .decompress_vec(&compressed, &mut out, flate2::FlushDecompress::Finish)
            .map_err(|e| DecodeError::Inflate(e.to_string()))?;
        if out.len() > COSE_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                max: COSE_BYTES_MAX,
            });
        }
        match status {
            flate2::Status::StreamEnd => Ok(out),
            // The output had room left, so the input itself ended early.
            _ => Err(DecodeError::Inflate(
                "the compressed data is truncated".into(),
            )),
        }
    })
}

/// A decoded credential whose signature has not been checked yet.
#[derive(Debug, Clone)]
pub struct UnverifiedCredential {
    pub credential: Credential,
    pub kid: KeyId,
    /// SHA-256 of the COSE bytes: compare with the ledger.
    pub commitment: Hash32,
    sign1: CoseSign1,
}

/// A credential whose issuer signature was checked against a known key, or whose exact
/// bytes the issuer committed to in a block this node validated. Only `verify`,
/// `accept_checked` (the answer to `verify::PendingSignature`, which may come from a batch)
/// and `vouched_by_ledger` make one.
#[derive(Debug, Clone)]
pub struct VerifiedCredential {
    credential: Credential,
    kid: KeyId,
    commitment: Hash32,
}

impl VerifiedCredential {
    pub fn credential(&self) -> &Credential {
        &self.credential
    }
    pub fn kid(&self) -> KeyId {
        self.kid
    }
    pub fn commitment(&self) -> Hash32 {
        self.commitment
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the issuer signature does not verify")]
pub struct BadSignature;

/// What checking a credential's signature takes, for a caller that checks many at once
/// (`crypto::verify_many`): the key, the COSE Sig_structure, the signature.
#[derive(Debug, Clone)]
pub struct SignatureInput {
    pub key: PublicKey,
    pub message: Vec<u8>,
    pub signature: Signature,
}

impl UnverifiedCredential {
    /// Decodes QR text into an unverified credential.
    pub fn from_qr(text: &str) -> Result<Self, DecodeError> {
        Self::from_cose(&qr_to_cose(text)?)
    }

    pub fn from_cose(cose: &[u8]) -> Result<Self, DecodeError> {
        if cose.len() > COSE_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                max: COSE_BYTES_MAX,
            });
        }
        let sign1 = CoseSign1::from_tagged_slice(cose)
            .or_else(|_| CoseSign1::from_slice(cose))
            .map_err(|e| DecodeError::Cbor(e.to_string()))?;
        let alg = &sign1.protected.header.alg;
        if *alg != Some(coset::Algorithm::Assigned(iana::Algorithm::EdDSA)) {
            return Err(DecodeError::Algorithm(format!("{alg:?}")));
        }
        let kid: [u8; 8] = sign1
            .protected
            .header
            .key_id
            .as_slice()
            .try_into()
            .map_err(|_| DecodeError::KeyId)?;
        let payload = sign1.payload.as_deref().ok_or(DecodeError::NoPayload)?;
        let claims =
            ClaimsSet::from_slice(payload).map_err(|e| DecodeError::Cbor(e.to_string()))?;
        let credential = credential_from_claims(claims)?;
        Ok(Self {
            credential,
            kid: KeyId(kid),
            commitment: Hash32::digest(cose),
            sign1,
        })
    }

    /// Checks the COSE signature against `key` (strict Ed25519).
    pub fn verify(self, key: &PublicKey) -> Result<VerifiedCredential, BadSignature> {
        if key.key_id() != self.kid {
            return Err(BadSignature);
        }
        self.sign1.verify_signature(b"", |sig, tbs| {
            let sig = Signature::from_slice(sig).ok_or(BadSignature)?;
            if key.verify(tbs, &sig) {
                Ok(())
            } else {
                Err(BadSignature)
            }
        })?;
        Ok(self.into_verified())
    }

    /// The signature check `verify(key)` would make, to be made elsewhere; `None` when
    /// `key` is not the one the kid names or the signature is not 64 bytes (then `verify`
    /// refuses it anyway).
    pub fn signature_input(&self, key: &PublicKey) -> Option<SignatureInput> {
        if key.key_id() != self.kid {
            return None;
        }
        Some(SignatureInput {
            key: *key,
            message: self.sign1.tbs_data(b""),
            signature: Signature::from_slice(&self.sign1.signature)?,
        })
    }

    /// Accepts the answer of a signature check made elsewhere over `checked`, which
    /// `verify::prepare` computed from this very credential with `signature_input`; the
    /// credential comes back unchanged when the answer is no.
    pub(crate) fn accept_checked(
        self,
        checked: &SignatureInput,
        ok: bool,
    ) -> Result<VerifiedCredential, Self> {
        debug_assert_eq!(checked.key.key_id(), self.kid);
        if ok {
            Ok(self.into_verified())
        } else {
            Err(self)
        }
    }

    /// The fast path: the issuer signed a block committing to SHA-256 of these exact COSE
    /// bytes, and this node validated that block, so the per-credential signature check
    /// adds nothing. Gives the credential back unchanged when the commitments differ.
    pub fn vouched_by_ledger(self, ledger_commitment: &Hash32) -> Result<VerifiedCredential, Self> {
        if self.commitment == *ledger_commitment {
            Ok(self.into_verified())
        } else {
            Err(self)
        }
    }

    /// Private: only the proofs above may call it.
    fn into_verified(self) -> VerifiedCredential {
        VerifiedCredential {
            credential: self.credential,
            kid: self.kid,
            commitment: self.commitment,
        }
    }
}

fn credential_from_claims(c: ClaimsSet) -> Result<Credential, DecodeError> {
    let bad = |claim: &'static str, problem: &str| DecodeError::BadClaim {
        claim,
        problem: problem.to_owned(),
    };
    let whole = |t: Option<Timestamp>, name: &'static str| match t {
        Some(Timestamp::WholeSeconds(s)) => Ok(s),
        Some(Timestamp::FractionalSeconds(_)) => Err(bad(name, "must be whole seconds")),
        None => Err(DecodeError::MissingClaim(name)),
    };
    let issuer = c.issuer.ok_or(DecodeError::MissingClaim("iss"))?;
    let issuer = DepartmentId::parse(&issuer).map_err(|e| bad("iss", &e.to_string()))?;
    let issued_at = whole(c.issued_at, "iat")?;
    let not_before = whole(c.not_before, "nbf")?;
    let expires_at = whole(c.expiration_time, "exp")?;
    let cti = c.cwt_id.ok_or(DecodeError::MissingClaim("cti"))?;
    let cti = std::str::from_utf8(&cti).map_err(|_| bad("cti", "not UTF-8"))?;
    let licence_id = LicenceId::parse(cti).map_err(|e| bad("cti", &e.to_string()))?;

    let mut licence = None;
    for (name, value) in c.rest {
        match name {
            ClaimName::PrivateUse(LICENCE_CLAIM) if licence.is_none() => licence = Some(value),
            ClaimName::PrivateUse(LICENCE_CLAIM) => {
                return Err(bad("licence", "given twice"));
            }
            // Unknown claims are ignored, as RFC 8392 asks, so that later versions can add
            // claims old verifiers skip.
            _ => {}
        }
    }
    let Some(Value::Map(entries)) = licence else {
        return Err(DecodeError::MissingClaim("licence (-65537)"));
    };
    let mut licence_type = None;
    let mut region = None;
    let mut holder = None;
    let mut fields = None;
    let mut salt = None;
    for (k, v) in entries {
        let key = match k {
            Value::Integer(i) => {
                i64::try_from(i).map_err(|_| bad("licence", "key out of range"))?
            }
            _ => return Err(bad("licence", "keys must be integers")),
        };
        let slot_taken = match key {
            K_TYPE => licence_type.replace(v).is_some(),
            K_REGION => region.replace(v).is_some(),
            K_HOLDER => holder.replace(v).is_some(),
            K_FIELDS => fields.replace(v).is_some(),
            K_SALT => salt.replace(v).is_some(),
            _ => false,
        };
        if slot_taken {
            return Err(bad("licence", "a key is given twice"));
        }
    }
    let text = |v: Option<Value>, name: &'static str| match v {
        Some(Value::Text(s)) => Ok(s),
        Some(_) => Err(bad(name, "must be text")),
        None => Err(DecodeError::MissingClaim(name)),
    };
    let licence_type = text(licence_type, "licence type")?;
    let licence_type =
        LicenceType::parse(&licence_type).map_err(|e| bad("licence type", &e.to_string()))?;
    let region = text(region, "region")?;
    let region = RegionCode::parse(&region).map_err(|e| bad("region", &e.to_string()))?;
    let holder = text_map(holder, "holder", HOLDER_FIELDS_MAX)?.unwrap_or_default();
    let fields = text_map(fields, "fields", EXTRA_FIELDS_MAX)?.unwrap_or_default();
    let salt = match salt {
        Some(Value::Bytes(b)) => <[u8; SALT_BYTES]>::try_from(b.as_slice())
            .map_err(|_| bad("salt", "must be 16 bytes"))?,
        _ => return Err(DecodeError::MissingClaim("salt")),
    };
    if &licence_type != licence_id.licence_type() {
        return Err(DecodeError::Inconsistent(
            "the licence type differs from the one in the licence id",
        ));
    }
    let credential = Credential {
        issuer,
        licence_id,
        region,
        issued_at,
        not_before,
        expires_at,
        holder,
        fields,
        salt,
    };
    credential.check_bounds()?;
    Ok(credential)
}

fn text_map(
    v: Option<Value>,
    name: &'static str,
    max: usize,
) -> Result<Option<BTreeMap<String, String>>, DecodeError> {
    let Some(v) = v else { return Ok(None) };
    let Value::Map(entries) = v else {
        return Err(DecodeError::BadClaim {
            claim: name,
            problem: "must be a map".into(),
        });
    };
    if entries.len() > max {
        return Err(DecodeError::BadClaim {
            claim: name,
            problem: format!("{} entries, at most {max}", entries.len()),
        });
    }
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        let (Value::Text(k), Value::Text(v)) = (k, v) else {
            return Err(DecodeError::BadClaim {
                claim: name,
                problem: "keys and values must be text".into(),
            });
        };
        if out.insert(k, v).is_some() {
            return Err(DecodeError::BadClaim {
                claim: name,
                problem: "a field is given twice".into(),
            });
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn driving_licence(serial: u64) -> Credential {
        let mut holder = BTreeMap::new();
        holder.insert("name".into(), "张三".into());
        holder.insert("id_number".into(), "44010619900101123X".into());
        holder.insert("class".into(), "C1".into());
        Credential {
            issuer: DepartmentId::parse("gd.transport").expect("id"),
            licence_id: LicenceId::new(
                DepartmentId::parse("gd.transport").expect("id"),
                LicenceType::parse("mvdl").expect("type"),
                serial,
            ),
            region: RegionCode::parse("440000").expect("region"),
            issued_at: 1_750_000_000,
            not_before: 1_750_000_000,
            expires_at: 1_750_000_000 + 6 * 365 * 86400,
            holder,
            fields: BTreeMap::new(),
            salt: [7; SALT_BYTES],
        }
    }

    #[test]
    fn sign_decode_verify_round_trip() {
        let key = SecretKey::from_seed(&[1; 32]);
        let cred = driving_licence(1);
        let signed = cred.sign(&key).expect("sign");
        assert!(signed.qr_text.starts_with("HZ1:"));
        let un = UnverifiedCredential::from_qr(&format!("{}\r\n", signed.qr_text)).expect("decode");
        assert_eq!(un.credential, cred);
        assert_eq!(un.commitment, signed.commitment);
        assert_eq!(un.kid, key.public().key_id());
        let v = un.clone().verify(&key.public()).expect("verify");
        assert_eq!(v.credential(), &cred);
        let other = SecretKey::from_seed(&[2; 32]);
        assert!(un.verify(&other.public()).is_err());
    }

    #[test]
    fn driving_licence_fits_in_400_qr_characters() {
        let key = SecretKey::from_seed(&[1; 32]);
        let signed = driving_licence(12_345_678).sign(&key).expect("sign");
        assert!(
            signed.qr_text.len() <= 400,
            "QR text is {} characters",
            signed.qr_text.len()
        );
    }

    /// Verifies a credential without coset or this module: parse the COSE_Sign1 array with
    /// plain ciborium, rebuild the RFC 9052 Sig_structure by hand and check the Ed25519
    /// signature with ed25519-dalek directly. If the encoder drifted from the standard,
    /// this would fail.
    #[test]
    fn independent_cose_verification() {
        let key = SecretKey::from_seed(&[9; 32]);
        let signed = driving_licence(3).sign(&key).expect("sign");
        let cose = qr_to_cose(&signed.qr_text).expect("qr");
        let v: Value = ciborium::de::from_reader(&cose[..]).expect("cbor");
        let Value::Tag(18, inner) = v else {
            panic!("not a tagged COSE_Sign1: {v:?}")
        };
        let Value::Array(items) = *inner else {
            panic!("not an array")
        };
        assert_eq!(items.len(), 4);
        let (Value::Bytes(protected), Value::Bytes(payload), Value::Bytes(sig)) =
            (&items[0], &items[2], &items[3])
        else {
            panic!("bad structure")
        };
        let hdr: Value = ciborium::de::from_reader(&protected[..]).expect("hdr");
        let Value::Map(hdr) = hdr else { panic!("hdr") };
        assert!(hdr.contains(&(Value::Integer(1.into()), Value::Integer((-8).into()))));
        let sig_structure = Value::Array(vec![
            Value::Text("Signature1".into()),
            Value::Bytes(protected.clone()),
            Value::Bytes(vec![]),
            Value::Bytes(payload.clone()),
        ]);
        let mut tbs = Vec::new();
        ciborium::ser::into_writer(&sig_structure, &mut tbs).expect("ser");
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.public().to_bytes()).expect("vk");
        let sig = ed25519_dalek::Signature::from_slice(sig).expect("sig");
        use ed25519_dalek::Verifier;
        vk.verify(&tbs, &sig).expect("standard COSE verification");
        // And the CWT claims are where RFC 8392 puts them.
        let claims: Value = ciborium::de::from_reader(&payload[..]).expect("claims");
        let Value::Map(claims) = claims else {
            panic!("claims")
        };
        assert!(claims.contains(&(Value::Integer(1.into()), Value::Text("gd.transport".into()))));
    }

    fn check(input: &str, expected: fn(&DecodeError) -> bool) {
        match UnverifiedCredential::from_qr(input) {
            Ok(_) => panic!("{input:?} decoded"),
            Err(e) => assert!(expected(&e), "{input:?} gave {e:?}"),
        }
    }

    fn qr_of_cbor(bytes: &[u8]) -> String {
        cose_to_qr(bytes)
    }

    fn resign(
        mutate: impl FnOnce(CoseSign1Builder) -> CoseSign1Builder,
        payload: Vec<u8>,
    ) -> String {
        let key = SecretKey::from_seed(&[1; 32]);
        let b = CoseSign1Builder::new().payload(payload);
        let sign1 = mutate(b)
            .create_signature(b"", |tbs| key.sign(tbs).to_bytes().to_vec())
            .build();
        cose_to_qr(&sign1.to_tagged_vec().expect("cbor"))
    }

    #[test]
    fn every_decoder_error() {
        let key = SecretKey::from_seed(&[1; 32]);
        let good = driving_licence(1);
        let payload = good.claims().to_vec().expect("claims");
        let kid = key.public().key_id().0.to_vec();
        check("", |e| matches!(e, DecodeError::Empty));
        check("  \n", |e| matches!(e, DecodeError::Empty));
        check(&"A".repeat(5000), |e| {
            matches!(e, DecodeError::TooLong { .. })
        });
        check("HC1:ABC", |e| matches!(e, DecodeError::Prefix));
        check("HZ1:!!!", |e| matches!(e, DecodeError::Base45(_)));
        // The byte 0x00 is "00"; "V5" is 31 + 5 × 45 = 256, which the base45 crate would
        // also read as 0x00. Only the first reaches the zlib layer.
        check("HZ1:00", |e| matches!(e, DecodeError::Inflate(_)));
        check("HZ1:V5", |e| matches!(e, DecodeError::Base45(_)));
        check(&format!("HZ1:{}", base45::encode(b"not zlib data")), |e| {
            matches!(e, DecodeError::Inflate(_))
        });
        // A decompression bomb: a megabyte of zeros compresses to about a kilobyte.
        check(&qr_of_cbor(&vec![0u8; 1 << 20]), |e| {
            matches!(e, DecodeError::TooLarge { .. })
        });
        check(&qr_of_cbor(b"\xff\x00garbage"), |e| {
            matches!(e, DecodeError::Cbor(_))
        });
        // Truncated COSE.
        let signed = good.sign(&key).expect("sign");
        check(&qr_of_cbor(&signed.cose[..signed.cose.len() - 10]), |e| {
            matches!(e, DecodeError::Cbor(_))
        });
        // Wrong algorithm (ES256).
        let es256 = resign(
            |b| {
                b.protected(
                    HeaderBuilder::new()
                        .algorithm(iana::Algorithm::ES256)
                        .key_id(kid.clone())
                        .build(),
                )
            },
            payload.clone(),
        );
        check(&es256, |e| matches!(e, DecodeError::Algorithm(_)));
        // No kid.
        let no_kid = resign(
            |b| {
                b.protected(
                    HeaderBuilder::new()
                        .algorithm(iana::Algorithm::EdDSA)
                        .build(),
                )
            },
            payload.clone(),
        );
        check(&no_kid, |e| matches!(e, DecodeError::KeyId));
        // Payload that is not a claims set.
        let eddsa = |p: Vec<u8>| {
            resign(
                |b| {
                    b.protected(
                        HeaderBuilder::new()
                            .algorithm(iana::Algorithm::EdDSA)
                            .key_id(kid.clone())
                            .build(),
                    )
                },
                p,
            )
        };
        check(&eddsa(b"\x01".to_vec()), |e| {
            matches!(e, DecodeError::Cbor(_))
        });
        // Missing licence claim.
        let mut no_licence = good.claims();
        no_licence.rest.clear();
        check(&eddsa(no_licence.to_vec().expect("cbor")), |e| {
            matches!(e, DecodeError::MissingClaim(_))
        });
        // Fractional time.
        let mut frac = good.claims();
        frac.expiration_time = Some(Timestamp::FractionalSeconds(1.5));
        check(&eddsa(frac.to_vec().expect("cbor")), |e| {
            matches!(e, DecodeError::BadClaim { claim: "exp", .. })
        });
        // Licence id from another department than iss.
        let mut foreign = good.claims();
        foreign.cwt_id = Some(b"sh.transport:mvdl:1".to_vec());
        check(&eddsa(foreign.to_vec().expect("cbor")), |e| {
            matches!(e, DecodeError::Inconsistent(_))
        });
        // Oversized holder field.
        let mut big = good.clone();
        big.holder.insert("name".into(), "x".repeat(300));
        assert!(matches!(big.sign(&key), Err(DecodeError::BadClaim { .. })));
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let key = SecretKey::from_seed(&[1; 32]);
        let signed = driving_licence(5).sign(&key).expect("sign");
        let alphabet: Vec<char> = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
            .chars()
            .collect();
        let chars: Vec<char> = signed.qr_text.chars().collect();
        for i in 4..chars.len() {
            for &c in alphabet.iter().step_by(7) {
                if c == chars[i] {
                    continue;
                }
                let mut t = chars.clone();
                t[i] = c;
                let text: String = t.into_iter().collect();
                if let Ok(un) = UnverifiedCredential::from_qr(&text) {
                    assert!(
                        un.verify(&key.public()).is_err(),
                        "tampered QR at {i} verified"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,600}") {
            let _ = UnverifiedCredential::from_qr(&s);
        }

        #[test]
        fn arbitrary_prefixed_base45_never_panics(s in "[0-9A-Z $%*+./:-]{0,600}") {
            let _ = UnverifiedCredential::from_qr(&format!("HZ1:{s}"));
        }

        #[test]
        fn arbitrary_cose_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = UnverifiedCredential::from_cose(&b);
            let _ = UnverifiedCredential::from_qr(&cose_to_qr(&b));
        }

        #[test]
        fn round_trip(serial in 0u64..u64::MAX,
                      name in "\\PC{1,20}",
                      class in "[A-D][1-3]",
                      extra in proptest::collection::btree_map("[a-z_]{1,10}", "\\PC{0,30}", 0..4),
                      days in 1i64..4000,
                      salt in any::<[u8; 16]>()) {
            let mut c = driving_licence(serial);
            c.holder.insert("name".into(), name);
            c.holder.insert("class".into(), class);
            c.fields = extra;
            c.expires_at = c.not_before + days * 86400;
            c.salt = salt;
            let key = SecretKey::from_seed(&[3; 32]);
            let signed = c.sign(&key).expect("sign");
            let un = UnverifiedCredential::from_qr(&signed.qr_text).expect("decode");
            prop_assert_eq!(&un.credential, &c);
            prop_assert!(un.verify(&key.public()).is_ok());
        }
    }
}
