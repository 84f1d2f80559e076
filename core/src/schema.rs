//! OpenAPI schemas for the core types that travel in the HTTP API (feature `openapi`).
//!
//! The ids and hashes serialise as validated strings; their schema says so, with the rule
//! and an example, so that `/openapi.json` documents exactly what the client parses. This
//! module only describes types: it must never change how anything is encoded.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

fn string(description: &str, pattern: &str, example: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .examples([serde_json::Value::String(example.to_owned())])
        .into()
}

macro_rules! string_schema {
    ($t:ty, $description:expr, $pattern:expr, $example:expr) => {
        impl utoipa::PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                string($description, $pattern, $example)
            }
        }
        impl utoipa::ToSchema for $t {}
    };
}

string_schema!(
    crate::DepartmentId,
    "A department: region prefix and name, lowercase, at least two '.'-separated parts.",
    "^[a-z0-9_-]+(\\.[a-z0-9_-]+)+$",
    "gd.transport"
);
string_schema!(
    crate::RegionCode,
    "A 6-digit administrative division code (行政区划代码).",
    "^[0-9]{6}$",
    "440000"
);
string_schema!(
    crate::LicenceType,
    "A licence type code defined in genesis.",
    "^[a-z][a-z0-9_-]{0,31}$",
    "mvdl"
);
string_schema!(
    crate::LicenceId,
    "A licence id, `<department>:<type>:<serial>`; the serial is printed zero-padded to 8 digits.",
    "^[a-z0-9_.-]+:[a-z][a-z0-9_-]*:[0-9]{1,20}$",
    "gd.transport:mvdl:00000001"
);
string_schema!(
    crate::Hash32,
    "A SHA-256 digest in lowercase hex.",
    "^[0-9a-f]{64}$",
    "2b729a24f1c0d3e4a5b6c7d8e9f00112233445566778899aabbccddeeff00112"
);
string_schema!(
    crate::OfficerId,
    "A department officer's staff code.",
    "^[a-z0-9._-]{1,64}$",
    "officer-1"
);
