//! Issuance policy: what genesis says a department may put in a credential, written once.
//!
//! `draft` turns an issue request into the credential to sign, checking the rules genesis
//! sets for the issuer and the licence type: the type is defined, the issuer is granted
//! it, every holder field the type requires is present and not blank, the validity period
//! is within the type's maximum (`Network::validity_problem`, the same rule the ledger
//! applies to issue records), and the credential fits its encoding bounds. The node's
//! block producer and the CLI's offline issuing both call it, so an offline credential
//! can never break a rule the node would enforce.
//!
//! Pure: the time, the serial and the salt are passed in; nothing here reads a clock,
//! draws randomness or signs.

use std::collections::BTreeMap;

use crate::credential::{Credential, DecodeError, SALT_BYTES};
use crate::genesis::{Network, ValidityProblem};
use crate::ids::{DepartmentId, LicenceId, LicenceType};

/// What an officer asks for: the licence's facts and its validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub licence_type: LicenceType,
    pub holder: BTreeMap<String, String>,
    pub fields: BTreeMap<String, String>,
    /// Unix seconds; `None` means now.
    pub valid_from: Option<i64>,
    /// Unix seconds; `None` means `valid_from` plus `valid_days`.
    pub valid_until: Option<i64>,
    /// Days from `valid_from`; `None` means the type's maximum.
    pub valid_days: Option<u32>,
}

/// Why a request breaks the issuance policy. Nothing is signed for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{0} is not a department in genesis")]
    UnknownIssuer(DepartmentId),
    #[error(
        "licence type {licence_type} is not defined in genesis; defined types: {}",
        join(defined)
    )]
    UnknownType {
        licence_type: LicenceType,
        defined: Vec<LicenceType>,
    },
    #[error(
        "{department} may not issue {licence_type}: genesis grants it only {}",
        join(granted)
    )]
    NotGranted {
        department: DepartmentId,
        licence_type: LicenceType,
        granted: Vec<LicenceType>,
    },
    #[error("{licence_type} requires holder fields {}; missing: {}", required.join(", "), missing.join(", "))]
    MissingHolderFields {
        licence_type: LicenceType,
        required: Vec<String>,
        missing: Vec<String>,
    },
    #[error("validity {0}")]
    Validity(ValidityProblem),
    #[error("{0}")]
    Bounds(#[from] DecodeError),
}

fn join(items: &[impl std::fmt::Display]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The credential `issuer` may sign for `terms`, with licence number `serial`, issued at
/// `now` (unix seconds) with `salt`; or the first policy rule it breaks.
pub fn draft(
    net: &Network,
    issuer: &DepartmentId,
    terms: &Terms,
    now: i64,
    serial: u64,
    salt: [u8; SALT_BYTES],
) -> Result<Credential, PolicyError> {
    let dept = net
        .department(issuer)
        .ok_or_else(|| PolicyError::UnknownIssuer(issuer.clone()))?;
    let t = &terms.licence_type;
    let def = net
        .licence_type(t)
        .ok_or_else(|| PolicyError::UnknownType {
            licence_type: t.clone(),
            defined: net
                .document()
                .licence_types
                .iter()
                .map(|d| d.code.clone())
                .collect(),
        })?;
    if !net.is_granted(issuer, t) {
        return Err(PolicyError::NotGranted {
            department: issuer.clone(),
            licence_type: t.clone(),
            granted: dept.grants.clone(),
        });
    }
    let missing: Vec<String> = def
        .holder_fields
        .iter()
        .filter(|f| terms.holder.get(*f).is_none_or(|v| v.trim().is_empty()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(PolicyError::MissingHolderFields {
            licence_type: t.clone(),
            required: def.holder_fields.clone(),
            missing,
        });
    }
    let valid_from = terms.valid_from.unwrap_or(now);
    let valid_until = match terms.valid_until {
        Some(u) => u,
        None => {
            let days = i64::from(terms.valid_days.unwrap_or(def.validity_days_max));
            valid_from
                .checked_add(days.saturating_mul(86_400))
                .ok_or(PolicyError::Validity(ValidityProblem::OutOfRange))?
        }
    };
    if let Some(problem) = net.validity_problem(t, valid_from, valid_until) {
        return Err(PolicyError::Validity(problem));
    }
    let credential = Credential {
        issuer: issuer.clone(),
        licence_id: LicenceId::new(issuer.clone(), t.clone(), serial),
        region: dept.region.clone(),
        issued_at: now,
        not_before: valid_from,
        expires_at: valid_until,
        holder: terms.holder.clone(),
        fields: terms.fields.clone(),
        salt,
    };
    // Refuse what could not be read back before anyone spends a signature on it.
    credential.check_bounds()?;
    Ok(credential)
}

/// What a credential-changing record changes of the credential in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// 延续: a new period from now: to `valid_until`, or `valid_days` (default the type's
    /// maximum).
    Renew {
        valid_until: Option<i64>,
        valid_days: Option<u32>,
    },
    /// 补领 / 换证: the same facts and period, a new salt.
    Reissue,
    /// 变更 / 更正: these holder and licence fields replace the ones of the same name (an
    /// empty value removes a licence field; a required holder field cannot be removed).
    Amend {
        holder: BTreeMap<String, String>,
        fields: BTreeMap<String, String>,
    },
}

/// The terms a credential was issued on: its type, fields and period.
pub fn terms_of(c: &Credential) -> Terms {
    Terms {
        licence_type: c.licence_type().clone(),
        holder: c.holder.clone(),
        fields: c.fields.clone(),
        valid_from: Some(c.not_before),
        valid_until: Some(c.expires_at),
        valid_days: None,
    }
}

/// The credential `previous` becomes under `change`, issued at `now` with `salt`: the
/// same licence id, every policy rule of `draft` applied again.
pub fn redraft(
    net: &Network,
    previous: &Credential,
    change: &Change,
    now: i64,
    salt: [u8; SALT_BYTES],
) -> Result<Credential, PolicyError> {
    let mut terms = terms_of(previous);
    match change {
        Change::Renew {
            valid_until,
            valid_days,
        } => {
            terms.valid_from = Some(now);
            terms.valid_until = *valid_until;
            terms.valid_days = *valid_days;
        }
        Change::Reissue => {}
        Change::Amend { holder, fields } => {
            for (k, v) in holder {
                terms.holder.insert(k.clone(), v.clone());
            }
            for (k, v) in fields {
                if v.is_empty() {
                    terms.fields.remove(k);
                } else {
                    terms.fields.insert(k.clone(), v.clone());
                }
            }
        }
    }
    draft(
        net,
        &previous.issuer,
        &terms,
        now,
        previous.licence_id.serial(),
        salt,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::tests::sample;

    const NOW: i64 = 1_750_000_000;

    fn terms(t: &str, holder: &[(&str, &str)]) -> Terms {
        Terms {
            licence_type: LicenceType::parse(t).expect("type"),
            holder: holder
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            fields: BTreeMap::new(),
            valid_from: None,
            valid_until: None,
            valid_days: None,
        }
    }

    fn mvdl() -> Terms {
        terms(
            "mvdl",
            &[
                ("name", "张三"),
                ("id_number", "44010619900101123X"),
                ("class", "C1"),
            ],
        )
    }

    fn check(issuer: &str, t: Terms, expected: Result<(), &str>) {
        let net = Network::from_document(sample().0).expect("genesis");
        let issuer = DepartmentId::parse(issuer).expect("dept");
        let got = draft(&net, &issuer, &t, NOW, 7, [1; SALT_BYTES]);
        match (got, expected) {
            (Ok(c), Ok(())) => {
                assert_eq!(c.licence_id.serial(), 7);
                assert_eq!(c.issued_at, NOW);
                assert!(c.check_bounds().is_ok());
            }
            (Err(e), Err(needle)) => {
                assert!(e.to_string().contains(needle), "{e} lacks {needle:?}")
            }
            (got, expected) => panic!("got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn every_policy_rule_and_the_case_that_passes_it() {
        check("gd.transport", mvdl(), Ok(()));
        check(
            "gd.transport",
            terms("boat", &[]),
            Err("licence type boat is not defined in genesis; defined types: mvdl, food"),
        );
        check(
            "gd.transport",
            terms("food", &[("entity", "x")]),
            Err("gd.transport may not issue food: genesis grants it only mvdl"),
        );
        check("gd.market", terms("food", &[("entity", "x")]), Ok(()));
        check(
            "gd.transport",
            terms("mvdl", &[("name", "张三"), ("class", " ")]),
            Err("missing: id_number, class"),
        );
        let mut t = mvdl();
        t.valid_days = Some(3660);
        check("gd.transport", t.clone(), Ok(()));
        t.valid_days = Some(3661);
        check("gd.transport", t, Err("longer than the 3660 days"));
        let mut t = mvdl();
        t.valid_from = Some(NOW - 86_400);
        t.valid_until = Some(NOW - 86_400);
        check("gd.transport", t, Err("empty"));
        let mut t = mvdl();
        t.valid_from = Some(i64::MAX - 10);
        t.valid_days = Some(30);
        check("gd.transport", t, Err("out of range"));
        let mut t = mvdl();
        t.fields.insert("Bad".into(), "x".into());
        check("gd.transport", t, Err("field name"));
        check("nowhere.dept", mvdl(), Err("not a department in genesis"));
    }

    #[test]
    fn the_credential_carries_the_terms() {
        let net = Network::from_document(sample().0).expect("genesis");
        let issuer = DepartmentId::parse("gd.transport").expect("dept");
        let mut t = mvdl();
        t.valid_from = Some(NOW + 100);
        t.valid_days = Some(10);
        let c = draft(&net, &issuer, &t, NOW, 42, [3; SALT_BYTES]).expect("draft");
        assert_eq!(c.not_before, NOW + 100);
        assert_eq!(c.expires_at, NOW + 100 + 10 * 86_400);
        assert_eq!(c.region.as_str(), "440000");
        assert_eq!(c.holder, t.holder);
        assert_eq!(c.salt, [3; SALT_BYTES]);
    }
}
