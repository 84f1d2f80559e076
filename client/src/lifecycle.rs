//! The licence's later life on a department's node: renew (one or in bulk), reissue,
//! amend, transfer out and in, annul, and its history. Each is one request to the node;
//! what the node answers is printed as JSON, a new QR also as text and image files.

use std::io::Write;

use huren_api::licences::BatchOutcome;
use huren_api::{
    AcceptTransferRequest, AmendRequest, AnnulRequest, BatchAnswer, HistoryAnswer, IssueAnswer,
    ReissueRequest, RenewBatchRequest, RenewItem, RenewRequest, TransferRequest,
};
use huren_core::credential::QR_TEXT_CHARS_MAX;
use reqwest::StatusCode;

use crate::args::{
    AcceptTransferArgs, AmendArgs, AnnulArgs, HistoryArgs, NodeArgs, QrFiles, ReissueArgs,
    RenewArgs, TokenArgs, TransferArgs,
};
use crate::exit::{fail, Exit};
use crate::online::{change, pretty, require_token, Node};
use crate::{files, qr};

fn department_node(node: &NodeArgs, token: &TokenArgs, action: &str) -> anyhow::Result<Node> {
    let token = require_token(Some(&token.token), action)?;
    Node::new(&node.node, Some(&token), node.timeout_secs)
}

/// A new QR from the node (renew, reissue, amend, accept-transfer): printed, and written
/// to the image files asked for.
fn new_qr(answer: IssueAnswer, output: &QrFiles, what: &str) -> anyhow::Result<Exit> {
    if answer.qr.len() > QR_TEXT_CHARS_MAX {
        return Err(fail(
            Exit::PROTOCOL,
            format!(
                "the node {what} {} but its QR text is longer than a QR holds; check with huren status",
                answer.licence_id
            ),
        ));
    }
    qr::write_files(&answer.qr, output)?;
    files::print_line(&answer.qr)?;
    eprintln!(
        "{what} {}, valid {} to {} (block {}#{})",
        answer.licence_id,
        answer.valid_from,
        answer.valid_until,
        answer.block.department,
        answer.block.height
    );
    Ok(Exit::OK)
}

fn credential_change(
    node: &NodeArgs,
    token: &TokenArgs,
    id: &huren_core::LicenceId,
    action: &str,
    body: &impl serde::Serialize,
    output: &QrFiles,
    what: &str,
) -> anyhow::Result<Exit> {
    let node = department_node(node, token, action)?;
    let id = id.to_string();
    let answer: IssueAnswer = node
        .post_json(&["v1", "licences", &id, action], body)?
        .parse(&[StatusCode::OK], Exit::REFUSED)?;
    new_qr(answer, output, what)
}

pub fn renew(a: RenewArgs) -> anyhow::Result<Exit> {
    let renew = RenewRequest {
        valid_days: a.valid_days,
        valid_until: a.valid_until.clone(),
    };
    match (&a.id, &a.file, &a.out) {
        (Some(id), None, _) => {
            credential_change(&a.node, &a.token, id, "renew", &renew, &a.output, "renewed")
        }
        (None, Some(file), Some(out)) => renew_file(&a, file, out, &renew),
        _ => Err(fail(
            Exit::USAGE,
            "give one ID, or --file FILE with --out FILE.csv",
        )),
    }
}

/// Bulk renewals: the ids of `file`, `a.batch` per request, each one renewed or refused
/// on its own; the new QR texts go to `out` as CSV. Exit 0 when every one was renewed,
/// 1 (refused) when any was not (each refusal is printed with its line).
fn renew_file(
    a: &RenewArgs,
    file: &std::path::Path,
    out: &std::path::Path,
    renew: &RenewRequest,
) -> anyhow::Result<Exit> {
    /// A list of a department's renewals for a day fits; a file far larger is a mistake.
    const FILE_BYTES_MAX: usize = 64 * 1024 * 1024;
    let text = String::from_utf8(files::read_bounded(file, FILE_BYTES_MAX, "licence list")?)
        .map_err(|_| fail(Exit::DATA, format!("{} is not UTF-8 text", file.display())))?;
    let ids: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim().to_owned()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let node = department_node(&a.node, &a.token, "renew")?;
    let mut csv = Vec::new();
    writeln!(csv, "licence_id,qr")?;
    let (mut renewed, mut refused) = (0usize, 0usize);
    for chunk in ids.chunks(a.batch as usize) {
        let body = RenewBatchRequest {
            licences: chunk
                .iter()
                .map(|(_, id)| RenewItem {
                    licence_id: id.clone(),
                    renew: renew.clone(),
                })
                .collect(),
        };
        let answer: BatchAnswer = node
            .post_json(&["v1", "licences:renew"], &body)?
            .parse(&[StatusCode::OK], Exit::REFUSED)?;
        for item in &answer.results {
            let line = chunk.get(item.index).map_or(0, |(n, _)| *n);
            match item.outcome() {
                Some(BatchOutcome::Issued { licence_id, qr }) => {
                    renewed += 1;
                    writeln!(csv, "{licence_id},{}", qr.unwrap_or(""))?;
                }
                Some(BatchOutcome::Refused(e)) => {
                    refused += 1;
                    eprintln!("line {line}: {}: {}", e.code, e.message);
                }
                None => {
                    return Err(fail(
                        Exit::PROTOCOL,
                        format!("the node's answer for line {line} contradicts itself"),
                    ))
                }
            }
        }
    }
    files::write_file(out, &csv, true, "renewals CSV")?;
    eprintln!(
        "renewed {renewed} of {} licences; new QR texts in {}",
        ids.len(),
        out.display()
    );
    Ok(if refused == 0 {
        Exit::OK
    } else {
        Exit::REFUSED
    })
}

pub fn reissue(a: ReissueArgs) -> anyhow::Result<Exit> {
    credential_change(
        &a.node,
        &a.token,
        &a.id,
        "reissue",
        &ReissueRequest {},
        &a.output,
        "reissued",
    )
}

pub fn amend(a: AmendArgs) -> anyhow::Result<Exit> {
    if a.holder.is_empty() && a.field.is_empty() {
        return Err(fail(
            Exit::USAGE,
            "give at least one --holder NAME=VALUE or --field NAME=VALUE that changes",
        ));
    }
    let body = AmendRequest {
        holder: a.holder.into_iter().collect(),
        fields: a.field.into_iter().collect(),
    };
    credential_change(
        &a.node, &a.token, &a.id, "amend", &body, &a.output, "amended",
    )
}

pub fn transfer(a: TransferArgs) -> anyhow::Result<Exit> {
    change(
        &a.node,
        &a.token.token,
        &a.id,
        "transfer",
        &TransferRequest { to: a.to },
    )
}

pub fn accept_transfer(a: AcceptTransferArgs) -> anyhow::Result<Exit> {
    let qr = if a.text == "-" {
        files::read_stdin_line(QR_TEXT_CHARS_MAX)?
    } else {
        a.text.clone()
    };
    let node = department_node(&a.node, &a.token, "accept-transfer")?;
    let answer: IssueAnswer = node
        .post_json(
            &["v1", "transfers"],
            &AcceptTransferRequest {
                qr,
                valid_days: a.valid_days,
                valid_until: None,
            },
        )?
        .parse(&[StatusCode::CREATED, StatusCode::OK], Exit::REFUSED)?;
    new_qr(answer, &a.output, "transferred in as")
}

pub fn annul(a: AnnulArgs) -> anyhow::Result<Exit> {
    change(
        &a.node,
        &a.token.token,
        &a.id,
        "annul",
        &AnnulRequest {
            reason: a.reason.into(),
        },
    )
}

pub fn history(a: HistoryArgs) -> anyhow::Result<Exit> {
    let node = Node::new(&a.node.node, None, a.node.timeout_secs)?;
    let id = a.id.to_string();
    let v: HistoryAnswer = node
        .get(&["v1", "licences", &id, "history"])?
        .parse(&[StatusCode::OK], Exit::REFUSED)?;
    files::print_line(&pretty(&v)?)?;
    Ok(Exit::OK)
}
