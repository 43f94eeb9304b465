//! `POST /hooks/deals`: signed CRM deal updates become one DM with stage-fitted questions.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::IntoResponse;
use cusp::engine::{Engine, Stage};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::backend_matrix;
use crate::support::app::{
    Backend, TEAM, TestApp, TestResponse, WEBHOOK_SECRET, command_body, now_ms,
};

pub(crate) async fn post_deal(
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

pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Posts a deal update without a delivery id, as if the server's clock read `at`
/// (signed at `at` too, as a CRM retrying at that time would).
async fn post_deal_at(app: &TestApp, body: &Value, at: jiff::Timestamp) -> (StatusCode, Value) {
    let body = body.to_string();
    let signature = cusp::server::crm_signature::sign(
        WEBHOOK_SECRET.as_bytes(),
        at.as_second(),
        body.as_bytes(),
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-cusp-timestamp",
        at.as_second().to_string().parse().unwrap(),
    );
    headers.insert("x-cusp-signature", signature.parse().unwrap());
    let response =
        match cusp::server::hooks::deals_at(&app.state, &headers, body.as_bytes(), at).await {
            Ok(reply) => reply.into_response(),
            Err(err) => err.into_response(),
        };
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// How many observations with source `crm` the team has (through the export).
async fn crm_observations(app: &TestApp) -> usize {
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
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|line| line.contains("\"source\":\"crm\""))
        .count()
}

async fn slash_as_seller(app: &TestApp, text: &str) {
    let response = app
        .post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &command_body(text, &format!("trig-{text}")),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
}

/// Presses a button of a prompt cusp sent to `user`.
async fn press(
    app: &TestApp,
    message: &crate::support::fake_slack::PostedMessage,
    action_id: &str,
    user: &str,
) {
    let blocks = message.blocks.as_array().expect("blocks");
    let actions = blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("actions block");
    let value = actions["elements"][0]["value"].as_str().unwrap();
    let payload = json!({
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": user},
        "channel": {"id": message.channel},
        "trigger_id": "trig-press",
        "actions": [{"action_id": action_id, "block_id": "cusp_prompt", "value": value, "type": "button"}],
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let response = app
        .post_signed(
            "/slack/interactivity",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
}

pub(crate) fn deal(owner: Value) -> Value {
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
    app.slack.strict();
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
    // Strict: the DM is all cusp sent, once, for two deliveries of one update.
    let calls = app.slack.take_calls();
    assert_eq!(
        calls.iter().map(|c| c.method.as_str()).collect::<Vec<_>>(),
        ["conversations.open", "chat.postMessage"]
    );
    let posted = app.slack.posted_messages();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].channel, "D_U_SELLER");
    assert!(
        posted[0].text.contains("Acme Logistics just moved to"),
        "{}",
        posted[0].text
    );
    assert_eq!(crm_observations(&app).await, 1);
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

async fn an_owner_slack_cannot_dm_is_answered_202_and_not_retried(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.slack.set_user_unreachable("U_GONE", "user_not_found");
    app.slack.set_user_email("old@acme.test", "U_OLD");
    app.slack.set_user_unreachable("U_OLD", "user_disabled");
    let gone = deal(json!({"slack_user_id": "U_GONE"}));
    let first = post_deal(&app, &gone, None, WEBHOOK_SECRET, now()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.json()["status"], "owner_unknown");
    // Had the first answer been lost, the CRM's retry is a duplicate, not a 503.
    let retry = post_deal(&app, &gone, None, WEBHOOK_SECRET, now()).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.json()["status"], "duplicate");
    let disabled = post_deal(
        &app,
        &deal(json!({"email": "old@acme.test"})),
        Some("dlv-old"),
        WEBHOOK_SECRET,
        now(),
    )
    .await;
    assert_eq!(disabled.status, StatusCode::ACCEPTED, "{}", disabled.body);
    assert_eq!(disabled.json()["status"], "owner_unknown");
    assert_eq!(app.slack.calls_to("conversations.open").len(), 2);
    app.deliver_outbox_at(now_ms()).await;
    assert!(app.slack.posted_messages().is_empty());
    assert_eq!(crm_observations(&app).await, 0);
}

async fn a_muted_owner_gets_no_dm_but_the_deal_is_logged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    slash_as_seller(&app, "mute 1w").await;
    let muted = post_deal(
        &app,
        &deal(json!({"slack_user_id": "U_SELLER"})),
        Some("dlv-muted"),
        WEBHOOK_SECRET,
        now(),
    )
    .await;
    assert_eq!(muted.status, StatusCode::ACCEPTED, "{}", muted.body);
    assert_eq!(muted.json()["status"], "owner_muted");
    app.deliver_outbox_at(now_ms()).await;
    assert!(app.slack.posted_messages().is_empty());
    assert_eq!(
        crm_observations(&app).await,
        1,
        "a muted owner's deal still counts"
    );

    slash_as_seller(&app, "unmute").await;
    // Signed a second later: the same body signed in the same second is the same
    // signature, which is a replay of the first request whatever its delivery id.
    let unmuted = post_deal(
        &app,
        &deal(json!({"slack_user_id": "U_SELLER"})),
        Some("dlv-unmuted"),
        WEBHOOK_SECRET,
        now() + 1,
    )
    .await;
    assert_eq!(unmuted.json()["status"], "queued", "{}", unmuted.body);
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(app.slack.posted_messages().len(), 1);
}

async fn a_muted_deal_gets_no_dm_but_other_deals_do(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut proposal = deal(json!({"slack_user_id": "U_SELLER"}));
    proposal["stage"] = json!("proposal");
    let first = post_deal(&app, &proposal, Some("dlv-p"), WEBHOOK_SECRET, now()).await;
    assert_eq!(first.json()["status"], "queued", "{}", first.body);
    app.deliver_outbox_at(now_ms()).await;
    let dm = app.slack.posted_messages().remove(0);
    press(&app, &dm, "cusp_mute_deal", "U_SELLER").await;

    // The same account, spelled as the CRM spells it, at its next stage: logged, not sent.
    let won = post_deal(
        &app,
        &deal(json!({"slack_user_id": "U_SELLER"})),
        Some("dlv-w"),
        WEBHOOK_SECRET,
        now(),
    )
    .await;
    assert_eq!(won.status, StatusCode::ACCEPTED, "{}", won.body);
    assert_eq!(won.json()["status"], "owner_muted");
    let mut other = deal(json!({"slack_user_id": "U_SELLER"}));
    other["deal_id"] = json!("D-7");
    other["account"] = json!("Globex");
    let globex = post_deal(&app, &other, Some("dlv-g"), WEBHOOK_SECRET, now()).await;
    assert_eq!(globex.json()["status"], "queued", "{}", globex.body);
    app.deliver_outbox_at(now_ms()).await;
    let dms: Vec<String> = app
        .slack
        .posted_messages()
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(dms.len(), 2, "{dms:?}");
    assert!(dms[1].contains("Globex"), "{dms:?}");
    assert_eq!(crm_observations(&app).await, 3);
}

async fn a_retry_without_a_delivery_id_ten_minutes_later_sends_one_dm(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Both attempts on one UTC day (the key's granularity), ten minutes apart.
    let mut first = jiff::Timestamp::now();
    let day = |t: jiff::Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
    let ten_minutes = jiff::SignedDuration::from_mins(10);
    if day(first) != day(first + ten_minutes) {
        first -= ten_minutes * 2;
    }
    let retry = first + ten_minutes;
    let body = deal(json!({"slack_user_id": "U_SELLER"}));
    assert_eq!(
        post_deal_at(&app, &body, first).await,
        (StatusCode::OK, json!({"status": "queued"}))
    );
    assert_eq!(
        post_deal_at(&app, &body, retry).await,
        (StatusCode::OK, json!({"status": "duplicate"}))
    );
    // Another stage the same day is another update.
    let mut lost = body.clone();
    lost["stage"] = json!("closedlost");
    assert_eq!(
        post_deal_at(&app, &lost, retry).await,
        (StatusCode::OK, json!({"status": "queued"}))
    );
    app.deliver_outbox_at((retry + ten_minutes).as_millisecond())
        .await;
    let posted = app.slack.posted_messages();
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert!(posted[0].text.contains("*closedwon*"), "{}", posted[0].text);
    assert!(
        posted[1].text.contains("*closedlost*"),
        "{}",
        posted[1].text
    );
}

async fn the_dm_asks_questions_that_fit_the_new_stage(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let engine = Engine::builtin();
    for (i, (crm_stage, stage)) in [
        ("closedwon", Stage::ClosedWon),
        ("appointmentscheduled", Stage::Discovery),
    ]
    .into_iter()
    .enumerate()
    {
        let fitting: Vec<String> = engine
            .stage_questions(stage)
            .into_iter()
            .map(|q| q.id)
            .collect();
        assert!(!fitting.is_empty(), "the bank tags questions for {stage:?}");
        let mut update = deal(json!({"slack_user_id": format!("U_OWNER{i}")}));
        update["stage"] = json!(crm_stage);
        let delivery = format!("dlv-stage-{i}");
        let response = post_deal(&app, &update, Some(&delivery), WEBHOOK_SECRET, now()).await;
        assert_eq!(response.json()["status"], "queued", "{}", response.body);
        let prompt = app
            .state
            .store
            .prompt_by_thread_key(TEAM, &format!("crm:delivery:{delivery}"))
            .await
            .unwrap();
        let asked: Vec<&str> = prompt.question_ids.split(',').collect();
        assert!(!asked.is_empty());
        for id in &asked {
            assert!(
                fitting.iter().any(|f| f == id),
                "{id} is not tagged {stage:?}; {stage:?} questions: {fitting:?}"
            );
        }
    }
    // Each DM lists exactly the questions its prompt recorded.
    app.deliver_outbox_at(now_ms()).await;
    let posted = app.slack.posted_messages();
    assert_eq!(posted.len(), 2);
    for (i, dm) in posted.iter().enumerate() {
        let asked = app
            .state
            .store
            .prompt_by_thread_key(TEAM, &format!("crm:delivery:dlv-stage-{i}"))
            .await
            .unwrap()
            .question_ids;
        let listed = dm.blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("• "))
            .count();
        assert_eq!(listed, asked.split(',').count(), "{}", dm.blocks);
    }
}

backend_matrix!(
    a_signed_deal_update_sends_the_owner_one_dm,
    the_owner_is_found_by_email_or_answered_202,
    an_owner_slack_cannot_dm_is_answered_202_and_not_retried,
    a_muted_owner_gets_no_dm_but_the_deal_is_logged,
    a_muted_deal_gets_no_dm_but_other_deals_do,
    a_retry_without_a_delivery_id_ten_minutes_later_sends_one_dm,
    the_dm_asks_questions_that_fit_the_new_stage,
    unsigned_stale_and_malformed_deal_updates_are_refused,
    a_captured_request_replayed_under_new_delivery_ids_is_queued_once,
    the_same_request_sent_again_after_a_failure_is_handled,
);

/// `POST /hooks/deals` with exactly these headers: a captured request, resent.
async fn resend(app: &TestApp, body: &str, ts: i64, signature: &str, delivery: &str) -> Value {
    let request = Request::post("/hooks/deals")
        .header("content-type", "application/json")
        .header("x-cusp-timestamp", ts.to_string())
        .header("x-cusp-signature", signature)
        .header("x-cusp-delivery", delivery)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.request(request).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.json()
}

async fn a_captured_request_replayed_under_new_delivery_ids_is_queued_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = deal(json!({"slack_user_id": "U_SELLER"})).to_string();
    let ts = now();
    let signature =
        cusp::server::crm_signature::sign(WEBHOOK_SECRET.as_bytes(), ts, body.as_bytes());
    let first = resend(&app, &body, ts, &signature, "dlv-captured").await;
    assert_eq!(first["status"], "queued");
    // The delivery id is not signed, and hex is read in either case: all the same request.
    let shouting = format!(
        "sha256={}",
        signature.trim_start_matches("sha256=").to_uppercase()
    );
    for (i, sig) in [&signature, &signature, &shouting, &signature]
        .iter()
        .enumerate()
    {
        let replay = resend(&app, &body, ts, sig, &format!("dlv-replay-{i}")).await;
        assert_eq!(replay["status"], "duplicate", "replay {i}");
    }
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(app.slack.posted_messages().len(), 1, "one DM");
    assert_eq!(crm_observations(&app).await, 1);
    // A new update, signed anew, still goes through.
    let mut next = deal(json!({"slack_user_id": "U_SELLER"}));
    next["stage"] = json!("closedlost");
    let next = post_deal(&app, &next, Some("dlv-next"), WEBHOOK_SECRET, ts).await;
    assert_eq!(next.json()["status"], "queued", "{}", next.body);
}

async fn the_same_request_sent_again_after_a_failure_is_handled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = deal(json!({"slack_user_id": "U_SELLER"})).to_string();
    let ts = now();
    let signature =
        cusp::server::crm_signature::sign(WEBHOOK_SECRET.as_bytes(), ts, body.as_bytes());
    app.slack.push_response(
        "conversations.open",
        crate::support::fake_slack::Scripted::Status(500),
    );
    let request = |delivery: &str| {
        Request::post("/hooks/deals")
            .header("content-type", "application/json")
            .header("x-cusp-timestamp", ts.to_string())
            .header("x-cusp-signature", signature.as_str())
            .header("x-cusp-delivery", delivery)
            .body(Body::from(body.clone()))
            .unwrap()
    };
    let failed = app.request(request("dlv-1")).await;
    assert_eq!(
        failed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        failed.body
    );
    // Nothing was stored, so the identical request is not a replay of anything.
    let again = app.request(request("dlv-1")).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.json()["status"], "queued");
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(app.slack.posted_messages().len(), 1);
}

async fn unsigned_stale_and_malformed_deal_updates_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
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
    assert_eq!(crm_observations(&app).await, 0);
    // A refused delivery was not claimed: once fixed, the same deal goes through.
    let fixed = post_deal(&app, &body, None, WEBHOOK_SECRET, now()).await;
    assert_eq!(fixed.json()["status"], "queued", "{}", fixed.body);
}
