//! `SlackClient` against `FakeSlack`: success, every error class, and the helpers.

use std::time::Duration;

use cusp::slack::web_api::{SlackApiError, SlackClient};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::support::fake_slack::{BOT_ID, BOT_USER_ID, FakeSlack, Scripted, TEST_TOKEN};

const TIMEOUT: Duration = Duration::from_secs(5);

fn client(fake: &FakeSlack) -> SlackClient {
    SlackClient::new(&fake.base_url(), SecretString::from(TEST_TOKEN), TIMEOUT).unwrap()
}

fn params(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

fn post(channel: &str, text: &str) -> Map<String, Value> {
    params(json!({ "channel": channel, "text": text }))
}

#[tokio::test]
async fn post_message_succeeds_and_sends_token_and_structured_params() {
    let fake = FakeSlack::start().await;
    let metadata = json!({ "event_type": "cusp_outbox", "event_payload": { "id": "ob-1" } });
    let answer = client(&fake)
        .call(
            "chat.postMessage",
            &params(json!({
                "channel": "C1", "text": "Nice question!", "thread_ts": "1700000000.000100",
                "blocks": [{ "type": "divider" }], "metadata": metadata, "unfurl_links": false,
            })),
        )
        .await
        .unwrap();

    assert_eq!(answer["ok"], true);
    assert_eq!(answer["channel"], "C1");
    let ts = answer["ts"].as_str().unwrap().to_owned();
    let call = &fake.calls_to("chat.postMessage")[0];
    assert!(call.auth_present && call.auth_ok);
    assert_eq!(call.param_str("unfurl_links").as_deref(), Some("false"));
    assert_eq!(
        call.param_json("blocks"),
        Some(json!([{ "type": "divider" }]))
    );
    let posted = fake.posted_messages();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].ts, ts);
    assert_eq!(posted[0].thread_ts.as_deref(), Some("1700000000.000100"));
    assert_eq!(posted[0].text, "Nice question!");
    assert_eq!(posted[0].metadata, metadata);
    assert_eq!(posted[0].bot_id.as_deref(), Some(BOT_ID));
}

#[tokio::test]
async fn rate_limited_answer_carries_retry_after() {
    let fake = FakeSlack::start().await;
    fake.push_response(
        "chat.postMessage",
        Scripted::RateLimited {
            retry_after_secs: 7,
        },
    );
    let err = client(&fake)
        .call("chat.postMessage", &post("C1", "hi"))
        .await
        .unwrap_err();
    assert!(matches!(err, SlackApiError::RateLimited { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_retryable());
    assert!(fake.posted_messages().is_empty());
}

#[tokio::test]
async fn ok_false_ratelimited_without_header_waits_one_second() {
    let fake = FakeSlack::start().await;
    fake.push_response("chat.postMessage", Scripted::OkFalse("ratelimited"));
    let err = client(&fake)
        .call("chat.postMessage", &post("C1", "hi"))
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn server_error_is_a_retryable_http_error() {
    let fake = FakeSlack::start().await;
    fake.push_response("chat.postMessage", Scripted::Status(500));
    let err = client(&fake)
        .call("chat.postMessage", &post("C1", "hi"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SlackApiError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn channel_not_found_is_a_permanent_api_error() {
    let fake = FakeSlack::start().await;
    fake.push_response("chat.postMessage", Scripted::OkFalse("channel_not_found"));
    let err = client(&fake)
        .call("chat.postMessage", &post("C404", "hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("channel_not_found"));
    assert_eq!(err.method(), Some("chat.postMessage"));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn slow_answer_past_the_client_timeout_is_a_retryable_timeout() {
    let fake = FakeSlack::start().await;
    fake.push_response("auth.test", Scripted::Delay(Duration::from_secs(2)));
    let slow = SlackClient::new(
        &fake.base_url(),
        SecretString::from(TEST_TOKEN),
        Duration::from_millis(200),
    )
    .unwrap();
    let err = slow.auth_test().await.unwrap_err();
    assert!(matches!(err, SlackApiError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn wrong_token_is_rejected_with_invalid_auth() {
    let fake = FakeSlack::start().await;
    let bad =
        SlackClient::new(&fake.base_url(), SecretString::from("xoxb-wrong"), TIMEOUT).unwrap();
    let err = bad.auth_test().await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_auth"));
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("xoxb-wrong"));
    let call = &fake.calls()[0];
    assert!(call.auth_present && !call.auth_ok);
}

#[tokio::test]
async fn auth_test_reports_the_bot_identity() {
    let fake = FakeSlack::start().await;
    let me = client(&fake).auth_test().await.unwrap();
    assert_eq!(me.team_id.as_str(), "T_TEST");
    assert_eq!(me.user_id.as_str(), BOT_USER_ID);
    assert_eq!(me.bot_id.unwrap().as_str(), BOT_ID);
}

#[tokio::test]
async fn lookup_user_by_email_finds_known_people_and_not_strangers() {
    let fake = FakeSlack::start().await;
    fake.set_user_email("ana@example.com", "U0ANA");
    let slack = client(&fake);
    let found = slack.lookup_user_by_email("ana@example.com").await.unwrap();
    assert_eq!(found.unwrap().as_str(), "U0ANA");
    assert_eq!(
        slack
            .lookup_user_by_email("nobody@example.com")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn recent_messages_return_posts_with_metadata_in_channel_and_thread() {
    let fake = FakeSlack::start().await;
    let slack = client(&fake);
    let parent = fake.seed_message("C1", "U0ANA", "Call went well", None);
    let metadata = json!({ "event_type": "cusp_outbox", "event_payload": { "id": "ob-7" } });
    let mut reply = post("C1", "What did they say about budget?");
    reply.insert("thread_ts".into(), json!(parent));
    reply.insert("metadata".into(), metadata.clone());
    let reply_ts = slack.call("chat.postMessage", &reply).await.unwrap()["ts"]
        .as_str()
        .unwrap()
        .to_owned();
    slack
        .call("chat.postMessage", &post("C1", "top-level"))
        .await
        .unwrap();
    slack
        .call("chat.postMessage", &post("C2", "other channel"))
        .await
        .unwrap();

    let thread = slack
        .recent_messages("C1", Some(&parent), &parent, 10)
        .await
        .unwrap();
    assert_eq!(thread.len(), 2, "{thread:?}");
    assert_eq!(thread[1].ts, reply_ts);
    assert_eq!(thread[1].metadata, Some(metadata));

    let channel = slack
        .recent_messages("C1", None, &reply_ts, 10)
        .await
        .unwrap();
    let texts: Vec<&str> = channel.iter().filter_map(|m| m.text.as_deref()).collect();
    assert_eq!(
        texts,
        ["top-level"],
        "thread replies and older posts are left out"
    );

    let call = fake.calls_to("conversations.replies").pop().unwrap();
    assert_eq!(
        call.param_str("include_all_metadata").as_deref(),
        Some("true")
    );
    assert_eq!(call.param_str("inclusive").as_deref(), Some("true"));
}

#[tokio::test]
async fn answer_lost_after_post_leaves_the_message_for_reconciliation() {
    let fake = FakeSlack::start().await;
    let slack = client(&fake);
    fake.push_response("chat.postMessage", Scripted::DropAfterPost);
    let mut params = post("C1", "digest");
    params.insert(
        "metadata".into(),
        json!({ "event_type": "cusp_outbox", "event_payload": { "id": "ob-9" } }),
    );
    let err = slack.call("chat.postMessage", &params).await.unwrap_err();
    assert!(err.is_retryable());
    let found = slack.recent_messages("C1", None, "0", 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].metadata.as_ref().unwrap()["event_payload"]["id"],
        "ob-9"
    );
    // The scripted fault was one-shot: the next post behaves normally.
    slack
        .call("chat.postMessage", &post("C1", "again"))
        .await
        .unwrap();
    assert_eq!(fake.posted_messages().len(), 2);
}

#[tokio::test]
async fn fake_slack_models_the_other_methods_cusp_uses() {
    let fake = FakeSlack::start().await;
    let slack = client(&fake);
    let ts = slack
        .call("chat.postMessage", &post("C1", "draft"))
        .await
        .unwrap()["ts"]
        .clone();

    let update = params(json!({ "channel": "C1", "ts": ts, "text": "final" }));
    slack.call("chat.update", &update).await.unwrap();
    assert_eq!(fake.posted_messages()[0].text, "final");

    let reaction = params(json!({ "channel": "C1", "timestamp": ts, "name": "eyes" }));
    slack.call("reactions.add", &reaction).await.unwrap();
    let again = slack.call("reactions.add", &reaction).await.unwrap_err();
    assert_eq!(again.code(), Some("already_reacted"));

    let eph = params(json!({ "channel": "C1", "user": "U0ANA", "text": "only you" }));
    assert!(slack.call("chat.postEphemeral", &eph).await.unwrap()["message_ts"].is_string());

    let view = params(
        json!({ "trigger_id": "1.2.3", "view": { "type": "modal", "callback_id": "reflection" } }),
    );
    let opened = slack.call("views.open", &view).await.unwrap();
    assert_eq!(opened["view"]["id"], "V_FAKE1");

    let unknown = slack
        .call("chat.scheduleTeleport", &Map::new())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Some("unknown_method"));
}

#[tokio::test]
async fn fake_slack_accepts_json_bodies() {
    let fake = FakeSlack::start().await;
    let response: Value = reqwest::Client::new()
        .post(format!("{}/chat.postMessage", fake.base_url()))
        .bearer_auth(TEST_TOKEN)
        .json(&json!({ "channel": "C9", "text": "json", "blocks": [{ "type": "divider" }] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["ok"], true);
    assert_eq!(
        fake.calls_to("chat.postMessage")[0].param_json("blocks"),
        Some(json!([{ "type": "divider" }]))
    );
    assert_eq!(
        fake.posted_messages()[0].blocks,
        json!([{ "type": "divider" }])
    );

    let missing_token: Value = reqwest::Client::new()
        .post(format!("{}/auth.test", fake.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(missing_token["error"], "invalid_auth");
    assert!(!fake.calls_to("auth.test")[0].auth_present);
}

#[tokio::test]
async fn typed_calls_send_the_requests_slack_documents() {
    use cusp::slack::calls::{Message, SlackCall};
    let fake = FakeSlack::start().await;
    let slack = client(&fake);
    let post = SlackCall::PostMessage {
        channel: cusp::slack::ids::ChannelId::parse("C1").unwrap(),
        thread_ts: None,
        message: Message::blocks("draft", vec![json!({"type": "divider"})]).without_previews(),
    };
    let ts = slack.send(&post, "k-post").await.unwrap().ts.unwrap();
    let call = &fake.calls_to("chat.postMessage")[0];
    assert_eq!(call.param_str("channel").as_deref(), Some("C1"));
    assert_eq!(call.param_str("unfurl_media").as_deref(), Some("false"));
    assert_eq!(
        call.param_json("metadata").unwrap()["event_payload"]["key"],
        "k-post"
    );
    assert_eq!(
        slack
            .find_post(&post, "k-post", 0)
            .await
            .unwrap()
            .as_deref(),
        Some(ts.as_str())
    );
    assert_eq!(slack.find_post(&post, "k-other", 0).await.unwrap(), None);

    let update = SlackCall::UpdateMessage {
        channel: cusp::slack::ids::ChannelId::parse("C1").unwrap(),
        ts: ts.clone(),
        message: Message::text("final"),
    };
    slack.send(&update, "k-update").await.unwrap();
    assert_eq!(fake.posted_messages()[0].text, "final");
    assert!(
        fake.calls_to("chat.update")[0]
            .param_json("metadata")
            .is_none()
    );

    let reaction = SlackCall::AddReaction {
        channel: cusp::slack::ids::ChannelId::parse("C1").unwrap(),
        timestamp: ts.clone(),
        name: "eyes".into(),
    };
    slack.send(&reaction, "k-r").await.unwrap();
    // Slack's `already_reacted`: the reaction is there, which is what was asked.
    assert_eq!(slack.send(&reaction, "k-r").await.unwrap().ts, None);

    let note = SlackCall::PostEphemeral {
        channel: cusp::slack::ids::ChannelId::parse("C1").unwrap(),
        user: cusp::slack::ids::UserId::parse("U0ANA").unwrap(),
        text: "only you".into(),
    };
    assert!(slack.send(&note, "k-e").await.unwrap().ts.is_some());

    let direct = SlackCall::PostDirect {
        user: cusp::slack::ids::UserId::parse("U0ANA").unwrap(),
        message: Message::text("your week"),
    };
    let dm_ts = slack.send(&direct, "k-dm").await.unwrap().ts.unwrap();
    assert_eq!(
        fake.calls_to("chat.postMessage")[1]
            .param_str("channel")
            .as_deref(),
        Some("U0ANA"),
        "posted to the user id, no lookup first"
    );
    assert!(fake.calls_to("conversations.open").is_empty());
    assert_eq!(
        slack.find_post(&direct, "k-dm", 0).await.unwrap(),
        Some(dm_ts)
    );
    assert_eq!(
        fake.calls_to("conversations.open").len(),
        1,
        "read back from the DM"
    );

    slack
        .open_view(
            "1.2.3",
            json!({"type": "modal", "callback_id": "reflection"}),
        )
        .await
        .unwrap();
    let opened = &fake.calls_to("views.open")[0];
    assert_eq!(opened.param_str("trigger_id").as_deref(), Some("1.2.3"));
    assert_eq!(opened.param_json("view").unwrap()["type"], "modal");
}
