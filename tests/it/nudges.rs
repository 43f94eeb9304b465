//! Automatic nudges end to end: events and commands through the real router, workers
//! stepped explicitly, Slack faked on loopback.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, command_body, message_event, now_ms};
use crate::support::fake_slack::Scripted;

const FORM: &str = "application/x-www-form-urlencoded";
const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";
const SELLER_GLOBEX: &str =
    "Globex renewal: chasing them to sign before EOQ, I need this for my number";
const CUSTOMER: &str = "Ridgeway Freight QBR: their ops VP wants to cut dispatcher overtime by a third, and the \
                        terminal managers are worried about rollout risk after a bad migration, so we are building \
                        a joint rollout plan with them";

impl TestApp {
    async fn say(&self, event_id: &str, user: &str, text: &str, ts: &str) {
        assert_eq!(
            self.event(&message_event(event_id, user, text, ts))
                .await
                .status,
            StatusCode::OK
        );
    }

    async fn say_in_thread(
        &self,
        event_id: &str,
        user: &str,
        text: &str,
        ts: &str,
        thread_ts: &str,
    ) {
        let mut event = message_event(event_id, user, text, ts);
        event["event"]["thread_ts"] = json!(thread_ts);
        assert_eq!(self.event(&event).await.status, StatusCode::OK);
    }

    /// Runs the inbox and outbox workers until both are idle.
    async fn settle(&self) {
        self.drain_inbox().await;
        self.deliver_outbox_at(now_ms()).await;
    }

    async fn command_as(&self, user: &str, channel: &str, text: &str) -> Value {
        let body = command_body(text, &format!("trig-{user}-{text}"))
            .replace("user_id=U_SELLER", &format!("user_id={user}"))
            .replace("channel_id=C_DEALS", &format!("channel_id={channel}"));
        let response = self.post_signed("/slack/commands", FORM, &body).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.json()
    }

    async fn interact(&self, payload: Value) -> crate::support::app::TestResponse {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.post_signed("/slack/interactivity", FORM, &body).await
    }

    fn nudges(&self) -> Vec<crate::support::fake_slack::PostedMessage> {
        self.slack.posted_messages()
    }
}

fn click(action_id: &str, value: &str, user: &str, trigger: &str) -> Value {
    json!({
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": user},
        "channel": {"id": "C_DEALS"},
        "trigger_id": trigger,
        "actions": [{"action_id": action_id, "block_id": "cusp_prompt", "value": value, "type": "button"}],
    })
}

fn button_value(message: &crate::support::fake_slack::PostedMessage) -> String {
    let blocks = message.blocks.as_array().expect("blocks");
    let actions = blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("actions block");
    actions["elements"][0]["value"].as_str().unwrap().to_owned()
}

async fn a_seller_centric_update_gets_exactly_one_threaded_nudge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.slack.strict();
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await; // Slack retry
    app.settle().await;
    // Strict: this one post is the only call cusp made.
    let calls = app.slack.take_calls();
    assert_eq!(
        calls.iter().map(|c| c.method.as_str()).collect::<Vec<_>>(),
        ["chat.postMessage"]
    );
    let posted = app.nudges();
    assert_eq!(posted.len(), 1, "{posted:?}");
    let nudge = &posted[0];
    assert_eq!(
        (nudge.channel.as_str(), nudge.thread_ts.as_deref()),
        ("C_DEALS", Some("1700000000.000100"))
    );
    let rendered = nudge.blocks.to_string();
    for label in ["Reflect", "Helpful", "Not now", "Mute this deal for a week"] {
        assert!(rendered.contains(label), "{label} missing: {rendered}");
    }
    assert!(nudge.text.contains("Acme Logistics"), "{}", nudge.text);
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
    assert!(app.slack.calls_to("reactions.add").is_empty());
}

async fn a_customer_centric_update_gets_a_quiet_reaction_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.slack.strict();
    app.say("Ev1", "U_SELLER", CUSTOMER, "1700000000.000200")
        .await;
    app.settle().await;
    assert!(app.nudges().is_empty());
    let reactions = app.slack.take_calls();
    assert!(reactions.iter().all(|c| c.method == "reactions.add"));
    assert_eq!(reactions.len(), 1);
    assert_eq!(reactions[0].param_str("name").as_deref(), Some("seedling"));
    assert_eq!(
        reactions[0].param_str("timestamp").as_deref(),
        Some("1700000000.000200")
    );
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
}

async fn chit_chat_gets_nothing_and_is_not_logged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Strict with nothing taken: any call at all to Slack fails the test.
    app.slack.strict();
    app.say(
        "Ev1",
        "U_SELLER",
        "anyone up for tacos at noon? :taco:",
        "1700000000.000300",
    )
    .await;
    app.settle().await;
    assert!(app.nudges().is_empty());
    assert!(app.slack.calls_to("reactions.add").is_empty());
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 0);
}

async fn a_thread_gets_at_most_one_nudge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.say_in_thread(
        "Ev2",
        "U_OTHER",
        SELLER_GLOBEX,
        "1700000000.000200",
        "1700000000.000100",
    )
    .await;
    app.say_in_thread(
        "Ev3",
        "U_SELLER",
        SELLER,
        "1700000000.000300",
        "1700000000.000100",
    )
    .await;
    app.settle().await;
    assert_eq!(app.nudges().len(), 1);
    assert_eq!(
        app.state.store.count_observations(TEAM).await.unwrap(),
        3,
        "every update is logged"
    );
}

async fn a_thread_reply_is_an_update_of_the_threads_deal(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.say("Ev1", "U_SELLER", CUSTOMER, "1700000000.000100")
        .await;
    // Alone this names no account; in the deal's thread it is an update of that deal.
    let reply = "They asked for 20% off, so I offered it if they sign this week";
    app.say_in_thread(
        "Ev2",
        "U_SELLER",
        reply,
        "1700000000.000200",
        "1700000000.000100",
    )
    .await;
    // A reply with no theme at all is conversation, not an update.
    app.say_in_thread(
        "Ev2b",
        "U_OTHER",
        "thanks, on it!",
        "1700000000.000250",
        "1700000000.000100",
    )
    .await;
    // A general opinion in a thread that is not about a deal stays chatter.
    let opinion = "best CSMs talk outcomes, not features";
    assert!(
        !cusp::engine::Engine::builtin()
            .analyze(opinion)
            .is_deal_update
    );
    app.say("Ev3", "U_OTHER", "lunch at noon?", "1700000000.000300")
        .await;
    app.say_in_thread(
        "Ev4",
        "U_OTHER",
        opinion,
        "1700000000.000400",
        "1700000000.000300",
    )
    .await;
    app.settle().await;
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 2);
    let posted = app.nudges();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0].thread_ts.as_deref(), Some("1700000000.000100"));
    assert!(
        posted[0].text.contains("Ridgeway Freight"),
        "the reply inherits the thread's account: {}",
        posted[0].text
    );
}

async fn an_update_naming_no_account_is_logged_and_nudged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let text = "they want a discount before signing the contract, pushing hard to close this week for my number";
    let analysis = cusp::engine::Engine::builtin().analyze(text);
    assert!(analysis.is_deal_update && analysis.account.is_none());
    app.say("Ev1", "U_SELLER", text, "1700000000.000100").await;
    app.settle().await;
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 1);
    assert_eq!(app.nudges().len(), 1);
}

async fn cooldowns_limit_nudges_per_account_and_per_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.say("Ev2", "U_SELLER", SELLER, "1700000000.000200")
        .await; // same account, new thread
    app.settle().await;
    assert_eq!(
        app.nudges().len(),
        1,
        "one nudge per person and account a day"
    );
    app.say("Ev3", "U_SELLER", SELLER_GLOBEX, "1700000000.000300")
        .await;
    app.settle().await;
    assert_eq!(app.nudges().len(), 2, "another account may be nudged");
    app.say(
        "Ev4",
        "U_SELLER",
        "Initech: pushing them to sign the contract before quarter end for my number",
        "1.4",
    )
    .await;
    app.say(
        "Ev5",
        "U_SELLER",
        "Umbrella Corp: need the PO this week for my quota, offering 15% if they sign Friday",
        "1.5",
    )
    .await;
    app.settle().await;
    assert_eq!(app.nudges().len(), 3, "at most three a day");
    // Per-team settings change the limits.
    app.command_as("U_SELLER", "C_DEALS", "settings daily 5")
        .await;
    app.say(
        "Ev6",
        "U_SELLER",
        "Hooli: chasing legal to sign by EOQ so I make my number",
        "1.6",
    )
    .await;
    app.settle().await;
    assert_eq!(app.nudges().len(), 4);
}

async fn mute_holds_nudges_back_across_a_restart_and_unmute_restores_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app.command_as("U_SELLER", "C_DEALS", "mute 1w").await;
    assert!(
        reply["text"].as_str().unwrap().contains("Muted for a week"),
        "{reply}"
    );
    let app = app.restart().await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.settle().await;
    assert!(app.nudges().is_empty());
    assert_eq!(
        app.state.store.count_observations(TEAM).await.unwrap(),
        1,
        "themes are still logged"
    );
    app.command_as("U_SELLER", "C_DEALS", "unmute").await;
    app.say("Ev2", "U_SELLER", SELLER_GLOBEX, "1700000000.000200")
        .await;
    app.settle().await;
    assert_eq!(app.nudges().len(), 1);
}

async fn opting_out_deletes_data_and_stops_logging_until_opt_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.say("Ev2", "U_OTHER", SELLER_GLOBEX, "1700000000.000200")
        .await;
    app.settle().await;
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 2);

    let confirm = app.command_as("U_SELLER", "C_DEALS", "optout").await;
    assert!(
        confirm["blocks"]
            .to_string()
            .contains("cusp_optout_confirm"),
        "{confirm}"
    );
    assert_eq!(
        app.state.store.count_observations(TEAM).await.unwrap(),
        2,
        "nothing happens before confirming"
    );
    // Someone else cannot confirm another person's opt-out.
    let forged = app
        .interact(click("cusp_optout_confirm", "U_SELLER", "U_OTHER", "t0"))
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    let done = app
        .interact(click("cusp_optout_confirm", "U_SELLER", "U_SELLER", "t1"))
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(
        app.state.store.count_observations(TEAM).await.unwrap(),
        1,
        "only the other person's data remains"
    );

    let app = app.restart().await;
    app.say("Ev3", "U_SELLER", SELLER_GLOBEX, "1700000000.000300")
        .await;
    app.settle().await;
    assert_eq!(
        app.state.store.count_observations(TEAM).await.unwrap(),
        1,
        "opted out: not logged"
    );
    assert_eq!(
        app.nudges().len(),
        2,
        "only the two nudges from before the opt-out"
    );

    app.command_as("U_SELLER", "C_DEALS", "optin").await;
    app.say(
        "Ev4",
        "U_SELLER",
        "Initech: pushing them to sign before quarter end for my number",
        "1700000000.000400",
    )
    .await;
    app.settle().await;
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 2);
}

async fn forget_me_deletes_what_cusp_holds_about_the_caller_after_confirmation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.say("Ev2", "U_OTHER", SELLER_GLOBEX, "1700000000.000200")
        .await;
    app.settle().await;
    let nudge = app
        .nudges()
        .into_iter()
        .find(|m| m.thread_ts.as_deref() == Some("1700000000.000100"))
        .expect("a nudge for U_SELLER");
    let value = button_value(&nudge);
    app.interact(click("cusp_mute_deal", &value, "U_SELLER", "t-mute"))
        .await;
    app.command_as("U_SELLER", "C_DEALS", "mute 1d").await;
    app.command_as("U_SELLER", "C_DEALS", "digest me on").await;
    app.command_as("U_SELLER", "C_QUIET", "channel off").await;
    let store = &app.state.store;
    assert!(
        store
            .user_prefs(TEAM, "U_SELLER")
            .await
            .unwrap()
            .muted_until
            .is_some()
    );

    let confirm = app.command_as("U_SELLER", "C_DEALS", "forget me").await;
    assert!(
        confirm["blocks"]
            .to_string()
            .contains("cusp_forget_confirm"),
        "{confirm}"
    );
    assert_eq!(
        store.count_observations(TEAM).await.unwrap(),
        2,
        "nothing before confirming"
    );
    let forged = app
        .interact(click("cusp_forget_confirm", "U_SELLER", "U_OTHER", "t0"))
        .await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    let done = app
        .interact(click("cusp_forget_confirm", "U_SELLER", "U_SELLER", "t1"))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    app.settle().await;
    let said = app
        .slack
        .calls_to("chat.postEphemeral")
        .iter()
        .filter_map(|c| c.param_str("text"))
        .find(|t| t.starts_with("Done. I deleted"))
        .expect("the summary of what was deleted");
    assert!(
        said.contains("1 logged deal update,")
            && said.contains("1 nudge ")
            && said.contains("1 deal mute")
            && said.contains("your settings")
            && said.contains("1 team setting you changed no longer names you"),
        "{said}"
    );
    assert_eq!(
        store.count_observations(TEAM).await.unwrap(),
        1,
        "only the other person's data remains"
    );
    let prefs = store.user_prefs(TEAM, "U_SELLER").await.unwrap();
    assert!(prefs.muted_until.is_none() && !prefs.opted_out, "{prefs:?}");
    assert!(
        store
            .recent_question_ids(TEAM, "U_SELLER", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .recent_question_ids(TEAM, "U_OTHER", 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store.channel_nudges_off(TEAM, "C_QUIET").await.unwrap(),
        "the channel setting itself stays"
    );

    // Forgotten is not opted out: the next deal update is read (and nudged) again.
    app.say(
        "Ev3",
        "U_SELLER",
        "Initech: pushing them to sign before quarter end for my number",
        "1700000000.000300",
    )
    .await;
    app.settle().await;
    assert_eq!(store.count_observations(TEAM).await.unwrap(), 2);
    let cancel = app
        .interact(click("cusp_forget_cancel", "U_SELLER", "U_SELLER", "t2"))
        .await;
    assert_eq!(cancel.status, StatusCode::OK);
    assert_eq!(
        store.count_observations(TEAM).await.unwrap(),
        2,
        "cancel deletes nothing"
    );
}

/// The numbered question lines of a `/cusp reflect` reply.
fn reflect_questions(reply: &Value) -> Vec<String> {
    let blocks = reply["blocks"].as_array().expect("blocks");
    let section = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .find(|t| t.starts_with("*Questions to consider:*"))
        .expect("questions section");
    section
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(". ").map(|(_, q)| q.to_owned()))
        .collect()
}

async fn reflect_avoids_recent_questions_and_honours_opt_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.settle().await;
    let nudged = app.nudges()[0].blocks.to_string();
    let reply = app
        .command_as("U_SELLER", "C_DEALS", &format!("reflect {SELLER}"))
        .await;
    let asked = reflect_questions(&reply);
    assert!(!asked.is_empty(), "{reply}");
    for question in &asked {
        let needle = serde_json::to_string(question).unwrap();
        assert!(
            !nudged.contains(needle.trim_matches('"')),
            "repeated a question from the nudge: {question}"
        );
    }
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 2);

    app.command_as("U_SELLER", "C_DEALS", "optout").await;
    app.interact(click("cusp_optout_confirm", "U_SELLER", "U_SELLER", "t1"))
        .await;
    let reply = app
        .command_as("U_SELLER", "C_DEALS", &format!("reflect {SELLER} Again."))
        .await;
    assert!(
        !reflect_questions(&reply).is_empty(),
        "still answered: {reply}"
    );
    assert_eq!(
        app.state.store.count_observations(TEAM).await.unwrap(),
        0,
        "an opted-out person's reflection is not logged"
    );
}

async fn channel_off_silences_one_channel_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app.command_as("U_LEAD", "C_DEALS", "channel off").await;
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("Nudges are off in this channel"),
        "{reply}"
    );
    let app = app.restart().await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    let mut elsewhere = message_event("Ev2", "U_SELLER", SELLER_GLOBEX, "1700000000.000200");
    elsewhere["event"]["channel"] = json!("C_OTHER");
    app.event(&elsewhere).await;
    app.settle().await;
    let posted = app.nudges();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].channel, "C_OTHER");
    assert_eq!(app.state.store.count_observations(TEAM).await.unwrap(), 2);
    app.command_as("U_LEAD", "C_DEALS", "channel on").await;
    app.say("Ev3", "U_OTHER", SELLER, "1700000000.000300").await;
    app.settle().await;
    assert_eq!(app.nudges().len(), 2);
}

async fn buttons_and_the_reflection_modal_are_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.settle().await;
    let key = button_value(&app.nudges()[0]);

    assert_eq!(
        app.interact(click("cusp_not_now", &key, "U_SELLER", "t1"))
            .await
            .status,
        StatusCode::OK
    );
    let unhelpful = app.state.store.unhelpful_question_ids(TEAM).await.unwrap();
    assert!(
        !unhelpful.is_empty(),
        "not-now feedback is recorded against the prompt's questions"
    );
    // A colleague's click does not overwrite the feedback of the person nudged.
    assert_eq!(
        app.interact(click("cusp_helpful", &key, "U_OTHER", "t1b"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.state.store.unhelpful_question_ids(TEAM).await.unwrap(),
        unhelpful
    );

    assert_eq!(
        app.interact(click("cusp_reflect", &key, "U_SELLER", "t2"))
            .await
            .status,
        StatusCode::OK
    );
    let opened = app.slack.calls_to("views.open");
    assert_eq!(opened.len(), 1);
    let view = opened[0].param_json("view").unwrap();
    assert_eq!(view["callback_id"], "cusp_reflection");
    assert!(
        view.to_string()
            .contains("Share my reflection with the team digest")
    );

    let submission = json!({
        "type": "view_submission",
        "team": {"id": TEAM},
        "user": {"id": "U_SELLER"},
        "view": {
            "id": "V1",
            "callback_id": "cusp_reflection",
            "private_metadata": key,
            "state": {"values": {
                "q0": {"answer": {"type": "plain_text_input", "value": "Their CFO worries about the cutover."}},
                "share": {"share": {"type": "checkboxes", "selected_options": [{"value": "share"}]}},
            }},
        },
    });
    let saved = app.interact(submission.clone()).await;
    assert_eq!((saved.status, saved.body.as_str()), (StatusCode::OK, ""));
    let reflections = app
        .state
        .store
        .reflections_of(TEAM, "U_SELLER")
        .await
        .unwrap();
    assert_eq!(reflections.len(), 1);
    assert!(
        reflections[0].0.contains("cutover") && reflections[0].1,
        "{reflections:?}"
    );
    let mine = app.command_as("U_SELLER", "C_DEALS", "reflections").await;
    assert!(mine["text"].as_str().unwrap().contains("cutover"), "{mine}");
    let theirs = app.command_as("U_OTHER", "C_DEALS", "reflections").await;
    assert!(
        !theirs.to_string().contains("cutover"),
        "only the author sees a reflection"
    );

    let mut empty = submission.clone();
    empty["view"]["state"]["values"] = json!({});
    let errors = app.interact(empty).await.json();
    assert_eq!(errors["response_action"], "errors");

    // A reflection on a colleague's prompt is refused (it is theirs to reflect on), and
    // someone who opted out keeps nothing anyway.
    app.command_as("U_OTHER", "C_DEALS", "optout").await;
    app.interact(click("cusp_optout_confirm", "U_OTHER", "U_OTHER", "t-out"))
        .await;
    let mut theirs = submission;
    theirs["user"]["id"] = json!("U_OTHER");
    let refused = app.interact(theirs).await.json();
    assert_eq!(refused["response_action"], "errors", "{refused}");
    assert!(
        app.state
            .store
            .reflections_of(TEAM, "U_OTHER")
            .await
            .unwrap()
            .is_empty()
    );
    app.command_as("U_OTHER", "C_DEALS", "optin").await;

    // "Mute this deal for a week": the same account is not nudged again for this person.
    assert_eq!(
        app.interact(click("cusp_mute_deal", &key, "U_SELLER", "t3"))
            .await
            .status,
        StatusCode::OK
    );
    app.deliver_outbox_at(now_ms()).await;
    let acks = app.slack.calls_to("chat.postEphemeral");
    assert!(
        acks.iter()
            .any(|c| c.param_str("text").unwrap().contains("Muted this deal")),
        "{acks:?}"
    );

    // A colleague mutes the deal too; their own update about it (no cooldown of theirs
    // applies) is then logged but not nudged, while another account still is.
    app.interact(click("cusp_mute_deal", &key, "U_OTHER", "t4"))
        .await;
    let before = app.nudges().len();
    app.say("Ev2", "U_OTHER", SELLER, "1700000000.000500").await;
    app.settle().await;
    assert_eq!(app.nudges().len(), before, "muted deal: no nudge");
    app.say("Ev3", "U_OTHER", SELLER_GLOBEX, "1700000000.000600")
        .await;
    app.settle().await;
    assert_eq!(
        app.nudges().len(),
        before + 1,
        "other deals are still nudged"
    );
}

async fn an_expired_trigger_gets_an_ephemeral_explanation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.settle().await;
    let key = button_value(&app.nudges()[0]);
    app.slack
        .push_response("views.open", Scripted::OkFalse("expired_trigger_id"));
    assert_eq!(
        app.interact(click("cusp_reflect", &key, "U_SELLER", "t-old"))
            .await
            .status,
        StatusCode::OK
    );
    app.deliver_outbox_at(now_ms()).await;
    let notes = app.slack.calls_to("chat.postEphemeral");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .param_str("text")
            .unwrap()
            .contains("Click *Reflect* again")
    );
    assert_eq!(notes[0].param_str("user").as_deref(), Some("U_SELLER"));
}

/// `views.open` cannot wait in the outbox, but it keeps to Slack's rate limit: after a
/// 429 the next click does not call it before `Retry-After`, and each person is told to
/// click again in a moment.
async fn a_rate_limited_views_open_is_not_called_again_before_retry_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.settle().await;
    let key = button_value(&app.nudges()[0]);
    app.slack.push_response(
        "views.open",
        Scripted::RateLimited {
            retry_after_secs: 30,
        },
    );
    for trigger in ["t-1", "t-2"] {
        let clicked = app
            .interact(click("cusp_reflect", &key, "U_SELLER", trigger))
            .await;
        assert_eq!(clicked.status, StatusCode::OK);
    }
    assert_eq!(
        app.slack.calls_to("views.open").len(),
        1,
        "the held views.open was not called"
    );
    app.deliver_outbox_at(now_ms()).await;
    let notes = app.slack.calls_to("chat.postEphemeral");
    assert_eq!(notes.len(), 2);
    for note in notes {
        let text = note.param_str("text").unwrap();
        assert!(text.contains("click *Reflect* again in a moment"), "{text}");
    }
}

backend_matrix!(
    a_seller_centric_update_gets_exactly_one_threaded_nudge,
    a_customer_centric_update_gets_a_quiet_reaction_only,
    chit_chat_gets_nothing_and_is_not_logged,
    a_thread_gets_at_most_one_nudge,
    a_thread_reply_is_an_update_of_the_threads_deal,
    an_update_naming_no_account_is_logged_and_nudged,
    cooldowns_limit_nudges_per_account_and_per_day,
    mute_holds_nudges_back_across_a_restart_and_unmute_restores_them,
    opting_out_deletes_data_and_stops_logging_until_opt_in,
    forget_me_deletes_what_cusp_holds_about_the_caller_after_confirmation,
    channel_off_silences_one_channel_only,
    reflect_avoids_recent_questions_and_honours_opt_out,
    buttons_and_the_reflection_modal_are_stored,
    an_expired_trigger_gets_an_ephemeral_explanation,
    a_rate_limited_views_open_is_not_called_again_before_retry_after,
);

#[tokio::test]
async fn unknown_and_malformed_interactions_get_400() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let unknown = app
        .interact(click("cusp_launch_rockets", "x", "U_SELLER", "t"))
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body.contains("unknown action"), "{}", unknown.body);
    let stale = app
        .interact(click("cusp_helpful", "C_DEALS:999", "U_SELLER", "t"))
        .await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST);
    let shortcut = app
        .interact(json!({"type": "shortcut", "team": {"id": TEAM}}))
        .await;
    assert_eq!(shortcut.status, StatusCode::BAD_REQUEST);
    let missing = app
        .interact(json!({"type": "block_actions", "team": {"id": TEAM}}))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_mention_gets_a_threaded_analysis_and_a_bare_mention_reflects_on_the_thread() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mention = |event_id: &str, text: &str, ts: &str, thread_ts: Option<&str>| {
        let mut envelope = message_event(event_id, "U_SELLER", text, ts);
        envelope["event"]["type"] = json!("app_mention");
        if let Some(thread) = thread_ts {
            envelope["event"]["thread_ts"] = json!(thread);
        }
        envelope
    };
    app.event(&mention(
        "EvM1",
        "<@U_CUSP> Acme: need them to sign by Friday for my quota",
        "1.100",
        None,
    ))
    .await;
    app.settle().await;
    let posted = app.nudges();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].thread_ts.as_deref(), Some("1.100"));
    assert!(
        posted[0].blocks.to_string().contains("closing push"),
        "{}",
        posted[0].blocks
    );

    let parent = app
        .slack
        .seed_message("C_DEALS", "U_OTHER", SELLER_GLOBEX, None);
    app.event(&mention("EvM2", "<@U_CUSP>", "1.200", Some(&parent)))
        .await;
    app.settle().await;
    let posted = app.nudges();
    let reply = posted
        .iter()
        .find(|m| m.thread_ts.as_deref() == Some(parent.as_str()) && m.user == "U_CUSP");
    let reply = reply.expect("a reply in the thread");
    assert!(
        reply.blocks.to_string().contains("quota pressure"),
        "{}",
        reply.blocks
    );

    app.event(&mention("EvM3", "<@U_CUSP>", "1.300", None))
        .await;
    app.settle().await;
    assert!(
        app.nudges()
            .iter()
            .any(|m| m.text.contains("Mention me with a deal update"))
    );
}

#[tokio::test]
async fn a_button_is_answered_in_time_while_the_database_is_locked() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.say("Ev1", "U_SELLER", SELLER, "1700000000.000100")
        .await;
    app.settle().await;
    let key = button_value(&app.nudges()[0]);
    let mut other = app.hold_sqlite_write_lock().await;
    let started = std::time::Instant::now();
    let locked = app
        .interact(click("cusp_not_now", &key, "U_SELLER", "t1"))
        .await;
    let took = started.elapsed();
    assert_eq!(locked.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < std::time::Duration::from_millis(2_900), "{took:?}");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let unlocked = app
        .interact(click("cusp_not_now", &key, "U_SELLER", "t2"))
        .await;
    assert_eq!(unlocked.status, StatusCode::OK);
    assert!(
        !app.state
            .store
            .unhelpful_question_ids(TEAM)
            .await
            .unwrap()
            .is_empty()
    );
}
