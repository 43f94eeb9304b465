//! Two workspaces served at once (OAuth mode, T_A and T_B installed): each one's nudges,
//! digest, export, reflections, settings, mutes and opt-outs stay its own; a workspace
//! without cusp gets nothing stored; forged interactivity naming another workspace's or
//! another person's prompt is refused. The fake Slack is strict here: every call cusp
//! makes is examined, and a token used for the other workspace's channel or person fails.

use axum::http::StatusCode;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use cusp::bot::export::{ExportFormat, export};
use cusp::jobs::scheduler::{TickOutcome, run_tick};

use crate::backend_matrix;
use crate::support::app::{Backend, TestApp, WEBHOOK_SECRET, now_ms};
use crate::support::fake_slack::RecordedCall;
use crate::support::two_teams::{
    CHANNEL_A, CHANNEL_B, KIM, SAM, T_A, T_B, T_C, channel_of, click_in, event_in, prompt_key,
    reflection_in, rows_naming, snapshot,
};

const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";
const SELLER_GLOBEX: &str =
    "Globex renewal: chasing them to sign before EOQ, I need this for my number";
const SELLER_INITECH: &str =
    "Initech pilot: pushing them to sign the order this week so I make my quota";
const CUSTOMER: &str = "Ridgeway Freight QBR: their ops VP wants to cut dispatcher overtime by a third, and the \
                        terminal managers are worried about rollout risk after a bad migration, so we are building \
                        a joint rollout plan with them";
const TS1: &str = "1700000000.000100";
const TS2: &str = "1700000000.000200";
const TS3: &str = "1700000000.000300";

/// The one call of `calls` made with `team`'s token.
fn by_team<'a>(calls: &'a [RecordedCall], team: &str) -> &'a RecordedCall {
    let mine: Vec<&RecordedCall> = calls
        .iter()
        .filter(|c| c.team.as_deref() == Some(team))
        .collect();
    assert_eq!(mine.len(), 1, "one call by {team}: {calls:#?}");
    mine[0]
}

/// Takes the next calls (strict mode) and checks they are exactly one threaded nudge per
/// team listed, each with its own token into its own channel; returns each nudge's
/// prompt key, in the order of `teams`.
fn take_nudges(app: &TestApp, teams: &[(&str, &str)]) -> Vec<String> {
    let calls = app.slack.take_calls();
    assert!(
        calls.iter().all(|c| c.method == "chat.postMessage"),
        "{calls:#?}"
    );
    assert_eq!(calls.len(), teams.len(), "{calls:#?}");
    let posted = app.slack.posted_messages();
    teams
        .iter()
        .map(|(team, ts)| {
            let call = by_team(&calls, team);
            assert_eq!(call.param_str("channel").as_deref(), Some(channel_of(team)));
            assert_eq!(call.param_str("thread_ts").as_deref(), Some(*ts));
            let nudge = posted
                .iter()
                .rev()
                .find(|m| m.team.as_deref() == Some(*team) && m.thread_ts.as_deref() == Some(*ts))
                .expect("the nudge was posted");
            assert_eq!(
                nudge.user,
                format!("U_BOT_{team}"),
                "posted as {team}'s bot"
            );
            prompt_key(nudge)
        })
        .collect()
}

async fn export_lines(app: &TestApp, team: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    export(
        &app.state.store,
        team,
        &Default::default(),
        ExportFormat::Json,
        &mut out,
    )
    .await
    .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn a_deal_update_in_each_workspace_is_nudged_with_that_workspaces_token(backend: Backend) {
    let app = TestApp::spawn_two_teams(backend).await;
    app.slack.strict();
    // The same person, the same ts, in both workspaces.
    app.say_in(T_A, CHANNEL_A, SAM, SELLER, TS1).await;
    app.say_in(T_B, CHANNEL_B, SAM, SELLER_GLOBEX, TS1).await;
    app.handle_and_deliver().await;

    let keys = take_nudges(&app, &[(T_A, TS1), (T_B, TS1)]);
    assert_ne!(keys[0], keys[1]);
    let store = &app.state.store;
    assert_eq!(store.count_observations(T_A).await.unwrap(), 1);
    assert_eq!(store.count_observations(T_B).await.unwrap(), 1);
    assert_eq!(
        store
            .prompt_by_thread_key(T_A, &keys[0])
            .await
            .unwrap()
            .user_id,
        SAM
    );
    assert!(
        store.prompt_by_thread_key(T_A, &keys[1]).await.is_err(),
        "T_B's prompt is not T_A's"
    );
}

/// Signs a CRM deal update for `team` with this delivery id.
async fn post_deal(
    app: &TestApp,
    team: &str,
    owner_email: &str,
    delivery: &str,
) -> (StatusCode, Value) {
    let body = json!({
        "team_id": team, "deal_id": "D-42", "account": "Acme Logistics", "stage": "closedwon",
        "previous_stage": "contractsent", "owner": {"email": owner_email},
    })
    .to_string();
    let ts = jiff::Timestamp::now().as_second();
    let signature =
        cusp::server::crm_signature::sign(WEBHOOK_SECRET.as_bytes(), ts, body.as_bytes());
    let request = axum::http::Request::post("/hooks/deals")
        .header("content-type", "application/json")
        .header("x-cusp-timestamp", ts.to_string())
        .header("x-cusp-signature", signature)
        .header("x-cusp-delivery", delivery)
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = app.request(request).await;
    let json = serde_json::from_str(&response.body).unwrap_or(Value::Null);
    (response.status, json)
}

async fn a_crm_deal_update_reaches_its_owner_only_through_its_own_workspace(backend: Backend) {
    let app = TestApp::spawn_two_teams(backend).await;
    app.slack.add_user(T_A, "U_ALEX");
    app.slack.set_user_email("alex@alpha.test", "U_ALEX");
    app.slack.add_user(T_B, "U_BEA");
    app.slack.set_user_email("bea@bravo.test", "U_BEA");
    app.slack.strict();

    // T_B's token cannot find T_A's person: the owner is unknown there.
    let (status, body) = post_deal(&app, T_B, "alex@alpha.test", "dlv-0").await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::ACCEPTED, &json!("owner_unknown"))
    );
    let lookup = app.slack.take_calls_to("users.lookupByEmail");
    assert_eq!(lookup.len(), 1);
    assert_eq!(lookup[0].team.as_deref(), Some(T_B));

    // The same delivery id is a fresh delivery in each workspace.
    for (team, email) in [(T_A, "alex@alpha.test"), (T_B, "bea@bravo.test")] {
        let (status, body) = post_deal(&app, team, email, "dlv-1").await;
        assert_eq!(
            (status, &body["status"]),
            (StatusCode::OK, &json!("queued")),
            "{team}"
        );
        let lookup = app.slack.take_calls_to("users.lookupByEmail");
        assert_eq!(lookup.len(), 1);
        assert_eq!(lookup[0].team.as_deref(), Some(team));
    }
    app.deliver_outbox_at(now_ms()).await;
    // Each owner's DM is opened and written with the owner's own workspace's token.
    let calls = app.slack.take_calls();
    assert_eq!(calls.len(), 4, "{calls:#?}");
    for (team, owner) in [(T_A, "U_ALEX"), (T_B, "U_BEA")] {
        let mine: Vec<&RecordedCall> = calls
            .iter()
            .filter(|c| c.team.as_deref() == Some(team))
            .collect();
        let methods: Vec<&str> = mine.iter().map(|c| c.method.as_str()).collect();
        assert_eq!(
            methods,
            ["conversations.open", "chat.postMessage"],
            "{team}"
        );
        assert_eq!(mine[0].param_str("users").as_deref(), Some(owner));
        let dm = mine[1].param_str("channel").unwrap();
        assert!(dm.starts_with(&format!("D_{owner}")), "{dm}");
    }
}

/// The first Monday after today, 09:00:30 UTC: when the digest of the week holding
/// today is due for a team whose digest goes out Mondays at 09:00 UTC.
fn next_monday_digest_time() -> jiff::Timestamp {
    let mut day = jiff::Zoned::now().with_time_zone(TimeZone::UTC).date();
    loop {
        day = day.tomorrow().unwrap();
        if day.weekday() == Weekday::Monday {
            break;
        }
    }
    day.at(9, 0, 30, 0)
        .to_zoned(TimeZone::UTC)
        .unwrap()
        .timestamp()
}

async fn each_digest_counts_only_its_own_workspace_and_goes_out_with_its_token(backend: Backend) {
    let app = TestApp::spawn_two_teams(backend).await;
    app.slack.add_channel(T_A, "C_ALPHA_DIGEST");
    app.slack.add_channel(T_B, "C_BRAVO_DIGEST");
    app.slack.strict();
    for (team, channel) in [(T_A, "C_ALPHA_DIGEST"), (T_B, "C_BRAVO_DIGEST")] {
        let reply = app
            .command_text(
                team,
                KIM,
                &format!("digest setup <#{channel}|digest> monday 09:00 UTC"),
            )
            .await;
        assert!(reply.contains(&format!("<#{channel}>")), "{reply}");
    }
    app.say_in(T_A, CHANNEL_A, SAM, SELLER, TS1).await;
    app.say_in(T_A, CHANNEL_A, KIM, CUSTOMER, TS2).await;
    app.say_in(T_B, CHANNEL_B, SAM, SELLER_GLOBEX, TS1).await;
    app.handle_and_deliver().await;
    let reactions_and_nudges = app.slack.take_calls();
    for call in &reactions_and_nudges {
        let team = call.team.as_deref().unwrap();
        assert_eq!(
            call.param_str("channel").as_deref(),
            Some(channel_of(team)),
            "{call:#?}"
        );
    }

    let at = next_monday_digest_time();
    for team in [T_A, T_B] {
        let outcome = run_tick(&app.state, team, at).await.unwrap();
        assert!(
            matches!(outcome, TickOutcome::Posted { .. }),
            "{team}: {outcome:?}"
        );
    }
    app.deliver_outbox_at(at.as_millisecond() + 1_000).await;
    let digests = app.slack.take_calls_to("chat.postMessage");
    assert_eq!(digests.len(), 2, "{digests:#?}");
    let a = by_team(&digests, T_A);
    let b = by_team(&digests, T_B);
    assert_eq!(a.param_str("channel").as_deref(), Some("C_ALPHA_DIGEST"));
    assert_eq!(b.param_str("channel").as_deref(), Some("C_BRAVO_DIGEST"));
    let (a_text, b_text) = (a.param_str("text").unwrap(), b.param_str("text").unwrap());
    assert!(a_text.contains("2 deal updates"), "{a_text}");
    assert!(
        b_text.contains("1 deal update") && !b_text.contains("2 deal updates"),
        "{b_text}"
    );
    let b_blocks = b.param_json("blocks").unwrap().to_string();
    assert!(
        !b_blocks.contains(CHANNEL_A),
        "no link into T_A: {b_blocks}"
    );
    let a_blocks = a.param_json("blocks").unwrap().to_string();
    assert!(
        !a_blocks.contains(CHANNEL_B),
        "no link into T_B: {a_blocks}"
    );
}

async fn the_export_of_one_workspace_never_includes_the_other(backend: Backend) {
    let app = TestApp::spawn_two_teams(backend).await;
    app.say_in(T_A, CHANNEL_A, SAM, SELLER, TS1).await;
    app.say_in(T_A, CHANNEL_A, KIM, CUSTOMER, TS2).await;
    app.say_in(T_B, CHANNEL_B, SAM, SELLER_GLOBEX, TS1).await;
    app.drain_inbox().await;

    for (team, expected) in [(T_A, 2), (T_B, 1)] {
        let rows = export_lines(&app, Some(team)).await;
        assert_eq!(rows.len(), expected, "{team}: {rows:#?}");
        assert!(
            rows.iter()
                .all(|r| r["team_id"] == team && r["channel_id"] == channel_of(team)),
            "{team}: {rows:#?}"
        );
    }
    // The operator's command, against the same database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cusp"))
        .args(["export", "--format", "json", "--team", T_B])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(
        (rows[0]["team_id"].as_str(), rows[0]["user_id"].as_str()),
        (Some(T_B), Some(SAM))
    );
}

async fn a_persons_choices_in_one_workspace_leave_the_same_id_in_the_other_alone(backend: Backend) {
    let app = TestApp::spawn_two_teams(backend).await;
    // A channel shared between the two workspaces (Slack Connect) has one id in both.
    const SHARED: &str = "C_SHARED";
    app.slack.add_channel(T_A, SHARED);
    app.slack.add_channel(T_B, SHARED);
    app.slack.add_channel(T_A, "C_ALPHA_DIGEST");
    app.slack.strict();
    app.say_in(T_A, CHANNEL_A, SAM, SELLER, TS1).await;
    app.say_in(T_B, CHANNEL_B, SAM, SELLER, TS1).await;
    app.handle_and_deliver().await;
    let keys = take_nudges(&app, &[(T_A, TS1), (T_B, TS1)]);
    let store = &app.state.store;

    // A reflection in T_A is listed in T_A only.
    let saved = app
        .send_interaction(&reflection_in(
            T_A,
            SAM,
            &keys[0],
            "Their CFO worries about the cutover.",
        ))
        .await;
    assert_eq!((saved.status, saved.body.as_str()), (StatusCode::OK, ""));
    assert!(
        app.command_text(T_A, SAM, "reflections")
            .await
            .contains("cutover")
    );
    let in_b = app.command_text(T_B, SAM, "reflections").await;
    assert!(in_b.contains("no saved reflections"), "{in_b}");

    // Sam mutes, T_A's team settings change, the shared channel goes quiet in T_A and
    // T_A's digest is set up: none of it reaches T_B.
    app.command_text(T_A, SAM, "mute forever").await;
    app.command_text(T_A, KIM, "settings daily 0").await;
    let reply = app.command_in(T_A, SHARED, KIM, "channel off").await;
    assert_eq!(reply.status, StatusCode::OK);
    app.command_text(
        T_A,
        KIM,
        "digest setup <#C_ALPHA_DIGEST|digest> monday 09:00 UTC",
    )
    .await;
    app.command_text(T_A, SAM, "digest me on").await;
    assert_eq!(store.digest_subscribers(T_A).await.unwrap(), [SAM]);
    assert!(store.digest_subscribers(T_B).await.unwrap().is_empty());
    assert!(
        store
            .user_prefs(T_A, SAM)
            .await
            .unwrap()
            .muted_until
            .is_some()
    );
    assert_eq!(store.user_prefs(T_B, SAM).await.unwrap().muted_until, None);
    assert_eq!(store.team_settings(T_A).await.unwrap().daily_nudge_limit, 0);
    assert_eq!(
        store.team_settings(T_B).await.unwrap(),
        store.team_settings(T_C).await.unwrap(),
        "T_B keeps the defaults"
    );
    assert!(store.digest_settings(T_B).await.unwrap().is_none());

    // Sam's next updates in the shared channel: silent in T_A, nudged in T_B.
    app.say_in(T_A, SHARED, SAM, SELLER_GLOBEX, TS2).await;
    app.say_in(T_B, SHARED, SAM, SELLER_GLOBEX, TS2).await;
    app.handle_and_deliver().await;
    let nudged = app.slack.take_calls();
    assert_eq!(nudged.len(), 1, "{nudged:#?}");
    assert_eq!(nudged[0].team.as_deref(), Some(T_B));
    assert_eq!(nudged[0].param_str("channel").as_deref(), Some(SHARED));

    // Sam opts out in T_A: T_A forgets Sam, T_B keeps Sam's data and keeps reading.
    let confirm = app
        .send_interaction(&click_in(T_A, SAM, "cusp_optout_confirm", SAM))
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    app.deliver_outbox_at(now_ms()).await;
    let note = app.slack.take_calls();
    assert_eq!(note.len(), 1, "{note:#?}");
    assert_eq!(
        (
            note[0].method.as_str(),
            note[0].team.as_deref(),
            note[0].param_str("user").as_deref()
        ),
        ("chat.postEphemeral", Some(T_A), Some(SAM))
    );
    assert!(store.user_prefs(T_A, SAM).await.unwrap().opted_out);
    assert!(store.reflections_of(T_A, SAM).await.unwrap().is_empty());
    assert!(!store.user_prefs(T_B, SAM).await.unwrap().opted_out);
    assert_eq!(store.count_observations(T_A).await.unwrap(), 0);
    assert_eq!(store.count_observations(T_B).await.unwrap(), 2);
    assert!(store.prompt_by_thread_key(T_B, &keys[1]).await.is_ok());
    app.say_in(T_A, CHANNEL_A, SAM, SELLER_INITECH, TS3).await;
    app.say_in(T_B, CHANNEL_B, SAM, SELLER_INITECH, TS3).await;
    app.handle_and_deliver().await;
    assert_eq!(
        store.count_observations(T_A).await.unwrap(),
        0,
        "opted out in T_A"
    );
    assert_eq!(
        store.count_observations(T_B).await.unwrap(),
        3,
        "still read in T_B"
    );
    let nudged = app.slack.take_calls();
    assert!(
        nudged.iter().all(|c| c.team.as_deref() == Some(T_B)),
        "{nudged:#?}"
    );
}

async fn a_workspace_without_cusp_gets_nothing_stored_and_is_told_so(backend: Backend) {
    let app = TestApp::spawn_two_teams(backend).await;
    app.slack.strict();
    let event = app
        .event(&event_in(T_C, "C_CHARLIE", SAM, SELLER, TS1))
        .await;
    assert_eq!(
        event.status,
        StatusCode::OK,
        "Slack must not retry: {}",
        event.body
    );
    for text in [
        "reflect pushing them to sign",
        "mute",
        "digest setup <#C_CHARLIE|d> monday 09:00 UTC",
    ] {
        let reply = app.command_in(T_C, "C_CHARLIE", SAM, text).await;
        assert_eq!(reply.status, StatusCode::OK);
        let reply = reply.json();
        assert_eq!(reply["response_type"], "ephemeral", "{reply}");
        assert!(
            reply["text"].as_str().unwrap().contains("isn't installed"),
            "{text}: {reply}"
        );
    }
    let click = app
        .send_interaction(&click_in(T_C, SAM, "cusp_optout_confirm", SAM))
        .await;
    assert_eq!(click.status, StatusCode::OK, "{}", click.body);
    app.handle_and_deliver().await;

    assert_eq!(
        rows_naming(&app.db, T_C).await,
        vec![],
        "nothing stored for T_C"
    );
    assert!(app.slack.take_calls().is_empty(), "nothing sent for T_C");
    assert_eq!(app.state.workspaces.teams().await.unwrap().len(), 2);
}

async fn a_forged_payload_naming_the_other_workspaces_prompt_is_refused(backend: Backend) {
    let app = TestApp::spawn_two_teams(backend).await;
    app.slack.strict();
    app.say_in(T_A, CHANNEL_A, SAM, SELLER, TS1).await;
    app.say_in(T_B, CHANNEL_B, SAM, SELLER, TS2).await;
    app.handle_and_deliver().await;
    let keys = take_nudges(&app, &[(T_A, TS1), (T_B, TS2)]);
    let key_b = &keys[1];

    // Properly signed, claiming T_A, naming T_B's prompt: every kind is refused and
    // nothing anywhere changes.
    let before = snapshot(&app.db).await;
    let correction = json!({"p": key_b, "d": false, "t": []}).to_string();
    let mut forged_correction = reflection_in(T_A, SAM, &correction, "");
    forged_correction["view"]["callback_id"] = json!("cusp_correction");
    forged_correction["view"]["state"] = json!({"values": {"deal": {"deal": {"type": "radio_buttons", "selected_option": {"value": "no"}}}}});
    let forged = [
        click_in(T_A, SAM, "cusp_helpful", key_b),
        click_in(T_A, SAM, "cusp_not_now", key_b),
        click_in(T_A, SAM, "cusp_reflect", key_b),
        click_in(T_A, SAM, "cusp_mute_deal", key_b),
        click_in(T_A, SAM, "cusp_not_quite_right", &correction),
        reflection_in(T_A, SAM, key_b, "Forged answer"),
        forged_correction,
    ];
    for payload in &forged {
        let response = app.send_interaction(payload).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{payload}: {}",
            response.body
        );
        assert!(
            response.body.contains("unknown prompt"),
            "{}",
            response.body
        );
    }
    app.handle_and_deliver().await;
    assert_eq!(snapshot(&app.db).await, before, "no row changed");
    assert!(app.slack.take_calls().is_empty(), "no modal, no message");

    // The same clicks in T_B, where the prompt lives, work.
    let helpful = app
        .send_interaction(&click_in(T_B, SAM, "cusp_helpful", key_b))
        .await;
    assert_eq!(helpful.status, StatusCode::OK);
    app.deliver_outbox_at(now_ms()).await;
    let thanks = app.slack.take_calls();
    assert_eq!(thanks.len(), 1, "{thanks:#?}");
    assert_eq!(thanks[0].team.as_deref(), Some(T_B));
}

async fn a_payload_naming_another_persons_prompt_is_refused(backend: Backend) {
    let app = TestApp::spawn_two_teams(backend).await;
    app.slack.strict();
    app.say_in(T_A, CHANNEL_A, SAM, SELLER, TS1).await;
    app.handle_and_deliver().await;
    let key = take_nudges(&app, &[(T_A, TS1)]).remove(0);

    // Kim, a colleague who sees Sam's nudge, clicks Reflect: no modal, a note.
    let before = snapshot(&app.db).await;
    let click = app
        .send_interaction(&click_in(T_A, KIM, "cusp_reflect", &key))
        .await;
    assert_eq!(click.status, StatusCode::OK, "{}", click.body);
    app.deliver_outbox_at(now_ms()).await;
    let note = app.slack.take_calls();
    assert_eq!(note.len(), 1, "no views.open: {note:#?}");
    assert_eq!(
        (
            note[0].method.as_str(),
            note[0].param_str("user").as_deref()
        ),
        ("chat.postEphemeral", Some(KIM))
    );
    assert!(
        note[0]
            .param_str("text")
            .unwrap()
            .contains("only they can reflect"),
        "{note:#?}"
    );

    // Kim submits a reflection (or a correction) naming Sam's prompt anyway: refused
    // with the reason shown in the modal, nothing stored.
    let refused = app
        .send_interaction(&reflection_in(T_A, KIM, &key, "Not mine to write"))
        .await
        .json();
    assert_eq!(refused["response_action"], "errors", "{refused}");
    assert!(
        refused["errors"]["q0"]
            .as_str()
            .unwrap()
            .contains("only they can reflect")
    );
    let correction = json!({"p": key, "d": true, "t": []}).to_string();
    let mut kims_correction = reflection_in(T_A, KIM, &correction, "");
    kims_correction["view"]["callback_id"] = json!("cusp_correction");
    kims_correction["view"]["state"] = json!({"values": {"deal": {"deal": {"type": "radio_buttons", "selected_option": {"value": "no"}}}}});
    let refused = app.send_interaction(&kims_correction).await.json();
    assert_eq!(refused["response_action"], "errors", "{refused}");
    // Kim's "Helpful" does not count as Sam's feedback.
    let helpful = app
        .send_interaction(&click_in(T_A, KIM, "cusp_helpful", &key))
        .await;
    assert_eq!(helpful.status, StatusCode::OK);
    app.deliver_outbox_at(now_ms()).await;
    let thanks = app.slack.take_calls();
    assert_eq!(thanks.len(), 1, "{thanks:#?}");
    assert_eq!(thanks[0].param_str("user").as_deref(), Some(KIM));
    let after = snapshot(&app.db).await;
    let without_outbox = |s: &[(String, String)]| -> Vec<(String, String)> {
        s.iter().filter(|(t, _)| t != "outbox").cloned().collect()
    };
    assert_eq!(
        without_outbox(&after),
        without_outbox(&before),
        "only the two notes were queued"
    );
    assert!(
        app.state
            .store
            .reflections_of(T_A, KIM)
            .await
            .unwrap()
            .is_empty()
    );

    // Sam, whose prompt it is, gets the modal, with T_A's token.
    let click = app
        .send_interaction(&click_in(T_A, SAM, "cusp_reflect", &key))
        .await;
    assert_eq!(click.status, StatusCode::OK);
    let opened = app.slack.take_calls();
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert_eq!(
        (opened[0].method.as_str(), opened[0].team.as_deref()),
        ("views.open", Some(T_A))
    );
    let saved = app
        .send_interaction(&reflection_in(
            T_A,
            SAM,
            &key,
            "Their CFO worries about the cutover.",
        ))
        .await;
    assert_eq!((saved.status, saved.body.as_str()), (StatusCode::OK, ""));
    assert_eq!(
        app.state
            .store
            .reflections_of(T_A, SAM)
            .await
            .unwrap()
            .len(),
        1
    );
}

backend_matrix!(
    a_deal_update_in_each_workspace_is_nudged_with_that_workspaces_token,
    a_crm_deal_update_reaches_its_owner_only_through_its_own_workspace,
    each_digest_counts_only_its_own_workspace_and_goes_out_with_its_token,
    the_export_of_one_workspace_never_includes_the_other,
    a_persons_choices_in_one_workspace_leave_the_same_id_in_the_other_alone,
    a_workspace_without_cusp_gets_nothing_stored_and_is_told_so,
    a_forged_payload_naming_the_other_workspaces_prompt_is_refused,
    a_payload_naming_another_persons_prompt_is_refused,
);

/// The fake itself: a token works only for its own workspace, and calls are recorded
/// with the team whose token made them.
#[tokio::test]
async fn the_fake_refuses_a_token_for_the_other_workspaces_channel_or_person() {
    use crate::support::fake_slack::{FakeSlack, FakeWorkspace};
    use crate::support::two_teams::{TOKEN_A, TOKEN_B};
    use cusp::slack::web_api::SlackClient;
    use secrecy::SecretString;

    let slack = FakeSlack::start_serving(vec![
        FakeWorkspace::new(T_A, TOKEN_A),
        FakeWorkspace::new(T_B, TOKEN_B),
    ])
    .await;
    slack.add_channel(T_A, CHANNEL_A);
    slack.add_user(T_A, "U_ALEX");
    slack.add_user(T_B, SAM);
    let client = |token: &str| {
        SlackClient::new(
            &slack.base_url(),
            SecretString::from(token.to_owned()),
            std::time::Duration::from_millis(500),
        )
        .unwrap()
    };
    let (a, b) = (client(TOKEN_A), client(TOKEN_B));
    let params = |pairs: &[(&str, &str)]| -> serde_json::Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect()
    };

    assert_eq!(a.auth_test().await.unwrap().team_id.as_str(), T_A);
    assert_eq!(
        b.auth_test().await.unwrap().user_id.as_str(),
        "U_BOT_T_BRAVO"
    );
    let post = params(&[("channel", CHANNEL_A), ("text", "hello")]);
    assert!(a.call("chat.postMessage", &post).await.is_ok());
    let refused = b.call("chat.postMessage", &post).await.unwrap_err();
    assert_eq!(refused.code(), Some("channel_not_found"));
    // An undeclared channel does not exist for anyone once two workspaces are served.
    let nowhere = params(&[("channel", "C_NOWHERE"), ("text", "hello")]);
    assert_eq!(
        a.call("chat.postMessage", &nowhere)
            .await
            .unwrap_err()
            .code(),
        Some("channel_not_found")
    );
    let dm = params(&[("users", "U_ALEX")]);
    assert_eq!(
        b.call("conversations.open", &dm).await.unwrap_err().code(),
        Some("user_not_found")
    );
    let dm_id = a.open_dm("U_ALEX").await.unwrap();
    let into_dm = params(&[("channel", dm_id.as_str()), ("text", "hi")]);
    assert_eq!(
        b.call("chat.postMessage", &into_dm)
            .await
            .unwrap_err()
            .code(),
        Some("channel_not_found"),
        "a DM belongs to the workspace that opened it"
    );
    let ephemeral = params(&[("channel", CHANNEL_A), ("user", SAM), ("text", "psst")]);
    assert_eq!(
        a.call("chat.postEphemeral", &ephemeral)
            .await
            .unwrap_err()
            .code(),
        Some("user_not_in_channel")
    );
    let elsewhere = params(&[("team_id", T_B), ("channel", CHANNEL_A), ("text", "x")]);
    assert_eq!(
        a.call("chat.postMessage", &elsewhere)
            .await
            .unwrap_err()
            .code(),
        Some("team_access_not_granted")
    );
    let teams: Vec<Option<String>> = slack.calls().into_iter().map(|c| c.team).collect();
    assert_eq!(
        teams.iter().filter(|t| t.as_deref() == Some(T_B)).count(),
        4
    );
    assert!(teams.iter().all(Option::is_some));
}

/// Strict mode fails a test that left a call unexamined, and names the call.
#[tokio::test]
#[should_panic(expected = "never examined")]
async fn strict_mode_fails_on_a_call_the_test_never_examined() {
    use crate::support::fake_slack::{FakeSlack, TEST_TOKEN};
    use cusp::slack::web_api::SlackClient;

    let slack = FakeSlack::start().await;
    let client = SlackClient::new(
        &slack.base_url(),
        secrecy::SecretString::from(TEST_TOKEN),
        std::time::Duration::from_millis(500),
    )
    .unwrap();
    client.auth_test().await.unwrap();
    slack.strict();
    client.auth_test().await.unwrap();
    client.auth_test().await.unwrap();
    assert_eq!(
        slack.take_calls_to("auth.test").len(),
        2,
        "only calls since strict()"
    );
    slack.assert_all_examined();
    let params = serde_json::Map::from_iter([
        ("channel".to_owned(), json!("C1")),
        ("text".to_owned(), json!("x")),
    ]);
    client.call("chat.postMessage", &params).await.unwrap();
    // Dropping the fake here fails the test: the post was never taken.
}
