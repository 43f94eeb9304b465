//! Single-workspace mode serves exactly the team of `SLACK_BOT_TOKEN`. Requests signed
//! with the app's secret but naming another team (the same app installed elsewhere, or a
//! forged `team_id`) get a clear answer and store nothing, at every HTTP entry point:
//! commands, buttons, modals, events and the CRM hook. (Socket Mode: `socket_mode/`;
//! HubSpot: `hubspot.rs`.) And a reflection modal submitted again is saved once.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::backend_matrix;
use crate::support::app::{
    Backend, TEAM, TestApp, WEBHOOK_SECRET, command_body, message_event, now_ms,
};
use crate::support::two_teams::{rows_naming, snapshot};

const FOREIGN: &str = "T_FOREIGN";
const FORM: &str = "application/x-www-form-urlencoded";
const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";

impl TestApp {
    async fn interact_as(&self, payload: &Value) -> crate::support::app::TestResponse {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.post_signed("/slack/interactivity", FORM, &body).await
    }

    /// `/cusp <text>` sent as from `team`.
    async fn command_from(&self, team: &str, text: &str) -> Value {
        let body = command_body(text, &format!("trig-{team}-{text}"))
            .replace(&format!("team_id={TEAM}"), &format!("team_id={team}"));
        let response = self.post_signed("/slack/commands", FORM, &body).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.json()
    }

    /// A nudge in the served team; returns its prompt's key (the buttons' value).
    async fn a_prompt(&self) -> String {
        let event = message_event("Ev1", "U_SELLER", SELLER, "1700000000.000100");
        assert_eq!(self.event(&event).await.status, StatusCode::OK);
        self.drain_inbox().await;
        self.deliver_outbox_at(now_ms()).await;
        let posted = self.slack.posted_messages();
        assert_eq!(posted.len(), 1, "{posted:?}");
        let blocks = posted[0].blocks.as_array().unwrap();
        let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
        actions["elements"][0]["value"].as_str().unwrap().to_owned()
    }
}

fn click(team: &str, action_id: &str, value: &str) -> Value {
    json!({
        "type": "block_actions",
        "team": {"id": team},
        "user": {"id": "U_SELLER"},
        "channel": {"id": "C_DEALS"},
        "trigger_id": format!("trig-{action_id}"),
        "actions": [{"action_id": action_id, "block_id": "cusp_prompt", "value": value, "type": "button"}],
    })
}

fn reflection(team: &str, view_id: &str, key: &str, answer: &str) -> Value {
    json!({
        "type": "view_submission",
        "team": {"id": team},
        "user": {"id": "U_SELLER"},
        "view": {
            "id": view_id,
            "callback_id": "cusp_reflection",
            "private_metadata": key,
            "state": {"values": {
                "q0": {"answer": {"type": "plain_text_input", "value": answer}},
                "share": {"share": {"type": "checkboxes", "selected_options": [{"value": "share"}]}},
            }},
        },
    })
}

async fn post_deal(app: &TestApp, body: &Value) -> crate::support::app::TestResponse {
    let body = body.to_string();
    let ts = jiff::Timestamp::now().as_second();
    let signature =
        cusp::server::crm_signature::sign(WEBHOOK_SECRET.as_bytes(), ts, body.as_bytes());
    let request = Request::post("/hooks/deals")
        .header("content-type", "application/json")
        .header("x-cusp-timestamp", ts.to_string())
        .header("x-cusp-signature", signature)
        .body(Body::from(body))
        .unwrap();
    app.request(request).await
}

async fn another_teams_requests_are_answered_and_store_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A real prompt of the served team, which the foreign requests name.
    let key = app.a_prompt().await;
    let before = snapshot(&app.db).await;
    let calls_before = app.slack.take_calls().len();
    assert!(calls_before > 0);

    for text in [
        "reflect pushing them to sign by Friday",
        "mute 1w",
        "optout",
        "channel on",
        "digest setup <#C_DEALS|deals> monday 09:00 UTC",
        "reflections",
        "export",
    ] {
        let reply = app.command_from(FOREIGN, text).await;
        assert_eq!(reply["response_type"], "ephemeral", "{text}: {reply}");
        assert!(
            reply["text"]
                .as_str()
                .is_some_and(|t| t.contains("isn't installed in this workspace")),
            "{text}: {reply}"
        );
    }
    for action in [
        "cusp_helpful",
        "cusp_not_now",
        "cusp_reflect",
        "cusp_mute_deal",
        "cusp_why",
    ] {
        let response = app.interact_as(&click(FOREIGN, action, &key)).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{action}: {}",
            response.body
        );
    }
    let optout = app
        .interact_as(&click(FOREIGN, "cusp_optout_confirm", "U_SELLER"))
        .await;
    assert_eq!(optout.status, StatusCode::OK, "{}", optout.body);
    let submitted = app
        .interact_as(&reflection(FOREIGN, "V_FOREIGN", &key, "Forged"))
        .await;
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.body);
    let mut event = message_event("EvForeign", "U_SELLER", SELLER, "1700000000.000200");
    event["team_id"] = json!(FOREIGN);
    assert_eq!(app.event(&event).await.status, StatusCode::OK);
    let deal = json!({
        "team_id": FOREIGN, "deal_id": "D-1", "account": "Acme", "stage": "closedwon",
        "owner": {"slack_user_id": "U_SELLER"},
    });
    let hook = post_deal(&app, &deal).await;
    assert_eq!(
        hook.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        hook.body
    );
    assert!(hook.body.contains("not installed"), "{}", hook.body);

    app.drain_inbox().await;
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(rows_naming(&app.db, FOREIGN).await, vec![]);
    assert_eq!(snapshot(&app.db).await, before, "no row changed anywhere");
    let calls = app.slack.take_calls();
    assert!(calls.is_empty(), "nothing sent to Slack: {calls:#?}");
}

async fn a_reflection_submitted_three_times_is_saved_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = app.a_prompt().await;
    let submission = reflection(
        TEAM,
        "V0REFLECT",
        &key,
        "Their CFO worries about the cutover.",
    );
    for attempt in 0..3 {
        let saved = app.interact_as(&submission).await;
        assert_eq!(
            (saved.status, saved.body.as_str()),
            (StatusCode::OK, ""),
            "attempt {attempt}: the same answer every time"
        );
    }
    let stored = app
        .db
        .scalar_for_team("SELECT COUNT(*) FROM reflections WHERE team_id = $1", TEAM)
        .await;
    assert_eq!(stored, 1);
    let listed = app.command_from(TEAM, "reflections").await;
    let text = listed["text"].as_str().unwrap();
    assert_eq!(text.matches("cutover").count(), 1, "{listed}");

    // Another modal on the same prompt is another reflection.
    let second = reflection(TEAM, "V0AGAIN", &key, "And legal wants a DPA.");
    assert_eq!(app.interact_as(&second).await.status, StatusCode::OK);
    let stored = app
        .db
        .scalar_for_team("SELECT COUNT(*) FROM reflections WHERE team_id = $1", TEAM)
        .await;
    assert_eq!(stored, 2);

    // A view id Slack would never send is refused before anything is stored.
    for bad in ["", "V 1", &"V".repeat(65)] {
        let refused = app
            .interact_as(&reflection(TEAM, bad, &key, "Odd id"))
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    let stored = app
        .db
        .scalar_for_team("SELECT COUNT(*) FROM reflections WHERE team_id = $1", TEAM)
        .await;
    assert_eq!(stored, 2);
}

backend_matrix!(
    another_teams_requests_are_answered_and_store_nothing,
    a_reflection_submitted_three_times_is_saved_once,
);
