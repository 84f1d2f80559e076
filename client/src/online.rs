//! Online commands: the `huren-node` HTTP API, spoken with reqwest's blocking client.
//!
//! API Boundary: this module and `import` are the only parts of the CLI that know HTTP
//! and the node's JSON shapes. The contract (docs/api.md on the node side):
//!
//! - errors are `{"error": {"code": "...", "message": "..."}}` with a 4xx/5xx status and
//!   are printed as `error: <code>: <message>`;
//! - `POST /v1/licences` issues (201), `POST /v1/licences/{id}/suspend|reinstate|revoke`
//!   change status (200), `GET /v1/licences/{id}` shows status, `POST /v1/verify` takes
//!   `{"qr": …}` or a multipart `image` part and answers the same report as offline
//!   verification, `POST /v1/licences:batch` issues in bulk (see `import`).
//!
//! Requests are never retried here: issuing is not idempotent, and a retry after a
//! timeout could issue the same licence twice. Redirects are not followed, so a bearer
//! token is only ever sent to the URL the officer typed.

use std::io::Read;
use std::time::Duration;

use anyhow::Context;
use huren_core::credential::QR_TEXT_CHARS_MAX;
use huren_core::qr::IMAGE_BYTES_MAX;
use huren_core::LicenceId;
use reqwest::blocking::{multipart, Client, RequestBuilder};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use serde_json::{json, Value};

use crate::args::{IssueArgs, ReinstateArgs, RevokeArgs, StatusArgs, SuspendArgs, VerifyArgs};
use crate::exit::{coded, fail, Exit, WithExit};
use crate::offline::to_map;
use crate::{files, qr};

/// Largest answer read from a node: a batch of 1000 results with their QR texts is well
/// under a megabyte; anything near this bound is not a Huren node talking.
const RESPONSE_BYTES_MAX: u64 = 16 * 1024 * 1024;
const CONNECT_TIMEOUT_SECS: u64 = 10;
/// Error messages from a misbehaving proxy can be whole HTML pages; show the start.
const ERROR_TEXT_CHARS_MAX: usize = 300;

/// A node's error answer, printed exactly as `<code>: <message>`.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct NodeError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

/// A request that failed before or while it travelled. `connected: false` means the
/// connection never opened, so the node cannot have acted on it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    pub connected: bool,
    pub message: String,
}

/// Whether `err` says the node was never reached (nothing was sent).
pub fn never_connected(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let inner = e
            .downcast_ref::<crate::exit::Coded>()
            .and_then(|c| c.error.downcast_ref::<TransportError>());
        let direct = e.downcast_ref::<TransportError>();
        inner.or(direct).is_some_and(|t| !t.connected)
    })
}

/// A connection to one node.
pub struct Node {
    base: Url,
    http: Client,
    token: Option<String>,
    timeout_secs: u64,
}

/// An HTTP answer, read whole (bounded).
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Node {
    pub fn new(base: &Url, token: Option<&str>, timeout_secs: u64) -> anyhow::Result<Self> {
        let http = Client::builder()
            .user_agent(concat!("huren/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS))
            .timeout(Duration::from_secs(timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot set up the HTTP client")?;
        if token.is_some() && base.scheme() == "http" && !is_loopback(base) {
            eprintln!(
                "warning: sending the officer's token over plain http to {}; use https",
                base.host_str().unwrap_or("?")
            );
        }
        Ok(Self {
            base: base.clone(),
            http,
            token: token.map(str::to_owned),
            timeout_secs,
        })
    }

    /// The base URL with `segments` appended (each percent-encoded as a path segment).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("parse_node_url accepts only http(s) URLs with a host, which have paths")
            .pop_if_empty()
            .extend(segments);
        url
    }

    pub fn get(&self, segments: &[&str]) -> anyhow::Result<Answer> {
        let url = self.url(segments);
        self.send(self.http.get(url.clone()), &url)
    }

    pub fn post_json(&self, segments: &[&str], body: &impl Serialize) -> anyhow::Result<Answer> {
        let url = self.url(segments);
        self.send(self.http.post(url.clone()).json(body), &url)
    }

    pub fn post_image(
        &self,
        segments: &[&str],
        bytes: Vec<u8>,
        file_name: String,
    ) -> anyhow::Result<Answer> {
        let url = self.url(segments);
        let mime = match file_name.rsplit('.').next().map(str::to_ascii_lowercase) {
            Some(e) if e == "png" => "image/png",
            Some(e) if e == "jpg" || e == "jpeg" => "image/jpeg",
            _ => "application/octet-stream",
        };
        let part = multipart::Part::bytes(bytes)
            .file_name(file_name)
            .mime_str(mime)
            .expect("the MIME types above are valid");
        let form = multipart::Form::new().part("image", part);
        self.send(self.http.post(url.clone()).multipart(form), &url)
    }

    fn send(&self, req: RequestBuilder, url: &Url) -> anyhow::Result<Answer> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().map_err(|e| self.transport_error(&e, url))?;
        let status = resp.status();
        let mut body = Vec::new();
        resp.take(RESPONSE_BYTES_MAX + 1)
            .read_to_end(&mut body)
            .with_context(|| format!("the connection to {url} broke while reading the answer"))
            .code(Exit::UNAVAILABLE)?;
        if body.len() as u64 > RESPONSE_BYTES_MAX {
            return Err(fail(
                Exit::PROTOCOL,
                format!(
                    "{url} answered more than {RESPONSE_BYTES_MAX} bytes; is this a huren-node?"
                ),
            ));
        }
        Ok(Answer { status, body })
    }

    fn transport_error(&self, e: &reqwest::Error, url: &Url) -> anyhow::Error {
        let cause = root_cause(e);
        let msg = if e.is_connect() {
            format!(
                "cannot reach the node at {}: {cause} (is huren-node running there, and is --node right?)",
                self.base
            )
        } else if e.is_timeout() {
            format!(
                "the node at {} did not answer within {} s; the request may or may not have been carried out",
                self.base, self.timeout_secs
            )
        } else {
            format!(
                "the node at {} closed the connection without answering {url}: {cause} \
                 (is huren-node running there, and is --node right?); the request may or may \
                 not have been carried out",
                self.base
            )
        };
        coded(
            Exit::UNAVAILABLE,
            TransportError {
                connected: !e.is_connect(),
                message: msg,
            },
        )
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The innermost error: "Connection refused (os error 111)" rather than reqwest's
/// "error sending request for url".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl Answer {
    /// The JSON body when the status is one of `ok`; otherwise the node's error, with
    /// `on_4xx` as the exit status for 4xx answers and 69 for 5xx.
    pub fn json(self, ok: &[StatusCode], on_4xx: Exit) -> anyhow::Result<Value> {
        if ok.contains(&self.status) {
            return serde_json::from_slice(&self.body)
                .with_context(|| {
                    format!(
                        "the node answered {} with a body that is not JSON",
                        self.status
                    )
                })
                .code(Exit::PROTOCOL);
        }
        let exit = if self.status.is_client_error() {
            on_4xx
        } else if self.status.is_server_error() {
            Exit::UNAVAILABLE
        } else {
            Exit::PROTOCOL
        };
        Err(self.error()).code(exit)
    }

    /// The node's error as it sent it, or a stand-in when the body is not the standard
    /// shape (a proxy's HTML page, an empty body).
    pub fn error(&self) -> NodeError {
        #[derive(serde::Deserialize)]
        struct Body {
            error: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            code: String,
            message: String,
        }
        match serde_json::from_slice::<Body>(&self.body) {
            Ok(b) => NodeError {
                status: self.status.as_u16(),
                code: b.error.code,
                message: b.error.message,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(&self.body);
                let text: String = text.trim().chars().take(ERROR_TEXT_CHARS_MAX).collect();
                NodeError {
                    status: self.status.as_u16(),
                    code: format!("http_{}", self.status.as_u16()),
                    message: if text.is_empty() {
                        self.status
                            .canonical_reason()
                            .unwrap_or("no message")
                            .to_owned()
                    } else {
                        text
                    },
                }
            }
        }
    }
}

fn pretty(v: &Value) -> anyhow::Result<String> {
    serde_json::to_string_pretty(v).code(Exit::INTERNAL)
}

fn require_token(token: Option<&str>, what: &str) -> anyhow::Result<String> {
    match token {
        Some(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => Err(fail(
            Exit::USAGE,
            format!("{what} on a node needs the officer's token: --token TOKEN or HUREN_TOKEN"),
        )),
    }
}

pub fn issue(a: IssueArgs) -> anyhow::Result<Exit> {
    let o = &a.mode.online;
    let Some(base) = &o.node else {
        return Err(fail(Exit::USAGE, "give --node URL or --offline"));
    };
    let token = require_token(o.token.as_deref(), "issuing")?;
    qr::check_files(&a.output)?;
    let mut body = json!({
        "licence_type": a.licence.licence_type.as_str(),
        "holder": to_map("holder", &a.licence.holder)?,
        "fields": to_map("field", &a.licence.field)?,
    });
    if let Some(days) = a.licence.valid_days {
        body["valid_days"] = json!(days);
    }
    let node = Node::new(base, Some(&token), o.timeout_secs)?;
    let answer = node
        .post_json(&["v1", "licences"], &body)?
        .json(&[StatusCode::CREATED, StatusCode::OK], Exit::REFUSED)?;
    let qr_text = answer
        .get("qr")
        .and_then(Value::as_str)
        .filter(|q| q.len() <= QR_TEXT_CHARS_MAX)
        .ok_or_else(|| {
            fail(
                Exit::PROTOCOL,
                "the node issued the licence but its answer has no QR text; check with huren status",
            )
        })?
        .to_owned();
    qr::write_files(&qr_text, &a.output)?;
    if o.json {
        files::print_line(&pretty(&answer)?)?;
    } else {
        files::print_line(&qr_text)?;
    }
    let field = |k: &str| answer.get(k).and_then(Value::as_str).unwrap_or("?");
    eprintln!(
        "issued {}, valid {} to {}",
        field("licence_id"),
        field("valid_from"),
        field("valid_until")
    );
    Ok(Exit::OK)
}

pub fn verify(a: VerifyArgs) -> anyhow::Result<Exit> {
    let o = &a.online;
    let Some(base) = &o.node else {
        return Err(fail(Exit::USAGE, "give --node URL or --offline"));
    };
    let node = Node::new(base, None, o.timeout_secs)?;
    let answer = match (&a.text, &a.image) {
        (Some(text), _) => {
            let text = if text == "-" {
                files::read_stdin_line(QR_TEXT_CHARS_MAX)?
            } else {
                text.clone()
            };
            node.post_json(&["v1", "verify"], &json!({ "qr": text }))?
        }
        (None, Some(path)) => {
            let bytes = files::read_bounded(path, IMAGE_BYTES_MAX, "image")?;
            let name = path
                .file_name()
                .map_or_else(|| "image".to_owned(), |n| n.to_string_lossy().into_owned());
            node.post_image(&["v1", "verify"], bytes, name)?
        }
        (None, None) => return Err(fail(Exit::USAGE, "give TEXT or --image FILE")),
    };
    // A refused verification request is not a verdict: 4xx maps to a data error so that
    // exit 1 keeps meaning "invalid".
    let report = answer.json(&[StatusCode::OK], Exit::DATA)?;
    let exit = match report.get("verdict").and_then(Value::as_str) {
        Some("valid") => Exit::OK,
        Some("invalid") => Exit::INVALID,
        Some("undetermined") => Exit::UNDETERMINED,
        other => {
            return Err(fail(
                Exit::PROTOCOL,
                format!("the node's report has no known verdict (got {other:?})"),
            ))
        }
    };
    files::print_line(&pretty(&report)?)?;
    if let Some(m) = report.get("message").and_then(Value::as_str) {
        files::tell_terminal(m);
    }
    Ok(exit)
}

pub fn status(a: StatusArgs) -> anyhow::Result<Exit> {
    let node = Node::new(&a.node.node, None, a.node.timeout_secs)?;
    let id = a.id.to_string();
    let v = node
        .get(&["v1", "licences", &id])?
        .json(&[StatusCode::OK], Exit::REFUSED)?;
    files::print_line(&pretty(&v)?)?;
    Ok(Exit::OK)
}

fn change(
    node: &crate::args::NodeArgs,
    token: &str,
    id: &LicenceId,
    action: &str,
    body: Value,
) -> anyhow::Result<Exit> {
    let token = require_token(Some(token), action)?;
    let node = Node::new(&node.node, Some(&token), node.timeout_secs)?;
    let id = id.to_string();
    let v = node
        .post_json(&["v1", "licences", &id, action], &body)?
        .json(&[StatusCode::OK], Exit::REFUSED)?;
    files::print_line(&pretty(&v)?)?;
    Ok(Exit::OK)
}

pub fn suspend(a: SuspendArgs) -> anyhow::Result<Exit> {
    change(
        &a.node,
        &a.token.token,
        &a.id,
        "suspend",
        json!({ "reason": a.reason.as_str() }),
    )
}

pub fn reinstate(a: ReinstateArgs) -> anyhow::Result<Exit> {
    change(&a.node, &a.token.token, &a.id, "reinstate", json!({}))
}

pub fn revoke(a: RevokeArgs) -> anyhow::Result<Exit> {
    change(
        &a.node,
        &a.token.token,
        &a.id,
        "revoke",
        json!({ "reason": a.reason.as_str() }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse_node_url;
    use crate::exit::code_of;

    fn node(base: &str) -> Node {
        Node::new(&parse_node_url(base).expect("url"), None, 5).expect("node")
    }

    #[test]
    fn urls_are_joined_and_encoded() {
        let n = node("http://127.0.0.1:8080");
        assert_eq!(
            n.url(&["v1", "licences", "gd.transport:mvdl:00000042", "suspend"])
                .as_str(),
            "http://127.0.0.1:8080/v1/licences/gd.transport:mvdl:00000042/suspend"
        );
        let n = node("https://gw.example/huren/");
        assert_eq!(
            n.url(&["v1", "licences:batch"]).as_str(),
            "https://gw.example/huren/v1/licences:batch"
        );
        assert_eq!(
            n.url(&["v1", "a/b c"]).as_str(),
            "https://gw.example/huren/v1/a%2Fb%20c"
        );
    }

    #[test]
    fn error_answers() {
        let a = Answer {
            status: StatusCode::NOT_FOUND,
            body: br#"{"error":{"code":"licence_not_found","message":"no such licence"}}"#.to_vec(),
        };
        let err = a.json(&[StatusCode::OK], Exit::REFUSED).expect_err("404");
        assert_eq!(format!("{err:#}"), "licence_not_found: no such licence");
        assert_eq!(code_of(&err), Exit::REFUSED);

        let a = Answer {
            status: StatusCode::BAD_GATEWAY,
            body: b"<html>bad gateway</html>".to_vec(),
        };
        let err = a.json(&[StatusCode::OK], Exit::REFUSED).expect_err("502");
        assert_eq!(format!("{err:#}"), "http_502: <html>bad gateway</html>");
        assert_eq!(code_of(&err), Exit::UNAVAILABLE);

        let a = Answer {
            status: StatusCode::OK,
            body: b"not json".to_vec(),
        };
        let err = a.json(&[StatusCode::OK], Exit::REFUSED).expect_err("junk");
        assert_eq!(code_of(&err), Exit::PROTOCOL);
    }
}
