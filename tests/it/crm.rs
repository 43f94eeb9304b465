//! `POST /hooks/deals`: signed CRM deal updates become one DM with stage-fitted questions.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, TestResponse, WEBHOOK_SECRET, now_ms};

async fn post_deal(
    app: &TestApp,
    body: &Value,
    delivery: Option<&str>,
    secret: &str,
    ts: i64,
) -> TestResponse {
    let body = body.to_string();
    let signature = cusp::server::crm_signature::sign(secret.as_bytes(), ts, body.as_bytes());
    let mut request = Request::post("/hooks/deals")
        .header("content-type", "application/json")
        .header("x-cusp-timestamp", ts.to_string())
        .header("x-cusp-signature", signature);
    if let Some(id) = delivery {
        request = request.header("x-cusp-delivery", id);
    }
    app.request(request.body(Body::from(body)).unwrap()).await
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn deal(owner: Value) -> Value {
    json!({
        "deal_id": "D-42",
        "account": "Acme Logistics",
        "stage": "closedwon",
        "previous_stage": "contractsent",
        "owner": owner,
        "amount": 48000,
        "close_date": "2026-11-20",
    })
}

async fn a_signed_deal_update_sends_the_owner_one_dm(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = post_deal(
        &app,
        &deal(json!({"slack_user_id": "U_SELLER"})),
        Some("dlv-1"),
        WEBHOOK_SECRET,
        now(),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.json()["status"], "queued");
    let again = post_deal(
        &app,
        &deal(json!({"slack_user_id": "U_SELLER"})),
        Some("dlv-1"),
        WEBHOOK_SECRET,
        now(),
    )
    .await;
    assert_eq!(again.json()["status"], "duplicate");
    app.deliver_outbox_at(now_ms()).await;
    let posted = app.slack.posted_messages();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].channel, "D_U_SELLER");
    assert!(
        posted[0].text.contains("Acme Logistics just moved to"),
        "{}",
        posted[0].text
    );
    let mut out = Vec::new();
    cusp::bot::export::export(
        &app.state.store,
        Some(TEAM),
        &Default::default(),
        cusp::bot::export::ExportFormat::Json,
        &mut out,
    )
    .await
    .unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("\"source\":\"crm\"")
    );
}

async fn the_owner_is_found_by_email_or_answered_202(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.slack.set_user_email("sam@acme.test", "U_SAM");
    let found = post_deal(
        &app,
        &deal(json!({"email": "sam@acme.test"})),
        None,
        WEBHOOK_SECRET,
        now(),
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    let unknown = post_deal(
        &app,
        &deal(json!({"email": "nobody@acme.test"})),
        Some("dlv-2"),
        WEBHOOK_SECRET,
        now(),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(unknown.json()["status"], "owner_unknown");
    app.deliver_outbox_at(now_ms()).await;
    let posted = app.slack.posted_messages();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].channel, "D_U_SAM");
}

backend_matrix!(
    a_signed_deal_update_sends_the_owner_one_dm,
    the_owner_is_found_by_email_or_answered_202
);

#[tokio::test]
async fn unsigned_stale_and_malformed_deal_updates_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = deal(json!({"slack_user_id": "U_SELLER"}));
    let wrong = post_deal(&app, &body, None, "not-the-secret", now()).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let stale = post_deal(&app, &body, None, WEBHOOK_SECRET, now() - 600).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    assert!(stale.body.contains("stale"), "{}", stale.body);
    let unsigned = app
        .request(
            Request::post("/hooks/deals")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    let mut no_stage = body.clone();
    no_stage.as_object_mut().unwrap().remove("stage");
    let bad = post_deal(&app, &no_stage, None, WEBHOOK_SECRET, now()).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("`stage`"), "{}", bad.body);
    app.deliver_outbox_at(now_ms()).await;
    assert!(app.slack.posted_messages().is_empty());
}
