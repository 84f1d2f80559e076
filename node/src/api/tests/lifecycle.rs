//! The whole life of a licence through the API, on a manual clock: renew, reissue,
//! amend, timed suspension, annulment, history, and "valid on that date" (`?at=`).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{assert_error, fixture_with_clock, Fixture, TOKEN};
use crate::clock::ManualClock;

const DAY: Duration = Duration::from_secs(86_400);
const T0_MS: u64 = 1_800_000_000_000;

fn id_of(v: &Value) -> String {
    v["licence_id"].as_str().expect("licence id").to_owned()
}

fn qr_of(v: &Value) -> String {
    v["qr"].as_str().expect("qr").to_owned()
}

fn verdict(v: &Value) -> (String, String) {
    (
        v["verdict"].as_str().unwrap_or_default().to_owned(),
        v["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

fn rfc3339(ms: u64) -> String {
    huren_core::verify::rfc3339((ms / 1000) as i64)
}

impl Fixture {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(TOKEN), Some(body)).await
    }

    async fn ok(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, body).await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    async fn status_of(&self, id: &str, query: &str) -> Value {
        let (s, v) = self
            .call("GET", &format!("/v1/licences/{id}{query}"), None, None)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn verify_at(&self, qr: &str, at: &str) -> Value {
        let (s, v) = self
            .call(
                "POST",
                &format!("/v1/verify?at={at}"),
                None,
                Some(json!({ "qr": qr })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }
}

/// Reissue, renew and amend each bring in a new credential under the same id: the old
/// QR is invalid · superseded (naming where the licence stands now), the new one valid,
/// and the history lists every record, without personal data.
#[tokio::test]
async fn reissue_renew_and_amend_supersede_the_old_card() {
    let clock = ManualClock::at(T0_MS);
    let f = fixture_with_clock("gd.transport", clock.clone(), |_| {});
    let issued = f.issue().await;
    let (id, first) = (id_of(&issued), qr_of(&issued));
    // A licence with its issue alone keeps no history entry; its first later record
    // brings its issue's along.
    assert_eq!(f.store.history_len(), 0);

    let reissued = f.ok(&format!("/v1/licences/{id}/reissue"), json!({})).await;
    assert_eq!(id_of(&reissued), id, "the same licence id");
    let second = qr_of(&reissued);
    assert_ne!(second, first, "a new credential (new salt)");
    assert_eq!(f.store.history_len(), 2);
    let v = f.verify(&first).await;
    assert_eq!(verdict(&v), ("invalid".into(), "superseded".into()), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("active now"),
        "the report names where the licence stands: {v}"
    );
    assert_eq!(verdict(&f.verify(&second).await).0, "valid");

    // Near expiry (driving() asks for 2190 days), renew: a new period from now.
    clock.advance(2100 * DAY);
    let renewed = f
        .ok(
            &format!("/v1/licences/{id}/renew"),
            json!({"valid_days": 2190}),
        )
        .await;
    let third = qr_of(&renewed);
    assert_eq!(renewed["valid_from"], rfc3339(T0_MS + 2100 * 86_400_000));
    assert_eq!(
        verdict(&f.verify(&second).await),
        ("invalid".into(), "superseded".into())
    );
    // Past the first period's end, the renewed card is valid and the status active.
    clock.advance(200 * DAY);
    assert_eq!(verdict(&f.verify(&third).await).0, "valid");
    assert_eq!(f.status_of(&id, "").await["state"], "active");
    // A renewal must extend the validity.
    let (s, v) = f
        .post(
            &format!("/v1/licences/{id}/renew"),
            json!({"valid_days": 1}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "bad_validity");

    // Amend the class: the new card shows it; the old one is superseded.
    let amended = f
        .ok(
            &format!("/v1/licences/{id}/amend"),
            json!({"holder": {"class": "B2"}}),
        )
        .await;
    let fourth = qr_of(&amended);
    let v = f.verify(&fourth).await;
    assert_eq!(verdict(&v).0, "valid", "{v}");
    assert_eq!(v["licence"]["holder"]["class"], "B2", "{v}");
    assert_eq!(verdict(&f.verify(&third).await).1, "superseded");
    // A required holder field cannot be blanked.
    let (s, v) = f
        .post(
            &format!("/v1/licences/{id}/amend"),
            json!({"holder": {"name": " "}}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "invalid_licence");

    let (s, h) = f
        .call("GET", &format!("/v1/licences/{id}/history"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{h}");
    let kinds: Vec<&str> = h["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["issue", "reissue", "renew", "amend"]);
    let text = h.to_string();
    for personal in ["张三", "44010619900101123X", "B2", "C1"] {
        assert!(!text.contains(personal), "no personal data in history: {h}");
    }
    let status = f.status_of(&id, "").await.to_string();
    assert!(
        !status.contains("张三") && !status.contains("B2"),
        "{status}"
    );
}

/// A suspension with an end date ends by itself: the verdict and the status follow the
/// clock, with no record; before it, invalid · suspended with the end named.
#[tokio::test]
async fn a_timed_suspension_turns_active_at_its_end_date() {
    let clock = ManualClock::at(T0_MS);
    let f = fixture_with_clock("gd.transport", clock.clone(), |_| {});
    let issued = f.issue().await;
    let (id, qr) = (id_of(&issued), qr_of(&issued));
    let until = rfc3339(T0_MS + 180 * 86_400_000);
    // An end already past is refused, and changes nothing.
    let (s, v) = f
        .post(
            &format!("/v1/licences/{id}/suspend"),
            json!({"reason": "penalty", "until": rfc3339(T0_MS - 1000)}),
        )
        .await;
    assert_error(s, &v, StatusCode::UNPROCESSABLE_ENTITY, "bad_suspension");
    assert_eq!(f.status_of(&id, "").await["state"], "active");

    f.ok(
        &format!("/v1/licences/{id}/suspend"),
        json!({"reason": "penalty", "until": until}),
    )
    .await;
    let st = f.status_of(&id, "").await;
    assert_eq!(
        (st["state"].as_str(), st["suspended_until"].as_str()),
        (Some("suspended"), Some(until.as_str())),
        "{st}"
    );
    let v = f.verify(&qr).await;
    assert_eq!(verdict(&v), ("invalid".into(), "suspended".into()), "{v}");
    assert!(
        v["message"].as_str().unwrap_or_default().contains(&until),
        "{v}"
    );

    clock.advance(180 * DAY - Duration::from_secs(1));
    assert_eq!(
        verdict(&f.verify(&qr).await).1,
        "suspended",
        "a second before its end"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(verdict(&f.verify(&qr).await).0, "valid", "at its end");
    assert_eq!(f.status_of(&id, "").await["state"], "active");
    // Once ended, a reinstate has nothing to do; a new suspension may start.
    let (s, v) = f
        .post(&format!("/v1/licences/{id}/reinstate"), json!({}))
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "wrong_status");
    f.ok(
        &format!("/v1/licences/{id}/suspend"),
        json!({"reason": "investigation"}),
    )
    .await;
    assert_eq!(f.status_of(&id, "").await["state"], "suspended");

    // Expired shows in status and verdict once the validity has passed.
    clock.advance(2190 * DAY);
    assert_eq!(f.status_of(&id, "").await["state"], "expired");
    assert_eq!(
        verdict(&f.verify(&qr).await),
        ("invalid".into(), "expired".into())
    );
}

/// "Was it valid on that date?": 撤销 never, 吊销 and 注销 until their record; an
/// annulled revocation never took effect. Asked of status and of verify.
#[tokio::test]
async fn at_answers_by_the_kind_of_revocation() {
    let clock = ManualClock::at(T0_MS);
    let f = fixture_with_clock("gd.transport", clock.clone(), |_| {});
    let mut licences = Vec::new();
    for _ in 0..4 {
        let v = f.issue().await;
        licences.push((id_of(&v), qr_of(&v)));
    }
    clock.advance(30 * DAY);
    for ((id, _), reason) in licences
        .iter()
        .zip(["withdrawn", "penalty", "cancelled", "penalty"])
    {
        f.ok(
            &format!("/v1/licences/{id}/revoke"),
            json!({"reason": reason}),
        )
        .await;
    }
    clock.advance(10 * DAY);
    // The last one's 吊销 is overturned by a court.
    let annulled = &licences[3].0;
    let v = f
        .ok(
            &format!("/v1/licences/{annulled}/annul"),
            json!({"reason": "court"}),
        )
        .await;
    assert_eq!(v["status"]["status"], "active", "{v}");
    let (s, v) = f
        .post(
            &format!("/v1/licences/{annulled}/annul"),
            json!({"reason": "court"}),
        )
        .await;
    assert_error(s, &v, StatusCode::CONFLICT, "wrong_status");

    let before = rfc3339(T0_MS + 10 * 86_400_000);
    let after = rfc3339(T0_MS + 35 * 86_400_000);
    #[rustfmt::skip]
    let expected = [
        // 撤销: void from the start.
        (false, "void", false, "void"),
        // 吊销: valid until its record.
        (true, "valid", false, "revoked"),
        // 注销: valid until its record.
        (true, "valid", false, "revoked"),
        // 吊销 annulled: it never took effect.
        (true, "valid", true, "valid"),
    ];
    for ((id, qr), (valid_before, standing_before, valid_after, standing_after)) in
        licences.iter().zip(expected)
    {
        for (at, valid, standing) in [
            (&before, valid_before, standing_before),
            (&after, valid_after, standing_after),
        ] {
            let st = f.status_of(id, &format!("?at={at}")).await;
            assert_eq!(st["at"]["standing"], standing, "{id} at {at}: {st}");
            assert_eq!(st["at"]["valid"], valid, "{id} at {at}: {st}");
            let v = f.verify_at(qr, at).await;
            assert_eq!(verdict(&v).0 == "valid", valid, "{id} at {at}: {v}");
            assert_eq!(v["at"]["standing"], standing, "{v}");
        }
    }
    // A malformed moment is a typed error.
    let (s, v) = f
        .call(
            "GET",
            &format!("/v1/licences/{}?at=yesterday", licences[0].0),
            None,
            None,
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST, "bad_query");
}

/// A node older than the network's protocol version says so and signs nothing.
#[tokio::test]
async fn a_node_too_old_for_the_network_signs_nothing_and_says_so() {
    let clock = ManualClock::at(T0_MS);
    let f = fixture_with_clock("gd.transport", clock, |c| c.protocol_max = 1);
    let (s, v) = f.call("GET", "/healthz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "protocol_too_old", "{v}");
    assert_eq!(v["protocol"], json!({"network": 2, "supported": 1}), "{v}");
    let (s, v) = f
        .call("POST", "/v1/licences", Some(TOKEN), Some(super::driving()))
        .await;
    assert_error(s, &v, StatusCode::SERVICE_UNAVAILABLE, "protocol_too_old");
}
