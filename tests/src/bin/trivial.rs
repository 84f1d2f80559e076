//! huren-trivial: the verify benchmark's baseline, a trivial axum JSON handler.
//!
//! It serves `POST /v1/verify` the way a node is reached (axum on tokio, one worker per
//! core, loopback), reads the same JSON body (`{"qr": "…"}`) and answers a fixed JSON
//! object of a valid report's size, doing nothing else. What the same load generator gets
//! from it in the same run is the HTTP limit of the machine: `huren-bench` compares the
//! node's verify paths with it (docs/performance.md). Prints its URL, then serves until
//! killed.

use axum::routing::post;
use axum::Json;
use serde::Deserialize;

#[derive(Deserialize)]
struct Body {
    qr: String,
}

/// A report of the size a valid verdict has (about 1 KiB of JSON).
fn answer(qr_len: usize) -> serde_json::Value {
    serde_json::json!({
        "verdict": "valid", "reason": null, "message": "Valid", "message_zh": "有效",
        "offline": false, "checked_at": "2026-01-01T00:00:00Z", "verifier_region": "440000",
        "licence": {
            "id": "gd.transport:mvdl:00000001", "licence_type": "mvdl",
            "type_name": "机动车驾驶证", "type_name_en": "Motor vehicle driving licence",
            "issuer": "gd.transport", "issuer_name": "广东省公安厅交通管理局",
            "region": "440000", "region_name": "广东省 Guangdong",
            "holder": {"class": "C1", "id_number": "44010619900101123X", "name": "张三"},
            "fields": {}, "issued_at": "2026-01-01T00:00:00Z",
            "valid_from": "2026-01-01T00:00:00Z", "valid_until": "2031-12-31T00:00:00Z"
        },
        "ledger": {"status": {"status": "active"}, "issued_height": 1, "updated_height": 1,
                   "commitment": "f9510b58f9510b58f9510b58f9510b58f9510b58f9510b58f9510b58f9510b58"},
        "as_of": null,
        "qr_chars": qr_len
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/v1/verify",
        post(|Json(body): Json<Body>| async move { Json(answer(body.qr.len())) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
