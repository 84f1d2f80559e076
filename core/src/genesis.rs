//! The genesis document's types and the validated, indexed view of it (`Network`).
//!
//! A `GenesisDocument` is plain data as read from JSON. A `Network` exists only after
//! every structural rule below held, and answers the questions verification and block
//! validation ask (which department owns this key, may it issue this type, does this
//! region recognise licences of that type from that region) in O(1).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, KeyId, PublicKey};
use crate::ids::{DepartmentId, LicenceType, RegionCode};

/// Upper bounds on a genesis document, so a hostile file cannot exhaust memory.
pub const REGIONS_MAX: usize = 64;
pub const DEPARTMENTS_MAX: usize = 4096;
pub const LICENCE_TYPES_MAX: usize = 512;
/// A type names at most as many holder fields as a credential may carry.
pub use crate::credential::HOLDER_FIELDS_MAX;
pub const NAME_CHARS_MAX: usize = 128;
pub const GENESIS_JSON_BYTES_MAX: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub code: RegionCode,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceTypeDef {
    pub code: LicenceType,
    /// Chinese name, e.g. 机动车驾驶证.
    pub name: String,
    /// English name, e.g. Motor vehicle driving licence.
    pub name_en: String,
    /// Holder fields every credential of this type must carry (e.g. name, id_number).
    pub holder_fields: Vec<String>,
    /// The longest validity period an issuer may grant, in days.
    pub validity_days_max: u32,
    /// How people read the holder fields: `name` → 姓名 / Name. Only fields of
    /// `holder_fields` may have one; a field without a label is shown by its name.
    ///
    /// Left out of the canonical encoding when empty (and a map, so its order is fixed),
    /// so a document written before labels existed keeps its bytes and its hash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, FieldLabel>,
}

/// Why a validity period is refused (`Network::validity_problem`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidityProblem {
    #[error("out of range")]
    OutOfRange,
    #[error("empty (valid_until is not after valid_from)")]
    Empty,
    #[error("longer than the {max_days} days genesis allows for {licence_type}")]
    TooLong {
        licence_type: LicenceType,
        max_days: u32,
    },
    /// A renewal must end later than the validity it renews.
    #[error("not later than the current end of validity (a renewal extends it)")]
    NotExtended,
}

/// A holder field's label in Chinese and in English, as the printable card and the
/// service-window page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FieldLabel {
    /// e.g. 身份证号.
    pub zh: String,
    /// e.g. ID No.
    pub en: String,
}

impl LicenceTypeDef {
    /// The label of holder field `field`, if genesis gives one.
    pub fn label(&self, field: &str) -> Option<&FieldLabel> {
        self.labels.get(field)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub id: DepartmentId,
    pub name: String,
    pub region: RegionCode,
    /// Licence types this department may issue.
    pub grants: Vec<LicenceType>,
    pub issuer_key: PublicKey,
    /// The libp2p peer id of the department's node (base58), checked by the node layer.
    pub node_peer_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observer {
    pub name: String,
    pub region: RegionCode,
    pub node_peer_id: String,
}

/// One recognition rule: verifiers in `region` accept `licence_type` issued in any of
/// `from` (`"*"` for every region). A region always recognises its own licences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecognitionRule {
    pub region: RegionCode,
    pub licence_type: LicenceType,
    pub from: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Governance {
    /// How many departments must sign a governance record (future use; validated now).
    pub quorum: u32,
}

/// Checkpoint witnessing and the offline bundle's age limits (docs/checkpoints.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRules {
    /// Cosignatures of witnesses other than the department a checkpoint needs to count.
    /// Where fewer witnesses exist, all of them.
    pub witness_quorum: u32,
    /// An offline bundle's checkpoint is fresh up to this age: verdicts stand as they are.
    pub bundle_soft_max_secs: u64,
    /// Up to this age a verdict from the bundle stands but says "data as of"; past it,
    /// undetermined · bundle_expired.
    pub bundle_hard_max_secs: u64,
}

impl CheckpointRules {
    /// The rules of a genesis document that names none (documents made before
    /// checkpoints): two witnesses, 24 h, 72 h, as the EU DCC verifier apps' lists.
    pub const DEFAULT: CheckpointRules = CheckpointRules {
        witness_quorum: 2,
        bundle_soft_max_secs: 24 * 3600,
        bundle_hard_max_secs: 72 * 3600,
    };
    /// The hard limit at most: a bundle older than a quarter has nothing to say.
    pub const BUNDLE_HARD_MAX_SECS_MAX: u64 = 90 * 24 * 3600;
    /// The soft limit at least: bundles are not refreshed more often than this.
    pub const BUNDLE_SOFT_MAX_SECS_MIN: u64 = 60;

    fn check(&self) -> Result<(), GenesisError> {
        let ok = self.witness_quorum as usize <= 2 * DEPARTMENTS_MAX
            && self.bundle_soft_max_secs >= Self::BUNDLE_SOFT_MAX_SECS_MIN
            && self.bundle_soft_max_secs <= self.bundle_hard_max_secs
            && self.bundle_hard_max_secs <= Self::BUNDLE_HARD_MAX_SECS_MAX;
        if ok {
            Ok(())
        } else {
            Err(GenesisError::BadCheckpointRules(*self))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisDocument {
    pub network: String,
    /// Unix seconds at which the network was founded.
    pub created_at: i64,
    pub regions: Vec<Region>,
    pub licence_types: Vec<LicenceTypeDef>,
    pub departments: Vec<Department>,
    #[serde(default)]
    pub observers: Vec<Observer>,
    pub recognition: Vec<RecognitionRule>,
    pub governance: Governance,
    /// Absent in documents made before checkpoints (their hash stays what it was):
    /// `CheckpointRules::DEFAULT` then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints: Option<CheckpointRules>,
    /// The protocol version in force (`ledger::PROTOCOL_VERSION` is the newest this code
    /// knows). Absent in documents made before versions (their hash stays what it was):
    /// 1 then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<u32>,
}

impl GenesisDocument {
    /// Canonical bytes: compact JSON of the typed document. Field order is the struct's
    /// declaration order and lists keep the template's order, so the same document always
    /// gives the same bytes and hash.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a genesis document always serialises to JSON")
    }

    pub fn hash(&self) -> Hash32 {
        Hash32::digest_parts(&[b"huren/genesis/v1\n", &self.canonical_bytes()])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error("network name must be 1-{NAME_CHARS_MAX} characters")]
    NetworkName,
    #[error("{what}: {count} entries, at most {max} allowed")]
    TooMany {
        what: &'static str,
        count: usize,
        max: usize,
    },
    #[error("{what} {name:?} is empty or longer than {NAME_CHARS_MAX} characters")]
    BadName { what: &'static str, name: String },
    #[error("region {0} is defined twice")]
    DuplicateRegion(RegionCode),
    #[error("licence type {0} is defined twice")]
    DuplicateLicenceType(LicenceType),
    #[error("department {0} is defined twice")]
    DuplicateDepartment(DepartmentId),
    #[error("department {department} is in region {region}, which is not defined in regions")]
    UnknownRegion {
        department: String,
        region: RegionCode,
    },
    #[error("department {department} is granted licence type {licence_type}, which is not defined in licence_types")]
    UndefinedGrant {
        department: DepartmentId,
        licence_type: LicenceType,
    },
    #[error("licence type {licence_type}: holder field {field:?} must be 1-32 characters of a-z, 0-9 and '_'")]
    BadHolderField {
        licence_type: LicenceType,
        field: String,
    },
    #[error("licence type {licence_type}: a label is given for {field:?}, which is not one of its holder_fields")]
    LabelForUnknownField {
        licence_type: LicenceType,
        field: String,
    },
    #[error("licence type {0}: validity_days_max must be between 1 and 36500")]
    BadValidity(LicenceType),
    #[error("departments {0} and {1} use issuer keys with the same key id; generate a new key for one of them")]
    DuplicateKey(DepartmentId, DepartmentId),
    #[error("peer id {0} is named by two nodes in genesis")]
    DuplicatePeer(String),
    #[error("recognition rule for region {region} and type {licence_type}: {problem}")]
    BadRecognition {
        region: RegionCode,
        licence_type: LicenceType,
        problem: String,
    },
    #[error("checkpoint rules {0:?}: witness_quorum at most 8192, bundle_soft_max_secs at least 60 and at most bundle_hard_max_secs, which is at most 90 days")]
    BadCheckpointRules(CheckpointRules),
    #[error("protocol version 0 does not exist; versions count from 1")]
    ProtocolVersion,
    #[error("governance quorum {quorum} must be more than half of the {departments} departments and at most all of them: then two conflicting governance records can both reach it only if some department signed both")]
    BadQuorum { quorum: u32, departments: usize },
}

fn is_field_name(s: &str) -> bool {
    crate::ids::FieldName::parse(s).is_ok()
}

fn name_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.chars().count() <= NAME_CHARS_MAX
}

/// Which issuing regions a verifying region accepts for one licence type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionSet {
    All,
    Only(HashSet<RegionCode>),
}

/// A validated, indexed genesis document.
#[derive(Debug, Clone)]
pub struct Network {
    doc: GenesisDocument,
    hash: Hash32,
    departments: HashMap<DepartmentId, usize>,
    keys: HashMap<KeyId, usize>,
    types: HashMap<LicenceType, usize>,
    regions: HashMap<RegionCode, usize>,
    recognition: HashMap<(RegionCode, LicenceType), RegionSet>,
    /// What governance records made of it: its height and head, every key each
    /// department has had, retirements (`core::governance`). Founding: height 0.
    pub(crate) gov: crate::governance::GovFacts,
    /// Every key any department has had (`gov`'s key history), to its department.
    key_owners: HashMap<KeyId, usize>,
}

/// Where a recognition decision came from, so verdicts can name the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognition {
    SameRegion,
    Rule { from_all: bool },
    NotRecognised,
}

impl Network {
    /// Founds a network: validates the document, including the quorum rule
    /// (`governance::quorum_ok`: more than half of the departments, at most all).
    pub fn from_document(doc: GenesisDocument) -> Result<Self, GenesisError> {
        let hash = doc.hash();
        let net = Self::index(doc, hash)?;
        let (quorum, n) = (net.doc.governance.quorum, net.doc.departments.len());
        if !crate::governance::quorum_ok(quorum, n) {
            return Err(GenesisError::BadQuorum {
                quorum,
                departments: n,
            });
        }
        Ok(net)
    }

    /// The network a governance record made of a founded one: `doc` evolved from the
    /// genesis document, keeping the founding `hash` (blocks name it). Checked like
    /// genesis, except the quorum, which `governance` checks against the departments
    /// able to vote.
    pub(crate) fn evolved(doc: GenesisDocument, hash: Hash32) -> Result<Self, GenesisError> {
        Self::index(doc, hash)
    }

    fn index(doc: GenesisDocument, hash: Hash32) -> Result<Self, GenesisError> {
        if !name_ok(&doc.network) {
            return Err(GenesisError::NetworkName);
        }
        let limit = |what, count, max| {
            if count > max {
                Err(GenesisError::TooMany { what, count, max })
            } else {
                Ok(())
            }
        };
        limit("regions", doc.regions.len(), REGIONS_MAX)?;
        if doc.protocol_version == Some(0) {
            return Err(GenesisError::ProtocolVersion);
        }
        if let Some(rules) = &doc.checkpoints {
            rules.check()?;
        }
        limit("departments", doc.departments.len(), DEPARTMENTS_MAX)?;
        limit("licence_types", doc.licence_types.len(), LICENCE_TYPES_MAX)?;
        limit("observers", doc.observers.len(), DEPARTMENTS_MAX)?;
        limit(
            "recognition",
            doc.recognition.len(),
            REGIONS_MAX * LICENCE_TYPES_MAX,
        )?;

        let mut regions = HashMap::new();
        for (i, r) in doc.regions.iter().enumerate() {
            if !name_ok(&r.name) {
                return Err(GenesisError::BadName {
                    what: "region",
                    name: r.name.clone(),
                });
            }
            if regions.insert(r.code.clone(), i).is_some() {
                return Err(GenesisError::DuplicateRegion(r.code.clone()));
            }
        }
        let mut types = HashMap::new();
        for (i, t) in doc.licence_types.iter().enumerate() {
            for name in [&t.name, &t.name_en] {
                if !name_ok(name) {
                    return Err(GenesisError::BadName {
                        what: "licence type",
                        name: name.clone(),
                    });
                }
            }
            limit("holder_fields", t.holder_fields.len(), HOLDER_FIELDS_MAX)?;
            if let Some(f) = t.holder_fields.iter().find(|f| !is_field_name(f)) {
                return Err(GenesisError::BadHolderField {
                    licence_type: t.code.clone(),
                    field: f.clone(),
                });
            }
            if let Some(f) = t.labels.keys().find(|f| !t.holder_fields.contains(f)) {
                return Err(GenesisError::LabelForUnknownField {
                    licence_type: t.code.clone(),
                    field: f.clone(),
                });
            }
            for label in t.labels.values() {
                for name in [&label.zh, &label.en] {
                    if !name_ok(name) {
                        return Err(GenesisError::BadName {
                            what: "holder field label",
                            name: name.clone(),
                        });
                    }
                }
            }
            if !(1..=36500).contains(&t.validity_days_max) {
                return Err(GenesisError::BadValidity(t.code.clone()));
            }
            if types.insert(t.code.clone(), i).is_some() {
                return Err(GenesisError::DuplicateLicenceType(t.code.clone()));
            }
        }
        let mut departments = HashMap::new();
        let mut keys: HashMap<KeyId, usize> = HashMap::new();
        let mut peers = HashSet::new();
        for (i, d) in doc.departments.iter().enumerate() {
            if !name_ok(&d.name) {
                return Err(GenesisError::BadName {
                    what: "department",
                    name: d.name.clone(),
                });
            }
            if !regions.contains_key(&d.region) {
                return Err(GenesisError::UnknownRegion {
                    department: d.id.to_string(),
                    region: d.region.clone(),
                });
            }
            if let Some(t) = d.grants.iter().find(|t| !types.contains_key(*t)) {
                return Err(GenesisError::UndefinedGrant {
                    department: d.id.clone(),
                    licence_type: t.clone(),
                });
            }
            if departments.insert(d.id.clone(), i).is_some() {
                return Err(GenesisError::DuplicateDepartment(d.id.clone()));
            }
            if let Some(j) = keys.insert(d.issuer_key.key_id(), i) {
                return Err(GenesisError::DuplicateKey(
                    doc.departments[j].id.clone(),
                    d.id.clone(),
                ));
            }
            if !peers.insert(d.node_peer_id.clone()) {
                return Err(GenesisError::DuplicatePeer(d.node_peer_id.clone()));
            }
        }
        for o in &doc.observers {
            if !regions.contains_key(&o.region) {
                return Err(GenesisError::UnknownRegion {
                    department: format!("observer {}", o.name),
                    region: o.region.clone(),
                });
            }
            if !peers.insert(o.node_peer_id.clone()) {
                return Err(GenesisError::DuplicatePeer(o.node_peer_id.clone()));
            }
        }
        let mut recognition = HashMap::new();
        for rule in &doc.recognition {
            let bad = |problem: String| GenesisError::BadRecognition {
                region: rule.region.clone(),
                licence_type: rule.licence_type.clone(),
                problem,
            };
            if !regions.contains_key(&rule.region) {
                return Err(bad("the verifying region is not defined".into()));
            }
            if !types.contains_key(&rule.licence_type) {
                return Err(bad("the licence type is not defined".into()));
            }
            let set = if rule.from.iter().any(|f| f == "*") {
                RegionSet::All
            } else {
                let mut only = HashSet::new();
                for f in &rule.from {
                    let code = RegionCode::parse(f).map_err(|e| bad(e.to_string()))?;
                    if !regions.contains_key(&code) {
                        return Err(bad(format!("issuing region {code} is not defined")));
                    }
                    only.insert(code);
                }
                RegionSet::Only(only)
            };
            if recognition
                .insert((rule.region.clone(), rule.licence_type.clone()), set)
                .is_some()
            {
                return Err(bad("the rule is given twice".into()));
            }
        }
        let gov = crate::governance::GovFacts::founding(&doc, hash);
        Ok(Self {
            key_owners: keys.clone(),
            doc,
            hash,
            departments,
            keys,
            types,
            regions,
            recognition,
            gov,
        })
    }

    /// This network with the governance facts `gov` (key history, retirements, height):
    /// every key in the history names its department.
    pub(crate) fn with_gov(mut self, gov: crate::governance::GovFacts) -> Self {
        for (dept, spans) in &gov.keys {
            if let Some(&i) = self.departments.get(dept) {
                for s in spans {
                    self.key_owners.insert(s.key.key_id(), i);
                }
            }
        }
        self.gov = gov;
        self
    }

    /// The checkpoint rules in force.
    pub fn checkpoint_rules(&self) -> CheckpointRules {
        self.doc.checkpoints.unwrap_or(CheckpointRules::DEFAULT)
    }

    /// The protocol version in force: the version every block cut under this network is
    /// written in, and so the record kinds it may carry.
    pub fn protocol_version(&self) -> u32 {
        self.doc.protocol_version.unwrap_or(1)
    }

    pub fn document(&self) -> &GenesisDocument {
        &self.doc
    }

    pub fn hash(&self) -> Hash32 {
        self.hash
    }

    pub fn department(&self, id: &DepartmentId) -> Option<&Department> {
        self.departments.get(id).map(|&i| &self.doc.departments[i])
    }

    /// The department whose key `kid` is or was (a rotated-out or compromised key still
    /// names its department: `key_span` says how it may be used).
    pub fn department_by_key(&self, kid: &KeyId) -> Option<&Department> {
        self.key_owners.get(kid).map(|&i| &self.doc.departments[i])
    }

    /// The department whose current key `kid` is.
    pub fn department_by_current_key(&self, kid: &KeyId) -> Option<&Department> {
        self.keys.get(kid).map(|&i| &self.doc.departments[i])
    }

    pub fn departments(&self) -> &[Department] {
        &self.doc.departments
    }

    pub fn licence_type(&self, t: &LicenceType) -> Option<&LicenceTypeDef> {
        self.types.get(t).map(|&i| &self.doc.licence_types[i])
    }

    pub fn region(&self, code: &RegionCode) -> Option<&Region> {
        self.regions.get(code).map(|&i| &self.doc.regions[i])
    }

    pub fn is_granted(&self, dept: &DepartmentId, t: &LicenceType) -> bool {
        self.department(dept).is_some_and(|d| d.grants.contains(t))
    }

    /// What is wrong with a validity period `from..until` (unix seconds) for a licence of
    /// type `t`, if anything: the one rule, for the ledger's issue records and for drafting
    /// a credential alike.
    pub fn validity_problem(
        &self,
        t: &LicenceType,
        from: i64,
        until: i64,
    ) -> Option<ValidityProblem> {
        let max_days = self.licence_type(t).map_or(0, |d| d.validity_days_max);
        match until.checked_sub(from) {
            None => Some(ValidityProblem::OutOfRange),
            Some(s) if s <= 0 => Some(ValidityProblem::Empty),
            Some(s) if s > i64::from(max_days) * 86_400 => Some(ValidityProblem::TooLong {
                licence_type: t.clone(),
                max_days,
            }),
            Some(_) => None,
        }
    }

    /// Does a verifier in `verifier` recognise a licence of type `t` issued in `issuer`?
    pub fn recognition(
        &self,
        verifier: &RegionCode,
        t: &LicenceType,
        issuer: &RegionCode,
    ) -> Recognition {
        if verifier == issuer {
            return Recognition::SameRegion;
        }
        match self.recognition.get(&(verifier.clone(), t.clone())) {
            Some(RegionSet::All) => Recognition::Rule { from_all: true },
            Some(RegionSet::Only(set)) if set.contains(issuer) => {
                Recognition::Rule { from_all: false }
            }
            _ => Recognition::NotRecognised,
        }
    }

    /// Every peer id of the network (departments' nodes and observers), with what it is.
    /// A retired department's node is not among them: it is disconnected and refused.
    pub fn peers(&self) -> BTreeMap<String, PeerRole> {
        let mut out = BTreeMap::new();
        for d in self
            .doc
            .departments
            .iter()
            .filter(|d| !self.gov.retired.contains_key(&d.id))
        {
            out.insert(d.node_peer_id.clone(), PeerRole::Department(d.id.clone()));
        }
        for o in &self.doc.observers {
            out.insert(o.node_peer_id.clone(), PeerRole::Observer(o.name.clone()));
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerRole {
    Department(DepartmentId),
    Observer(String),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::SecretKey;

    /// A small network for tests: two regions, three departments, two types.
    pub(crate) fn sample() -> (GenesisDocument, Vec<(DepartmentId, SecretKey)>) {
        let r = |s: &str| RegionCode::parse(s).expect("region");
        let t = |s: &str| LicenceType::parse(s).expect("type");
        let mut keys = Vec::new();
        let mut dept = |id: &str, region: &str, grants: &[&str], seed: u8| {
            let key = SecretKey::from_seed(&[seed; 32]);
            let id = DepartmentId::parse(id).expect("dept");
            keys.push((id.clone(), key.clone()));
            Department {
                id,
                name: format!("dept {seed}"),
                region: r(region),
                grants: grants.iter().map(|g| t(g)).collect(),
                issuer_key: key.public(),
                node_peer_id: format!("peer-{seed}"),
            }
        };
        let departments = vec![
            dept("gd.transport", "440000", &["mvdl"], 1),
            dept("gd.market", "440000", &["food"], 2),
            dept("sh.transport", "310000", &["mvdl"], 3),
        ];
        let doc = GenesisDocument {
            network: "test".into(),
            created_at: 1_700_000_000,
            regions: vec![
                Region {
                    code: r("440000"),
                    name: "广东省".into(),
                },
                Region {
                    code: r("310000"),
                    name: "上海市".into(),
                },
            ],
            licence_types: vec![
                LicenceTypeDef {
                    code: t("mvdl"),
                    name: "机动车驾驶证".into(),
                    name_en: "Motor vehicle driving licence".into(),
                    holder_fields: vec!["name".into(), "id_number".into(), "class".into()],
                    validity_days_max: 3660,
                    labels: BTreeMap::new(),
                },
                LicenceTypeDef {
                    code: t("food"),
                    name: "食品经营许可证".into(),
                    name_en: "Food business licence".into(),
                    holder_fields: vec!["entity".into()],
                    validity_days_max: 1830,
                    labels: BTreeMap::new(),
                },
            ],
            departments,
            observers: vec![],
            recognition: vec![RecognitionRule {
                region: r("310000"),
                licence_type: t("mvdl"),
                from: vec!["*".into()],
            }],
            protocol_version: None,
            governance: Governance { quorum: 2 },
            checkpoints: None,
        };
        (doc, keys)
    }

    #[test]
    fn sample_is_valid_and_indexed() {
        let (doc, keys) = sample();
        let net = Network::from_document(doc).expect("valid");
        let gd = &keys[0].0;
        assert!(net.is_granted(gd, &LicenceType::parse("mvdl").expect("t")));
        assert!(!net.is_granted(gd, &LicenceType::parse("food").expect("t")));
        assert_eq!(
            net.department_by_key(&keys[1].1.public().key_id())
                .map(|d| &d.id),
            Some(&keys[1].0)
        );
        let (sh, gdr) = (
            RegionCode::parse("310000").expect("r"),
            RegionCode::parse("440000").expect("r"),
        );
        let mvdl = LicenceType::parse("mvdl").expect("t");
        let food = LicenceType::parse("food").expect("t");
        assert_eq!(
            net.recognition(&sh, &mvdl, &gdr),
            Recognition::Rule { from_all: true }
        );
        assert_eq!(
            net.recognition(&sh, &food, &gdr),
            Recognition::NotRecognised
        );
        assert_eq!(net.recognition(&gdr, &food, &gdr), Recognition::SameRegion);
    }

    fn check(mutate: impl FnOnce(&mut GenesisDocument), expected: &str) {
        let (mut doc, _) = sample();
        mutate(&mut doc);
        let err = Network::from_document(doc).expect_err("must be refused");
        assert!(
            err.to_string().contains(expected),
            "{err} does not contain {expected}"
        );
    }

    #[test]
    fn structural_rules() {
        check(|d| d.regions.push(d.regions[0].clone()), "defined twice");
        check(
            |d| d.departments.push(d.departments[0].clone()),
            "defined twice",
        );
        check(
            |d| d.departments[0].region = RegionCode::parse("110000").expect("r"),
            "not defined in regions",
        );
        check(
            |d| {
                d.departments[0]
                    .grants
                    .push(LicenceType::parse("nope").expect("t"))
            },
            "not defined in licence_types",
        );
        check(
            |d| d.departments[1].issuer_key = d.departments[0].issuer_key,
            "same key id",
        );
        check(
            |d| d.departments[1].node_peer_id = d.departments[0].node_peer_id.clone(),
            "named by two nodes",
        );
        check(|d| d.governance.quorum = 0, "quorum");
        check(|d| d.governance.quorum = 9, "quorum");
        // Half is not enough: two halves could each pass a record without a common signer.
        check(
            |d| {
                d.departments.push(d.departments[0].clone());
                d.departments[3].id = DepartmentId::parse("bj.transport").expect("id");
                d.departments[3].issuer_key = SecretKey::from_seed(&[77; 32]).public();
                d.departments[3].node_peer_id = "peer-77".into();
                d.governance.quorum = 2;
            },
            "quorum",
        );
        check(
            |d| d.licence_types[0].holder_fields.push("Bad Field".into()),
            "holder field",
        );
        check(|d| d.licence_types[0].validity_days_max = 0, "validity");
        check(
            |d| {
                d.licence_types[0]
                    .labels
                    .insert("nmae".into(), label("姓名", "Name"));
            },
            "not one of its holder_fields",
        );
        check(
            |d| {
                d.licence_types[0]
                    .labels
                    .insert("name".into(), label(" ", "Name"));
            },
            "holder field label",
        );
        check(
            |d| d.recognition[0].from = vec!["999999".into()],
            "not defined",
        );
        check(|d| d.recognition.push(d.recognition[0].clone()), "twice");
        check(|d| d.network = String::new(), "network name");
    }

    fn label(zh: &str, en: &str) -> FieldLabel {
        FieldLabel {
            zh: zh.into(),
            en: en.into(),
        }
    }

    /// Genesis files written before licence types had labels must load with the hash they
    /// were built with: the canonical bytes of a document without labels are unchanged.
    #[test]
    fn documents_without_labels_keep_their_hash() {
        let (doc, _) = sample();
        assert_eq!(
            doc.hash().to_hex(),
            "692cced1262b852669ab0d7aa60ca595a7c2d147995d3d27085cd864047eb4c3"
        );
        let bytes = String::from_utf8(doc.canonical_bytes()).expect("JSON");
        assert!(!bytes.contains("labels"), "{bytes}");
        let parsed: GenesisDocument = serde_json::from_str(&bytes).expect("parses");
        assert_eq!(parsed, doc);

        // Labels are part of the network's definition: they change the hash.
        let mut labelled = doc.clone();
        labelled.licence_types[0]
            .labels
            .insert("name".into(), label("姓名", "Name"));
        assert_ne!(labelled.hash(), doc.hash());
        let net = Network::from_document(labelled).expect("valid");
        let mvdl = net
            .licence_type(&LicenceType::parse("mvdl").expect("t"))
            .expect("mvdl");
        assert_eq!(mvdl.label("name"), Some(&label("姓名", "Name")));
        assert_eq!(mvdl.label("class"), None);
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let (doc, _) = sample();
        let h = doc.hash();
        assert_eq!(h, doc.clone().hash());
        let mut other = doc;
        other.network.push('x');
        assert_ne!(h, other.hash());
    }
}
