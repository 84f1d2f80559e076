//! The OpenAPI document (`ApiDoc`, served at `/openapi.json`) against the router and the
//! specification: it names exactly the routes the node serves, every error code, only
//! error statuses some code is answered with, and it is valid OpenAPI 3.1 according to an
//! independent validator. The document is read as JSON, as a client reads it, not through
//! utoipa's types.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use axum::http::StatusCode;
use huren_api::ErrorCode;
use serde_json::Value;
use utoipa::OpenApi;

use super::tests::fixture_with;
use super::{ApiDoc, ROUTES};

/// The token of scope All that `fixture_with` configures.
const TOKEN: &str = huren_testkit::TOKEN;

/// A value for each path parameter, so that a documented path becomes a request the
/// router matches. The asset is a real one: an unknown asset name is answered with
/// `not_found`, which would look like the fallback.
fn samples() -> [(&'static str, &'static str); 2] {
    [
        ("{id}", "gd.transport:mvdl:00000001"),
        ("{file}", crate::web::ASSETS[0].name),
    ]
}

/// The methods an OpenAPI path item may hold operations under.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the document serialises")
}

/// Every operation of the document: (METHOD, path) and its operation object.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut ops = BTreeMap::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (key, op) in item {
            if METHODS.contains(&key.as_str()) {
                ops.insert((key.to_uppercase(), path.clone()), op.clone());
            }
        }
    }
    ops
}

/// The status codes an operation declares.
fn declared_statuses(op: &Value) -> BTreeSet<u16> {
    op["responses"]
        .as_object()
        .expect("responses is an object")
        .keys()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("status {s} is not a number"))
        })
        .collect()
}

#[test]
fn routes_table_and_document_name_the_same_routes() {
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(listed.len(), ROUTES.len(), "a route is in ROUTES twice");
    let documented: BTreeSet<(String, String)> = operations(&document()).into_keys().collect();
    let undocumented: Vec<_> = listed.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&listed).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in ApiDoc: {undocumented:?}; in ApiDoc but not in ROUTES: {unserved:?}"
    );
}

/// Each documented operation reaches a handler: not the fallback (404 `not_found`), not
/// the wrong-method fallback (405), and with a status the operation declares. Sent once
/// without a token (department routes answer 401 from the token check, which wraps only
/// matched routes) and once with one, so that the handlers themselves answer.
#[tokio::test]
async fn every_documented_operation_reaches_a_handler_and_answers_a_declared_status() {
    let f = fixture_with("gd.transport", |_| {});
    for ((method, path), op) in operations(&document()) {
        let mut uri = path.clone();
        for (param, value) in samples() {
            uri = uri.replace(param, value);
        }
        assert!(
            !uri.contains('{'),
            "{method} {path}: a path parameter without a sample value in samples()"
        );
        let declared = declared_statuses(&op);
        for token in [None, Some(TOKEN)] {
            let (status, _, body) = f.send(&method, &uri, token, None).await;
            let code = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
            let what = format!(
                "{method} {uri} (token: {}) answered {status} {code:?}",
                token.is_some()
            );
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
            assert_ne!(
                code.as_deref(),
                Some(ErrorCode::NotFound.as_str()),
                "{what}: the router has no such route"
            );
            assert!(
                declared.contains(&status.as_u16()),
                "{what}, which the document does not declare (it declares {declared:?})"
            );
        }
    }
}

#[test]
fn error_code_schema_lists_every_code() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ErrorDetail"]["properties"]["code"]["$ref"], "#/components/schemas/ErrorCode",
        "ErrorDetail.code should refer to the ErrorCode schema"
    );
    let listed: BTreeSet<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .expect("the ErrorCode schema is an enum")
        .iter()
        .map(|v| v.as_str().expect("an error code is a string"))
        .collect();
    let all: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, all);
}

/// An error answer's status comes only from `ErrorCode::http_status`, so a declared error
/// response is true only if some code has its status; and the codes its description names
/// (in backquotes) must be codes with exactly that status.
#[test]
fn declared_error_responses_match_the_error_code_table() {
    let by_status = |s: u16| {
        ErrorCode::ALL
            .into_iter()
            .filter(move |c| c.http_status() == s)
    };
    for ((method, path), op) in operations(&document()) {
        for (status, response) in op["responses"].as_object().expect("responses") {
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            if schema != "#/components/schemas/ErrorBody" {
                continue;
            }
            let what = format!("{method} {path} {status}");
            let status: u16 = status.parse().expect("numeric status");
            assert!(
                by_status(status).next().is_some(),
                "{what}: no error code is answered with {status}"
            );
            let description = response["description"].as_str().unwrap_or_default();
            let named: Vec<&str> = description.split('`').skip(1).step_by(2).collect();
            assert!(
                !named.is_empty(),
                "{what}: names no error code: {description}"
            );
            for name in named {
                let code = ErrorCode::ALL
                    .into_iter()
                    .find(|c| c.as_str() == name)
                    .unwrap_or_else(|| panic!("{what}: `{name}` is not an error code"));
                assert_eq!(
                    code.http_status(),
                    status,
                    "{what}: `{name}` is answered with {}",
                    code.http_status()
                );
            }
        }
    }
}

/// Every `$ref` in the document points at something in it.
#[test]
fn every_reference_resolves() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = document();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty(), "the document refers to no schema at all");
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} points outside the document"));
        assert!(doc.pointer(pointer).is_some(), "{r} resolves to nothing");
    }
}

/// Validates the document with `openapi-spec-validator` (Python), a validator that
/// shares no code with utoipa. scripts/test.sh installs it; a machine without it fails
/// this test rather than passing it unchecked, unless HUREN_SKIP_OPENAPI_VALIDATOR=1.
#[test]
fn document_is_valid_openapi_3_1() {
    let doc = ApiDoc::openapi();
    let json = serde_json::to_string(&doc).expect("the document serialises");
    let version = serde_json::from_str::<Value>(&json).expect("json")["openapi"].clone();
    assert!(
        version.as_str().is_some_and(|v| v.starts_with("3.1.")),
        "the document claims OpenAPI {version}, not 3.1"
    );
    let installed = Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        if std::env::var("HUREN_SKIP_OPENAPI_VALIDATOR").as_deref() == Ok("1") {
            eprintln!(
                "note: HUREN_SKIP_OPENAPI_VALIDATOR=1: the OpenAPI document was not validated"
            );
            return;
        }
        panic!(
            "python3 with the openapi_spec_validator module is needed to validate the \
             OpenAPI document: run scripts/test.sh, which installs it, or set \
             HUREN_SKIP_OPENAPI_VALIDATOR=1 to skip this check"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, json).expect("write the document");
    // `--schema 3.1` rather than detection: the document must be checked as 3.1 even
    // if its version field were wrong (that is asserted above).
    let out = Command::new("python3")
        .args([
            "-m",
            "openapi_spec_validator",
            "--schema",
            "3.1",
            "--validation-errors",
            "all",
        ])
        .arg(&file)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "openapi-spec-validator rejects the document ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
