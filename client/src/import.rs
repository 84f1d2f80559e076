//! `huren import`: issuing licences in bulk from a CSV file on the department's node.
//!
//! The file is read twice: a first pass checks the header and counts rows, so that an
//! oversized file or a misspelt column is refused before a single licence is issued; the
//! second pass maps each row to a licence request (`row_to_request`, a pure function),
//! sends them in batches to `POST /v1/licences:batch`, and records every outcome.
//!
//! A malformed row is reported with its row number and skipped; it never stops the
//! import. What does stop it is anything that makes the outcome of a batch unknown (the
//! node unreachable, a timeout, a 5xx, an answer that cannot be read) or that would fail
//! every batch (a rejected token): then the summary says which rows were sent and which
//! were not. Batches are never re-sent after an unknown outcome, because issuing is not
//! idempotent and a blind retry could issue a licence twice; only a 429 (refused before
//! any work) is retried.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, IsTerminal};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use csv::{ByteRecord, StringRecord};
use huren_api::licences::BatchOutcome;
use huren_api::{BatchAnswer, BatchRequest, IssueRequest};
use huren_core::credential::{EXTRA_FIELDS_MAX, FIELD_NAME_BYTES_MAX, HOLDER_FIELDS_MAX};
use huren_core::LicenceType;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::StatusCode;

use crate::args::{field_name_ok, field_value_problem, ImportArgs};
use crate::exit::{coded, fail, Exit, WithExit};
use crate::files;
use crate::online::{Answer, Node};

/// Largest CSV file accepted: about a million licences with generous fields.
pub const CSV_BYTES_MAX: u64 = 512 * 1024 * 1024;
/// Most data rows in one file: beyond this, split the file so each import stays short
/// enough to watch and to re-run.
pub const ROWS_MAX: u64 = 1_000_000;
/// Failures listed in the summary; the rest are counted (and all go to --failed).
const FAILURES_SHOWN_MAX: usize = 50;
/// Retries of a batch the node refused with 429 (rate limited, nothing done).
const RATE_LIMIT_RETRIES_MAX: u32 = 6;
const RATE_LIMIT_WAIT_SECS_MAX: u64 = 30;
const MESSAGE_CHARS_MAX: usize = 200;
/// Longest validity the protocol allows (genesis refuses more), as a quick row check.
const VALID_DAYS_MAX: u32 = 36_500;

pub const CSV_HELP: &str = "\
CSV format (UTF-8, comma-separated, a header row first):
  type            licence type code, required, e.g. mvdl
  holder.<name>   a holder field, e.g. holder.name, holder.id_number
  field.<name>    a further licence field
  valid_days      days of validity from now (optional; default: the genesis maximum)
  valid_from      RFC 3339 start, for licences that already exist on paper (optional)
  valid_until     RFC 3339 end, for licences that already exist on paper (optional)
Empty cells are left out. Rows are numbered as in a spreadsheet: the header is row 1.
A malformed row is reported and skipped; the other rows are still imported.
At most 512 MiB and 1,000,000 rows per file.

Exit status: 0 every row imported; 1 some rows not imported, or the node refused the
token; 65/66 the file was refused before anything was sent; 69 the node could not be
reached or failed, and the message says which rows may or may not be imported.";

/// What one header cell means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Type,
    ValidFrom,
    ValidUntil,
    ValidDays,
    Holder(String),
    Field(String),
}

/// The header row, resolved once for all rows.
#[derive(Debug)]
pub struct Header {
    columns: Vec<Column>,
}

impl Header {
    pub fn parse(cells: &StringRecord) -> Result<Self, String> {
        let mut columns = Vec::with_capacity(cells.len());
        let (mut holders, mut fields) = (0, 0);
        for (i, raw) in cells.iter().enumerate() {
            // Spreadsheets save UTF-8 CSV with a byte-order mark before the first name.
            let name = raw.trim_start_matches('\u{feff}').trim();
            let at = || format!("column {} ({name:?})", i + 1);
            let col = match name {
                "type" => Column::Type,
                "valid_from" => Column::ValidFrom,
                "valid_until" => Column::ValidUntil,
                "valid_days" => Column::ValidDays,
                _ => {
                    let (kind, field) = if let Some(f) = name.strip_prefix("holder.") {
                        holders += 1;
                        ("holder", f)
                    } else if let Some(f) = name.strip_prefix("field.") {
                        fields += 1;
                        ("field", f)
                    } else {
                        return Err(format!(
                            "{} is not a known column: use type, valid_from, valid_until, valid_days, holder.<name> or field.<name>",
                            at()
                        ));
                    };
                    if !field_name_ok(field) {
                        return Err(format!(
                            "{}: the {kind} field name must be 1-{FIELD_NAME_BYTES_MAX} characters of a-z, 0-9 and '_'",
                            at()
                        ));
                    }
                    if kind == "holder" {
                        Column::Holder(field.to_owned())
                    } else {
                        Column::Field(field.to_owned())
                    }
                }
            };
            if columns.contains(&col) {
                return Err(format!("{} appears twice in the header", at()));
            }
            columns.push(col);
        }
        if !columns.contains(&Column::Type) {
            return Err("the header has no type column".into());
        }
        if holders > HOLDER_FIELDS_MAX {
            return Err(format!(
                "{holders} holder.<name> columns; a licence has at most {HOLDER_FIELDS_MAX}"
            ));
        }
        if fields > EXTRA_FIELDS_MAX {
            return Err(format!(
                "{fields} field.<name> columns; a licence has at most {EXTRA_FIELDS_MAX}"
            ));
        }
        Ok(Self { columns })
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }
}

/// One licence as the batch endpoint takes it.
pub type LicenceRequest = IssueRequest;

/// Maps one data row to a licence request, or says in a sentence why it cannot.
pub fn row_to_request(header: &Header, row: &StringRecord) -> Result<LicenceRequest, String> {
    if row.len() != header.len() {
        return Err(format!(
            "has {} cells, the header has {}",
            row.len(),
            header.len()
        ));
    }
    let mut req = LicenceRequest {
        licence_type: String::new(),
        holder: BTreeMap::new(),
        fields: BTreeMap::new(),
        valid_days: None,
        valid_from: None,
        valid_until: None,
    };
    let mut times = (None, None);
    for (col, cell) in header.columns.iter().zip(row.iter()) {
        let cell = cell.trim();
        if cell.is_empty() {
            continue;
        }
        let shown = || cell.chars().take(40).collect::<String>();
        match col {
            Column::Type => {
                let t = LicenceType::parse(cell).map_err(|e| format!("type: {e}"))?;
                req.licence_type = t.to_string();
            }
            Column::ValidDays => {
                let days = cell
                    .parse::<u32>()
                    .ok()
                    .filter(|d| (1..=VALID_DAYS_MAX).contains(d))
                    .ok_or_else(|| {
                        format!(
                            "valid_days {:?} must be a whole number of days from 1 to {VALID_DAYS_MAX}",
                            shown()
                        )
                    })?;
                req.valid_days = Some(days);
            }
            Column::ValidFrom | Column::ValidUntil => {
                let name = if *col == Column::ValidFrom {
                    "valid_from"
                } else {
                    "valid_until"
                };
                let t = huren_core::verify::parse_rfc3339(cell).ok_or_else(|| {
                    format!(
                        "{name} {:?} is not an RFC 3339 time such as 2024-03-01T00:00:00+08:00",
                        shown()
                    )
                })?;
                if *col == Column::ValidFrom {
                    times.0 = Some(t);
                    req.valid_from = Some(cell.to_owned());
                } else {
                    times.1 = Some(t);
                    req.valid_until = Some(cell.to_owned());
                }
            }
            Column::Holder(name) | Column::Field(name) => {
                let (kind, map) = match col {
                    Column::Holder(_) => ("holder", &mut req.holder),
                    _ => ("field", &mut req.fields),
                };
                if let Some(problem) = field_value_problem(cell) {
                    return Err(format!("{kind}.{name} {problem}"));
                }
                map.insert(name.clone(), cell.to_owned());
            }
        }
    }
    if req.licence_type.is_empty() {
        return Err("type is empty".into());
    }
    if let (Some(from), Some(until)) = times {
        if until <= from {
            return Err("valid_until is not after valid_from".into());
        }
    }
    if req.valid_until.is_some() && req.valid_days.is_some() {
        return Err("valid_until and valid_days both given; give one of them".into());
    }
    Ok(req)
}

/// What the node said about one licence of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Imported { licence_id: String, qr: String },
    Failed { code: String, message: String },
}

/// Reads a batch answer into one outcome per request, in request order. A request the
/// answer does not mention is a failure, never silently an import.
pub fn outcomes(answer: &BatchAnswer, sent: usize) -> Result<Vec<Outcome>, String> {
    let mut out: Vec<Option<Outcome>> = vec![None; sent];
    for r in &answer.results {
        let index = r.index;
        if index >= sent {
            return Err(format!("result {index} names no row that was sent"));
        }
        let outcome = match r.outcome() {
            // The licence is issued once the node says ok; a missing QR text (it can be
            // fetched later from /v1/licences/{id}/qr.png) must not turn that into a
            // failure or an unknown outcome.
            Some(BatchOutcome::Issued { licence_id, qr }) => Outcome::Imported {
                licence_id: licence_id.to_string(),
                qr: qr.unwrap_or_default().to_owned(),
            },
            Some(BatchOutcome::Refused(e)) => Outcome::Failed {
                code: e.code.to_string(),
                message: e.message.clone(),
            },
            None => {
                return Err(format!(
                    "result {index} is neither ok with a licence id nor an error"
                ))
            }
        };
        if out[index].replace(outcome).is_some() {
            return Err(format!("result {index} is given twice"));
        }
    }
    Ok(out
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| Outcome::Failed {
                code: "no_result".into(),
                message: "the node's answer did not mention this row".into(),
            })
        })
        .collect())
}

/// A failed row as the summary lists it.
#[derive(Debug)]
struct Failure {
    row: u64,
    code: String,
    message: String,
}

/// Running totals and the output files of one import.
struct Tally {
    imported: u64,
    failed: u64,
    shown: Vec<Failure>,
    out: Option<csv::Writer<File>>,
    failed_out: Option<csv::Writer<File>>,
}

impl Tally {
    fn fail(&mut self, row: u64, code: &str, message: &str) -> anyhow::Result<()> {
        self.failed += 1;
        let message: String = message.chars().take(MESSAGE_CHARS_MAX).collect();
        if let Some(w) = &mut self.failed_out {
            w.write_record([row.to_string().as_str(), code, &message])
                .context("cannot write the --failed file")
                .code(Exit::CANT_CREATE)?;
        }
        if self.shown.len() < FAILURES_SHOWN_MAX {
            self.shown.push(Failure {
                row,
                code: code.to_owned(),
                message,
            });
        }
        Ok(())
    }

    fn imported(&mut self, row: u64, licence_id: &str, qr: &str) -> anyhow::Result<()> {
        self.imported += 1;
        if let Some(w) = &mut self.out {
            w.write_record([row.to_string().as_str(), licence_id, qr])
                .context("cannot write the --out file")
                .code(Exit::CANT_CREATE)?;
        }
        Ok(())
    }

    /// Flushes the output files, so that a later crash or abort leaves them complete up
    /// to the last batch the node answered.
    fn flush(&mut self) -> anyhow::Result<()> {
        for w in [&mut self.out, &mut self.failed_out].into_iter().flatten() {
            w.flush()
                .context("cannot write the output file")
                .code(Exit::CANT_CREATE)?;
        }
        Ok(())
    }

    fn summary(&mut self, rows: u64) -> String {
        // Malformed rows are found while reading, refusals when their batch returns;
        // the officer reads the list in file order.
        self.shown.sort_by_key(|f| f.row);
        let mut s = format!(
            "imported {}, failed {} (of {rows} rows)",
            self.imported, self.failed
        );
        if !self.shown.is_empty() {
            s.push_str(&format!("\n{:>8}  {:<24}  message", "row", "code"));
            for f in &self.shown {
                s.push_str(&format!("\n{:>8}  {:<24}  {}", f.row, f.code, f.message));
            }
            let more = self.failed.saturating_sub(self.shown.len() as u64);
            if more > 0 {
                s.push_str(&format!("\n… and {more} more"));
            }
        }
        s
    }
}

fn open_csv(path: &Path) -> anyhow::Result<csv::Reader<BufReader<File>>> {
    let file = File::open(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .code(Exit::NO_INPUT)?;
    let len = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))
        .code(Exit::NO_INPUT)?
        .len();
    if len > CSV_BYTES_MAX {
        return Err(fail(
            Exit::DATA,
            format!(
                "{} is {len} bytes; at most {CSV_BYTES_MAX} (512 MiB) per import: split the file",
                path.display()
            ),
        ));
    }
    // Flexible: a row with the wrong number of cells is one malformed row, reported by
    // `row_to_request`, not an error that stops the reader.
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(BufReader::new(file)))
}

fn read_error(path: &Path) -> impl Fn(csv::Error) -> anyhow::Error + '_ {
    move |e| {
        fail(
            Exit::NO_INPUT,
            format!("cannot read {}: {e}", path.display()),
        )
    }
}

/// First pass: the header, and the number of data rows (refusing more than `ROWS_MAX`).
fn survey(path: &Path) -> anyhow::Result<(Header, u64)> {
    let mut reader = open_csv(path)?;
    let header_bytes = reader.byte_headers().map_err(read_error(path))?.clone();
    let header_cells = StringRecord::from_byte_record(header_bytes).map_err(|_| {
        fail(
            Exit::DATA,
            format!("{}: the header row is not UTF-8", path.display()),
        )
    })?;
    let header = Header::parse(&header_cells)
        .map_err(|e| fail(Exit::DATA, format!("{}: {e}", path.display())))?;
    let mut record = ByteRecord::new();
    let mut rows = 0u64;
    while reader
        .read_byte_record(&mut record)
        .map_err(read_error(path))?
    {
        rows += 1;
        if rows > ROWS_MAX {
            return Err(fail(
                Exit::DATA,
                format!(
                    "{} has more than {ROWS_MAX} rows; split it into several imports",
                    path.display()
                ),
            ));
        }
    }
    Ok((header, rows))
}

fn create_csv(path: &Path, force: bool, header: [&str; 3]) -> anyhow::Result<csv::Writer<File>> {
    files::check_new(path, force)?;
    // The output holds every licence's QR, with the holders' names and ID numbers: the
    // officer's alone (0600), also when it replaces a file (--force).
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
        .code(Exit::CANT_CREATE)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))
            .code(Exit::CANT_CREATE)?;
    }
    let mut w = csv::Writer::from_writer(file);
    w.write_record(header)
        .with_context(|| format!("cannot write {}", path.display()))
        .code(Exit::CANT_CREATE)?;
    Ok(w)
}

fn progress(rows: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(rows);
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {human_pos}/{human_len} rows  {per_sec}  ETA {eta}",
    )
    .expect("the template above is valid")
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

pub fn run(a: ImportArgs) -> anyhow::Result<Exit> {
    // Everything that can be refused is refused before the first request.
    for p in [&a.out, &a.failed].into_iter().flatten() {
        files::check_new(p, a.force)?;
    }
    let (header, rows) = survey(&a.file)?;
    let node = Node::new(
        &a.node.node,
        Some(a.token.token.trim()),
        a.node.timeout_secs,
    )?;
    let mut tally = Tally {
        imported: 0,
        failed: 0,
        shown: Vec::new(),
        out: match &a.out {
            Some(p) => Some(create_csv(p, a.force, ["row", "licence_id", "qr"])?),
            None => None,
        },
        failed_out: match &a.failed {
            Some(p) => Some(create_csv(p, a.force, ["row", "code", "message"])?),
            None => None,
        },
    };
    let bar = progress(rows);
    let result = import_rows(&a, &header, &node, &mut tally, &bar, rows);
    bar.finish_and_clear();
    let flushed = tally.flush();
    files::print_line(&tally.summary(rows))?;
    result?;
    flushed?;
    Ok(if tally.failed == 0 {
        Exit::OK
    } else {
        Exit::REFUSED
    })
}

/// Sends batches to the node and records their outcomes.
struct Sender<'a> {
    node: &'a Node,
    bar: &'a ProgressBar,
    /// The file's last row number, for "rows N-M: not sent".
    last_row: u64,
    /// Licences per request; halved when the node answers 413.
    batch_max: usize,
}

fn import_rows(
    a: &ImportArgs,
    header: &Header,
    node: &Node,
    tally: &mut Tally,
    bar: &ProgressBar,
    rows: u64,
) -> anyhow::Result<()> {
    let mut reader = open_csv(&a.file)?;
    // The header was checked by `survey`; reading it again moves past it.
    reader.byte_headers().map_err(read_error(&a.file))?;
    let mut sender = Sender {
        node,
        bar,
        // Spreadsheet numbering: the header is row 1, so the last data row is rows + 1.
        last_row: rows + 1,
        batch_max: usize::try_from(a.batch).unwrap_or(1).max(1),
    };
    let mut batch: Vec<(u64, LicenceRequest)> = Vec::with_capacity(sender.batch_max);
    let mut record = ByteRecord::new();
    let mut row = 1u64;
    while reader
        .read_byte_record(&mut record)
        .map_err(read_error(&a.file))?
    {
        row += 1;
        if row - 1 > ROWS_MAX {
            // The file grew after the survey; stop at the bound rather than follow it.
            return Err(fail(
                Exit::DATA,
                format!(
                    "{} grew past {ROWS_MAX} rows during the import",
                    a.file.display()
                ),
            ));
        }
        let parsed = StringRecord::from_byte_record(record.clone())
            .map_err(|_| "is not valid UTF-8".to_owned())
            .and_then(|r| row_to_request(header, &r));
        match parsed {
            Ok(req) => batch.push((row, req)),
            Err(why) => {
                tally.fail(row, "malformed_row", &why)?;
                bar.inc(1);
            }
        }
        if batch.len() >= sender.batch_max {
            sender.send_all(&batch, tally)?;
            batch.clear();
        }
    }
    sender.send_all(&batch, tally)
}

fn row_span(batch: &[(u64, LicenceRequest)]) -> String {
    match (batch.first(), batch.last()) {
        (Some(f), Some(l)) if f.0 != l.0 => format!("rows {}-{}", f.0, l.0),
        (Some(f), _) => format!("row {}", f.0),
        _ => "no rows".into(),
    }
}

/// How one request went, when the import can go on.
enum Sent {
    Done,
    /// 413: the node refused the request as too large before doing anything.
    TooLarge(crate::online::NodeError),
}

impl Sender<'_> {
    /// Why the import stopped, with what is known about the rows in flight.
    fn stopped(
        &self,
        err: anyhow::Error,
        chunk: &[(u64, LicenceRequest)],
        known: bool,
    ) -> anyhow::Error {
        let exit = crate::exit::code_of(&err);
        let span = row_span(chunk);
        let fate = if known {
            format!("{span}: not imported")
        } else {
            format!("{span}: may or may not have been imported; check them before re-running")
        };
        let last_row = self.last_row;
        let after = match chunk.last() {
            Some(l) if l.0 + 1 == last_row => format!("\nrow {last_row}: not sent"),
            Some(l) if l.0 < last_row => format!("\nrows {}-{last_row}: not sent", l.0 + 1),
            _ => String::new(),
        };
        fail(exit, format!("import stopped: {err:#}\n{fate}{after}"))
    }

    /// Sends `batch` in requests of at most `batch_max`, halving on 413 (a node may be
    /// configured with a smaller batch bound than --batch).
    fn send_all(
        &mut self,
        batch: &[(u64, LicenceRequest)],
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let mut pending = batch;
        while !pending.is_empty() {
            let n = self.batch_max.min(pending.len());
            let (chunk, rest) = pending.split_at(n);
            match self.send(chunk, tally)? {
                Sent::Done => pending = rest,
                Sent::TooLarge(_) if n > 1 => {
                    self.batch_max = n / 2;
                    let m = self.batch_max;
                    self.bar.suspend(|| {
                        eprintln!(
                            "the node refused {n} licences in one request; sending {m} at a time"
                        )
                    });
                }
                Sent::TooLarge(e) => {
                    for (row, _) in chunk {
                        tally.fail(*row, &e.code_text(), &e.message)?;
                    }
                    self.bar.inc(chunk.len() as u64);
                    pending = rest;
                }
            }
        }
        Ok(())
    }

    fn send(&self, chunk: &[(u64, LicenceRequest)], tally: &mut Tally) -> anyhow::Result<Sent> {
        let body = BatchRequest {
            licences: chunk.iter().map(|(_, r)| r.clone()).collect(),
        };
        let mut attempt = 0;
        let answer: Answer = loop {
            let answer = match self.node.post_json(&["v1", "licences:batch"], &body) {
                Ok(a) => a,
                // A connection that never opened sent nothing; any other transport
                // failure (timeout, reset) leaves the chunk's fate unknown.
                Err(e) => {
                    let known = crate::online::never_connected(&e);
                    return Err(self.stopped(e, chunk, known));
                }
            };
            if answer.status == StatusCode::TOO_MANY_REQUESTS && attempt < RATE_LIMIT_RETRIES_MAX {
                attempt += 1;
                let wait = (1u64 << attempt.min(5)).min(RATE_LIMIT_WAIT_SECS_MAX);
                self.bar.suspend(|| {
                    eprintln!(
                        "the node is rate limiting; retrying {} in {wait} s",
                        row_span(chunk)
                    )
                });
                std::thread::sleep(Duration::from_secs(wait));
                continue;
            }
            break answer;
        };
        let status = answer.status;
        if status == StatusCode::OK {
            let results = serde_json::from_slice::<BatchAnswer>(&answer.body)
                .map_err(|e| format!("not a batch answer: {e}"))
                .and_then(|v| outcomes(&v, chunk.len()))
                .map_err(|e| {
                    let err = fail(
                        Exit::PROTOCOL,
                        format!("the node's batch answer is malformed: {e}"),
                    );
                    self.stopped(err, chunk, false)
                })?;
            for ((row, _), outcome) in chunk.iter().zip(results) {
                match outcome {
                    Outcome::Imported { licence_id, qr } => {
                        tally.imported(*row, &licence_id, &qr)?
                    }
                    Outcome::Failed { code, message } => tally.fail(*row, &code, &message)?,
                }
            }
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            return Ok(Sent::TooLarge(answer.error()));
        } else if matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::TOO_MANY_REQUESTS
        ) {
            // Every later request would be refused the same way (a bad token, a node
            // without the batch endpoint, a rate limit that does not lift): stop now.
            return Err(self.stopped(coded(Exit::REFUSED, answer.error()), chunk, true));
        } else if status.is_client_error() {
            // The node refused this request as a whole (malformed): its rows failed, the
            // next request may well pass.
            let e = answer.error();
            for (row, _) in chunk {
                tally.fail(*row, &e.code_text(), &e.message)?;
            }
        } else {
            let exit = if status.is_server_error() {
                Exit::UNAVAILABLE
            } else {
                Exit::PROTOCOL
            };
            return Err(self.stopped(coded(exit, answer.error()), chunk, false));
        }
        tally.flush()?;
        self.bar.inc(chunk.len() as u64);
        Ok(Sent::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn header(cells: &[&str]) -> Result<Header, String> {
        Header::parse(&StringRecord::from(cells.to_vec()))
    }

    fn check(cells: &[&str], row: &[&str], expected: Result<Value, &str>) {
        let h = header(cells).expect("header");
        let got = row_to_request(&h, &StringRecord::from(row.to_vec()))
            .map(|r| serde_json::to_value(r).expect("json"));
        match (got, expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e, "row {row:?}"),
            (Err(g), Err(e)) => assert!(g.contains(e), "row {row:?}: {g:?} lacks {e:?}"),
            (g, e) => panic!("row {row:?}: got {g:?}, expected {e:?}"),
        }
    }

    const COLS: &[&str] = &[
        "type",
        "holder.name",
        "holder.id_number",
        "holder.class",
        "field.archive_no",
        "valid_days",
        "valid_from",
        "valid_until",
    ];

    #[test]
    fn rows_map_to_requests() {
        check(
            COLS,
            &["mvdl", "张三", "44010619900101123X", "C1", "", "", "", ""],
            Ok(json!({
                "licence_type": "mvdl",
                "holder": {"name": "张三", "id_number": "44010619900101123X", "class": "C1"},
                "fields": {},
            })),
        );
        check(
            COLS,
            &[" mvdl ", "李四", "x", "", "A-123", "365", "", ""],
            Ok(json!({
                "licence_type": "mvdl",
                "holder": {"name": "李四", "id_number": "x"},
                "fields": {"archive_no": "A-123"},
                "valid_days": 365,
            })),
        );
        check(
            COLS,
            &[
                "mvdl",
                "王五",
                "y",
                "C2",
                "",
                "",
                "2020-01-01T00:00:00+08:00",
                "2026-01-01T00:00:00+08:00",
            ],
            Ok(json!({
                "licence_type": "mvdl",
                "holder": {"name": "王五", "id_number": "y", "class": "C2"},
                "fields": {},
                "valid_from": "2020-01-01T00:00:00+08:00",
                "valid_until": "2026-01-01T00:00:00+08:00",
            })),
        );
        // Columns in any order, a BOM before the first name.
        check(
            &["\u{feff}holder.entity", "type"],
            &["某某食品有限公司", "food"],
            Ok(
                json!({"licence_type": "food", "holder": {"entity": "某某食品有限公司"}, "fields": {}}),
            ),
        );
    }

    #[test]
    fn malformed_rows_say_why() {
        check(
            COLS,
            &["", "a", "b", "c", "", "", "", ""],
            Err("type is empty"),
        );
        check(COLS, &["MVDL", "a", "b", "c", "", "", "", ""], Err("type:"));
        check(
            COLS,
            &["mvdl", "a", "b", "c", "", "0", "", ""],
            Err("valid_days \"0\""),
        );
        check(
            COLS,
            &["mvdl", "a", "b", "c", "", "ten", "", ""],
            Err("valid_days"),
        );
        check(
            COLS,
            &["mvdl", "a", "b", "c", "", "99999", "", ""],
            Err("valid_days"),
        );
        check(
            COLS,
            &["mvdl", "a", "b", "c", "", "", "2020-13-01", ""],
            Err("valid_from \"2020-13-01\" is not an RFC 3339 time"),
        );
        check(
            COLS,
            &[
                "mvdl",
                "a",
                "b",
                "c",
                "",
                "",
                "2026-01-01T00:00:00Z",
                "2020-01-01T00:00:00Z",
            ],
            Err("valid_until is not after valid_from"),
        );
        check(
            COLS,
            &["mvdl", "a", "b", "c", "", "30", "", "2030-01-01T00:00:00Z"],
            Err("valid_until and valid_days both given"),
        );
        let long = "x".repeat(300);
        check(
            COLS,
            &["mvdl", &long, "b", "c", "", "", "", ""],
            Err("holder.name is 300 bytes"),
        );
        check(
            COLS,
            &["mvdl", "a\u{7}", "b", "c", "", "", "", ""],
            Err("holder.name contains a control character"),
        );
        check(COLS, &["mvdl", "a"], Err("has 2 cells, the header has 8"));
    }

    #[test]
    fn bad_headers_are_refused() {
        let err = |cells: &[&str]| header(cells).expect_err("bad header");
        assert!(err(&["holder.name"]).contains("no type column"));
        assert!(err(&["type", "tpye"]).contains("column 2 (\"tpye\") is not a known column"));
        assert!(err(&["type", "holder.name", "holder.name"]).contains("appears twice"));
        assert!(err(&["type", "holder.Name"]).contains("field name"));
        assert!(err(&["type", "field."]).contains("field name"));
        let many: Vec<String> = (0..17).map(|i| format!("holder.f{i}")).collect();
        let mut cells = vec!["type"];
        cells.extend(many.iter().map(String::as_str));
        assert!(err(&cells).contains("at most 16"));
    }

    fn answer(v: Value) -> BatchAnswer {
        serde_json::from_value(v).expect("a batch answer")
    }

    #[test]
    fn batch_answers_map_to_rows() {
        let v = answer(json!({"results": [
            {"index": 1, "ok": false, "error": {"code": "type_not_granted", "message": "no"}},
            {"index": 0, "ok": true, "licence_id": "gd.transport:mvdl:00000001", "qr": "HZ1:X"},
        ]}));
        assert_eq!(
            outcomes(&v, 3).expect("outcomes"),
            vec![
                Outcome::Imported {
                    licence_id: "gd.transport:mvdl:00000001".into(),
                    qr: "HZ1:X".into()
                },
                Outcome::Failed {
                    code: "type_not_granted".into(),
                    message: "no".into()
                },
                Outcome::Failed {
                    code: "no_result".into(),
                    message: "the node's answer did not mention this row".into()
                },
            ]
        );
        assert!(outcomes(
            &answer(json!({"results": [{"index": 5, "ok": true, "licence_id": "a.b:c:1"}]})),
            3
        )
        .is_err());
        assert!(outcomes(&answer(json!({"results": [{"index": 0, "ok": true}]})), 1).is_err());
        assert!(serde_json::from_value::<BatchAnswer>(json!({})).is_err());
        let twice = answer(json!({"results": [
            {"index": 0, "ok": false, "error": {"code": "internal", "message": "x"}},
            {"index": 0, "ok": false, "error": {"code": "internal", "message": "x"}}
        ]}));
        assert!(outcomes(&twice, 1).is_err());
    }

    #[test]
    fn survey_counts_rows_and_refuses_bad_headers() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("in.csv");
        std::fs::write(&p, "type,holder.name\nmvdl,a\n\nmvdl,\"b,\nc\"\nfood\n").expect("write");
        let (h, rows) = survey(&p).expect("survey");
        assert_eq!(h.len(), 2);
        assert_eq!(rows, 3);
        std::fs::write(&p, "typ,holder.name\nmvdl,a\n").expect("write");
        let e = survey(&p).expect_err("bad header");
        assert_eq!(crate::exit::code_of(&e), Exit::DATA);
        let e = survey(&dir.path().join("missing.csv")).expect_err("missing");
        assert_eq!(crate::exit::code_of(&e), Exit::NO_INPUT);
    }

    #[test]
    fn summary_lists_at_most_fifty_failures() {
        let mut t = Tally {
            imported: 3,
            failed: 0,
            shown: Vec::new(),
            out: None,
            failed_out: None,
        };
        for row in 2..62 {
            t.fail(row, "malformed_row", "type is empty").expect("fail");
        }
        let s = t.summary(63);
        assert!(s.starts_with("imported 3, failed 60 (of 63 rows)"), "{s}");
        assert_eq!(s.lines().count(), 1 + 1 + 50 + 1);
        assert!(s.ends_with("… and 10 more"), "{s}");
    }
}
