//! huren-baseline: what a ministry might build instead of Huren, for the benchmark to
//! compare with (issue 15, docs/performance.md §5). Not a product.
//!
//! One central PostgreSQL database behind a minimal axum service, doing per licence the
//! work a node does: `POST /v1/licences:batch` drafts each credential with core's
//! issuance policy, signs it with the department's Ed25519 key (`Credential::sign`, the
//! node's call) and inserts the whole request in one transaction, committed durably
//! (`synchronous_commit = on`) before it answers; `POST /v1/verify` decodes the QR text
//! with core's decoder, checks the issuer's signature strictly, looks the licence up by id
//! with a prepared statement and lets core decide the verdict from that row. The wire
//! types are huren-api's, so `huren-bench` drives it exactly as it drives a node.
//!
//! What it must never become: a second implementation of Huren. It has no lifecycle
//! routes, no replication, no history, no checkpoints, one bearer token compared as is,
//! and no limits beyond a body size; anything a comparison does not measure stays out.
//! Prints its URL on the first line of stdout, then serves until killed.

#[global_allocator]
// The node's allocator, so that the allocator is not what the comparison measures.
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use clap::Parser;
use huren_api::{
    BatchAnswer, BatchItem, BatchRequest, ErrorBody, ErrorCode, ErrorDetail, Report, VerifyRequest,
};
use huren_core::issuance::{PolicyError, Terms};
use huren_core::verify::{self, parse_rfc3339, Step};
use huren_core::{
    Credential, DepartmentId, Hash32, Head, LedgerFacts, LicenceState, LicenceStatus, LicenceType,
    Network, RegionCode, SecretKey, UnverifiedCredential, VerifyContext,
};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

#[derive(Parser)]
#[command(about = "The benchmark's central-database baseline (not a product)")]
struct Args {
    /// Address to serve on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// PostgreSQL connection string, e.g. "host=/tmp/pg user=postgres dbname=huren".
    #[arg(long)]
    postgres: String,
    /// The network's genesis: issuance policy and verdict rules are core's, read from it.
    #[arg(long)]
    genesis: PathBuf,
    /// The department's issuer key file (as `huren-genesis` writes it); its department is
    /// the one genesis names for the key.
    #[arg(long)]
    key_file: PathBuf,
    /// The bearer token officers send.
    #[arg(long)]
    token: String,
    /// Connections to PostgreSQL, each used by one request at a time (as a pool would).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// How a batch's rows go into its transaction.
    #[arg(long, value_enum, default_value_t = InsertMethod::Copy)]
    insert: InsertMethod,
}

/// How a batch is written. Measured with 1000-licence batches, 4 in flight, on the
/// benchmark machine (2 cores): see `insert_rows`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum InsertMethod {
    /// `COPY … FROM STDIN (FORMAT binary)`: one stream of rows.
    Copy,
    /// One `INSERT … SELECT FROM unnest($1, …, $10)` with a column array per parameter.
    Unnest,
    /// A prepared one-row `INSERT`, executed per row, the executions pipelined.
    Loop,
}

/// The most bytes of one request body: a batch of the node's `batch_licences_max` (1000)
/// licences is about 150 KiB of JSON.
const BODY_BYTES_MAX: usize = 8 << 20;
/// The most licences in one batch: the node's default `batch_licences_max`.
const BATCH_LICENCES_MAX: usize = 1000;

/// The table a central registry keeps: what identifies and governs each licence, the
/// commitment and the signed credential itself (the issuing side keeps credentials, as the
/// node's issuing store does). `status` is `LicenceStatus::to_bytes` as a big-endian
/// smallint (state, reason).
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS licences (
    licence_id   text PRIMARY KEY,
    department   text NOT NULL,
    licence_type text NOT NULL,
    serial       bigint NOT NULL,
    valid_from   timestamptz NOT NULL,
    valid_until  timestamptz NOT NULL,
    status       smallint NOT NULL,
    commitment   bytea NOT NULL,
    credential   bytea NOT NULL,
    issued_at    timestamptz NOT NULL
)";
const COLUMNS: &str = "licence_id, department, licence_type, serial, valid_from, valid_until, status, commitment, credential, issued_at";
const COLUMN_TYPES: [Type; 10] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::INT2,
    Type::BYTEA,
    Type::BYTEA,
    Type::TIMESTAMPTZ,
];

/// One connection with its prepared statements.
struct Conn {
    client: Client,
    lookup: Statement,
    insert_one: Statement,
    insert_unnest: Statement,
}

/// A fixed set of connections, each lent to one request at a time: what deadpool and
/// every other pool do, in a dozen lines.
struct Pool {
    conns: Vec<tokio::sync::Mutex<Conn>>,
    next: AtomicUsize,
}

impl Pool {
    async fn connect(config: &str, n: usize) -> anyhow::Result<Pool> {
        let mut conns = Vec::with_capacity(n);
        for i in 0..n.max(1) {
            let (client, connection) = tokio_postgres::connect(config, NoTls)
                .await
                .with_context(|| format!("connecting to PostgreSQL at {config:?}"))?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::error!("PostgreSQL connection: {e}");
                }
            });
            // Explicit, whatever the server's configuration: a commit returns only once
            // its WAL is flushed to disk, which is what a node's answer to an officer means.
            client
                .batch_execute("SET synchronous_commit = on")
                .await
                .context("setting synchronous_commit")?;
            if i == 0 {
                client
                    .batch_execute(SCHEMA)
                    .await
                    .context("creating the table")?;
            }
            let lookup = client
                .prepare("SELECT status, valid_from, valid_until, commitment FROM licences WHERE licence_id = $1")
                .await?;
            let insert_one = client
                .prepare(&format!(
                    "INSERT INTO licences ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .await?;
            let insert_unnest = client
                .prepare(&format!(
                    "INSERT INTO licences ({COLUMNS}) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::timestamptz[], $6::timestamptz[], $7::int2[], $8::bytea[], $9::bytea[], $10::timestamptz[])"
                ))
                .await?;
            conns.push(tokio::sync::Mutex::new(Conn {
                client,
                lookup,
                insert_one,
                insert_unnest,
            }));
        }
        Ok(Pool {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// A free connection if there is one, else the next in turn once it is free.
    async fn get(&self) -> tokio::sync::MutexGuard<'_, Conn> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.conns.len();
        for i in 0..n {
            if let Ok(c) = self.conns[(start + i) % n].try_lock() {
                return c;
            }
        }
        self.conns[start % n].lock().await
    }
}

struct App {
    net: Network,
    department: DepartmentId,
    region: RegionCode,
    key: SecretKey,
    token: String,
    pool: Pool,
    /// Next serial per licence type, from the table's maximum at start: this service is
    /// the only writer, as a node is of its chain.
    serials: std::sync::Mutex<HashMap<LicenceType, u64>>,
    insert: InsertMethod,
}

/// An error answer in the node's shape (`{"error": {"code", "message"}}`).
struct Refusal(ErrorDetail);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody { error: self.0 })).into_response()
    }
}

impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!("{e:#}");
        Refusal(ErrorDetail::new(ErrorCode::Internal, "internal error"))
    }
}

impl From<tokio_postgres::Error> for Refusal {
    fn from(e: tokio_postgres::Error) -> Self {
        anyhow::Error::from(e).into()
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Unix seconds as a time: those of a drafted credential, which `draft` bounded (RFC 3339
/// years 0-9999, or now plus at most a licence type's validity).
fn time_of(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn secs_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The node's codes for an issue request its policy refuses (node::api::department).
fn policy_refusal(e: &PolicyError) -> ErrorDetail {
    let code = match e {
        PolicyError::NotGranted { .. } => ErrorCode::TypeNotGranted,
        PolicyError::Validity(_) => ErrorCode::BadValidity,
        _ => ErrorCode::InvalidLicence,
    };
    ErrorDetail::new(code, e.to_string())
}

fn terms(item: huren_api::IssueRequest) -> Result<Terms, ErrorDetail> {
    let licence_type = LicenceType::parse(&item.licence_type)
        .map_err(|e| ErrorDetail::new(ErrorCode::BadLicenceType, e.to_string()))?;
    let time = |s: Option<String>, name: &str| {
        s.map(|s| {
            parse_rfc3339(&s).ok_or_else(|| {
                ErrorDetail::new(ErrorCode::BadTime, format!("{name} must be RFC 3339"))
            })
        })
        .transpose()
    };
    Ok(Terms {
        licence_type,
        valid_from: time(item.valid_from, "valid_from")?,
        valid_until: time(item.valid_until, "valid_until")?,
        valid_days: item.valid_days,
        holder: item.holder,
        fields: item.fields,
    })
}

async fn issue_batch(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(body): Json<BatchRequest>,
) -> Result<Json<BatchAnswer>, Refusal> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(app.token.as_str()) {
        return Err(Refusal(ErrorDetail::new(
            ErrorCode::Unauthorized,
            "missing or unknown bearer token",
        )));
    }
    if body.licences.len() > BATCH_LICENCES_MAX {
        return Err(Refusal(ErrorDetail::new(
            ErrorCode::BatchTooLarge,
            format!(
                "{} licences in one request; at most {BATCH_LICENCES_MAX}",
                body.licences.len()
            ),
        )));
    }
    // Draft in order under the serial lock (cheap), as the node's producer does: a
    // refused item uses up no serial.
    let now = now_s();
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(body.licences.len());
    let mut drafts: Vec<(usize, Credential)> = Vec::new();
    {
        let mut serials = app
            .serials
            .lock()
            .map_err(|_| anyhow::anyhow!("the serial counter's lock is poisoned"))?;
        for (index, item) in body.licences.into_iter().enumerate() {
            let drafted = terms(item).and_then(|t| {
                let serial = serials.get(&t.licence_type).copied().unwrap_or(1);
                let mut salt = [0u8; 16];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
                let c =
                    huren_core::issuance::draft(&app.net, &app.department, &t, now, serial, salt)
                        .map_err(|e| policy_refusal(&e))?;
                serials.insert(t.licence_type, serial + 1);
                Ok(c)
            });
            match drafted {
                Ok(c) => {
                    drafts.push((index, c));
                    results.push(None);
                }
                Err(e) => results.push(Some(BatchItem::refused(index, e))),
            }
        }
    }
    // Signing is the CPU-heavy part: off the async workers, one blocking task per request
    // (the benchmark keeps 4 requests in flight, enough to occupy every core).
    let signer = app.clone();
    let signed = tokio::task::spawn_blocking(move || {
        drafts
            .into_iter()
            .map(|(index, c)| c.sign(&signer.key).map(|s| (index, c, s)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .context("the signing task")?
    .context("signing a drafted credential")?;
    if !signed.is_empty() {
        let mut guard = app.pool.get().await;
        let conn = &mut *guard;
        let t0 = std::time::Instant::now();
        let tx = conn.client.transaction().await?;
        insert_rows(
            app.insert,
            &tx,
            &conn.insert_one,
            &conn.insert_unnest,
            &signed,
        )
        .await?;
        let t1 = std::time::Instant::now();
        // Durable before the answer: the commit waits for its WAL flush.
        tx.commit().await?;
        tracing::debug!(
            rows = signed.len(),
            insert_ms = (t1 - t0).as_secs_f64() * 1e3,
            commit_ms = t1.elapsed().as_secs_f64() * 1e3,
            "batch written"
        );
    }
    for (index, c, s) in signed {
        results[index] = Some(BatchItem::issued(index, c.licence_id, Some(s.qr_text)));
    }
    Ok(Json(BatchAnswer {
        results: results.into_iter().flatten().collect(),
    }))
}

type Signed = (usize, Credential, huren_core::SignedCredential);

/// Writes the rows of one request inside its transaction. COPY is the default. Measured
/// on the benchmark machine (2 shared cores, debug build, batches of 1000 with 4 in
/// flight, 20,000 to 30,000 licences a run, four runs of each, alternated): the statement
/// took 13-18 ms a batch with COPY and 12-16 ms with unnest, the same within the noise,
/// and 39-50 ms with the pipelined one-row INSERT; the commit's WAL flush took 7-17 ms
/// whatever the method. End to end, signing included: 15,600-18,800 licences/s with
/// COPY, 15,200-16,200/s with unnest, 13,000-14,600/s with the loop.
async fn insert_rows(
    method: InsertMethod,
    tx: &tokio_postgres::Transaction<'_>,
    insert_one: &Statement,
    insert_unnest: &Statement,
    rows: &[Signed],
) -> anyhow::Result<()> {
    let columns = Columns::of(rows);
    match method {
        InsertMethod::Copy => {
            let sink = tx
                .copy_in(&format!(
                    "COPY licences ({COLUMNS}) FROM STDIN (FORMAT binary)"
                ))
                .await?;
            let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, &COLUMN_TYPES));
            for i in 0..rows.len() {
                writer.as_mut().write(&columns.row(i)).await?;
            }
            writer.finish().await?;
        }
        InsertMethod::Unnest => {
            tx.execute(
                insert_unnest,
                &[
                    &columns.licence_id,
                    &columns.department,
                    &columns.licence_type,
                    &columns.serial,
                    &columns.valid_from,
                    &columns.valid_until,
                    &columns.status,
                    &columns.commitment,
                    &columns.credential,
                    &columns.issued_at,
                ],
            )
            .await?;
        }
        InsertMethod::Loop => {
            // Sent without waiting for each answer: tokio-postgres pipelines them.
            let pending: Vec<_> = (0..rows.len())
                .map(|i| {
                    let row = columns.row(i);
                    async move { tx.execute(insert_one, &row).await }
                })
                .collect();
            futures::future::try_join_all(pending).await?;
        }
    }
    Ok(())
}

/// A batch's rows as columns, in the table's column order.
struct Columns {
    licence_id: Vec<String>,
    department: Vec<String>,
    licence_type: Vec<String>,
    serial: Vec<i64>,
    valid_from: Vec<SystemTime>,
    valid_until: Vec<SystemTime>,
    status: Vec<i16>,
    commitment: Vec<Vec<u8>>,
    credential: Vec<Vec<u8>>,
    issued_at: Vec<SystemTime>,
}

impl Columns {
    fn of(rows: &[Signed]) -> Columns {
        let active = i16::from_be_bytes(LicenceStatus::Active.to_bytes());
        Columns {
            licence_id: rows
                .iter()
                .map(|(_, c, _)| c.licence_id.to_string())
                .collect(),
            department: rows.iter().map(|(_, c, _)| c.issuer.to_string()).collect(),
            licence_type: rows
                .iter()
                .map(|(_, c, _)| c.licence_type().to_string())
                .collect(),
            serial: rows
                .iter()
                .map(|(_, c, _)| c.licence_id.serial() as i64)
                .collect(),
            valid_from: rows.iter().map(|(_, c, _)| time_of(c.not_before)).collect(),
            valid_until: rows.iter().map(|(_, c, _)| time_of(c.expires_at)).collect(),
            status: vec![active; rows.len()],
            commitment: rows
                .iter()
                .map(|(_, _, s)| s.commitment.0.to_vec())
                .collect(),
            credential: rows.iter().map(|(_, _, s)| s.cose.clone()).collect(),
            issued_at: rows.iter().map(|(_, c, _)| time_of(c.issued_at)).collect(),
        }
    }

    fn row(&self, i: usize) -> [&(dyn ToSql + Sync); 10] {
        [
            &self.licence_id[i],
            &self.department[i],
            &self.licence_type[i],
            &self.serial[i],
            &self.valid_from[i],
            &self.valid_until[i],
            &self.status[i],
            &self.commitment[i],
            &self.credential[i],
            &self.issued_at[i],
        ]
    }
}

/// A verify report for QR text: core's decoder, a strict signature check, the row by
/// licence id, core's verdict rules.
async fn verify_qr(
    State(app): State<Arc<App>>,
    Json(body): Json<VerifyRequest>,
) -> Result<Json<Report>, Refusal> {
    let ctx = VerifyContext {
        now: now_s(),
        region: Some(app.region.clone()),
    };
    let un = match UnverifiedCredential::from_qr(&body.qr) {
        Ok(un) => un,
        Err(e) => {
            let d = verify::undecodable(&e.to_string(), &ctx);
            return Ok(Json(Report::new(&app.net, &d)));
        }
    };
    // The check a node makes on its signature path, made on every request: a central
    // database has no signed chain whose commitment could vouch for the bytes instead.
    let signature_ok = app
        .net
        .key_span(&un.kid)
        .and_then(|(_, span)| un.signature_input(&span.key))
        .is_some_and(|i| i.key.verify(&i.message, &i.signature));
    let row = {
        let conn = app.pool.get().await;
        conn.client
            .query_opt(&conn.lookup, &[&un.credential.licence_id.to_string()])
            .await?
    };
    let licence = match row {
        Some(r) => Some(LicenceState {
            status: LicenceStatus::from_bytes(r.try_get::<_, i16>(0)?.to_be_bytes())
                .context("a status the table should not hold")?,
            valid_from: secs_of(r.try_get(1)?),
            valid_until: secs_of(r.try_get(2)?),
            commitment: Hash32(
                r.try_get::<_, &[u8]>(3)?
                    .try_into()
                    .context("a commitment of other than 32 bytes")?,
            ),
            // No chain: heights are 0, and the key the licence was issued under is the
            // one this service signs with.
            issued_height: 0,
            issued_index: u32::MAX,
            updated_height: 0,
            issuer_key: app.key.public().key_id(),
            suspended_until: None,
            status_height: 0,
            status_index: 0,
        }),
        None => None,
    };
    // Core decides from the row as a node does from its ledger. With a good signature and
    // the row's commitment equal to the credential's, `prepare` takes its fast path (the
    // signature was checked above); otherwise it asks for the check, answered with the
    // result above. A bad signature hides the row, so the fast path cannot skip it.
    let facts = LedgerFacts::Online {
        licence: licence.filter(|_| signature_ok),
        // The database is its own authority and never behind: its "head" is now.
        issuer_head: Some(Head {
            height: 0,
            hash: Hash32([0; 32]),
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            gov: 0,
        }),
        equivocation_height: None,
        stale: None,
        behind: None,
        lineage: verify::Lineage::default(),
    };
    let decision = match verify::prepare(&app.net, un, facts, &ctx) {
        Step::Done(d) => d,
        Step::Signature(pending) => pending.finish(&app.net, signature_ok),
    };
    Ok(Json(Report::new(&app.net, &decision)))
}

/// The table's size on disk: `pg_total_relation_size` (heap, primary-key index, TOAST,
/// free-space and visibility maps), not the WAL (a fixed ring of segments, recycled) nor
/// the catalogs every database has. `database_bytes` is `pg_database_size`, for reference.
async fn size(State(app): State<Arc<App>>) -> Result<Json<serde_json::Value>, Refusal> {
    let conn = app.pool.get().await;
    let r = conn
        .client
        .query_one(
            "SELECT pg_total_relation_size('licences'), (SELECT count(*) FROM licences), pg_database_size(current_database())",
            &[],
        )
        .await?;
    Ok(Json(serde_json::json!({
        "bytes": r.try_get::<_, i64>(0)?,
        "rows": r.try_get::<_, i64>(1)?,
        "database_bytes": r.try_get::<_, i64>(2)?,
    })))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let net = huren_genesis::load(&args.genesis)
        .with_context(|| format!("reading genesis {}", args.genesis.display()))?;
    let (_, key) = huren_genesis::keys::read_issuer_key(&args.key_file)
        .with_context(|| format!("reading the issuer key {}", args.key_file.display()))?;
    let dept = net
        .department_by_current_key(&key.public().key_id())
        .with_context(|| {
            format!(
                "the key in {} is no department's key in force in genesis",
                args.key_file.display()
            )
        })?;
    let (department, region) = (dept.id.clone(), dept.region.clone());
    let pool = Pool::connect(&args.postgres, args.connections).await?;
    let serials = {
        let conn = pool.get().await;
        let rows = conn
            .client
            .query(
                "SELECT licence_type, max(serial) FROM licences GROUP BY licence_type",
                &[],
            )
            .await?;
        let mut serials = HashMap::new();
        for r in rows {
            let t = LicenceType::parse(r.try_get::<_, &str>(0)?)?;
            serials.insert(t, r.try_get::<_, i64>(1)? as u64 + 1);
        }
        serials
    };
    let app = Arc::new(App {
        net,
        department,
        region,
        key,
        token: args.token,
        pool,
        serials: std::sync::Mutex::new(serials),
        insert: args.insert,
    });
    let router = axum::Router::new()
        .route("/v1/licences:batch", post(issue_batch))
        .route("/v1/verify", post(verify_qr))
        .route("/size", get(size))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!("http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
