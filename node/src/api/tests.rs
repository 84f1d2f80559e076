//! Router tests with `oneshot`: every endpoint, its success and its errors, against a real
//! sled store in a temporary directory and the real block producer.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::config::Config;

pub(crate) struct Fixture {
    pub router: axum::Router,
    /// The node's store, for faults tests inject below the API.
    pub store: std::sync::Arc<crate::store::Store>,
    /// The API's state, for tests that serve it on a real socket.
    pub state: super::AppState,
    /// The founded network (keys, genesis, the node's data directory), kept while the
    /// router runs.
    pub dir: huren_testkit::Founded,
}

const TOKEN: &str = huren_testkit::TOKEN;
const ISSUE_ONLY: &str = huren_testkit::ISSUE_TOKEN;
const OTHER_DEPT: &str = "test-token-other";

/// A gd.transport node (or an observer when `department` is empty), in the example
/// network the test kit founds, with the kit's two officer tokens.
pub(crate) fn fixture_with(department: &str, tweak: impl FnOnce(&mut Config)) -> Fixture {
    fixture_with_clock(department, crate::clock::system(), tweak)
}

/// `fixture_with`, on `clock`.
pub(crate) fn fixture_with_clock(
    department: &str,
    clock: crate::clock::SharedClock,
    tweak: impl FnOnce(&mut Config),
) -> Fixture {
    let founded = huren_testkit::Founded::example().expect("founded network");
    let name = if department.is_empty() {
        "sh.observer"
    } else {
        department
    };
    let text = founded
        .config_text(
            name,
            &huren_testkit::NodeOptions {
                region: Some("440000".into()),
                limits: "batch_window_ms = 1\nbatch_licences_max = 5".into(),
                ..Default::default()
            },
        )
        .expect("config");
    let mut cfg: Config = toml::from_str(&text).expect("the kit's config parses");
    tweak(&mut cfg);
    let a = crate::node::assemble_with_clock(&cfg, clock).expect("assemble");
    Fixture {
        store: a.store.clone(),
        state: a.state.clone(),
        router: super::router(a.state),
        dir: founded,
    }
}

fn fixture() -> Fixture {
    fixture_with("gd.transport", |_| {})
}

impl Fixture {
    /// Sends a request; returns status, headers and the raw body.
    pub(crate) async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send_request(req.body(body).expect("request")).await
    }

    async fn send_request(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.expect("response");
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .expect("body");
        (status, headers, bytes.to_vec())
    }

    /// Like `send`, with the body as JSON (or as a JSON string when it is not JSON).
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, bytes) = self.send(method, uri, token, body).await;
        (status, json_or_text(&bytes))
    }

    async fn raw(&self, req: Request<Body>) -> (StatusCode, Value) {
        let (status, _, bytes) = self.send_request(req).await;
        (status, json_or_text(&bytes))
    }

    async fn issue(&self) -> Value {
        let (s, v) = self
            .call("POST", "/v1/licences", Some(TOKEN), Some(driving()))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }

    async fn verify(&self, qr: &str) -> Value {
        let (s, v) = self
            .call("POST", "/v1/verify", None, Some(json!({ "qr": qr })))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }
}

fn json_or_text(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn driving() -> Value {
    json!({
        "licence_type": "mvdl",
        "holder": {"name": "张三", "id_number": "44010619900101123X", "class": "C1"},
        "valid_days": 2190
    })
}

fn assert_error(status: StatusCode, v: &Value, expected_status: StatusCode, code: &str) {
    assert_eq!(status, expected_status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

#[tokio::test]
async fn issue_then_lifecycle_and_verify() {
    let f = fixture();
    let v = f.issue().await;
    let id = v["licence_id"].as_str().expect("id").to_owned();
    let qr = v["qr"].as_str().expect("qr").to_owned();
    assert!(id.starts_with("gd.transport:mvdl:"));
    assert_eq!(v["block"]["height"], 1);
    assert_eq!(v["png"], format!("/v1/licences/{id}/qr.png"));

    let r = f.verify(&qr).await;
    assert_eq!(r["verdict"], "valid", "{r}");
    assert_eq!(r["licence"]["holder"]["name"], "张三");
    // The clerk's labels come from the licence type in genesis.
    assert_eq!(
        r["licence"]["labels"]["id_number"],
        json!({"zh": "身份证号", "en": "ID No."})
    );
    assert_eq!(r["ledger"]["status"]["status"], "active");

    let (s, st) = f
        .call("GET", &format!("/v1/licences/{id}"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(st["status"]["status"], "active");
    // The public status carries no personal data.
    assert!(!st.to_string().contains("张三"));
    assert!(!st.to_string().contains("44010619900101123X"));

    let (s, v) = f
        .call(
            "POST",
            &format!("/v1/licences/{id}/suspend"),
            Some(TOKEN),
            Some(json!({"reason": "penalty"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(f.verify(&qr).await["reason"], "suspended");

    let (s, _) = f
        .call(
            "POST",
            &format!("/v1/licences/{id}/reinstate"),
            Some(TOKEN),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(f.verify(&qr).await["verdict"], "valid");

    let (s, _) = f
        .call(
            "POST",
            &format!("/v1/licences/{id}/revoke"),
            Some(TOKEN),
            Some(json!({"reason": "penalty"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = f.verify(&qr).await;
    assert_eq!(
        (r["verdict"].as_str(), r["reason"].as_str()),
        (Some("invalid"), Some("revoked"))
    );

    // Revocation is final.
    let (s, v) = f
        .call(
            "POST",
            &format!("/v1/licences/{id}/reinstate"),
            Some(TOKEN),
            Some(json!({})),
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "already_revoked");
    let (s, v) = f
        .call(
            "POST",
            &format!("/v1/licences/{id}/revoke"),
            Some(TOKEN),
            Some(json!({"reason": "withdrawn"})),
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "already_revoked");
    assert_eq!(f.verify(&qr).await["reason"], "revoked");

    // The QR PNG of the issued licence decodes back to the same text.
    let req = Request::get(format!("/v1/licences/{id}/qr.png"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("req");
    let resp = f.router.clone().oneshot(req).await.expect("resp");
    assert_eq!(resp.status(), StatusCode::OK);
    let png = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .expect("png");
    assert_eq!(huren_render::qr::decode_image(&png).expect("decode"), qr);
}

#[tokio::test]
async fn auth_errors() {
    let f = fixture();
    let (s, v) = f.call("POST", "/v1/licences", None, Some(driving())).await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, v) = f
        .call("POST", "/v1/licences", Some("wrong"), Some(driving()))
        .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "unauthorized");
    let id = f.issue().await["licence_id"]
        .as_str()
        .expect("id")
        .to_owned();
    // An issue-only officer may not revoke.
    let (s, v) = f
        .call(
            "POST",
            &format!("/v1/licences/{id}/revoke"),
            Some(ISSUE_ONLY),
            Some(json!({"reason": "penalty"})),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "insufficient_scope");
    // Another department's licence.
    let (s, v) = f
        .call(
            "POST",
            "/v1/licences/sh.transport:mvdl:1/revoke",
            Some(TOKEN),
            Some(json!({"reason": "penalty"})),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "other_department");
    // A type genesis does not grant to gd.transport.
    let body = json!({"licence_type": "food", "holder": {"entity": "x", "credit_code": "y"}});
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(body))
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "type_not_granted");
    let _ = OTHER_DEPT;
}

#[tokio::test]
async fn body_errors() {
    let f = fixture();
    // Not JSON.
    let req = Request::post("/v1/licences")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .expect("req");
    let (s, v) = f.raw(req).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "malformed_body");
    // Server-owned fields cannot be set.
    let mut body = driving();
    body["licence_id"] = json!("gd.transport:mvdl:1");
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(body))
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    let mut body = driving();
    body["officer"] = json!("someone-else");
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(body))
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    // Missing required holder field.
    let body = json!({"licence_type": "mvdl", "holder": {"name": "李四"}});
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(body))
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_licence");
    // Validity longer than genesis allows.
    let mut body = driving();
    body["valid_days"] = json!(4000);
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(body))
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "bad_validity");
    // Bad time format.
    let mut body = driving();
    body["valid_from"] = json!("yesterday");
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(body))
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_time");
    // Oversized body.
    let mut body = driving();
    body["holder"]["name"] = json!("x".repeat(5 * 1024 * 1024));
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(body))
        .await;
    assert_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    // Unknown licence: suspend, status.
    let (s, v) = f
        .call(
            "POST",
            "/v1/licences/gd.transport:mvdl:999/suspend",
            Some(TOKEN),
            Some(json!({"reason": "other"})),
        )
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "licence_not_found");
    let (s, v) = f
        .call("GET", "/v1/licences/gd.transport:mvdl:999", None, None)
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "licence_not_found");
    let (s, v) = f.call("GET", "/v1/licences/not-an-id", None, None).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_licence_id");
    let (s, v) = f
        .call(
            "POST",
            "/v1/licences/gd.transport:mvdl:1/suspend",
            Some(TOKEN),
            Some(json!({"reason": "because"})),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    // Nothing of the above wrote a block.
    let (_, chains) = f.call("GET", "/v1/chains", None, None).await;
    let gd = chains["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .find(|c| c["department"] == "gd.transport")
        .cloned()
        .expect("gd");
    assert_eq!(gd["height"], 0, "{chains}");
    // Unknown route, same error shape.
    let (s, v) = f.call("GET", "/v2/nothing", None, None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn batch_import() {
    let f = fixture();
    let bad = json!({"licence_type": "mvdl", "holder": {"name": "缺字段"}});
    let old = json!({"licence_type": "mvdl", "holder": {"name": "王五", "id_number": "310101198001011234", "class": "A1"},
                     "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2026-01-01T00:00:00Z"});
    let body = json!({"licences": [driving(), bad, old, driving()]});
    let (s, v) = f
        .call("POST", "/v1/licences:batch", Some(TOKEN), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = v["results"].as_array().expect("results");
    assert_eq!(r.len(), 4);
    assert_eq!(
        r.iter()
            .map(|x| x["ok"].as_bool().expect("ok"))
            .collect::<Vec<_>>(),
        vec![true, false, true, true]
    );
    assert_eq!(r[1]["error"]["code"], "invalid_licence");
    // All good ones in one block.
    let (_, chains) = f.call("GET", "/v1/chains", None, None).await;
    let gd = chains["chains"]
        .as_array()
        .expect("chains")
        .iter()
        .find(|c| c["department"] == "gd.transport")
        .cloned()
        .expect("gd");
    assert_eq!(gd["height"], 1, "{chains}");
    // The licence count (kept in memory, not scanned) matches.
    let (_, health) = f.call("GET", "/healthz", None, None).await;
    assert_eq!(health["licences"], 3, "{health}");
    // The imported old licence has expired.
    let qr = r[2]["qr"].as_str().expect("qr");
    assert_eq!(f.verify(qr).await["reason"], "expired");
    // Too many in one request.
    let body = json!({"licences": vec![driving(); 6]});
    let (s, v) = f
        .call("POST", "/v1/licences:batch", Some(TOKEN), Some(body))
        .await;
    assert_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large");
}

#[tokio::test]
async fn verify_inputs() {
    let f = fixture();
    let r = f.verify("garbage").await;
    assert_eq!(
        (r["verdict"].as_str(), r["reason"].as_str()),
        (Some("undetermined"), Some("undecodable"))
    );
    // A correctly signed credential that is not on the ledger, issued "now": not yet seen.
    let qr = f.issue().await["qr"].as_str().expect("qr").to_owned();
    let mut chars: Vec<char> = qr.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    assert_ne!(f.verify(&tampered).await["verdict"], "valid");
    // Image upload.
    let png = huren_render::qr::png(&qr, 6).expect("png");
    let boundary = "XBOUNDARYX";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"qr.png\"\r\nContent-Type: image/png\r\n\r\n").into_bytes();
    body.extend_from_slice(&png);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::post("/v1/verify")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("req");
    let (s, v) = f.raw(req).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "valid", "{v}");
    // Malformed verify body.
    let (s, v) = f
        .call("POST", "/v1/verify", None, Some(json!({"text": "x"})))
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
}

/// Credentials the ledger does not hold go through the batched signature check: many at
/// once, genuine and forged mixed, each gets its own verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_path_in_batches() {
    let f = std::sync::Arc::new(fixture());
    f.issue().await; // the department's chain has begun
    let key_path = f.dir.issuer_key("gd.transport");
    let key = huren_genesis::keys::read_issuer_key(&key_path)
        .expect("issuer key")
        .1;
    let dept = huren_core::DepartmentId::parse("gd.transport").expect("dept");
    let now = crate::clock::system().now_secs();
    let tasks: Vec<_> = (0..120u64)
        .map(|i| {
            let credential = huren_core::Credential {
                issuer: dept.clone(),
                licence_id: huren_core::LicenceId::new(
                    dept.clone(),
                    huren_core::LicenceType::parse("mvdl").expect("type"),
                    900_000 + i,
                ),
                region: huren_core::RegionCode::parse("440000").expect("region"),
                issued_at: now,
                not_before: now,
                expires_at: now + 86_400,
                holder: [
                    ("name", "张三"),
                    ("id_number", "44010619900101123X"),
                    ("class", "C1"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
                fields: Default::default(),
                salt: [i as u8; 16],
            };
            let signed = credential.sign(&key).expect("sign");
            let forged = i % 5 == 2;
            let qr = if forged {
                let mut cose = signed.cose.clone();
                let last = cose.len() - 1;
                cose[last] ^= 0x10; // a bit of the signature
                huren_core::credential::cose_to_qr(&cose)
            } else {
                signed.qr_text
            };
            let f = f.clone();
            tokio::spawn(async move { (forged, f.verify(&qr).await) })
        })
        .collect();
    for t in tasks {
        let (forged, v) = t.await.expect("task");
        let expected = if forged {
            ("invalid", "bad_signature")
        } else {
            ("undetermined", "not_yet_seen")
        };
        assert_eq!(
            (
                v["verdict"].as_str().unwrap_or(""),
                v["reason"].as_str().unwrap_or("")
            ),
            expected,
            "{v}"
        );
    }
    let (_, metrics) = f.call("GET", "/metrics", None, None).await;
    let metrics = metrics.as_str().expect("text").to_owned();
    assert!(
        metrics.contains("huren_verify_signatures_checked_total 120"),
        "{metrics}"
    );
}

#[tokio::test]
async fn rate_limit_and_public_routes() {
    let f = fixture_with("gd.transport", |c| c.limits.public_requests_per_minute = 3);
    for _ in 0..3 {
        let (s, _) = f.call("GET", "/v1/chains", None, None).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, v) = f.call("GET", "/v1/chains", None, None).await;
    assert_error(s, &v, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Health, metrics and the OpenAPI document are not rate-limited.
    let (s, v) = f.call("GET", "/healthz", None, None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, v) = f.call("GET", "/metrics", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v
        .as_str()
        .expect("text")
        .contains("huren_api_rate_limited_total 1"));
    let (s, v) = f.call("GET", "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/v1/licences",
        "/v1/licences:batch",
        "/v1/verify",
        "/v1/licences/{id}/revoke",
        "/v1/chains",
    ] {
        assert!(v["paths"][path].is_object(), "{path} missing from OpenAPI");
    }
}

#[tokio::test]
async fn observer_issues_nothing() {
    let f = fixture_with("", |_| {});
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(driving()))
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "observer_node");
    let _ = &f.dir;
}

/// The not-yet-seen window, on a node whose clock the test moves: a correctly signed
/// credential the issuer's chain does not hold is "not yet seen" until the chain has a
/// block newer than its issue time plus the allowed skew, and "not on ledger" after.
#[tokio::test]
async fn not_yet_seen_turns_not_on_ledger_once_the_chain_has_moved_past_it() {
    use crate::clock::{Clock, ManualClock};
    use huren_core::issuance::{draft, Terms};
    let t0_ms = 1_800_000_000_000;
    let clock = ManualClock::at(t0_ms);
    let f = fixture_with_clock("gd.transport", clock.clone(), |_| {});
    let issued = f.issue().await; // the chain's head is now at t0
    assert_eq!(
        f.verify(issued["qr"].as_str().expect("qr")).await["verdict"],
        "valid"
    );
    let key = huren_genesis::keys::read_issuer_key(&f.dir.issuer_key("gd.transport"))
        .expect("issuer key")
        .1;
    let net = f.dir.network().expect("genesis");
    let dept = huren_core::DepartmentId::parse("gd.transport").expect("dept");
    let terms = Terms {
        licence_type: huren_core::LicenceType::parse("mvdl").expect("type"),
        holder: [("name", "王五"), ("id_number", "x"), ("class", "C1")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        fields: Default::default(),
        valid_from: None,
        valid_until: None,
        valid_days: Some(30),
    };
    // Signed by the department's key (a backup of it, say) but never recorded.
    let unrecorded = draft(&net, &dept, &terms, clock.now_secs(), 999, [4; 16])
        .expect("draft")
        .sign(&key)
        .expect("sign")
        .qr_text;
    let reason = |v: &Value| v["reason"].as_str().unwrap_or("valid").to_owned();
    assert_eq!(reason(&f.verify(&unrecorded).await), "not_yet_seen");
    // Just inside the window, the chain moves on: still not yet seen.
    let skew = huren_core::validate::FUTURE_SKEW_MS_MAX;
    clock.advance(std::time::Duration::from_millis(skew));
    f.issue().await;
    assert_eq!(reason(&f.verify(&unrecorded).await), "not_yet_seen");
    // A block newer than its issue time plus the skew: the issuer would have recorded it.
    clock.advance(std::time::Duration::from_secs(1));
    f.issue().await;
    assert_eq!(reason(&f.verify(&unrecorded).await), "not_on_ledger");
    // The licences that are on the ledger stay valid meanwhile.
    assert_eq!(
        f.verify(issued["qr"].as_str().expect("qr")).await["verdict"],
        "valid"
    );
}

/// A clock set back behind the chain's head: issuing answers 503 `clock_behind` with a
/// metric, never a 500, and nothing is signed; once the clock has caught up the node
/// issues again. A small step back (time synchronisation) signs at the head's time.
#[tokio::test]
async fn a_clock_set_back_refuses_to_sign_until_it_has_caught_up() {
    use crate::clock::ManualClock;
    let t0_ms = 1_800_000_000_000;
    let clock = ManualClock::at(t0_ms);
    let f = fixture_with_clock("gd.transport", clock.clone(), |_| {});
    f.issue().await;
    // A step of half a second back: the chain keeps its time, issuing goes on.
    clock.set_wall_ms(t0_ms - 500);
    f.issue().await;
    // Ten minutes back: refused, clearly, and counted.
    clock.set_wall_ms(t0_ms - 10 * 60 * 1000);
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(driving()))
        .await;
    assert_error(s, &v, StatusCode::SERVICE_UNAVAILABLE, "clock_behind");
    let (_, _, metrics) = f.send("GET", "/metrics", None, None).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("huren_producer_clock_behind_total 1"),
        "{metrics}"
    );
    let (_, chains) = f.call("GET", "/v1/chains", None, None).await;
    let height = |c: &Value| {
        c["chains"]
            .as_array()
            .and_then(|a| a.iter().find(|d| d["department"] == "gd.transport"))
            .map(|d| d["height"].clone())
    };
    assert_eq!(height(&chains), Some(json!(2)), "nothing signed: {chains}");
    // The clock catches up: the node signs again, after its head.
    clock.set_wall_ms(t0_ms + 1);
    let issued = f.issue().await;
    assert_eq!(issued["block"]["height"], 3);
    // A window whose clock is two minutes slow still takes the fresh licence.
    clock.set_wall_ms(t0_ms - 2 * 60 * 1000);
    let v = f.verify(issued["qr"].as_str().expect("qr")).await;
    assert_eq!(v["verdict"], "valid", "{v}");
}

fn image_request(png: &[u8]) -> Request<Body> {
    let boundary = "XBOUNDARYX";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"photo.png\"\r\nContent-Type: image/png\r\n\r\n").into_bytes();
    body.extend_from_slice(png);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::post("/v1/verify")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("req")
}

/// A flood of photos to verify does not starve issuance: at most so many decode at once,
/// a few wait, the rest get 503 at once; meanwhile officers issue as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_goes_on_while_verify_is_flooded_with_photos() {
    let f = std::sync::Arc::new(fixture_with("gd.transport", |c| {
        c.limits.image_decodes_max = 1;
        c.limits.image_queue_max = 2;
        c.limits.image_queue_wait_ms = 50;
    }));
    // A noisy 2400 × 2000 photo with no QR in it: the costliest kind to search.
    let mut seed = 7u32;
    let photo = image::GrayImage::from_fn(2400, 2000, |_, _| {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        image::Luma([(seed >> 24) as u8])
    });
    let mut png = Vec::new();
    photo
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let png = std::sync::Arc::new(png);
    let flood: Vec<_> = (0..24)
        .map(|_| {
            let (f, png) = (f.clone(), png.clone());
            tokio::spawn(async move { f.raw(image_request(&png)).await })
        })
        .collect();
    // Officers issue while the photos are read.
    for _ in 0..3 {
        f.issue().await;
    }
    let mut answered = 0;
    let mut refused = 0;
    for h in flood {
        let (s, v) = h.await.expect("join");
        match s {
            StatusCode::OK => {
                assert_eq!(v["reason"], "undecodable", "{v}");
                answered += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(v["error"]["code"], "unavailable", "{v}");
                refused += 1;
            }
            other => panic!("{other}: {v}"),
        }
    }
    assert!(answered >= 1, "some photos were read");
    assert!(
        refused >= 1,
        "the rest were refused, not queued without bound"
    );
    let (_, _, metrics) = f.send("GET", "/metrics", None, None).await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(&format!("huren_verify_images_refused_total {refused}")),
        "{metrics}"
    );
}

/// A flush (fsync) that fails after the block's transaction: the officer gets a 500, the
/// producer stops (no retry may issue the licence a second time, no later block may be
/// built on a block whose durability is unknown), and says so until the node restarts.
#[tokio::test]
async fn a_failed_flush_stops_issuing_until_restart() {
    let f = fixture();
    f.issue().await;
    f.store.fail_next_flush();
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(driving()))
        .await;
    assert_error(s, &v, StatusCode::INTERNAL_SERVER_ERROR, "internal");
    for _ in 0..2 {
        let (s, v) = f
            .call("POST", "/v1/licences", Some(TOKEN), Some(driving()))
            .await;
        assert_error(s, &v, StatusCode::SERVICE_UNAVAILABLE, "producer_stopped");
    }
    let (s, v) = f
        .call(
            "POST",
            "/v1/licences/gd.transport:mvdl:00000001/revoke",
            Some(TOKEN),
            Some(json!({"reason": "penalty"})),
        )
        .await;
    assert_error(s, &v, StatusCode::SERVICE_UNAVAILABLE, "producer_stopped");
    let (_, _, metrics) = f.send("GET", "/metrics", None, None).await;
    assert!(
        String::from_utf8_lossy(&metrics).contains("huren_producer_stopped 1"),
        "alertable"
    );
    // Verification goes on: the first licence is still good.
    let (_, st) = f
        .call("GET", "/v1/licences/gd.transport:mvdl:00000001", None, None)
        .await;
    assert_eq!(st["status"]["status"], "active", "{st}");
}

/// The block prepared while the one before is written (the producer's pipeline) is built
/// on a block that is not durable yet: when that one's flush fails, the prepared block is
/// dropped unwritten and unpublished, its request is refused, and the signing record never
/// reaches either height.
#[tokio::test]
async fn a_block_signed_ahead_of_a_failed_flush_is_never_written() {
    let f = fixture();
    f.issue().await;
    let metric = |text: &[u8], name: &str| -> Option<u64> {
        String::from_utf8_lossy(text)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
            .and_then(|v| v.trim().parse().ok())
    };
    // Waits until the producer has signed `n` blocks, written or not.
    let signed = |n: u64| {
        let f = &f;
        async move {
            loop {
                let (_, _, m) = f.send("GET", "/metrics", None, None).await;
                if metric(&m, "huren_producer_blocks_signed_total") == Some(n) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    };
    // Block 2's flush waits for the test, then fails.
    let release = f.store.hold_next_flush();
    f.store.fail_next_flush();
    let (first, second, ()) = tokio::join!(
        f.call("POST", "/v1/licences", Some(TOKEN), Some(driving())),
        async {
            // Block 2 is with the committer once it is signed.
            signed(2).await;
            f.call("POST", "/v1/licences", Some(TOKEN), Some(driving()))
                .await
        },
        async {
            // Block 3 is signed on block 2 while block 2 is still being written.
            signed(3).await;
            release.send(()).expect("the flush waits");
        },
    );
    assert_error(
        first.0,
        &first.1,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
    );
    assert_error(
        second.0,
        &second.1,
        StatusCode::SERVICE_UNAVAILABLE,
        "producer_stopped",
    );
    let dept = huren_core::DepartmentId::parse("gd.transport").expect("department");
    assert!(
        f.store.block_at(&dept, 3).expect("read").is_none(),
        "the block signed ahead was never written"
    );
    let (_, _, m) = f.send("GET", "/metrics", None, None).await;
    assert_eq!(metric(&m, "huren_producer_blocks_signed_total"), Some(3));
    assert_eq!(
        metric(&m, "huren_ledger_blocks_produced_total"),
        Some(1),
        "only block 1 was acknowledged and published"
    );
    assert_eq!(metric(&m, "huren_producer_stopped"), Some(1));
    // The licence the third block would have issued does not exist.
    let (s, _) = f
        .call("GET", "/v1/licences/gd.transport:mvdl:00000003", None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The signing record stayed at block 1: neither block 2 (unknown on disk) nor block
    // 3 (never written) left the process.
    let record = std::fs::read_to_string(crate::signing::record_path(
        &f.dir.issuer_key("gd.transport"),
    ))
    .expect("signing record");
    assert_eq!(
        record.lines().nth(2).map(|l| l.trim().parse::<u64>()),
        Some(Ok(1)),
        "{record}"
    );
}

/// One HTTP/1.1 exchange on a fresh connection; returns the status line.
async fn raw_http(addr: std::net::SocketAddr, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.expect("read");
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Slow clients that never finish their headers are cut off after
/// `http_header_read_ms_max`, connections are capped, and meanwhile `/healthz` and
/// issuance keep answering (issue 11 A.6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_the_node_keeps_answering() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let f = fixture_with("gd.transport", |c| {
        c.limits.http_connections_max = 32;
        c.limits.http_header_read_ms_max = 300;
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(super::serve(
        f.state.clone(),
        listener,
        futures::future::pending(),
    ));
    // Twice the connection cap of clients that send half a request and then nothing.
    let mut slow = Vec::new();
    for _ in 0..64 {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: huren\r\n")
            .await
            .expect("write");
        slow.push(s);
    }
    let health = raw_http(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: huren\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body = driving().to_string();
    let issued = raw_http(
        addr,
        format!(
            "POST /v1/licences HTTP/1.1\r\nHost: huren\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(issued.starts_with("HTTP/1.1 201"), "{issued}");
    // Every slow client was cut off by the server (its read ends), none left hanging.
    for mut s in slow {
        let mut buf = Vec::new();
        let ended =
            tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut buf)).await;
        assert!(ended.is_ok(), "a slow client was never cut off");
    }
}

/// A data directory behind its key (restored from an old backup, copied, or lost) never
/// signs at a height the key already used, however long it waits and whatever peers say:
/// the signing record beside the key says how far the key went (issue 11 A.1).
#[tokio::test]
async fn a_data_directory_behind_its_key_never_signs_a_used_height() {
    let f = fixture();
    for _ in 0..2 {
        f.issue().await;
    }
    // The same department, keys and signing record, with an empty data directory and no
    // network to catch up from.
    let text = f
        .dir
        .config_text(
            "gd.transport",
            &huren_testkit::NodeOptions {
                limits: "batch_window_ms = 1".into(),
                ..Default::default()
            },
        )
        .expect("config");
    let mut cfg: Config = toml::from_str(&text).expect("config");
    cfg.data_dir = f.dir.path("restored-data");
    let restored = crate::node::assemble(&cfg).expect("assemble");
    let router = super::router(restored.state);
    for _ in 0..2 {
        let resp = router
            .clone()
            .oneshot(
                Request::post("/v1/licences")
                    .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(driving().to_string()))
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["error"]["code"], "catching_up", "{v}");
    }
    // The original data directory goes on from where the key is.
    assert_eq!(f.issue().await["block"]["height"], 3);
}

/// `GET /v1/evidence` is paged and its query typed: a page answers even with nothing
/// proven, and every query it does not take is `bad_query`, never a 500 or a silent
/// default.
#[tokio::test]
async fn evidence_pages_and_refuses_queries_it_does_not_take() {
    let f = fixture();
    let (s, v) = f.call("GET", "/v1/evidence", None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"evidence": []}));
    let (s, v) = f
        .call(
            "GET",
            "/v1/evidence?department=gd.transport&limit=64",
            None,
            None,
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!({"evidence": []})));
    for bad in [
        "limit=0",
        "limit=65",
        "limit=many",
        "department=Not%20An%20Id",
        "after=nonsense",
        "after=gd.transport%3Ax",
        "everything=1",
    ] {
        let (s, v) = f
            .call("GET", &format!("/v1/evidence?{bad}"), None, None)
            .await;
        assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_query");
    }
}

/// The status answer's `state` follows the clock (expired is derived, never recorded),
/// and the answer names no personal data whatever the state.
#[tokio::test]
async fn status_turns_expired_when_the_validity_has_passed() {
    use crate::clock::ManualClock;
    let t0_ms = 1_800_000_000_000;
    let clock = ManualClock::at(t0_ms);
    let f = fixture_with_clock("gd.transport", clock.clone(), |_| {});
    let issued = f.issue().await;
    let path = format!(
        "/v1/licences/{}",
        issued["licence_id"].as_str().expect("id")
    );
    let state = |v: &Value| v["state"].as_str().unwrap_or_default().to_owned();
    let (s, v) = f.call("GET", &path, None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(state(&v), "active", "{v}");
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "commitment",
            "department",
            "issued_height",
            "licence_id",
            "licence_type",
            "state",
            "status",
            "updated_height",
            "valid_from",
            "valid_until"
        ],
        "no holder field, ever"
    );
    // 2190 days on (driving() asks for 2190 days of validity): expired, with no record.
    clock.advance(std::time::Duration::from_secs(2190 * 86_400));
    let (_, v) = f.call("GET", &path, None, None).await;
    assert_eq!(state(&v), "expired", "{v}");
    assert_eq!(
        v["status"]["status"], "active",
        "the ledger is unchanged: {v}"
    );
}

#[cfg(test)]
mod lifecycle;
