//! The founders' TOML template and its conversion into a genesis document.
//!
//! Licence types are written as core's `LicenceTypeDef`, labels of their holder fields
//! included (`labels.name = { zh = "姓名", en = "Name" }`, see example.toml).

use std::path::Path;

use huren_core::genesis::{
    CheckpointRules, Department, GenesisDocument, GenesisError, Governance, LicenceTypeDef,
    Network, Observer, RecognitionRule, Region,
};
use huren_core::{DepartmentId, LicenceType, RegionCode};
use serde::Deserialize;

use crate::keys::{self, KeyFileError};

const TEMPLATE_BYTES_MAX: usize = 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDepartment {
    pub id: DepartmentId,
    pub name: String,
    pub region: RegionCode,
    pub grants: Vec<LicenceType>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateObserver {
    pub name: String,
    pub region: RegionCode,
}

/// What the founders write by hand: everything in genesis except keys and the date.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub network: String,
    pub governance: Governance,
    /// Witness quorum and bundle age limits; `CheckpointRules::DEFAULT` when absent.
    #[serde(default)]
    pub checkpoints: Option<CheckpointRules>,
    /// The protocol version the network starts at; the newest this release knows
    /// (`ledger::PROTOCOL_VERSION`) when absent, so a new network has every record kind.
    #[serde(default)]
    pub protocol_version: Option<u32>,
    pub regions: Vec<Region>,
    pub licence_types: Vec<LicenceTypeDef>,
    pub departments: Vec<TemplateDepartment>,
    #[serde(default)]
    pub observers: Vec<TemplateObserver>,
    #[serde(default)]
    pub recognition: Vec<RecognitionRule>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template is {0} bytes; at most {TEMPLATE_BYTES_MAX}")]
    TooLarge(usize),
    #[error("template is not valid: {0}")]
    Toml(String),
    #[error("keys for {name}: {source}")]
    Keys { name: String, source: KeyFileError },
    #[error("{path} names {found}, but the template expects {expected}")]
    KeyName {
        path: String,
        found: String,
        expected: String,
    },
    #[error(transparent)]
    Genesis(#[from] GenesisError),
}

impl Template {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.len() > TEMPLATE_BYTES_MAX {
            return Err(TemplateError::TooLarge(text.len()));
        }
        toml::from_str(text).map_err(|e| TemplateError::Toml(e.to_string()))
    }

    /// Names whose keys genesis needs: every department id and every observer name.
    pub fn node_names(&self) -> Vec<String> {
        self.departments
            .iter()
            .map(|d| d.id.to_string())
            .chain(self.observers.iter().map(|o| o.name.clone()))
            .collect()
    }
}

/// Builds and validates a genesis document from a template and the `*.public.json` files
/// in `keys_dir`.
pub fn build(
    tpl: &Template,
    keys_dir: &Path,
    created_at: i64,
) -> Result<GenesisDocument, TemplateError> {
    let public = |name: &str| -> Result<keys::PublicFile, TemplateError> {
        let path = keys::public_path(keys_dir, name);
        let p = keys::read_public(&path).map_err(|source| TemplateError::Keys {
            name: name.into(),
            source,
        })?;
        if p.name != name {
            return Err(TemplateError::KeyName {
                path: path.display().to_string(),
                found: p.name,
                expected: name.into(),
            });
        }
        Ok(p)
    };
    let mut departments = Vec::new();
    for d in &tpl.departments {
        let p = public(d.id.as_str())?;
        departments.push(Department {
            id: d.id.clone(),
            name: d.name.clone(),
            region: d.region.clone(),
            grants: d.grants.clone(),
            issuer_key: p.issuer_public,
            node_peer_id: p.node_peer_id,
        });
    }
    let mut observers = Vec::new();
    for o in &tpl.observers {
        let p = public(&o.name)?;
        observers.push(Observer {
            name: o.name.clone(),
            region: o.region.clone(),
            node_peer_id: p.node_peer_id,
        });
    }
    let doc = GenesisDocument {
        network: tpl.network.clone(),
        created_at,
        regions: tpl.regions.clone(),
        licence_types: tpl.licence_types.clone(),
        departments,
        observers,
        recognition: tpl.recognition.clone(),
        governance: tpl.governance.clone(),
        checkpoints: tpl.checkpoints,
        protocol_version: Some(
            tpl.protocol_version
                .unwrap_or(huren_core::ledger::PROTOCOL_VERSION),
        ),
    };
    Network::from_document(doc.clone())?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(edit: impl FnOnce(String) -> String, expected: &str) {
        let dir = tempfile::tempdir().expect("tmp");
        let text = edit(crate::EXAMPLE_TEMPLATE.to_owned());
        let result = Template::parse(&text).and_then(|tpl| {
            for n in tpl.node_names() {
                let _ = keys::generate(&n, dir.path());
            }
            build(&tpl, dir.path(), 1)
        });
        let err = result.expect_err("must be refused").to_string();
        assert!(
            err.contains(expected),
            "{err:?} does not contain {expected:?}"
        );
    }

    #[test]
    fn template_errors_are_clear() {
        check(
            |t| t.replacen("region = \"440000\"", "region = \"110000\"", 1),
            "not defined in regions",
        );
        check(
            |t| t.replacen("grants = [\"mvdl\"]", "grants = [\"boat\"]", 1),
            "not defined in licence_types",
        );
        check(
            |t| t + "\n[[regions]]\ncode = \"440000\"\nname = \"again\"\n",
            "defined twice",
        );
        check(|t| t.replacen("network =", "netwrk =", 1), "unknown field");
        check(
            |t| t.replacen("code = \"440000\"", "code = \"44\"", 1),
            "6-digit",
        );
        check(
            |t| t.replacen("labels.class =", "labels.klass =", 1),
            "label is given for \"klass\", which is not one of its holder_fields",
        );
        check(
            |t| t.replacen("zh = \"姓名\"", "zh = \"\"", 1),
            "holder field label",
        );
        check(
            |t| t.replacen("zh = \"姓名\"", "zh = \"姓名\", fr = \"Nom\"", 1),
            "unknown field",
        );
    }

    #[test]
    fn the_example_types_label_every_holder_field() {
        let tpl = Template::parse(crate::EXAMPLE_TEMPLATE).expect("tpl");
        for t in &tpl.licence_types {
            for f in &t.holder_fields {
                assert!(t.label(f).is_some(), "{}: no label for {f}", t.code);
            }
        }
        let mvdl = &tpl.licence_types[0];
        let name = mvdl.label("id_number").expect("label");
        assert_eq!((name.zh.as_str(), name.en.as_str()), ("身份证号", "ID No."));
    }

    #[test]
    fn missing_or_wrong_key_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let tpl = Template::parse(crate::EXAMPLE_TEMPLATE).expect("tpl");
        let err = build(&tpl, dir.path(), 1).expect_err("no keys").to_string();
        assert!(err.contains("keys for"), "{err}");
        for n in tpl.node_names() {
            keys::generate(&n, dir.path()).expect("keygen");
        }
        let first = tpl.node_names()[0].clone();
        let path = keys::public_path(dir.path(), &first);
        std::fs::write(
            &path,
            "{\"name\":\"x\",\"issuer_public\":\"zz\",\"node_peer_id\":\"p\"}",
        )
        .expect("write");
        let err = build(&tpl, dir.path(), 1).expect_err("bad key").to_string();
        assert!(err.contains("public key"), "{err}");
    }
}
