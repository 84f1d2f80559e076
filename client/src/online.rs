//! Online commands: the `huren-node` HTTP API, spoken with reqwest's blocking client.
//!
//! API Boundary: this module and `import` are the only parts of the CLI that know HTTP.
//! The bodies they send and parse are `huren_api`'s types, the same ones the node builds,
//! so the two cannot drift apart: errors are `huren_api::ErrorBody` (printed as
//! `error: <code>: <message>`, the exit status chosen from the code's HTTP status),
//! `POST /v1/licences` answers `IssueAnswer`, suspend/reinstate/revoke `LifecycleAnswer`,
//! `GET /v1/licences/{id}` `StatusAnswer`, `POST /v1/verify` a `Report` (the same report
//! offline verification prints) and `POST /v1/licences:batch` a `BatchAnswer` (see
//! `import`).
//!
//! Requests are never retried here: issuing is not idempotent, and a retry after a
//! timeout could issue the same licence twice. Redirects are not followed, so a bearer
//! token is only ever sent to the URL the officer typed.

use std::io::Read;
use std::time::Duration;

use anyhow::Context;
use huren_api::{
    ErrorBody, ErrorCode, IssueAnswer, IssueRequest, LifecycleAnswer, ReinstateRequest, Report,
    RevokeRequest, StatusAnswer, SuspendRequest, VerifyRequest,
};
use huren_core::credential::QR_TEXT_CHARS_MAX;
use huren_core::{LicenceId, Verdict};
use huren_render::qr::IMAGE_BYTES_MAX;
use reqwest::blocking::{multipart, Client, RequestBuilder};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

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

/// A node's error answer, printed exactly as `<code>: <message>`. `code` is `None` when
/// the body was not the node's error shape (a proxy's page, an empty body, a code this
/// client does not know): then the HTTP status stands in for it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", self.code_text())]
pub struct NodeError {
    pub status: u16,
    pub code: Option<ErrorCode>,
    pub message: String,
    /// The reason under the code, where the node gives one (`gov_refused`: `no_quorum`…).
    pub reason: Option<String>,
}

impl NodeError {
    pub fn code_text(&self) -> String {
        let code = match self.code {
            Some(c) => c.as_str().to_owned(),
            None => format!("http_{}", self.status),
        };
        match &self.reason {
            Some(r) => format!("{code} ({r})"),
            None => code,
        }
    }

    /// The exit status for this error: `on_4xx` for a refusal, 69 for a failure of the
    /// node (5xx), 76 for anything else. A known code decides by its own status (the
    /// one table in `huren_api::ErrorCode`), whatever status line carried it.
    pub fn exit(&self, on_4xx: Exit) -> Exit {
        let status = self.code.map_or(self.status, ErrorCode::http_status);
        match status {
            400..=499 => on_4xx,
            500..=599 => Exit::UNAVAILABLE,
            _ => Exit::PROTOCOL,
        }
    }
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

    /// `url`, with a query string when `query` is not empty.
    fn url_with(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    pub fn get(&self, segments: &[&str]) -> anyhow::Result<Answer> {
        self.get_bounded(segments, RESPONSE_BYTES_MAX)
    }

    /// `get`, reading at most `max` bytes of answer (a governance export with many
    /// vouched credentials is larger than any other answer).
    pub fn get_bounded(&self, segments: &[&str], max: u64) -> anyhow::Result<Answer> {
        self.get_query(segments, &[], max)
    }

    /// `get_bounded` with a query string.
    pub fn get_query(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        max: u64,
    ) -> anyhow::Result<Answer> {
        let url = self.url_with(segments, query);
        self.send(self.http.get(url.clone()), &url, max)
    }

    /// `post_json` with a query string.
    pub fn post_json_query(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        body: &impl Serialize,
    ) -> anyhow::Result<Answer> {
        let url = self.url_with(segments, query);
        self.send(
            self.http.post(url.clone()).json(body),
            &url,
            RESPONSE_BYTES_MAX,
        )
    }

    pub fn post_json(&self, segments: &[&str], body: &impl Serialize) -> anyhow::Result<Answer> {
        self.post_json_query(segments, &[], body)
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
        self.send(
            self.http.post(url.clone()).multipart(form),
            &url,
            RESPONSE_BYTES_MAX,
        )
    }

    fn send(&self, req: RequestBuilder, url: &Url, max: u64) -> anyhow::Result<Answer> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().map_err(|e| self.transport_error(&e, url))?;
        let status = resp.status();
        let mut body = Vec::new();
        resp.take(max + 1)
            .read_to_end(&mut body)
            .with_context(|| format!("the connection to {url} broke while reading the answer"))
            .code(Exit::UNAVAILABLE)?;
        if body.len() as u64 > max {
            return Err(fail(
                Exit::PROTOCOL,
                format!("{url} answered more than {max} bytes; is this a huren-node?"),
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
    /// The body as `T` when the status is one of `ok`; otherwise the node's error, with
    /// its exit status (see `NodeError::exit`). A body that is not a `T` is a protocol
    /// error (76): the node said something this client does not understand.
    pub fn parse<T: DeserializeOwned>(self, ok: &[StatusCode], on_4xx: Exit) -> anyhow::Result<T> {
        let status = self.status;
        let body = self.bytes(ok, on_4xx)?;
        serde_json::from_slice(&body)
            .with_context(|| {
                format!("the node answered {status} with a body this client does not understand")
            })
            .code(Exit::PROTOCOL)
    }

    /// The raw body when the status is one of `ok` (a bundle is CBOR, not JSON);
    /// otherwise the node's error, as `parse` gives it.
    pub fn bytes(self, ok: &[StatusCode], on_4xx: Exit) -> anyhow::Result<Vec<u8>> {
        if ok.contains(&self.status) {
            return Ok(self.body);
        }
        let e = self.error();
        let exit = if self.status.is_success() {
            Exit::PROTOCOL
        } else {
            e.exit(on_4xx)
        };
        Err(e).code(exit)
    }

    /// The node's error as it sent it, or a stand-in when the body is not the standard
    /// shape (a proxy's HTML page, an empty body).
    pub fn error(&self) -> NodeError {
        match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(b) => NodeError {
                status: self.status.as_u16(),
                code: Some(b.error.code),
                message: b.error.message,
                reason: b.error.reason,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(&self.body);
                let text: String = text.trim().chars().take(ERROR_TEXT_CHARS_MAX).collect();
                NodeError {
                    status: self.status.as_u16(),
                    code: None,
                    reason: None,
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

pub(crate) fn pretty(v: &impl Serialize) -> anyhow::Result<String> {
    serde_json::to_string_pretty(v).code(Exit::INTERNAL)
}

pub(crate) fn require_token(token: Option<&str>, what: &str) -> anyhow::Result<String> {
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
    let body = IssueRequest {
        licence_type: a.licence.licence_type.to_string(),
        holder: to_map("holder", &a.licence.holder)?,
        fields: to_map("field", &a.licence.field)?,
        valid_days: a.licence.valid_days,
        valid_from: None,
        valid_until: None,
    };
    let node = Node::new(base, Some(&token), o.timeout_secs)?;
    let answer: IssueAnswer = node
        .post_json(&["v1", "licences"], &body)?
        .parse(&[StatusCode::CREATED, StatusCode::OK], Exit::REFUSED)?;
    if answer.qr.len() > QR_TEXT_CHARS_MAX {
        return Err(fail(
            Exit::PROTOCOL,
            format!(
                "the node issued {} but its QR text is longer than a QR holds; check with huren status",
                answer.licence_id
            ),
        ));
    }
    qr::write_files(&answer.qr, &a.output)?;
    if o.json {
        files::print_line(&pretty(&answer)?)?;
    } else {
        files::print_line(&answer.qr)?;
    }
    eprintln!(
        "issued {}, valid {} to {}",
        answer.licence_id, answer.valid_from, answer.valid_until
    );
    Ok(Exit::OK)
}

pub fn verify(a: VerifyArgs) -> anyhow::Result<Exit> {
    let o = &a.online;
    let Some(base) = &o.node else {
        return Err(fail(Exit::USAGE, "give --node URL or --offline"));
    };
    if a.mode.genesis.is_some() && !o.proof {
        return Err(fail(
            Exit::USAGE,
            "--genesis is for --offline, or for --proof with --node",
        ));
    }
    let node = Node::new(base, None, o.timeout_secs)?;
    let read_text = |text: &String| -> anyhow::Result<String> {
        if text == "-" {
            files::read_stdin_line(QR_TEXT_CHARS_MAX)
        } else {
            Ok(text.clone())
        }
    };
    // With --proof the text is needed here too: a photo is read on this side.
    let mut asked = None;
    let mut query: Vec<(&str, &str)> = Vec::new();
    if o.proof {
        query.push(("proof", "1"));
    }
    if let Some(at) = &a.mode.at {
        query.push(("at", at));
    }
    let answer = match (&a.text, &a.image) {
        (Some(text), _) => {
            let text = read_text(text)?;
            let answer = node.post_json_query(
                &["v1", "verify"],
                &query,
                &VerifyRequest { qr: text.clone() },
            )?;
            asked = Some(text);
            answer
        }
        // A photo is read on this side when the query needs the text too.
        (None, Some(path)) if !query.is_empty() => {
            let text = qr::read_image(path)?;
            let answer = node.post_json_query(
                &["v1", "verify"],
                &query,
                &VerifyRequest { qr: text.clone() },
            )?;
            asked = Some(text);
            answer
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
    let report: Report = answer.parse(&[StatusCode::OK], Exit::DATA)?;
    let exit = match report.kind() {
        Some(Verdict::Valid) => Exit::OK,
        Some(Verdict::Invalid(_)) => Exit::INVALID,
        Some(Verdict::Undetermined(_)) => Exit::UNDETERMINED,
        None => {
            return Err(fail(
                Exit::PROTOCOL,
                format!(
                    "the node's report contradicts itself: verdict {:?} with reason {:?}",
                    report.verdict, report.reason
                ),
            ))
        }
    };
    if let (true, Some(text), Some(genesis)) = (o.proof, &asked, &a.mode.genesis) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let checked = crate::proof::check(
            &node,
            genesis,
            a.mode.governance.as_deref(),
            &report,
            text,
            now_ms,
            o.proof_age_max_secs,
        )?;
        eprintln!("{checked}");
    }
    files::print_line(&pretty(&report)?)?;
    files::tell_terminal(&report.message);
    Ok(exit)
}

pub fn status(a: StatusArgs) -> anyhow::Result<Exit> {
    let node = Node::new(&a.node.node, None, a.node.timeout_secs)?;
    let id = a.id.to_string();
    let query: Vec<(&str, &str)> = a.at.iter().map(|at| ("at", at.as_str())).collect();
    let v: StatusAnswer = node
        .get_query(&["v1", "licences", &id], &query, RESPONSE_BYTES_MAX)?
        .parse(&[StatusCode::OK], Exit::REFUSED)?;
    files::print_line(&pretty(&v)?)?;
    Ok(Exit::OK)
}

pub(crate) fn change(
    node: &crate::args::NodeArgs,
    token: &str,
    id: &LicenceId,
    action: &str,
    body: &impl Serialize,
) -> anyhow::Result<Exit> {
    let token = require_token(Some(token), action)?;
    let node = Node::new(&node.node, Some(&token), node.timeout_secs)?;
    let id = id.to_string();
    let v: LifecycleAnswer = node
        .post_json(&["v1", "licences", &id, action], body)?
        .parse(&[StatusCode::OK], Exit::REFUSED)?;
    files::print_line(&pretty(&v)?)?;
    Ok(Exit::OK)
}

pub fn suspend(a: SuspendArgs) -> anyhow::Result<Exit> {
    let body = SuspendRequest {
        reason: a.reason.into(),
        until: a.until,
    };
    change(&a.node, &a.token.token, &a.id, "suspend", &body)
}

pub fn reinstate(a: ReinstateArgs) -> anyhow::Result<Exit> {
    change(
        &a.node,
        &a.token.token,
        &a.id,
        "reinstate",
        &ReinstateRequest {},
    )
}

pub fn revoke(a: RevokeArgs) -> anyhow::Result<Exit> {
    let body = RevokeRequest {
        reason: a.reason.into(),
    };
    change(&a.node, &a.token.token, &a.id, "revoke", &body)
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
        let err = a
            .parse::<StatusAnswer>(&[StatusCode::OK], Exit::REFUSED)
            .expect_err("404");
        assert_eq!(format!("{err:#}"), "licence_not_found: no such licence");
        assert_eq!(code_of(&err), Exit::REFUSED);

        let a = Answer {
            status: StatusCode::BAD_GATEWAY,
            body: b"<html>bad gateway</html>".to_vec(),
        };
        let err = a
            .parse::<StatusAnswer>(&[StatusCode::OK], Exit::REFUSED)
            .expect_err("502");
        assert_eq!(format!("{err:#}"), "http_502: <html>bad gateway</html>");
        assert_eq!(code_of(&err), Exit::UNAVAILABLE);

        let a = Answer {
            status: StatusCode::OK,
            body: b"not json".to_vec(),
        };
        let err = a
            .parse::<StatusAnswer>(&[StatusCode::OK], Exit::REFUSED)
            .expect_err("junk");
        assert_eq!(code_of(&err), Exit::PROTOCOL);
    }
}
