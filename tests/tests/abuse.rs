//! API abuse, after the OWASP API Security Top 10 (2023), against real `huren-node`
//! processes on 127.0.0.1 with real sled directories.
//!
//! The property every test holds: a hostile request gets the documented typed error (a
//! `huren_api::ErrorBody` whose `ErrorCode` is the one the case names, answered with the
//! status `ErrorCode::http_status` gives it) and changes nothing: every chain's height
//! and head hash are the same before and after.
//!
//! | OWASP API 2023 | here |
//! |---|---|
//! | API1 object level authorisation | `officers_act_only_on_their_own_departments_licences` |
//! | API2 authentication | `missing_garbage_and_revoked_tokens_are_refused_on_every_department_route` |
//! | API3 object property level authorisation | `unknown_and_server_owned_fields_are_refused` |
//! | API4 resource consumption | `malformed_and_oversized_bodies_on_every_route_change_nothing`, `idle_and_slow_clients_do_not_lock_out_officers`, `public_and_photo_floods_get_typed_refusals_while_officers_issue` |
//! | API5 function level authorisation | `scopes_bound_what_an_officer_may_do` |
//! | API8 security misconfiguration | `method_and_path_confusion_is_refused`, `the_service_window_page_and_api_answers_are_locked_down` |
//!
//! Covered elsewhere and not repeated here: the photo flood while officers issue and slow
//! request headers through the router and `api::serve` in one process
//! (node/src/api/tests.rs: `issuance_goes_on_while_verify_is_flooded_with_photos`,
//! `slow_clients_are_cut_off_and_the_node_keeps_answering`), the rate limiter's bound
//! (`api::ratelimit`), the image decoder's bounds (`huren_render::qr`). Not applicable:
//! API6 (no business flow to automate beyond what officers' tokens allow), API7 (the node
//! fetches no URL a client names), API9 (the route inventory is `api::ROUTES`, checked
//! against `/openapi.json` by the node's openapi tests), API10 (the node consumes no
//! third-party API; peers' blocks are validated by core, see adversary.rs).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use huren_api::{ErrorBody, ErrorCode};
use huren_testkit::{token_hash, NodeOptions, ISSUE_TOKEN, TOKEN};
use huren_tests::{client, driving_body, eventually, heads, NodeProcess, TestNetwork};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

// Each department's officers have their own tokens (the kit's configs give every node
// the same two): an officer of one department is nobody at another's node.
const A_ALL: &str = "hrt_abuse_gd_transport_all_0001";
const A_ISSUE: &str = "hrt_abuse_gd_transport_issue_0002";
const A_LIFECYCLE: &str = "hrt_abuse_gd_transport_lifecycle_0003";
const A_SOON_REVOKED: &str = "hrt_abuse_gd_transport_revoked_0004";
const B_ALL: &str = "hrt_abuse_sh_transport_all_0005";

const A: &str = "gd.transport";
const B: &str = "sh.transport";

/// (officer, scope, token)
type Officer = (&'static str, &'static str, &'static str);

const A_OFFICERS: &[Officer] = &[
    ("a-all", "all", A_ALL),
    ("a-issue", "issue", A_ISSUE),
    ("a-lifecycle", "lifecycle", A_LIFECYCLE),
];

/// Writes `<dir>/<name>/node.toml` as the kit would, but with `officers` as its only
/// tokens.
fn config(
    net: &TestNetwork,
    name: &str,
    bootstrap: Option<Vec<String>>,
    limits: &str,
    officers: &[Officer],
) -> anyhow::Result<PathBuf> {
    let text = net.config_text(
        name,
        &NodeOptions {
            bootstrap,
            limits: limits.to_owned(),
            ..NodeOptions::default()
        },
    )?;
    let start = text
        .find("[[api.tokens]]")
        .ok_or_else(|| anyhow::anyhow!("the kit's config has no tokens"))?;
    let last = format!("sha256 = \"{}\"\n", token_hash(ISSUE_TOKEN));
    let end = text
        .find(&last)
        .ok_or_else(|| anyhow::anyhow!("the kit's config changed shape"))?
        + last.len();
    let tokens: String = officers
        .iter()
        .map(|(officer, scope, token)| {
            format!(
                "[[api.tokens]]\nofficer = \"{officer}\"\nscope = \"{scope}\"\nsha256 = \"{}\"\n\n",
                token_hash(token)
            )
        })
        .collect();
    let text = format!("{}{tokens}{}", &text[..start], &text[end..]);
    anyhow::ensure!(
        !text.contains(&token_hash(TOKEN)) && !text.contains(&token_hash(ISSUE_TOKEN)),
        "the kit's tokens are still in the config"
    );
    let dir = net.path(name);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("node.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Every chain's (department, height, head hash) at `node`.
type Heads = Vec<(String, u64, String)>;

fn heads_of(http: &Client, node: &NodeProcess) -> Heads {
    heads(http, node).expect("the node's /v1/chains")
}

/// The answer is `code`'s documented error: the status the code always has, JSON, the
/// error shape with a message.
#[track_caller]
fn refused(r: Response, code: ErrorCode, what: &str) {
    let status = r.status().as_u16();
    let json = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = r.text().unwrap_or_default();
    refused_raw(status, json, &body, code, what);
}

#[track_caller]
fn refused_raw(status: u16, json: bool, body: &str, code: ErrorCode, what: &str) {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_else(|e| {
        panic!("{what}: answered {status} without the error shape ({e}): {body:.300}")
    });
    assert_eq!(
        (status, parsed.error.code),
        (code.http_status(), code),
        "{what}: {body:.300}"
    );
    assert!(json, "{what}: an error answer that is not application/json");
    assert!(!parsed.error.message.is_empty(), "{what}: no message");
}

/// Issues at `node` with `token`, waiting while a networked node is still catching up.
fn issue(http: &Client, node: &NodeProcess, token: &str, n: u64) -> String {
    let r = eventually(30, "the node to accept issuance", || {
        let r = http
            .post(format!("{}/v1/licences", node.url))
            .bearer_auth(token)
            .json(&driving_body(n))
            .send()
            .ok()?;
        (r.status().as_u16() != 503).then_some(r)
    })
    .expect("issuance");
    assert_eq!(r.status().as_u16(), 201, "issue");
    let v: Value = r.json().expect("json");
    v["licence_id"].as_str().expect("id").to_owned()
}

/// The concrete path of a route, with `{id}` and `{file}` filled in.
fn concrete(path: &str, id: &str) -> String {
    path.replace("{id}", id).replace("{file}", "window.css")
}

/// The routes only officers may use, from the running node's own OpenAPI document (tag
/// `department`), checked against `api::ROUTES`.
fn department_routes(http: &Client, node: &NodeProcess) -> Vec<(&'static str, &'static str)> {
    let doc: Value = http
        .get(format!("{}/openapi.json", node.url))
        .send()
        .expect("openapi")
        .json()
        .expect("json");
    let routes: Vec<_> = huren_node::api::ROUTES
        .iter()
        .copied()
        .filter(|(method, path)| {
            doc["paths"][*path][method.to_lowercase()]["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "department"))
        })
        .collect();
    assert!(
        routes.len() >= 9,
        "the document tags fewer department routes than the node has: {routes:?}"
    );
    routes
}

/// A request to `method path` with a body that would be valid for the route.
fn valid_request(
    http: &Client,
    url: &str,
    method: &str,
    path: &str,
) -> reqwest::blocking::RequestBuilder {
    let body = if path.ends_with("/suspend") {
        json!({"reason": "penalty"})
    } else if path.ends_with("/revoke") {
        json!({"reason": "cancelled"})
    } else if path.ends_with("/reinstate") {
        json!({})
    } else if path.ends_with(":batch") {
        json!({"licences": [driving_body(7)]})
    } else if path.ends_with(":renew") {
        json!({"licences": [{"licence_id": "gd.transport:mvdl:1"}]})
    } else if path.ends_with("/renew") || path.ends_with("/reissue") {
        json!({})
    } else if path.ends_with("/amend") {
        json!({"holder": {"class": "B2"}})
    } else if path.ends_with("/transfer") {
        json!({"to": "sh.transport"})
    } else if path.ends_with("/annul") {
        json!({"reason": "court"})
    } else if path == "/v1/transfers" || path == "/v1/verify" {
        json!({"qr": "HZ1:NOTHING"})
    } else if path == "/v1/governance" {
        // Well-formed JSON; the block itself is judged after the token and its scope.
        json!({"block": "00"})
    } else {
        driving_body(7)
    };
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let r = http.request(m, format!("{url}{path}"));
    if method == "POST" {
        r.json(&body)
    } else {
        r
    }
}

/// One HTTP/1.1 exchange on a fresh connection, bytes as given (no client in between to
/// normalise a path or a header): status, lower-cased head, body.
fn raw(url: &str, request: &[u8]) -> (u16, String, String) {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(request).expect("write");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, head, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[track_caller]
fn raw_refused(url: &str, request: &[u8], code: ErrorCode, what: &str) {
    let (status, head, body) = raw(url, request);
    refused_raw(
        status,
        head.contains("content-type: application/json"),
        &body,
        code,
        what,
    );
}

/// API1: an officer of one department can neither change nor read the private artefacts
/// (QR image, card) of another department's licences, at their own node or at the other
/// department's; a licence id of another department gets the same answer whether or not
/// it exists.
#[test]
fn officers_act_only_on_their_own_departments_licences() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    let a = NodeProcess::start(&config(&net, A, Some(vec![]), "", A_OFFICERS)?)?;
    let boot = vec![a.p2p.clone().expect("p2p address")];
    let b = NodeProcess::start(&config(
        &net,
        B,
        Some(boot),
        "",
        &[("b-all", "all", B_ALL)],
    )?)?;
    let la = issue(&http, &a, A_ALL, 1);
    let lb = issue(&http, &b, B_ALL, 2);
    // Each node holds the other's licence, and both agree on every head.
    for (node, id) in [(&a, &lb), (&b, &la)] {
        eventually(30, "the other department's licence to replicate", || {
            let r = http
                .get(format!("{}/v1/licences/{id}", node.url))
                .send()
                .ok()?;
            (r.status().as_u16() == 200).then_some(())
        })?;
    }
    let before = eventually(30, "both nodes to agree on every head", || {
        let (ha, hb) = (heads_of(&http, &a), heads_of(&http, &b));
        (ha == hb).then_some(ha)
    })?;

    let routes = department_routes(&http, &a);
    let never_issued = "sh.transport:mvdl:99999999";
    let unpadded = lb.replace(":0000000", ":");
    for id in [lb.as_str(), never_issued, unpadded.as_str()] {
        for (method, path) in &routes {
            if !path.contains("{id}") {
                continue;
            }
            let what = format!("{A} officer: {method} {} at {A}'s node", concrete(path, id));
            let r = valid_request(&http, &a.url, method, &concrete(path, id))
                .bearer_auth(A_ALL)
                .send()?;
            refused(r, ErrorCode::OtherDepartment, &what);
        }
    }
    // At the other department's node an officer of A is nobody, for any licence.
    for id in [la.as_str(), lb.as_str()] {
        for (method, path) in &routes {
            let what = format!("{A} officer: {method} {} at {B}'s node", concrete(path, id));
            let r = valid_request(&http, &b.url, method, &concrete(path, id))
                .bearer_auth(A_ALL)
                .send()?;
            refused(r, ErrorCode::Unauthorized, &what);
        }
    }
    // An id of one's own department that was never issued: not found, nothing to read.
    for suffix in ["qr.png", "card.svg"] {
        let r = http
            .get(format!("{}/v1/licences/{A}:mvdl:99999999/{suffix}", a.url))
            .bearer_auth(A_ALL)
            .send()?;
        refused(r, ErrorCode::LicenceNotFound, suffix);
    }
    assert_eq!(
        heads_of(&http, &a),
        before,
        "a refused request changed A's node"
    );
    assert_eq!(
        heads_of(&http, &b),
        before,
        "a refused request changed B's node"
    );
    for node in [&a, &b] {
        let v: Value = http
            .get(format!("{}/v1/licences/{lb}", node.url))
            .send()?
            .json()?;
        assert_eq!(v["status"]["status"], "active", "{v}");
    }
    Ok(())
}

/// API2: every department route refuses a request without a token this node knows, before
/// its body is read: none, empty, another scheme, garbage, another department's, a
/// revoked one (removed from the config, node restarted), one with bytes that are not
/// text, one valid token beside a second Authorization header.
#[test]
fn missing_garbage_and_revoked_tokens_are_refused_on_every_department_route() -> anyhow::Result<()>
{
    let net = TestNetwork::new()?;
    let http = client();
    let mut officers = A_OFFICERS.to_vec();
    officers.push(("a-leaver", "all", A_SOON_REVOKED));
    let cfg = config(&net, A, None, "", &officers)?;
    let node = NodeProcess::start(&cfg)?;
    let id = issue(&http, &node, A_ALL, 1);
    // The token works while it is configured…
    let r = http
        .post(format!("{}/v1/licences/{id}/suspend", node.url))
        .bearer_auth(A_SOON_REVOKED)
        .json(&json!({"reason": "investigation"}))
        .send()?;
    assert_eq!(r.status().as_u16(), 200, "{}", r.text()?);
    node.stop()?;
    // …and is revoked the way an operator does it: removed from the config, node restarted.
    config(&net, A, None, "", A_OFFICERS)?;
    let node = NodeProcess::start(&cfg)?;
    let before = heads_of(&http, &node);

    let long = format!("Bearer {}", "x".repeat(16 * 1024));
    let extended = format!("Bearer {A_ALL}x");
    let revoked = format!("Bearer {A_SOON_REVOKED}");
    let other = format!("Bearer {B_ALL}");
    let lower = format!("bearer-{A_ALL}");
    let headers: Vec<(&str, Option<&str>)> = vec![
        ("no Authorization header", None),
        ("an empty header", Some("")),
        ("the scheme alone", Some("Bearer")),
        ("an empty token", Some("Bearer ")),
        ("Basic credentials", Some("Basic YWRtaW46YWRtaW4=")),
        ("garbage", Some("Bearer hrt_00000000000000000000")),
        ("a valid token with a byte more", Some(&extended)),
        ("a revoked token", Some(&revoked)),
        ("another department's token", Some(&other)),
        ("a 16 KiB token", Some(&long)),
        ("a token glued to its scheme", Some(&lower)),
    ];
    for (method, path) in department_routes(&http, &node) {
        let path = concrete(path, &id);
        for (what, header) in &headers {
            let mut r = valid_request(&http, &node.url, method, &path);
            if let Some(h) = header {
                r = r.header(reqwest::header::AUTHORIZATION, *h);
            }
            refused(
                r.send()?,
                ErrorCode::Unauthorized,
                &format!("{method} {path} with {what}"),
            );
        }
        // Bytes that are not text, and a second Authorization header after a valid one:
        // raw, because a client library would not send them.
        let body = driving_body(9).to_string();
        for (what, auth) in [
            (
                "a token that is not text",
                b"Authorization: Bearer \xff\xfe\xfd\r\n".to_vec(),
            ),
            (
                "a valid token and a second Authorization header",
                format!("Authorization: Bearer {A_ALL}\r\nAuthorization: Bearer garbage\r\n")
                    .into_bytes(),
            ),
            (
                "a garbage token and a second, valid one",
                format!("Authorization: Bearer garbage\r\nAuthorization: Bearer {A_ALL}\r\n")
                    .into_bytes(),
            ),
        ] {
            let mut req = format!(
                "{method} {path} HTTP/1.1\r\nHost: huren\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                if method == "POST" { body.len() } else { 0 }
            )
            .into_bytes();
            req.extend_from_slice(&auth);
            req.extend_from_slice(b"\r\n");
            if method == "POST" {
                req.extend_from_slice(body.as_bytes());
            }
            raw_refused(
                &node.url,
                &req,
                ErrorCode::Unauthorized,
                &format!("{method} {path} with {what}"),
            );
        }
    }
    assert_eq!(
        heads_of(&http, &node),
        before,
        "a refused request wrote a block"
    );
    node.stop()?;
    Ok(())
}

/// API5: a token's scope bounds what its officer may do: an issuing clerk cannot suspend,
/// reinstate, revoke, transfer or annul; a lifecycle officer cannot issue, import, renew,
/// reissue, amend, take a transfer in, or print a licence's QR or card.
#[test]
fn scopes_bound_what_an_officer_may_do() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    let node = NodeProcess::start(&config(&net, A, None, "", A_OFFICERS)?)?;
    let id = issue(&http, &node, A_ALL, 1);
    let before = heads_of(&http, &node);
    for (method, path) in department_routes(&http, &node) {
        // The routes of scope `lifecycle`: changes of standing without a new credential.
        let lifecycle = ["/suspend", "/reinstate", "/revoke", "/transfer", "/annul"]
            .iter()
            .any(|s| path.ends_with(s));
        let (token, who) = if lifecycle {
            (A_ISSUE, "an issuing clerk")
        } else {
            (A_LIFECYCLE, "a lifecycle officer")
        };
        let path = concrete(path, &id);
        let r = valid_request(&http, &node.url, method, &path)
            .bearer_auth(token)
            .send()?;
        refused(
            r,
            ErrorCode::InsufficientScope,
            &format!("{who}: {method} {path}"),
        );
    }
    assert_eq!(heads_of(&http, &node), before);
    node.stop()?;
    Ok(())
}

/// API3: request bodies refuse fields they do not define, so a client can never set what
/// the server owns (licence id, serial, officer, department, status, times, commitment)
/// nor smuggle a second value of a field.
#[test]
fn unknown_and_server_owned_fields_are_refused() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    let node = NodeProcess::start(&config(&net, A, None, "", A_OFFICERS)?)?;
    let id = issue(&http, &node, A_ALL, 1);
    let before = heads_of(&http, &node);
    let with = |mut body: Value, field: &str, value: Value| {
        body[field] = value;
        body.to_string()
    };
    let issue_body = driving_body(5);
    let mut cases: Vec<(String, String, &str)> = Vec::new();
    for (field, value) in [
        ("licence_id", json!(format!("{A}:mvdl:00000001"))),
        ("serial", json!(1)),
        ("officer", json!("someone-else")),
        ("department", json!(B)),
        ("issuer", json!(B)),
        ("status", json!("revoked")),
        ("issued_at", json!("2020-01-01T00:00:00Z")),
        ("commitment", json!("00".repeat(32))),
        ("Licence_Type", json!("food")),
    ] {
        cases.push((
            "/v1/licences".into(),
            with(issue_body.clone(), field, value),
            field,
        ));
    }
    cases.push((
        "/v1/licences".into(),
        r#"{"licence_type":"mvdl","licence_type":"food","holder":{"name":"a","id_number":"b","class":"C1"}}"#.into(),
        "a field twice",
    ));
    let mut item = issue_body.clone();
    item["officer"] = json!("someone-else");
    cases.push((
        "/v1/licences:batch".into(),
        json!({"licences": [item]}).to_string(),
        "officer in a batch item",
    ));
    cases.push((
        "/v1/licences:batch".into(),
        json!({"licences": [issue_body], "officer": "x"}).to_string(),
        "officer beside the batch",
    ));
    for (action, body, what) in [
        (
            "suspend",
            json!({"reason": "penalty", "officer": "x"}),
            "officer",
        ),
        (
            "annul",
            json!({"reason": "court", "height": 1}),
            "the annulled record's height (the node names it)",
        ),
        (
            "renew",
            json!({"licence_id": "gd.transport:mvdl:2"}),
            "a licence id in a single renewal",
        ),
        ("reinstate", json!({"reason": "penalty"}), "reason"),
        (
            "revoke",
            json!({"reason": "penalty", "annul": true}),
            "annul",
        ),
        (
            "revoke",
            json!({"reason": "penalty", "height": 1}),
            "height",
        ),
    ] {
        cases.push((
            format!("/v1/licences/{id}/{action}"),
            body.to_string(),
            what,
        ));
    }
    for (path, body, what) in &cases {
        let r = http
            .post(format!("{}{path}", node.url))
            .bearer_auth(A_ALL)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()?;
        refused(
            r,
            ErrorCode::InvalidBody,
            &format!("POST {path} with {what}"),
        );
    }
    // The public verify route too: a client cannot choose the time or the region.
    for extra in [json!({"now": 0}), json!({"region": "310000"})] {
        let mut body = json!({"qr": "HZ1:X"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let r = http
            .post(format!("{}/v1/verify", node.url))
            .json(&body)
            .send()?;
        refused(r, ErrorCode::InvalidBody, &format!("verify with {extra}"));
    }
    assert_eq!(
        heads_of(&http, &node),
        before,
        "a refused body wrote a block"
    );
    node.stop()?;
    Ok(())
}

/// Limits the bodies test sets small, so that "one byte over" is cheap to send.
const BODY_BYTES_MAX: usize = 16 * 1024;
const IMAGE_BYTES_MAX: usize = 64 * 1024;

/// API4: every route (each of `api::ROUTES`) answers malformed, mistyped, oversized and
/// deceptive bodies with the documented error, and no body written to a route that reads
/// none changes its answer.
#[test]
fn malformed_and_oversized_bodies_on_every_route_change_nothing() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    let limits = format!("body_bytes_max = {BODY_BYTES_MAX}\nimage_bytes_max = {IMAGE_BYTES_MAX}");
    let node = NodeProcess::start(&config(&net, A, None, &limits, A_OFFICERS)?)?;
    let id = issue(&http, &node, A_ALL, 1);
    let before = heads_of(&http, &node);
    // The public routes allow the photo plus room for multipart framing.
    let public_max = IMAGE_BYTES_MAX + 64 * 1024;
    let deep = "[".repeat(10_000);
    let department_routes = department_routes(&http, &node);
    for &(method, path) in huren_node::api::ROUTES {
        let department = department_routes.contains(&(method, path));
        let path = concrete(path, &id);
        let url = format!("{}{path}", node.url);
        let limit = if department {
            BODY_BYTES_MAX
        } else {
            public_max
        };
        let send = |content_type: Option<&str>, body: Vec<u8>| -> Response {
            let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut r = http.request(m, &url).bearer_auth(A_ALL).body(body);
            if let Some(ct) = content_type {
                r = r.header(reqwest::header::CONTENT_TYPE, ct);
            }
            r.send().expect("send")
        };
        let json = Some("application/json");
        let oversized = {
            let mut b = br#"{"qr":""#.to_vec();
            b.resize(limit + 1, b'A');
            b
        };
        if method == "GET" {
            // A route that reads no body answers as it would without one; past the
            // limit, the API's routes refuse the body unread (the page's and the
            // operators' routes read no body and answer as usual).
            let plain = send(None, Vec::new());
            let (status, ct) = (plain.status(), plain.headers().get("content-type").cloned());
            let r = send(json, b"{not json".to_vec());
            assert_eq!(
                (r.status(), r.headers().get("content-type").cloned()),
                (status, ct.clone()),
                "GET {path} with garbage"
            );
            let r = send(json, oversized.clone());
            let api = path.starts_with("/v1/");
            if api {
                refused(
                    r,
                    ErrorCode::BodyTooLarge,
                    &format!("GET {path} with an oversized body"),
                );
            } else {
                assert_eq!(r.status(), status, "GET {path} with an oversized body");
            }
            continue;
        }
        let cases: Vec<(&str, Option<&str>, Vec<u8>, ErrorCode)> = vec![
            (
                "not JSON",
                json,
                b"{not json".to_vec(),
                ErrorCode::MalformedBody,
            ),
            ("an empty body", json, Vec::new(), ErrorCode::MalformedBody),
            (
                "truncated JSON",
                json,
                br#"{"lic"#.to_vec(),
                ErrorCode::MalformedBody,
            ),
            (
                "bytes that are not UTF-8",
                json,
                b"{\"\xff\xfe\": \"x\"}".to_vec(),
                ErrorCode::MalformedBody,
            ),
            ("a JSON array", json, b"[]".to_vec(), ErrorCode::InvalidBody),
            ("JSON null", json, b"null".to_vec(), ErrorCode::InvalidBody),
            (
                "a number where an object goes",
                json,
                b"1e999999".to_vec(),
                ErrorCode::MalformedBody,
            ),
            (
                "no Content-Type",
                None,
                driving_body(3).to_string().into_bytes(),
                ErrorCode::UnsupportedMediaType,
            ),
            (
                "text/plain",
                Some("text/plain"),
                driving_body(3).to_string().into_bytes(),
                ErrorCode::UnsupportedMediaType,
            ),
            (
                "one byte over the limit",
                json,
                oversized.clone(),
                ErrorCode::BodyTooLarge,
            ),
        ];
        for (what, ct, body, code) in cases {
            refused(send(ct, body), code, &format!("POST {path} with {what}"));
        }
        // Deep nesting: a typed body stops at the first wrong type (invalid_body) or
        // token (malformed_body), long before any depth limit. The fields as an array
        // (serde would take a struct's fields in order from one; the API does not): the
        // same. Either code is the answer.
        for (what, body) in [
            ("10,000 nested arrays", deep.as_bytes().to_vec()),
            ("the fields as an array", br#"["penalty"]"#.to_vec()),
        ] {
            let r = send(json, body);
            let code = if r.status().as_u16() == 400 {
                ErrorCode::MalformedBody
            } else {
                ErrorCode::InvalidBody
            };
            refused(r, code, &format!("POST {path} with {what}"));
        }
        // A multipart body to a JSON route, and garbage multipart to verify.
        let multipart = Some("multipart/form-data; boundary=X");
        let mp_code = if path == "/v1/verify" {
            ErrorCode::MalformedBody
        } else {
            ErrorCode::UnsupportedMediaType
        };
        refused(
            send(multipart, b"--X\r\nnonsense".to_vec()),
            mp_code,
            &format!("POST {path} with broken multipart"),
        );
        // A length announced far past the limit is refused before a byte of it is read.
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: huren\r\nAuthorization: Bearer {A_ALL}\r\nContent-Type: application/json\r\nContent-Length: 1099511627776\r\nConnection: close\r\n\r\n{{"
        );
        raw_refused(
            &node.url,
            req.as_bytes(),
            ErrorCode::BodyTooLarge,
            &format!("POST {path} announcing 1 TiB"),
        );
        // Chunked, no length announced, past the limit.
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: huren\r\nAuthorization: Bearer {A_ALL}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for _ in 0..(limit / 4096 + 2) {
            req.extend_from_slice(format!("1000\r\n{}\r\n", "A".repeat(4096)).as_bytes());
        }
        req.extend_from_slice(b"0\r\n\r\n");
        raw_refused(
            &node.url,
            &req,
            ErrorCode::BodyTooLarge,
            &format!("POST {path} chunked past the limit"),
        );
    }
    // Verify's photo route: no image part, and a photo over image_bytes_max.
    let form = reqwest::blocking::multipart::Form::new().text("text", "HZ1:X");
    let r = http
        .post(format!("{}/v1/verify", node.url))
        .multipart(form)
        .send()?;
    refused(r, ErrorCode::MissingImage, "verify without an image part");
    let part = reqwest::blocking::multipart::Part::bytes(vec![0u8; IMAGE_BYTES_MAX + 1])
        .file_name("p.png");
    let form = reqwest::blocking::multipart::Form::new().part("image", part);
    let r = http
        .post(format!("{}/v1/verify", node.url))
        .multipart(form)
        .send()?;
    refused(
        r,
        ErrorCode::BodyTooLarge,
        "verify with a photo one byte over image_bytes_max",
    );
    assert_eq!(
        heads_of(&http, &node),
        before,
        "a refused body wrote a block"
    );
    let health: Value = http.get(format!("{}/healthz", node.url)).send()?.json()?;
    assert_eq!(health["licences"], 1, "{health}");
    node.stop()?;
    Ok(())
}

/// API8: every method a route does not serve, method-override headers and query
/// parameters, and paths that only resemble a route get 405 or 404 in the error shape;
/// no answer invites a browser on another origin in (no CORS).
#[test]
fn method_and_path_confusion_is_refused() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    let node = NodeProcess::start(&config(&net, A, None, "", A_OFFICERS)?)?;
    let id = issue(&http, &node, A_ALL, 1);
    let before = heads_of(&http, &node);
    let routes = huren_node::api::ROUTES;
    let mut paths: Vec<&str> = routes.iter().map(|(_, p)| *p).collect();
    paths.dedup();
    for path in paths {
        let served: Vec<&str> = routes
            .iter()
            .filter(|(_, p)| *p == path)
            .map(|(m, _)| *m)
            .collect();
        let concrete = concrete(path, &id);
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"] {
            if served.contains(&method) {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let r = http
                .request(m, format!("{}{concrete}", node.url))
                .bearer_auth(A_ALL)
                .header("Origin", "https://evil.example")
                .header("Access-Control-Request-Method", "POST")
                .json(&json!({"reason": "penalty"}))
                .send()?;
            assert!(
                r.headers().get("access-control-allow-origin").is_none(),
                "{method} {concrete} invites another origin"
            );
            refused(
                r,
                ErrorCode::MethodNotAllowed,
                &format!("{method} {concrete}"),
            );
        }
    }
    // A method named in a header or the query is not the method.
    for header in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let r = http
            .get(format!("{}/v1/licences/{id}/revoke?_method=POST", node.url))
            .bearer_auth(A_ALL)
            .header(header, "POST")
            .send()?;
        refused(
            r,
            ErrorCode::MethodNotAllowed,
            &format!("GET …/revoke with {header}: POST"),
        );
    }
    // Paths that resemble a route, sent as written.
    for path in [
        format!("/v1/licences/{id}/revoke/"),
        format!("/v1/licences/{id}/../{id}/revoke"),
        format!("/v1/licences/{id}/%72evoke"),
        format!("/V1/licences/{id}/revoke"),
        format!("//v1/licences/{id}/revoke"),
        format!("/v1/licences/{id}/revoke;x=1"),
        "/v2/licences".to_owned(),
    ] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: huren\r\nAuthorization: Bearer {A_ALL}\r\nContent-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{{\"reason\":\"penalty\"}}"
        );
        raw_refused(
            &node.url,
            req.as_bytes(),
            ErrorCode::NotFound,
            &format!("POST {path}"),
        );
    }
    // Licence ids that are not licence ids, on a department route and the public one.
    for bad in [
        "gd.transport:mvdl:1%2F..%2F..".to_owned(),
        "GD.TRANSPORT:mvdl:00000001".to_owned(),
        "gd.transport:mvdl:-1".to_owned(),
        "gd.transport:mvdl:99999999999999999999999".to_owned(),
        "gd.transport:mvdl:1:2".to_owned(),
        format!("{id}%00"),
        "a".repeat(4000),
    ] {
        let r = http
            .post(format!("{}/v1/licences/{bad}/revoke", node.url))
            .bearer_auth(A_ALL)
            .json(&json!({"reason": "penalty"}))
            .send()?;
        refused(r, ErrorCode::BadLicenceId, &format!("revoke {bad:.40}"));
        let r = http.get(format!("{}/v1/licences/{bad}", node.url)).send()?;
        refused(r, ErrorCode::BadLicenceId, &format!("status of {bad:.40}"));
    }
    assert_eq!(
        heads_of(&http, &node),
        before,
        "a refused request wrote a block"
    );
    let v: Value = http
        .get(format!("{}/v1/licences/{id}", node.url))
        .send()?
        .json()?;
    assert_eq!(v["status"]["status"], "active", "{v}");
    node.stop()?;
    Ok(())
}

/// API4: connections that never send a byte, that idle after one request, or that send
/// their body a byte at a time are cut off within the configured times, so a few dozen
/// of them cannot hold every connection slot: `/healthz` and issuance keep answering. (The
/// router-level test in node/src/api/tests.rs holds half-sent headers; this one runs the
/// node's own binary and covers the other three.)
#[test]
fn idle_and_slow_clients_do_not_lock_out_officers() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    let limits =
        "http_connections_max = 16\nhttp_header_read_ms_max = 500\nhttp_body_read_ms_max = 1000";
    let node = NodeProcess::start(&config(&net, A, None, limits, A_OFFICERS)?)?;
    let addr = node.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    // Three times the cap of connections that send nothing at all…
    for _ in 0..48 {
        held.push(TcpStream::connect(&addr)?);
    }
    // …and of connections that ask once, keep the connection alive and then idle.
    for _ in 0..48 {
        let Ok(mut s) = TcpStream::connect(&addr) else {
            continue;
        };
        let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: huren\r\n\r\n");
        held.push(s);
    }
    // A body announced and then sent one byte at a time.
    let body = driving_body(4).to_string();
    let mut slow = TcpStream::connect(&addr)?;
    slow.set_read_timeout(Some(Duration::from_secs(30)))?;
    slow.write_all(
        format!(
            "POST /v1/licences HTTP/1.1\r\nHost: huren\r\nAuthorization: Bearer {A_ALL}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )?;
    let trickle = std::thread::spawn(move || {
        for b in body.as_bytes() {
            if slow.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut answer = Vec::new();
        let _ = slow.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    });
    // Officers and health checks get through once the idle ones are cut off.
    let health = eventually(30, "/healthz to answer past the idle connections", || {
        let fast = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .ok()?;
        let r = fast.get(format!("{}/healthz", node.url)).send().ok()?;
        Some(r.status().as_u16())
    })?;
    assert_eq!(health, 200);
    let id = issue(&http, &node, A_ALL, 2);
    assert!(id.starts_with(A), "{id}");
    // The trickled body was cut off with an error, not waited for without end, and issued
    // nothing.
    let answer = trickle.join().expect("trickle thread");
    if let Some((head, body)) = answer.split_once("\r\n\r\n") {
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        assert!(
            status >= 400,
            "a body sent a byte per 200 ms was accepted: {head}"
        );
        let parsed: ErrorBody = serde_json::from_str(body.trim()).unwrap_or_else(|e| {
            panic!("the cut-off answer is not the error shape ({e}): {answer:.400}")
        });
        assert_eq!(status, parsed.error.code.http_status(), "{answer:.400}");
    }
    let health: Value = http.get(format!("{}/healthz", node.url)).send()?.json()?;
    assert_eq!(
        health["licences"], 1,
        "only the officer's licence was issued: {health}"
    );
    drop(held);
    node.stop()?;
    Ok(())
}

/// A PNG whose header announces `width` × `height` pixels, with a few bytes of image data:
/// what a decompression bomb looks like before it is inflated.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut c = kind.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&c);
        out.extend_from_slice(&crc32(&c).to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

/// API4: public requests past a client's rate get 429 `rate_limited`; photos past the
/// decoders get 503 `unavailable` at once; a picture announcing a gigapixel is refused
/// from its header; and meanwhile officers issue (department routes are not rate-limited
/// with the public ones).
#[test]
fn public_and_photo_floods_get_typed_refusals_while_officers_issue() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    let limits = "public_requests_per_minute = 30\nimage_decodes_max = 1\nimage_queue_max = 1\nimage_queue_wait_ms = 20";
    let node = NodeProcess::start(&config(&net, A, None, limits, A_OFFICERS)?)?;
    let id = issue(&http, &node, A_ALL, 1);
    // The bucket of this client: 30 requests, then half a request a second. (100 requests
    // would have to take over 80 s for fewer than 30 to be refused.)
    let mut limited = 0;
    for _ in 0..100 {
        let r = http.get(format!("{}/v1/licences/{id}", node.url)).send()?;
        if r.status().as_u16() == 429 {
            refused(r, ErrorCode::RateLimited, "status past the rate");
            limited += 1;
        }
    }
    assert!(
        limited >= 30,
        "only {limited} of 100 requests past a rate of 30 were refused"
    );
    // Officers are not public clients.
    issue(&http, &node, A_ALL, 2);
    node.stop()?;

    // Photos, on a node whose public rate does not get in the way.
    let limits = "image_decodes_max = 1\nimage_queue_max = 1\nimage_queue_wait_ms = 20";
    let node = NodeProcess::start(&config(&net, A, None, limits, A_OFFICERS)?)?;
    let bomb = png_header_only(60_000, 60_000);
    let form = reqwest::blocking::multipart::Form::new().part(
        "image",
        reqwest::blocking::multipart::Part::bytes(bomb).file_name("bomb.png"),
    );
    let v: Value = http
        .post(format!("{}/v1/verify", node.url))
        .multipart(form)
        .send()?
        .json()?;
    assert_eq!(
        (v["verdict"].as_str(), v["reason"].as_str()),
        (Some("undetermined"), Some("undecodable")),
        "{v}"
    );
    // A real QR photo, big enough to take the decoder a while, sent by many at once.
    let qr = {
        let r: Value = http
            .post(format!("{}/v1/licences", node.url))
            .bearer_auth(A_ALL)
            .json(&driving_body(3))
            .send()?
            .json()?;
        r["qr"].as_str().expect("qr").to_owned()
    };
    let png = huren_render::qr::png(&qr, 12)?;
    let url = node.url.clone();
    let flood: Vec<_> = (0..24)
        .map(|_| {
            let (png, url) = (png.clone(), url.clone());
            std::thread::spawn(move || {
                let form = reqwest::blocking::multipart::Form::new().part(
                    "image",
                    reqwest::blocking::multipart::Part::bytes(png).file_name("qr.png"),
                );
                let r = client()
                    .post(format!("{url}/v1/verify"))
                    .multipart(form)
                    .send()
                    .expect("send");
                let status = r.status().as_u16();
                (status, r.text().unwrap_or_default())
            })
        })
        .collect();
    issue(&http, &node, A_ALL, 4);
    let (mut read, mut busy) = (0, 0);
    for t in flood {
        let (status, body) = t.join().expect("flood thread");
        match status {
            200 => {
                let v: Value = serde_json::from_str(&body)?;
                assert_eq!(v["verdict"], "valid", "{v}");
                read += 1;
            }
            _ => {
                refused_raw(
                    status,
                    true,
                    &body,
                    ErrorCode::Unavailable,
                    "a photo past the decoders",
                );
                busy += 1;
            }
        }
    }
    assert!(read >= 1, "no photo was read");
    let _ = busy;
    node.stop()?;
    Ok(())
}

/// API8: the service-window page runs only its own script (a CSP with no inline script or
/// style, no framing, no other origin; no inline handlers in the page), its assets carry
/// the same guard, and API answers are not sniffed or (for officers' answers, which carry
/// personal data) cached.
#[test]
fn the_service_window_page_and_api_answers_are_locked_down() -> anyhow::Result<()> {
    let net = TestNetwork::new()?;
    let http = client();
    let node = NodeProcess::start(&config(&net, A, None, "", A_OFFICERS)?)?;
    let header = |r: &Response, name: &str| -> String {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let page = http.get(format!("{}/", node.url)).send()?;
    assert_eq!(page.status().as_u16(), 200);
    let csp = header(&page, "content-security-policy");
    let directives: std::collections::BTreeMap<&str, &str> = csp
        .split(';')
        .filter_map(|d| d.trim().split_once(' '))
        .collect();
    for (directive, value) in [
        ("default-src", "'none'"),
        ("script-src", "'self'"),
        ("style-src", "'self'"),
        ("frame-ancestors", "'none'"),
        ("base-uri", "'none'"),
        ("form-action", "'self'"),
        ("connect-src", "'self'"),
    ] {
        assert_eq!(
            directives.get(directive).copied(),
            Some(value),
            "{directive} in {csp:?}"
        );
    }
    for forbidden in [
        "unsafe-inline",
        "unsafe-eval",
        "http:",
        "https:",
        "*",
        "data:",
    ] {
        assert!(!csp.contains(forbidden), "CSP allows {forbidden}: {csp}");
    }
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    let html = page.text()?;
    let lower = html.to_ascii_lowercase();
    // Every script is a file of this origin; no handler attributes, no javascript: URLs,
    // no inline style (the CSP would refuse them, so they would be bugs too).
    let mut scripts = 0;
    for tag in lower.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap_or_default();
        assert!(
            open.contains("src=\"/assets/"),
            "an inline or foreign script: <script{open}>"
        );
        let body = tag.split_once('>').map_or("", |(_, b)| b);
        assert!(
            body.trim_start().starts_with("</script"),
            "a script with inline code"
        );
        scripts += 1;
    }
    assert!(scripts >= 1, "the page has no script at all?");
    // (The one absolute URL allowed is the inline SVG sprite's XML namespace, which
    // nothing fetches.)
    for pattern in [
        " onclick=",
        " onload=",
        " onerror=",
        " oninput=",
        " onsubmit=",
        " onfocus=",
        "javascript:",
        " style=",
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "url(",
        "<iframe",
        "<object",
        "<embed",
    ] {
        assert!(!lower.contains(pattern), "the page contains {pattern:?}");
    }
    // The assets the page names carry the same guard, with their own types.
    for asset in ["window.js", "window.css", "icon.svg"] {
        let r = http.get(format!("{}/assets/{asset}", node.url)).send()?;
        assert_eq!(r.status().as_u16(), 200, "{asset}");
        assert_eq!(header(&r, "content-security-policy"), csp, "{asset}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{asset}");
    }
    // Sent as written: a client would resolve the dots itself.
    for bad in [
        "..%2fCargo.toml",
        "window.js%00.css",
        "WINDOW.JS",
        "%2e%2e",
        "..%2f..%2fassets%2fwindow.js",
    ] {
        let req = format!("GET /assets/{bad} HTTP/1.1\r\nHost: huren\r\nConnection: close\r\n\r\n");
        raw_refused(&node.url, req.as_bytes(), ErrorCode::NotFound, bad);
    }
    // API answers: never sniffed as something else; what officers get back (the QR text
    // or image carries the holder's name and id number) is never stored by a cache.
    let issued = http
        .post(format!("{}/v1/licences", node.url))
        .bearer_auth(A_ALL)
        .json(&driving_body(1))
        .send()?;
    assert_eq!(issued.status().as_u16(), 201);
    assert_eq!(
        header(&issued, "x-content-type-options"),
        "nosniff",
        "issue answer"
    );
    assert_eq!(header(&issued, "cache-control"), "no-store", "issue answer");
    let id = issued.json::<Value>()?["licence_id"]
        .as_str()
        .expect("id")
        .to_owned();
    for suffix in ["qr.png", "card.svg", "card.html"] {
        let r = http
            .get(format!("{}/v1/licences/{id}/{suffix}", node.url))
            .bearer_auth(A_ALL)
            .send()?;
        assert_eq!(r.status().as_u16(), 200, "{suffix}");
        assert_eq!(header(&r, "cache-control"), "no-store", "{suffix}");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{suffix}");
    }
    for r in [
        http.get(format!("{}/v1/chains", node.url)).send()?,
        http.get(format!("{}/v1/nothing", node.url)).send()?,
        http.post(format!("{}/v1/licences", node.url)).send()?,
    ] {
        assert_eq!(
            header(&r, "x-content-type-options"),
            "nosniff",
            "{}",
            r.url()
        );
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
    node.stop()?;
    Ok(())
}
