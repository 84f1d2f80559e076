//! Router tests of the card routes (`card.svg`, `card.html`, `card.png`): what an officer
//! gets for a licence the node issued, and every refusal.

use axum::http::{header, StatusCode};
use serde_json::{json, Value};

use super::tests::{fixture_with, Fixture};

// The tokens `fixture_with` configures (scope All and scope Issue).
const TOKEN: &str = huren_testkit::TOKEN;
const ISSUE_ONLY: &str = huren_testkit::ISSUE_TOKEN;

/// Issues a driving licence; returns its id and QR text.
async fn issue(f: &Fixture) -> (String, String) {
    let body = json!({
        "licence_type": "mvdl",
        "holder": {"name": "张三", "id_number": "44010619900101123X", "class": "C1"},
        "valid_days": 2190
    });
    let (s, _, b) = f
        .send("POST", "/v1/licences", Some(TOKEN), Some(body))
        .await;
    let v: Value = serde_json::from_slice(&b).expect("json");
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (
        v["licence_id"].as_str().expect("id").to_owned(),
        v["qr"].as_str().expect("qr").to_owned(),
    )
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).expect("error JSON");
    v["error"]["code"].as_str().expect("code").to_owned()
}

#[tokio::test]
async fn card_in_three_formats() {
    let f = fixture_with("gd.transport", |_| {});
    let (id, qr) = issue(&f).await;

    let (s, h, svg) = f
        .send(
            "GET",
            &format!("/v1/licences/{id}/card.svg"),
            Some(ISSUE_ONLY),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "image/svg+xml; charset=utf-8");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    let svg = String::from_utf8(svg).expect("utf-8");
    for part in [
        "张三",
        "44010619900101123X",
        "机动车驾驶证",
        "广东省公安厅交通管理局",
        id.as_str(),
        "width=\"85.6mm\"",
    ] {
        assert!(svg.contains(part), "{part} missing");
    }

    let (s, h, html) = f
        .send(
            "GET",
            &format!("/v1/licences/{id}/card.html"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(h[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp")
        .contains("default-src 'none'"));
    let html = String::from_utf8(html).expect("utf-8");
    assert!(html.contains("@page { size: 85.6mm 54mm; margin: 0; }"));
    assert!(html.contains("张三"));

    let (s, h, png) = f
        .send(
            "GET",
            &format!("/v1/licences/{id}/card.png"),
            Some(TOKEN),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "image/png");
    let disposition = h[header::CONTENT_DISPOSITION].to_str().expect("ascii");
    assert!(
        disposition.ends_with(".png\"") && !disposition.contains(':'),
        "{disposition}"
    );
    // Scannable: the printed card carries exactly the licence's QR.
    assert_eq!(huren_render::qr::decode_image(&png).expect("decodes"), qr);
}

#[tokio::test]
async fn card_refusals() {
    let f = fixture_with("gd.transport", |_| {});
    let (id, _) = issue(&f).await;
    let card = |id: &str, ext: &str| format!("/v1/licences/{id}/card.{ext}");

    for ext in ["svg", "html", "png"] {
        // No token, or one this node does not know.
        let (s, _, b) = f.send("GET", &card(&id, ext), None, None).await;
        assert_eq!(
            (s, error_code(&b).as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
        let (s, _, _) = f.send("GET", &card(&id, ext), Some("nope"), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // Another department's licence.
        let (s, _, b) = f
            .send(
                "GET",
                &card("sh.transport:mvdl:00000001", ext),
                Some(TOKEN),
                None,
            )
            .await;
        assert_eq!(
            (s, error_code(&b).as_str()),
            (StatusCode::FORBIDDEN, "other_department")
        );
        // Never issued here.
        let (s, _, b) = f
            .send(
                "GET",
                &card("gd.transport:mvdl:99999999", ext),
                Some(TOKEN),
                None,
            )
            .await;
        assert_eq!(
            (s, error_code(&b).as_str()),
            (StatusCode::NOT_FOUND, "licence_not_found")
        );
        // Not a licence id.
        let (s, _, b) = f
            .send("GET", &card("nonsense", ext), Some(TOKEN), None)
            .await;
        assert_eq!(
            (s, error_code(&b).as_str()),
            (StatusCode::BAD_REQUEST, "bad_licence_id")
        );
    }

    // A suspended or revoked licence gets no card.
    let (s, _, _) = f
        .send(
            "POST",
            &format!("/v1/licences/{id}/suspend"),
            Some(TOKEN),
            Some(json!({"reason": "penalty"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = f.send("GET", &card(&id, "png"), Some(TOKEN), None).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::CONFLICT, "licence_suspended")
    );
    let (s, _, _) = f
        .send(
            "POST",
            &format!("/v1/licences/{id}/revoke"),
            Some(TOKEN),
            Some(json!({"reason": "withdrawn"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, b) = f.send("GET", &card(&id, "svg"), Some(TOKEN), None).await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::CONFLICT, "licence_revoked")
    );

    // Nor does an expired one (imported with its original, past validity).
    let old = json!({
        "licence_type": "mvdl",
        "holder": {"name": "王五", "id_number": "310101198001011234", "class": "A1"},
        "valid_from": "2019-01-01T00:00:00Z",
        "valid_until": "2025-01-01T00:00:00Z"
    });
    let (s, _, b) = f.send("POST", "/v1/licences", Some(TOKEN), Some(old)).await;
    assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
    let v: Value = serde_json::from_slice(&b).expect("json");
    let expired = v["licence_id"].as_str().expect("id");
    let (s, _, b) = f
        .send("GET", &card(expired, "html"), Some(TOKEN), None)
        .await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::CONFLICT, "licence_expired")
    );
    let v: Value = serde_json::from_slice(&b).expect("error JSON");
    let message = v["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("expired at 2025-01-01T00:00:00Z") && message.contains("no card"),
        "{message}"
    );

    // An observer node prints no cards.
    let observer = fixture_with("", |_| {});
    let (s, _, b) = observer
        .send("GET", &card(&id, "svg"), Some(TOKEN), None)
        .await;
    assert_eq!(
        (s, error_code(&b).as_str()),
        (StatusCode::FORBIDDEN, "observer_node")
    );
}

#[tokio::test]
async fn card_routes_are_documented() {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(super::ApiDoc::openapi()).expect("openapi");
    for ext in ["svg", "html", "png"] {
        let path = &doc["paths"][format!("/v1/licences/{{id}}/card.{ext}")]["get"];
        assert!(path.is_object(), "card.{ext} missing from /openapi.json");
        assert!(path["responses"]["409"].is_object());
    }
}
