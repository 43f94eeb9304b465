//! "Why?" and "Not quite right" end to end: a real nudge through the real router, signed
//! interactions, the fake Slack recording `views.open` and ephemeral notes, corrections in
//! the database, the digest's feedback line, and `cusp export --corrections` into
//! `cusp eval`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, message_event, now_ms};

const FORM: &str = "application/x-www-form-urlencoded";
const SELLER: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";
const SELLER_GLOBEX: &str =
    "Globex renewal: chasing them to sign before EOQ, I need this for my number";
const BIN: &str = env!("CARGO_BIN_EXE_cusp");

impl TestApp {
    /// Posts `text` as U_SELLER and delivers the nudge; returns the nudge's buttons.
    async fn nudged(&self, event_id: &str, text: &str, ts: &str) -> Vec<Value> {
        let event = message_event(event_id, "U_SELLER", text, ts);
        assert_eq!(self.event(&event).await.status, StatusCode::OK);
        self.drain_inbox().await;
        self.deliver_outbox_at(now_ms()).await;
        let nudge = self
            .slack
            .posted_messages()
            .into_iter()
            .find(|m| m.thread_ts.as_deref() == Some(ts))
            .expect("a nudge in the thread");
        let blocks = nudge.blocks.as_array().expect("blocks").clone();
        let actions = blocks
            .iter()
            .find(|b| b["type"] == "actions")
            .expect("actions block");
        actions["elements"].as_array().expect("elements").clone()
    }

    async fn interact_with(&self, payload: Value) -> crate::support::app::TestResponse {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.post_signed("/slack/interactivity", FORM, &body).await
    }

    async fn ephemerals_to(&self, user: &str) -> Vec<String> {
        self.deliver_outbox_at(now_ms()).await;
        self.slack
            .calls_to("chat.postEphemeral")
            .iter()
            .filter(|c| c.param_str("user").as_deref() == Some(user))
            .filter_map(|c| c.param_str("text"))
            .collect()
    }
}

/// Every column that could hold message text once the work is done.
async fn stored_text(app: &TestApp) -> String {
    const SQL: &str = "SELECT payload FROM outbox UNION ALL SELECT COALESCE(payload, '') FROM inbox \
         UNION ALL SELECT COALESCE(text, '') FROM observations";
    let rows: Vec<String> = if app.state.store.backend() == "sqlite" {
        let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
        sqlx::query_scalar(SQL).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
        sqlx::query_scalar(SQL).fetch_all(&pool).await.unwrap()
    };
    assert!(
        rows.len() >= 3,
        "outbox rows and the event were read: {rows:?}"
    );
    rows.join("\n")
}

fn value_of(buttons: &[Value], label: &str) -> String {
    buttons
        .iter()
        .find(|b| b["text"]["text"] == label)
        .unwrap_or_else(|| panic!("no {label} button in {buttons:?}"))["value"]
        .as_str()
        .unwrap()
        .to_owned()
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

/// A `view_submission` of the correction modal, as Slack sends it.
fn correction(
    user: &str,
    metadata: &str,
    deal: &str,
    wrong: &[&str],
    missed: &[&str],
    share: bool,
    text: Option<&str>,
) -> Value {
    let options =
        |ids: &[&str]| -> Vec<Value> { ids.iter().map(|v| json!({"value": v})).collect() };
    json!({
        "type": "view_submission",
        "team": {"id": TEAM},
        "user": {"id": user},
        "view": {
            "id": "V_FAKE1",
            "callback_id": "cusp_correction",
            "private_metadata": metadata,
            "state": {"values": {
                "deal": {"deal": {"type": "radio_buttons", "selected_option": {"value": deal}}},
                "wrong": {"wrong": {"type": "checkboxes", "selected_options": options(wrong)}},
                "missed": {"missed": {"type": "multi_static_select", "selected_options": options(missed)}},
                "share": {"share": {"type": "checkboxes", "selected_options": if share { options(&["share"]) } else { vec![] }}},
                "text": {"text": {"type": "plain_text_input", "value": text}},
            }},
        },
    })
}

async fn a_nudge_carries_why_and_not_quite_right_and_why_explains_the_reading(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let buttons = app.nudged("Ev1", SELLER, "1700000000.000100").await;
    let labels: Vec<&str> = buttons
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "Reflect",
            "Helpful",
            "Not now",
            "Mute this deal for a week",
            "Why?",
            "Not quite right"
        ]
    );
    let why = value_of(&buttons, "Why?");
    assert!(why.chars().count() <= 2000, "{why}");

    // The person nudged and a colleague may both ask; each gets their own ephemeral note.
    for (user, trigger) in [("U_SELLER", "tw1"), ("U_OTHER", "tw2")] {
        let r = app
            .interact_with(click("cusp_why", &why, user, trigger))
            .await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""));
        let notes = app.ephemerals_to(user).await;
        assert_eq!(notes.len(), 1, "{notes:?}");
        let note = &notes[0];
        for expected in [
            "a deal update",
            "Closing push",
            "“sign by Friday”",
            "“pushing hard for the PO”",
            "Quota pressure",
            "“hit my quota”",
            "What my questions aim at:",
            "their outcome",
            "*Not quite right*",
        ] {
            assert!(note.contains(expected), "{expected} missing in {note}");
        }
    }

    // The words live in Slack's message, not in cusp's database: the delivered nudge and
    // the explanation leave no text behind in the outbox, and the event's payload is gone.
    let stored = stored_text(&app).await;
    assert!(!stored.contains("sign by Friday"), "{stored}");

    // A malformed value is a 400 with a reason, never a panic.
    for bad in ["", "{not json", r#"{"d":true,"t":[["rockets",[]]],"g":[]}"#] {
        let r = app
            .interact_with(click("cusp_why", bad, "U_SELLER", "tw3"))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert!(
            r.body.contains("Why?") || r.body.contains("theme"),
            "{}",
            r.body
        );
    }
}

async fn not_quite_right_stores_a_correction_once_for_the_person_nudged_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let buttons = app.nudged("Ev1", SELLER, "1700000000.000100").await;
    let nqr = value_of(&buttons, "Not quite right");

    // A colleague cannot correct someone else's reading: no modal, a friendly note.
    let r = app
        .interact_with(click("cusp_not_quite_right", &nqr, "U_OTHER", "tn0"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(app.slack.calls_to("views.open").is_empty());
    let notes = app.ephemerals_to("U_OTHER").await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Corrections come from the person")),
        "{notes:?}"
    );

    let r = app
        .interact_with(click("cusp_not_quite_right", &nqr, "U_SELLER", "tn1"))
        .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""));
    let opened = app.slack.calls_to("views.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].param_str("trigger_id").as_deref(), Some("tn1"));
    let view = opened[0].param_json("view").unwrap();
    assert_eq!(view["callback_id"], "cusp_correction");
    let shown = view.to_string();
    for expected in [
        "What I read:* a deal update",
        "Closing push (pushing for the signature)",
        "Include my message text so my team can measure cusp on it",
        "Their outcome (the result they need)",
    ] {
        assert!(shown.contains(expected), "{expected} missing in {shown}");
    }
    let metadata = view["private_metadata"].as_str().unwrap().to_owned();

    // Nothing changed: asked to change something, nothing stored.
    let same = app
        .interact_with(correction(
            "U_SELLER",
            &metadata,
            "yes",
            &[],
            &[],
            false,
            None,
        ))
        .await
        .json();
    assert_eq!(same["response_action"], "errors", "{same}");
    // A colleague's submission is refused.
    let theirs = app
        .interact_with(correction(
            "U_OTHER",
            &metadata,
            "yes",
            &["closing_push"],
            &[],
            false,
            None,
        ))
        .await
        .json();
    assert_eq!(theirs["response_action"], "errors", "{theirs}");
    // Text without the box ticked, or the box without text: the person is asked to decide.
    let unticked = app
        .interact_with(correction(
            "U_SELLER",
            &metadata,
            "yes",
            &["closing_push"],
            &[],
            false,
            Some("my words"),
        ))
        .await
        .json();
    assert!(unticked["errors"]["share"].is_string(), "{unticked}");
    let empty = app
        .interact_with(correction(
            "U_SELLER",
            &metadata,
            "yes",
            &["closing_push"],
            &[],
            true,
            Some("  "),
        ))
        .await
        .json();
    assert!(empty["errors"]["text"].is_string(), "{empty}");
    assert!(
        app.state
            .store
            .corrections(TEAM, &Default::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Without text: labels only. Submitted twice (a Slack retry), stored once.
    let submission = correction(
        "U_SELLER",
        &metadata,
        "yes",
        &["closing_push"],
        &["customer_outcome"],
        false,
        None,
    );
    let corrections_before = crate::ops::sample(
        &crate::ops::scrape(&app).await,
        "cusp_corrections_total",
        &[],
    );
    for _ in 0..2 {
        let r = app.interact_with(submission.clone()).await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""));
    }
    // The recorder is shared by every test in the process, so other tests may add to it
    // meanwhile: at least this test's one new correction shows.
    let corrections_after = crate::ops::sample(
        &crate::ops::scrape(&app).await,
        "cusp_corrections_total",
        &[],
    );
    assert!(
        corrections_after >= corrections_before + 1.0,
        "{corrections_before} -> {corrections_after}"
    );
    let rows = app
        .state
        .store
        .corrections(TEAM, &Default::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        (row.engine.deal_update, row.engine.themes.clone()),
        (
            true,
            vec!["quota_pressure".to_owned(), "closing_push".to_owned()]
        )
    );
    assert_eq!(
        row.corrected.themes,
        ["quota_pressure", "customer_outcome"],
        "wrong removed, missed added, taxonomy order"
    );
    assert_eq!(row.class, "balanced", "derived from the corrected themes");
    assert_eq!(row.text, None);

    // With text, on a second nudge: the person ticks the box and pastes their words.
    let buttons = app.nudged("Ev2", SELLER_GLOBEX, "1700000000.000200").await;
    let nqr = value_of(&buttons, "Not quite right");
    app.interact_with(click("cusp_not_quite_right", &nqr, "U_SELLER", "tn2"))
        .await;
    let view = app.slack.calls_to("views.open")[1]
        .param_json("view")
        .unwrap();
    let metadata = view["private_metadata"].as_str().unwrap().to_owned();
    let r = app
        .interact_with(correction(
            "U_SELLER",
            &metadata,
            "no",
            &["closing_push", "quota_pressure"],
            &[],
            true,
            Some("Team reminder: Globex renewal forms are due by EOQ, I need this for my number"),
        ))
        .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""));
    let rows = app
        .state
        .store
        .corrections(TEAM, &Default::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let with_text = &rows[1];
    assert!(!with_text.corrected.deal_update);
    assert!(with_text.corrected.themes.is_empty(), "{with_text:?}");
    assert_eq!(with_text.class, "neutral");
    assert!(
        with_text
            .text
            .as_deref()
            .unwrap()
            .starts_with("Team reminder")
    );

    // Malformed metadata is a 400 with a reason.
    let r = app
        .interact_with(correction("U_SELLER", "{oops", "no", &[], &[], false, None))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Not quite right"), "{}", r.body);

    // The digest's feedback line counts this week's corrections.
    let engine = cusp::engine::Engine::builtin();
    let digest = cusp::bot::digest::preview(
        &app.state.store,
        &engine,
        TEAM,
        None,
        jiff::Timestamp::now(),
    )
    .await
    .unwrap();
    assert!(
        digest
            .text
            .contains("2 readings corrected with \"not quite right\""),
        "{}",
        digest.text
    );

    // `/cusp forget me` takes the person's corrections (and any text) with it.
    let counts = app
        .state
        .store
        .forget_person(TEAM, "U_SELLER")
        .await
        .unwrap();
    assert_eq!(counts.corrections, 2);
    assert!(
        app.state
            .store
            .corrections(TEAM, &Default::default())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn export_corrections_round_trips_into_cusp_eval(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut texts = Vec::new();
    for (i, (text, deal, wrong, missed, shared)) in [
        (
            SELLER,
            "yes",
            vec!["quota_pressure"],
            vec!["stakeholders"],
            true,
        ),
        (SELLER_GLOBEX, "no", vec![], vec![], true),
        (
            "Initech pilot: pushing for signature this week, legal still reviewing",
            "yes",
            vec![],
            vec!["decision_process"],
            false,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let ts = format!("1700000000.00{i}100");
        let buttons = app.nudged(&format!("Ev{i}"), text, &ts).await;
        let nqr = value_of(&buttons, "Not quite right");
        app.interact_with(click(
            "cusp_not_quite_right",
            &nqr,
            "U_SELLER",
            &format!("t{i}"),
        ))
        .await;
        let view = app.slack.calls_to("views.open")[i]
            .param_json("view")
            .unwrap();
        let metadata = view["private_metadata"].as_str().unwrap().to_owned();
        let r = app
            .interact_with(correction(
                "U_SELLER",
                &metadata,
                deal,
                &wrong,
                &missed,
                shared,
                shared.then_some(text),
            ))
            .await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, ""), "{text}");
        if shared {
            texts.push(text);
        }
    }

    let export = std::process::Command::new(BIN)
        .args(["export", "--corrections", "--team", TEAM])
        .env_clear()
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&export.stderr);
    assert!(export.status.success(), "{stderr}");
    assert!(
        stderr.contains("exported 2 corrections with text; 1 left out for lacking text"),
        "{stderr}"
    );
    let stdout = String::from_utf8(export.stdout).unwrap();
    let rows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0]["text"], texts[0]);
    assert_eq!(rows[0]["is_deal_update"], true);
    assert_eq!(rows[0]["themes"], json!(["closing_push", "stakeholders"]));
    assert_eq!(rows[0]["class"], "balanced");
    assert_eq!(rows[0]["team_id"], TEAM);
    assert!(rows[0]["id"].as_str().unwrap().starts_with("correction-"));
    assert!(
        rows[0]["note"]
            .as_str()
            .unwrap()
            .contains("cusp had read: deal update")
    );
    assert_eq!(rows[1]["is_deal_update"], false);
    assert_eq!(
        rows[1]["class"], "seller_centric",
        "themes kept, only the deal answer changed"
    );

    // The file is a labelled set: `cusp eval` measures cusp on it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("corrections.jsonl");
    std::fs::write(&file, &stdout).unwrap();
    let eval = std::process::Command::new(BIN)
        .args(["eval", "--json"])
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let report: Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(report["messages"], 2, "{report}");
    // The engine still reads the Globex reminder as a deal update; the person said it is
    // not one, so the measurement shows cusp's miss instead of hiding it.
    assert_eq!(report["deal_update"]["fp"], 1, "{report}");

    // CSV is refused for corrections, an unknown team is named, as for observations.
    for (args, expected) in [
        (
            vec!["export", "--corrections", "--format", "csv"],
            "leave out --format csv",
        ),
        (
            vec!["export", "--corrections", "--team", "T_NOPE"],
            "T_TEST",
        ),
    ] {
        let out = std::process::Command::new(BIN)
            .args(&args)
            .env_clear()
            .env("DATABASE_URL", &app.db.url)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expected),
            "{args:?}: {err}"
        );
    }
}

async fn corrections_expire_with_the_retention_period(backend: Backend) {
    use cusp::store::{NewCorrection, ReadingLabels};
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let app = TestApp::spawn(backend).await;
    let store = &app.state.store;
    app.nudged("Ev1", SELLER, "1700000000.000100").await;
    app.nudged("Ev2", SELLER_GLOBEX, "1700000000.000200").await;
    let now = now_ms();
    for (thread, at) in [
        ("C_DEALS:1700000000.000100", now - 40 * DAY_MS),
        ("C_DEALS:1700000000.000200", now),
    ] {
        let prompt = store.prompt_by_thread_key(TEAM, thread).await.unwrap();
        let c = NewCorrection {
            prompt_id: prompt.id,
            user_id: "U_SELLER".into(),
            engine: ReadingLabels {
                deal_update: true,
                themes: vec!["closing_push".into()],
            },
            corrected: ReadingLabels {
                deal_update: false,
                themes: vec![],
            },
            class: "neutral".into(),
            text: Some("shared words".into()),
        };
        assert!(store.record_correction(TEAM, &c, at).await.unwrap());
        assert!(
            !store.record_correction(TEAM, &c, at).await.unwrap(),
            "the same prompt's correction is stored once"
        );
    }
    let counts = store
        .purge_older_than(TEAM, now - 30 * DAY_MS, 1000)
        .await
        .unwrap();
    assert_eq!(counts.corrections, 1, "{counts:?}");
    let left = store.corrections(TEAM, &Default::default()).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].created_at_ms, now);
    assert_eq!(
        store
            .count_corrections(TEAM, now - DAY_MS, now + 1)
            .await
            .unwrap(),
        1
    );
}

backend_matrix!(
    corrections_expire_with_the_retention_period,
    a_nudge_carries_why_and_not_quite_right_and_why_explains_the_reading,
    not_quite_right_stores_a_correction_once_for_the_person_nudged_only,
    export_corrections_round_trips_into_cusp_eval,
);
