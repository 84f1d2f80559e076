//! Online commands against a scripted node that speaks the agreed HTTP contract on
//! loopback. The real huren-node has its own tests; these check that the client sends
//! what the contract says (paths, bodies, token, multipart part name) and reads every
//! kind of answer (201, 200, 4xx errors, batch results, 5xx) into the right output and
//! exit status.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use huren_core::verify::{self, LedgerFacts, VerifyContext};
use huren_core::{Credential, DepartmentId, LicenceId, LicenceType};
use serde_json::{json, Value};

const TOKEN: &str = "s3cret";
const REQUEST_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

type Handler = dyn Fn(&Request) -> (u16, String) + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 that answers each request with `handler` and records
/// it. One connection at a time, `Connection: close`: the CLI is sequential.
struct MockNode {
    url: String,
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockNode {
    fn start(handler: Arc<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                serve(stream, &*handler, &reqs);
            }
        });
        MockNode {
            url: format!("http://{addr}"),
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for MockNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread sees the flag and the port is released.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request, records it, then answers: recording first, so that a test that
/// saw the CLI exit also sees the request.
fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) -> Option<()> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let mut body = Vec::new();
    if let Some(len) = headers.get("content-length") {
        let len: usize = len.parse().ok()?;
        assert!(len <= REQUEST_BYTES_MAX);
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    } else if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
            assert!(body.len() <= REQUEST_BYTES_MAX);
        }
    }
    let req = Request {
        method,
        path,
        headers,
        body,
    };
    let (status, answer) = handler(&req);
    log.lock().expect("lock").push(req);
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = out.flush();
    Some(())
}

fn error(status: u16, code: &str, message: &str) -> (u16, String) {
    (
        status,
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
}

/// The part named `image` of a multipart body.
fn multipart_image(req: &Request) -> Option<Vec<u8>> {
    let ct = req.headers.get("content-type")?;
    let boundary = ct.split("boundary=").nth(1)?.trim_matches('"');
    let delim = format!("--{boundary}");
    let body = &req.body;
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut at = 0;
    while let Some(start) = find(body, delim.as_bytes(), at) {
        let head_end = find(body, b"\r\n\r\n", start)?;
        let head = String::from_utf8_lossy(&body[start..head_end]);
        let data_start = head_end + 4;
        let end = find(body, format!("\r\n{delim}").as_bytes(), data_start)?;
        if head.contains("name=\"image\"") {
            return Some(body[data_start..end].to_vec());
        }
        at = end + 2;
    }
    None
}

/// A scripted department node for gd.transport, signing with the real key so that what
/// it issues verifies offline.
fn scripted_node(n: &Net) -> MockNode {
    let net = huren_genesis::load(&n.path("genesis.json")).expect("genesis");
    let (_, key) =
        huren_genesis::keys::read_issuer_key(&n.keys.join("gd.transport.issuer.key")).expect("key");
    let serial = AtomicU64::new(1);
    let issued: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let dept = DepartmentId::parse("gd.transport").expect("dept");
    let handler = move |req: &Request| -> (u16, String) {
        let authorised = req.headers.get("authorization").map(String::as_str)
            == Some(&format!("Bearer {TOKEN}"));
        let path = req.path.as_str();
        let now = 1_763_000_000 + 86_400 * 365;
        match (req.method.as_str(), path) {
            ("POST", "/v1/verify") => {
                let text = if req
                    .headers
                    .get("content-type")
                    .is_some_and(|c| c.starts_with("multipart/form-data"))
                {
                    let Some(img) = multipart_image(req) else {
                        return error(400, "no_image", "no part named image");
                    };
                    match huren_core::qr::decode_image(&img) {
                        Ok(t) => t,
                        Err(e) => return error(422, "unreadable_image", &e.to_string()),
                    }
                } else {
                    req.json()["qr"].as_str().unwrap_or_default().to_owned()
                };
                let ctx = VerifyContext {
                    now: huren_core::verify::parse_rfc3339("2030-01-01T00:00:00Z").expect("time"),
                    region: None,
                };
                let report = verify::verify_text(&net, &text, &|_| LedgerFacts::Offline, &ctx);
                (200, serde_json::to_string(&report).expect("report"))
            }
            ("POST", _) if !authorised => error(401, "unauthorized", "unknown bearer token"),
            ("POST", "/v1/licences") => {
                let b = req.json();
                let t = b["licence_type"].as_str().unwrap_or_default();
                if t != "mvdl" {
                    return error(
                        403,
                        "type_not_granted",
                        &format!("gd.transport may not issue {t}"),
                    );
                }
                let map = |v: &Value| -> BTreeMap<String, String> {
                    v.as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| {
                                    (k.clone(), v.as_str().unwrap_or_default().to_owned())
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let days = b["valid_days"].as_i64().unwrap_or(3660);
                let s = serial.fetch_add(1, Ordering::SeqCst);
                let id = LicenceId::new(dept.clone(), LicenceType::parse(t).expect("type"), s);
                let c = Credential {
                    issuer: dept.clone(),
                    licence_id: id.clone(),
                    region: huren_core::RegionCode::parse("440000").expect("region"),
                    issued_at: now,
                    not_before: now,
                    expires_at: now + days * 86_400,
                    holder: map(&b["holder"]),
                    fields: map(&b["fields"]),
                    salt: [5; 16],
                };
                let signed = c.sign(&key).expect("sign");
                issued.lock().expect("lock").push(id.to_string());
                (
                    201,
                    json!({
                        "licence_id": id.to_string(),
                        "qr": signed.qr_text,
                        "png": format!("/v1/licences/{id}/qr.png"),
                        "commitment": signed.commitment.to_hex(),
                        "valid_from": verify::rfc3339(c.not_before),
                        "valid_until": verify::rfc3339(c.expires_at),
                        "block": {"department": "gd.transport", "height": s, "hash": "00"},
                    })
                    .to_string(),
                )
            }
            ("POST", "/v1/licences:batch") => {
                let b = req.json();
                let list = b["licences"].as_array().cloned().unwrap_or_default();
                if list.len() > 3 {
                    return error(
                        413,
                        "batch_too_large",
                        &format!("{} licences in one request; at most 3", list.len()),
                    );
                }
                if list.iter().any(|l| l["holder"]["name"] == "boom") {
                    return error(500, "internal", "internal error");
                }
                let mut results: Vec<Value> = list
                    .iter()
                    .enumerate()
                    .map(|(i, l)| {
                        if l["holder"]["name"] == "bad" {
                            json!({"index": i, "ok": false, "error": {"code": "missing_holder_field", "message": "holder field id_number is required"}})
                        } else {
                            let s = serial.fetch_add(1, Ordering::SeqCst);
                            json!({"index": i, "ok": true, "licence_id": format!("gd.transport:mvdl:{s:08}"), "qr": format!("HZ1:FAKE{s}")})
                        }
                    })
                    .collect();
                // Answer out of order: the client must map by index, not by position.
                results.reverse();
                (200, json!({ "results": results }).to_string())
            }
            ("POST", p) if p.starts_with("/v1/licences/") => {
                let rest = &p["/v1/licences/".len()..];
                let Some((id, action)) = rest.rsplit_once('/') else {
                    return error(404, "not_found", "no such route");
                };
                let b = req.json();
                let status = match action {
                    "suspend" => "suspended",
                    "reinstate" => "active",
                    "revoke" => "revoked",
                    _ => return error(404, "not_found", "no such route"),
                };
                if !issued.lock().expect("lock").iter().any(|i| i == id) {
                    return error(404, "licence_not_found", &format!("no licence {id}"));
                }
                (
                    200,
                    json!({"licence_id": id, "status": status, "request": b}).to_string(),
                )
            }
            ("GET", p) if p.starts_with("/v1/licences/") => {
                let id = &p["/v1/licences/".len()..];
                if issued.lock().expect("lock").iter().any(|i| i == id) {
                    (
                        200,
                        json!({"licence_id": id, "status": "active"}).to_string(),
                    )
                } else {
                    error(404, "licence_not_found", &format!("no licence {id}"))
                }
            }
            _ => error(404, "not_found", "no such route"),
        }
    };
    MockNode::start(Arc::new(handler))
}

#[test]
fn online_issue_status_suspend_reinstate_revoke() {
    let n = Net::new();
    let node = scripted_node(&n);
    let url = node.url.as_str();
    let issue = |extra: &[&str]| {
        let mut args = vec![
            "issue",
            "--node",
            url,
            "--token",
            TOKEN,
            "--type",
            "mvdl",
            "--holder",
            "name=张三",
            "--holder",
            "id_number=44010619900101123X",
            "--holder",
            "class=C1",
        ];
        args.extend_from_slice(extra);
        n.huren(&args)
    };
    let out = issue(&[
        "--field",
        "archive_no=A1",
        "--valid-days",
        "30",
        "--png",
        "online.png",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let qr = out.stdout.trim_end().to_owned();
    assert!(qr.starts_with("HZ1:"), "{qr}");
    let sent = node.requests().last().cloned().expect("request");
    assert_eq!(sent.path, "/v1/licences");
    assert_eq!(
        sent.headers.get("authorization").map(String::as_str),
        Some("Bearer s3cret")
    );
    assert_eq!(
        sent.json(),
        json!({
            "licence_type": "mvdl",
            "holder": {"name": "张三", "id_number": "44010619900101123X", "class": "C1"},
            "fields": {"archive_no": "A1"},
            "valid_days": 30,
        })
    );
    // The QR the node issued verifies offline, and the PNG holds the same text.
    assert_eq!(n.verify(&["--at", "2026-11-20T00:00:00Z", &qr]).code, 0);
    assert_eq!(
        n.huren(&["qr", "decode", "online.png"]).stdout.trim_end(),
        qr
    );

    // valid_days is left out when not given; --json prints the node's whole answer.
    let out = issue(&["--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let answer: Value = serde_json::from_str(&out.stdout).expect("json");
    let id = answer["licence_id"].as_str().expect("id").to_owned();
    let last = node.requests().last().cloned().expect("req");
    assert!(last.json().get("valid_days").is_none(), "{:?}", last.json());

    // 4xx answers are printed as `error: <code>: <message>` and exit 1.
    let refused = n.huren(&[
        "issue", "--node", url, "--token", TOKEN, "--type", "food", "--holder", "entity=x",
    ]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert_eq!(
        refused.stderr.trim_end(),
        "error: type_not_granted: gd.transport may not issue food"
    );
    let bad_token = n.huren(&["issue", "--node", url, "--token", "nope", "--type", "mvdl"]);
    assert_eq!(bad_token.code, 1);
    assert!(bad_token
        .stderr
        .contains("error: unauthorized: unknown bearer token"));

    let status = n.huren(&["status", "--node", url, &id]);
    assert_eq!(status.code, 0, "{status:?}");
    let v: Value = serde_json::from_str(&status.stdout).expect("json");
    assert_eq!(v["status"], "active");
    let missing = n.huren(&["status", "--node", url, "gd.transport:mvdl:99999999"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("error: licence_not_found: no licence gd.transport:mvdl:99999999"),
        "{}",
        missing.stderr
    );

    for (args, path, body) in [
        (
            vec!["suspend", "--reason", "investigation"],
            "suspend",
            json!({"reason": "investigation"}),
        ),
        (vec!["reinstate"], "reinstate", json!({})),
        (
            vec!["revoke", "--reason", "cancelled"],
            "revoke",
            json!({"reason": "cancelled"}),
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--node", url, &id]);
        let out = n.huren_env(&all, &[("HUREN_TOKEN", TOKEN)]);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        let v: Value = serde_json::from_str(&out.stdout).expect("json");
        assert_eq!(v["licence_id"], id.as_str());
        let req = node.requests().last().cloned().expect("req");
        assert_eq!(req.path, format!("/v1/licences/{id}/{path}"));
        assert_eq!(req.json(), body);
    }
    let unknown = n.huren(&[
        "revoke",
        "--node",
        url,
        "--token",
        TOKEN,
        "gd.transport:mvdl:42",
        "--reason",
        "penalty",
    ]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
}

#[test]
fn online_verify_text_and_image() {
    let n = Net::new();
    let node = scripted_node(&n);
    let url = node.url.as_str();
    let qr = n.issue_mvdl(&["--png", "dl.png"]);
    let out = n.huren_env(&["verify", "--node", url, &qr], &[("HUREN_TOKEN", TOKEN)]);
    assert_eq!(out.code, 0, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["verdict"], "valid");
    assert_eq!(
        node.requests().last().expect("req").json(),
        json!({ "qr": qr })
    );
    // Verification is public: no token is sent even if one is in the environment.
    let last = node.requests().last().cloned().expect("req");
    assert!(!last.headers.contains_key("authorization"));

    let out = n.huren(&["verify", "--node", url, "--image", "dl.png"]);
    assert_eq!(out.code, 0, "{out:?}");
    let req = node.requests().last().cloned().expect("req");
    assert!(req.headers["content-type"].starts_with("multipart/form-data"));
    assert_eq!(
        multipart_image(&req).expect("image part"),
        std::fs::read(n.path("dl.png")).expect("png")
    );

    let garbage = n.huren(&["verify", "--node", url, "garbage"]);
    assert_eq!(garbage.code, 2, "{garbage:?}");
    let expired = n.issue_mvdl(&["--valid-days", "1"]);
    let out = n.huren(&["verify", "--node", url, &expired]);
    assert_eq!(out.code, 1, "{out:?}");
    // A refused verification request is an error, never a verdict.
    std::fs::write(n.path("blank.png"), b"not an image").expect("write");
    let refused = n.huren(&["verify", "--node", url, "--image", "blank.png"]);
    assert_eq!(refused.code, 65, "{refused:?}");
    assert!(
        refused.stderr.contains("error: unreadable_image:"),
        "{}",
        refused.stderr
    );
}

#[test]
fn import_sends_batches_and_reports_failures() {
    let n = Net::new();
    let node = scripted_node(&n);
    let url = node.url.as_str();
    std::fs::write(
        n.path("in.csv"),
        "type,holder.name,holder.id_number,holder.class,field.archive_no,valid_days\n\
         mvdl,张三,44010619900101123X,C1,A1,\n\
         mvdl,李四,44010619900101124X,C2,,365\n\
         mvdl,bad,,C1,,\n\
         mvdl,王五,44010619900101125X,C1,,ten\n\
         mvdl,赵六,44010619900101126X,C1,,\n\
         mvdl,\"钱,七\",44010619900101127X,C1,,\n\
         mvdl,孙八,44010619900101128X,A1,,\n",
    )
    .expect("csv");
    let out = n.huren(&[
        "import",
        "--node",
        url,
        "--token",
        TOKEN,
        "in.csv",
        "--batch",
        "2",
        "--out",
        "issued.csv",
        "--failed",
        "failed.csv",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.starts_with("imported 5, failed 2 (of 7 rows)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("missing_holder_field"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("valid_days \"ten\""), "{}", out.stdout);
    let failed_rows: Vec<&str> = out
        .stdout
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().expect("row"))
        .collect();
    assert_eq!(failed_rows, ["4", "5"], "{}", out.stdout);

    // Six well-formed rows in batches of two: three requests, in file order.
    let batches: Vec<Request> = node
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/licences:batch")
        .collect();
    assert_eq!(batches.len(), 3);
    let first = batches[0].json();
    assert_eq!(
        first["licences"][0],
        json!({
            "licence_type": "mvdl",
            "holder": {"name": "张三", "id_number": "44010619900101123X", "class": "C1"},
            "fields": {"archive_no": "A1"},
        })
    );
    assert_eq!(first["licences"][1]["valid_days"], 365);
    assert_eq!(batches[2].json()["licences"][0]["holder"]["name"], "钱,七");

    let issued = std::fs::read_to_string(n.path("issued.csv")).expect("out");
    let lines: Vec<&str> = issued.lines().collect();
    assert_eq!(lines[0], "row,licence_id,qr");
    assert_eq!(lines.len(), 6, "{issued}");
    assert!(lines[1].starts_with("2,gd.transport:mvdl:"), "{issued}");
    let rows: Vec<&str> = lines[1..].iter().map(|l| &l[..1]).collect();
    assert_eq!(rows, ["2", "3", "6", "7", "8"]);
    let failed = std::fs::read_to_string(n.path("failed.csv")).expect("failed");
    assert_eq!(failed.lines().count(), 3, "{failed}");

    // --out is not overwritten without --force, before anything is sent.
    let before = node.requests().len();
    let again = n.huren(&[
        "import",
        "--node",
        url,
        "--token",
        TOKEN,
        "in.csv",
        "--out",
        "issued.csv",
    ]);
    assert_eq!(again.code, 73, "{again:?}");
    assert_eq!(node.requests().len(), before);

    // All good: exit 0.
    std::fs::write(n.path("good.csv"), "type,holder.name\nmvdl,a\nmvdl,b\n").expect("csv");
    let ok = n.huren(&["import", "--node", url, "--token", TOKEN, "good.csv"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_eq!(ok.stdout.trim_end(), "imported 2, failed 0 (of 2 rows)");

    // A rejected token stops the import at the first batch.
    let denied = n.huren(&["import", "--node", url, "--token", "nope", "good.csv"]);
    assert_eq!(denied.code, 1, "{denied:?}");
    assert!(denied.stderr.contains("unauthorized"), "{}", denied.stderr);
    assert!(
        denied.stderr.contains("rows 2-3: not imported"),
        "{}",
        denied.stderr
    );
}

#[test]
fn import_shrinks_batches_the_node_finds_too_large() {
    let n = Net::new();
    let node = scripted_node(&n);
    let mut csv = String::from("type,holder.name\n");
    for i in 0..7 {
        csv.push_str(&format!("mvdl,p{i}\n"));
    }
    std::fs::write(n.path("in.csv"), csv).expect("csv");
    let out = n.huren(&[
        "import",
        "--node",
        &node.url,
        "--token",
        TOKEN,
        "in.csv",
        "--batch",
        "5",
        "--out",
        "issued.csv",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim_end(), "imported 7, failed 0 (of 7 rows)");
    assert!(out.stderr.contains("sending 2 at a time"), "{}", out.stderr);
    let sizes: Vec<usize> = node
        .requests()
        .iter()
        .map(|r| r.json()["licences"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [5, 2, 2, 1, 2]);
    let issued = std::fs::read_to_string(n.path("issued.csv")).expect("out");
    assert_eq!(issued.lines().count(), 8, "{issued}");
}

#[test]
fn import_stops_when_a_batch_outcome_is_unknown() {
    let n = Net::new();
    let node = scripted_node(&n);
    std::fs::write(
        n.path("in.csv"),
        "type,holder.name\nmvdl,a\nmvdl,b\nmvdl,boom\nmvdl,c\nmvdl,d\n",
    )
    .expect("csv");
    let out = n.huren(&[
        "import",
        "--node",
        &node.url,
        "--token",
        TOKEN,
        "in.csv",
        "--batch",
        "2",
        "--out",
        "issued.csv",
    ]);
    assert_eq!(out.code, 69, "{out:?}");
    assert!(
        out.stdout.starts_with("imported 2, failed 0"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("rows 4-5: may or may not have been imported"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("row 6: not sent"), "{}", out.stderr);
    // What was imported before the stop is on disk.
    let issued = std::fs::read_to_string(n.path("issued.csv")).expect("out");
    assert_eq!(issued.lines().count(), 3, "{issued}");
}

#[test]
fn import_refuses_bad_files_before_sending() {
    let n = Net::new();
    let node = scripted_node(&n);
    let url = node.url.as_str();
    std::fs::write(n.path("typo.csv"), "tpye,holder.name\nmvdl,a\n").expect("csv");
    let out = n.huren(&["import", "--node", url, "--token", TOKEN, "typo.csv"]);
    assert_eq!(out.code, 65, "{out:?}");
    assert!(
        out.stderr
            .contains("column 1 (\"tpye\") is not a known column"),
        "{}",
        out.stderr
    );

    let mut big = String::from("type,holder.name\n");
    for _ in 0..=huren_rows_max() {
        big.push_str("mvdl,a\n");
    }
    std::fs::write(n.path("big.csv"), big).expect("csv");
    let out = n.huren(&["import", "--node", url, "--token", TOKEN, "big.csv"]);
    assert_eq!(out.code, 65, "{out:?}");
    assert!(
        out.stderr.contains("more than 1000000 rows"),
        "{}",
        out.stderr
    );
    assert!(node.requests().is_empty(), "nothing may be sent");
}

/// The row bound `huren import` enforces (import::ROWS_MAX).
fn huren_rows_max() -> usize {
    1_000_000
}
