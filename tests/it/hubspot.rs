//! `POST /hooks/hubspot`: HubSpot's signed deal-stage changes, enriched through a fake
//! HubSpot API on loopback.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};

use cusp::hubspot::{HubSpotClient, sign_v3};
use cusp::state::HubSpotHooks;

use crate::backend_matrix;
use crate::support::app::{Backend, TestApp, TestResponse, command_body, now_ms};

const CLIENT_SECRET: &str = "hs-client-secret";
const PUBLIC_URL: &str = "https://cusp.example.com";

/// Deal 7 belongs to owner 99 (sam@acme.test); deal 8 has no owner.
async fn fake_hubspot() -> String {
    let app = axum::Router::new()
        .route(
            "/crm/v3/objects/deals/{id}",
            get(|Path(id): Path<String>| async move {
                match id.as_str() {
                    "7" => Ok(Json(json!({"id": "7", "properties": {"dealname": "Acme Logistics", "hubspot_owner_id": "99"}}))),
                    "8" => Ok(Json(json!({"id": "8", "properties": {"dealname": "Globex"}}))),
                    _ => Err(StatusCode::NOT_FOUND),
                }
            }),
        )
        .route("/crm/v3/owners/{id}", get(|| async { Json(json!({"id": "99", "email": "sam@acme.test"})) }));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn app_with_hubspot(backend: Backend) -> TestApp {
    let mut app = TestApp::spawn(backend).await;
    let client = HubSpotClient::new(
        &fake_hubspot().await,
        "pat-test".to_owned().into(),
        std::time::Duration::from_secs(2),
    )
    .unwrap();
    app.state = app.state.clone().with_hubspot(Some(HubSpotHooks {
        client_secret: CLIENT_SECRET.to_owned().into(),
        public_url: Some(PUBLIC_URL.into()),
        client,
    }));
    app.router = cusp::app::build_router(app.state.clone());
    app.slack.set_user_email("sam@acme.test", "U_SAM");
    app
}

async fn post(app: &TestApp, events: &Value, secret: &str, ts_ms: i64) -> TestResponse {
    let body = events.to_string();
    let signature = sign_v3(
        secret.as_bytes(),
        "POST",
        &format!("{PUBLIC_URL}/hooks/hubspot"),
        body.as_bytes(),
        ts_ms,
    );
    let request = Request::post("/hooks/hubspot")
        .header("content-type", "application/json")
        .header("x-hubspot-request-timestamp", ts_ms.to_string())
        .header("x-hubspot-signature-v3", signature)
        .body(Body::from(body))
        .unwrap();
    app.request(request).await
}

fn stage_change(event_id: i64, deal: i64, stage: &str) -> Value {
    json!({"eventId": event_id, "subscriptionId": 1, "portalId": 62515, "occurredAt": now_ms(),
           "subscriptionType": "deal.propertyChange", "attemptNumber": 0, "objectId": deal,
           "propertyName": "dealstage", "propertyValue": stage, "changeSource": "CRM"})
}

async fn a_signed_stage_change_reaches_the_owner_once(backend: Backend) {
    let app = app_with_hubspot(backend).await;
    let events = json!([stage_change(1, 7, "contractsent"),
        {"eventId": 2, "subscriptionType": "deal.propertyChange", "objectId": 7, "propertyName": "amount", "propertyValue": "5"}]);
    let response = post(&app, &events, CLIENT_SECRET, now_ms()).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.json(), json!({"queued": 1, "ignored": 1}));
    let again = post(&app, &events, CLIENT_SECRET, now_ms()).await;
    assert_eq!(again.json()["duplicate"], 1);
    app.deliver_outbox_at(now_ms()).await;
    let posted = app.slack.posted_messages();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].channel, "D_U_SAM");
    assert!(
        posted[0].text.contains("Acme Logistics"),
        "{}",
        posted[0].text
    );
}

async fn a_deal_without_an_owner_is_answered_202(backend: Backend) {
    let app = app_with_hubspot(backend).await;
    let response = post(
        &app,
        &json!([stage_change(3, 8, "closedwon")]),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(response.status, StatusCode::ACCEPTED);
    assert_eq!(response.json()["owner_unknown"], 1);
}

async fn bad_signatures_stale_requests_and_bad_bodies_are_refused(backend: Backend) {
    let app = app_with_hubspot(backend).await;
    let events = json!([stage_change(4, 7, "closedwon")]);
    assert_eq!(
        post(&app, &events, "wrong", now_ms()).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&app, &events, CLIENT_SECRET, now_ms() - 6 * 60 * 1000)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let bad = post(&app, &json!({"not": "an array"}), CLIENT_SECRET, now_ms()).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    app.deliver_outbox_at(now_ms()).await;
    assert!(app.slack.posted_messages().is_empty());
}

async fn an_owner_slack_cannot_dm_or_who_muted_cusp_is_answered_202(backend: Backend) {
    let app = app_with_hubspot(backend).await;
    app.slack.set_user_unreachable("U_SAM", "user_disabled");
    let unreachable = post(
        &app,
        &json!([stage_change(5, 7, "closedwon")]),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(
        unreachable.status,
        StatusCode::ACCEPTED,
        "{}",
        unreachable.body
    );
    assert_eq!(unreachable.json(), json!({"owner_unknown": 1}));

    let app = app_with_hubspot(backend).await;
    let mute = command_body("mute forever", "trig-mute").replace("U_SELLER", "U_SAM");
    let muted = app
        .post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &mute,
        )
        .await;
    assert_eq!(muted.status, StatusCode::OK, "{}", muted.body);
    let response = post(
        &app,
        &json!([stage_change(6, 7, "closedwon")]),
        CLIENT_SECRET,
        now_ms(),
    )
    .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.body);
    assert_eq!(response.json(), json!({"owner_muted": 1}));
    app.deliver_outbox_at(now_ms()).await;
    assert!(app.slack.posted_messages().is_empty());
}

backend_matrix!(
    a_signed_stage_change_reaches_the_owner_once,
    a_deal_without_an_owner_is_answered_202,
    bad_signatures_stale_requests_and_bad_bodies_are_refused,
    an_owner_slack_cannot_dm_or_who_muted_cusp_is_answered_202,
    a_webhook_naming_another_workspace_stores_nothing,
);

/// Single-workspace mode: `?team=` naming another team (signed, since HubSpot signs the
/// URL) is refused with 422 and stores nothing.
async fn a_webhook_naming_another_workspace_stores_nothing(backend: Backend) {
    let app = app_with_hubspot(backend).await;
    let before = crate::support::two_teams::snapshot(&app.db).await;
    let body = json!([stage_change(1, 7, "contractsent")]).to_string();
    let ts_ms = now_ms();
    let signature = sign_v3(
        CLIENT_SECRET.as_bytes(),
        "POST",
        &format!("{PUBLIC_URL}/hooks/hubspot?team=T_FOREIGN"),
        body.as_bytes(),
        ts_ms,
    );
    let request = Request::post("/hooks/hubspot?team=T_FOREIGN")
        .header("content-type", "application/json")
        .header("x-hubspot-request-timestamp", ts_ms.to_string())
        .header("x-hubspot-signature-v3", signature)
        .body(Body::from(body))
        .unwrap();
    let response = app.request(request).await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.body
    );
    assert!(response.body.contains("T_FOREIGN"), "{}", response.body);
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(crate::support::two_teams::snapshot(&app.db).await, before);
    assert!(app.slack.posted_messages().is_empty());
}

/// No storage involved (the route answers before reading anything): SQLite only.
#[tokio::test]
async fn hubspot_webhooks_are_off_unless_configured() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = post(&app, &json!([]), CLIENT_SECRET, now_ms()).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(response.body.contains("HUBSPOT_CLIENT_SECRET"));
}
