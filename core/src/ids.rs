//! Identifiers as validated newtypes.
//!
//! Every id that crosses a trust boundary (QR text, gossip, HTTP, genesis files) is parsed
//! into one of these types, so the rest of the code never sees an id that breaks the
//! rules below. Construction is the only validation point: there is no way to build an id
//! without going through `parse`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("department id {0:?} must be 3-64 characters: lowercase letters, digits, '_' and '-', in at least two parts separated by '.' (e.g. gd.transport)")]
    Department(String),
    #[error("region code {0:?} must be a 6-digit administrative division code (e.g. 440000)")]
    Region(String),
    #[error("licence type {0:?} must be 1-32 characters: lowercase letters, digits, '_' and '-', starting with a letter")]
    LicenceType(String),
    #[error("licence id {0:?} must be <department>:<type>:<serial> with a serial of 1-20 digits")]
    Licence(String),
    #[error("field name {0:?} must be 1-32 characters of a-z, 0-9 and '_'")]
    FieldName(String),
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $check:expr, $err:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses and validates; the only way to build this id.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    // Keep error messages bounded even for huge hostile inputs.
                    Err($err(s.chars().take(80).collect()))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A department, e.g. `gd.transport`: region prefix and department name, lowercase.
    DepartmentId,
    |s| {
        (3..=64).contains(&s.len())
            && s.split('.').count() >= 2
            && s.split('.').all(|p| !p.is_empty() && p.chars().all(is_word_char))
    },
    IdError::Department
);

string_id!(
    /// A 6-digit administrative division code (行政区划代码), e.g. `440000` for Guangdong.
    RegionCode,
    |s| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()),
    IdError::Region
);

string_id!(
    /// A licence type code defined in genesis, e.g. `mvdl` (机动车驾驶证).
    LicenceType,
    |s| {
        (1..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(is_word_char)
    },
    IdError::LicenceType
);

/// Longest field name in a credential, in bytes.
pub const FIELD_NAME_BYTES_MAX: usize = 32;

string_id!(
    /// The name of a holder or licence field, e.g. `id_number`: 1-32 characters of a-z,
    /// 0-9 and '_'. The one place this rule lives: credentials, genesis and the CLI all
    /// parse field names through it.
    FieldName,
    |s| {
        (1..=FIELD_NAME_BYTES_MAX).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    },
    IdError::FieldName
);

/// A licence id, unique network-wide by construction: `<department>:<type>:<serial>`.
///
/// Two departments cannot collide because the department is part of the id, and one
/// department cannot issue the same id twice because validation refuses a second issue.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LicenceId {
    department: DepartmentId,
    licence_type: LicenceType,
    serial: u64,
}

/// Serial numbers are printed zero-padded so that ids sort in issue order.
const SERIAL_WIDTH: usize = 8;

impl LicenceId {
    pub fn new(department: DepartmentId, licence_type: LicenceType, serial: u64) -> Self {
        Self {
            department,
            licence_type,
            serial,
        }
    }

    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::Licence(s.chars().take(80).collect());
        if s.len() > 128 {
            return Err(bad());
        }
        let mut parts = s.split(':');
        let (Some(d), Some(t), Some(n), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if n.is_empty() || n.len() > 20 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let serial = n.parse::<u64>().map_err(|_| bad())?;
        Ok(Self {
            department: DepartmentId::parse(d).map_err(|_| bad())?,
            licence_type: LicenceType::parse(t).map_err(|_| bad())?,
            serial,
        })
    }

    pub fn department(&self) -> &DepartmentId {
        &self.department
    }

    pub fn licence_type(&self) -> &LicenceType {
        &self.licence_type
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }
}

impl fmt::Display for LicenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{:0width$}",
            self.department,
            self.licence_type,
            self.serial,
            width = SERIAL_WIDTH
        )
    }
}

impl FromStr for LicenceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl Serialize for LicenceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LicenceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: std::fmt::Debug>(r: Result<T, IdError>, ok: bool) {
        assert_eq!(r.is_ok(), ok, "{r:?}");
    }

    #[test]
    fn department_ids() {
        check(DepartmentId::parse("gd.transport"), true);
        check(DepartmentId::parse("sh.market-reg"), true);
        check(DepartmentId::parse("transport"), false);
        check(DepartmentId::parse("GD.transport"), false);
        check(DepartmentId::parse("gd..transport"), false);
        check(DepartmentId::parse(".gd"), false);
        check(DepartmentId::parse(&"a.".repeat(40)), false);
    }

    #[test]
    fn region_codes() {
        check(RegionCode::parse("440000"), true);
        check(RegionCode::parse("44000"), false);
        check(RegionCode::parse("44000a"), false);
        check(RegionCode::parse("４４００００"), false);
    }

    #[test]
    fn licence_types() {
        check(LicenceType::parse("mvdl"), true);
        check(LicenceType::parse("food_business"), true);
        check(LicenceType::parse("1mvdl"), false);
        check(LicenceType::parse(""), false);
        check(LicenceType::parse(&"a".repeat(33)), false);
    }

    #[test]
    fn licence_ids_round_trip() {
        let id = LicenceId::parse("gd.transport:mvdl:00000042").expect("valid id");
        assert_eq!(id.serial(), 42);
        assert_eq!(id.department().as_str(), "gd.transport");
        assert_eq!(id.to_string(), "gd.transport:mvdl:00000042");
        assert_eq!(LicenceId::parse("gd.transport:mvdl:42"), Ok(id));
        check(LicenceId::parse("gd.transport:mvdl"), false);
        check(LicenceId::parse("gd.transport:mvdl:1:2"), false);
        check(LicenceId::parse("gd.transport:mvdl:-1"), false);
        check(
            LicenceId::parse("gd.transport:mvdl:99999999999999999999"),
            false,
        );
        check(LicenceId::parse("gd.transport:Mvdl:1"), false);
    }
}
