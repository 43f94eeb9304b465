//! The weekly digest end to end: settings via `/cusp digest`, the scheduler's tick
//! (exactly once, catch-up, skip, DST), the content, and `cusp digest send`.

use std::process::Command;

use jiff::Timestamp;

use cusp::bot::digest::{self, DIGEST_LEASE, IsoWeek, SendOutcome};
use cusp::engine::{Class, Theme};
use cusp::jobs::scheduler::{TickOutcome, run_tick};
use cusp::store::{Effects, NewObservation, ObservationSource, RunClaim};

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, TestDb};
use crate::support::fake_slack::Scripted;

const CHANNEL: &str = "C_DIGEST";
const OTHER_TEAM: &str = "T_OTHER";
const BIN: &str = env!("CARGO_BIN_EXE_cusp");

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn ms(s: &str) -> i64 {
    ts(s).as_millisecond()
}

fn week(s: &str) -> IsoWeek {
    s.parse().unwrap()
}

/// Monday 09:00 Europe/Berlin, saved on 20 Nov 2026.
async fn set_up(app: &TestApp, zone: &str) {
    app.state
        .store
        .save_digest_settings(
            TEAM,
            CHANNEL,
            1,
            9 * 60,
            zone,
            "U_LEAD",
            ms("2026-11-20T12:00:00Z"),
        )
        .await
        .unwrap();
}

struct Obs<'a> {
    team: &'a str,
    user: &'a str,
    class: Class,
    themes: &'a [Theme],
    account: Option<&'a str>,
    at: &'a str,
    score: f64,
}

impl Default for Obs<'_> {
    fn default() -> Self {
        Obs {
            team: TEAM,
            user: "U_A",
            class: Class::CustomerCentric,
            themes: &[Theme::Stakeholders],
            account: Some("Acme"),
            at: "2026-11-18T10:00:00Z",
            score: 0.9,
        }
    }
}

async fn observe(app: &TestApp, o: Obs<'_>) -> String {
    let n = rand_suffix();
    let message_ts = format!("{}.{:06}", ts(o.at).as_second(), n % 1_000_000);
    let obs = NewObservation {
        channel_id: "C_DEALS".into(),
        user_id: o.user.into(),
        message_ts: Some(message_ts.clone()),
        source: ObservationSource::Message,
        class: o.class,
        score: o.score,
        account: o.account.map(str::to_owned),
        themes: o.themes.to_vec(),
        dedupe_key: format!("message:C_DEALS:{message_ts}:{n}"),
        text: None,
    };
    let effects = Effects {
        observation: Some(obs),
        ..Effects::default()
    };
    app.state
        .store
        .record_effects(o.team, &effects, ms(o.at))
        .await
        .unwrap();
    message_ts
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::SeqCst)
}

async fn digest_rows(app: &TestApp, week: &str) -> i64 {
    app.state
        .store
        .count_outbox_with_prefix(TEAM, &format!("digest:{TEAM}:{week}"))
        .await
        .unwrap()
}

/// Delivers the outbox and returns the blocks JSON of the one digest posted to `channel`.
async fn delivered_to(app: &TestApp, channel: &str, at: &str) -> (String, String) {
    app.deliver_outbox_at(ms(at) + 1_000).await;
    let posts: Vec<_> = app
        .slack
        .posted_messages()
        .into_iter()
        .filter(|m| m.channel == channel)
        .collect();
    assert_eq!(posts.len(), 1, "exactly one post to {channel}: {posts:?}");
    (posts[0].text.clone(), posts[0].blocks.to_string())
}

async fn scheduled_digest_is_posted_once_and_survives_a_restart(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    set_up(&app, "Europe/Berlin").await;
    observe(&app, Obs::default()).await;
    observe(
        &app,
        Obs {
            class: Class::SellerCentric,
            themes: &[Theme::ClosingPush],
            ..Obs::default()
        },
    )
    .await;
    // Last week (W46) for the comparison.
    observe(
        &app,
        Obs {
            class: Class::SellerCentric,
            themes: &[Theme::QuotaPressure],
            at: "2026-11-11T10:00:00Z",
            ..Obs::default()
        },
    )
    .await;

    // Monday 23 Nov 2026, 09:00 in Berlin is 08:00 UTC.
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-11-23T07:59:59Z"))
            .await
            .unwrap(),
        TickOutcome::NotDue
    );
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-11-23T08:00:30Z"))
            .await
            .unwrap(),
        TickOutcome::Posted {
            week: week("2026-W47"),
            messages: 1
        }
    );
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-11-23T08:01:30Z"))
            .await
            .unwrap(),
        TickOutcome::AlreadyHandled {
            week: week("2026-W47")
        }
    );
    let app = app.restart().await;
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-11-23T09:00:00Z"))
            .await
            .unwrap(),
        TickOutcome::AlreadyHandled {
            week: week("2026-W47")
        }
    );
    assert_eq!(digest_rows(&app, "2026-W47").await, 1);
    let (text, blocks) = delivered_to(&app, CHANNEL, "2026-11-23T08:01:00Z").await;
    assert!(
        text.contains("2 deal updates, 50% customer-centric"),
        "{text}"
    );
    assert!(blocks.contains("16–22 Nov 2026"), "{blocks}");
    assert!(blocks.contains("1 (50%, +50 pts)"), "{blocks}");
    assert!(blocks.contains("stakeholders (1)"), "{blocks}");
    assert!(blocks.contains("closing push (1)"), "{blocks}");
    assert!(blocks.contains("Question of the week"), "{blocks}");
    assert!(
        blocks.contains("https://slack.com/archives/C_DEALS/p"),
        "{blocks}"
    );
    assert!(!blocks.contains("U_A"), "no person is named: {blocks}");
    let (status, _, _) = app
        .state
        .store
        .outbox_status(TEAM, &format!("digest:{TEAM}:2026-W47"))
        .await
        .unwrap();
    assert_eq!(status, cusp::store::OutboxStatus::Sent);
}

async fn two_schedulers_post_exactly_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    set_up(&app, "Europe/Berlin").await;
    observe(&app, Obs::default()).await;
    let replica = app.another_replica().await;
    let mut posted = 0;
    for i in 0..10 {
        let at = Timestamp::from_millisecond(ms("2026-11-23T08:00:00Z") + i * 150).unwrap();
        let (a, b) = tokio::join!(run_tick(&app.state, TEAM, at), run_tick(&replica, TEAM, at));
        for outcome in [a.unwrap(), b.unwrap()] {
            match outcome {
                TickOutcome::Posted { .. } => posted += 1,
                TickOutcome::AlreadyHandled { .. } | TickOutcome::HeldElsewhere { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(posted, 1, "one instance posts");
    assert_eq!(digest_rows(&app, "2026-W47").await, 1, "one outbox row");
    replica.store.close().await;
}

async fn a_crashed_claim_is_taken_over_after_its_lease(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    set_up(&app, "UTC").await;
    let at = ms("2026-11-23T09:00:00Z");
    // Another instance claimed the week and died before finishing.
    let claim = app
        .state
        .store
        .claim_digest_run(TEAM, "2026-W47", at, at, DIGEST_LEASE, false)
        .await
        .unwrap();
    assert!(matches!(claim, RunClaim::Claimed { .. }));
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-11-23T09:01:00Z"))
            .await
            .unwrap(),
        TickOutcome::HeldElsewhere {
            week: week("2026-W47")
        }
    );
    let after_lease =
        Timestamp::from_millisecond(at + DIGEST_LEASE.as_millis() as i64 + 1).unwrap();
    assert_eq!(
        run_tick(&app.state, TEAM, after_lease).await.unwrap(),
        TickOutcome::Posted {
            week: week("2026-W47"),
            messages: 1
        }
    );
    let run = app
        .state
        .store
        .digest_run(TEAM, "2026-W47")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.status.as_str(), run.attempts), ("done", 2));
    assert_eq!(digest_rows(&app, "2026-W47").await, 1);
}

async fn downtime_under_a_day_is_caught_up_and_longer_is_skipped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    set_up(&app, "Europe/Berlin").await;
    // Down from Sunday until Tuesday 07:59 UTC: 23 h 59 min late, still posted.
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-11-24T07:59:00Z"))
            .await
            .unwrap(),
        TickOutcome::Posted {
            week: week("2026-W47"),
            messages: 1
        }
    );
    // Next week the server is down until Tuesday 08:00 UTC: 24 h late, skipped for good.
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-12-01T08:00:00Z"))
            .await
            .unwrap(),
        TickOutcome::Skipped {
            week: week("2026-W48")
        }
    );
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-12-01T08:01:00Z"))
            .await
            .unwrap(),
        TickOutcome::AlreadyHandled {
            week: week("2026-W48")
        }
    );
    let run = app
        .state
        .store
        .digest_run(TEAM, "2026-W48")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, "skipped");
    assert_eq!(digest_rows(&app, "2026-W48").await, 0);
    assert_eq!(digest_rows(&app, "2026-W47").await, 1);
    // A skipped week was never posted, so it can still be sent by hand, once.
    let send = || {
        digest::send(
            &app.state.store,
            &app.state.engine,
            TEAM,
            Some(week("2026-W48")),
            false,
            ts("2026-12-01T09:00:00Z"),
        )
    };
    assert!(matches!(
        send().await,
        Ok(digest::SendOutcome::Queued { .. })
    ));
    assert!(matches!(
        send().await,
        Err(digest::DigestError::AlreadySent(_))
    ));
    assert_eq!(digest_rows(&app, "2026-W48").await, 1);
}

async fn weeks_follow_local_midnight_across_dst(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.state
        .store
        .save_digest_settings(
            TEAM,
            CHANNEL,
            1,
            9 * 60,
            "Europe/Berlin",
            "U_LEAD",
            ms("2026-03-01T00:00:00Z"),
        )
        .await
        .unwrap();
    // Sunday 29 Mar 2026 23:30 CEST (21:30 UTC) is still W13; Monday 00:30 CEST
    // (Sunday 22:30 UTC) is W14 although it is Sunday in UTC.
    observe(
        &app,
        Obs {
            at: "2026-03-29T21:30:00Z",
            ..Obs::default()
        },
    )
    .await;
    observe(
        &app,
        Obs {
            at: "2026-03-29T22:30:00Z",
            class: Class::SellerCentric,
            ..Obs::default()
        },
    )
    .await;
    // Monday 23 Mar 00:30 CET is 22 Mar 23:30 UTC: in W13.
    observe(
        &app,
        Obs {
            at: "2026-03-22T23:30:00Z",
            ..Obs::default()
        },
    )
    .await;
    let stats = digest::week_stats(
        &app.state.store,
        TEAM,
        week("2026-W13"),
        &jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(stats.this_week.total(), 2);
    assert_eq!(stats.this_week.customer_centric, 2);
    // 09:00 CEST on the first Monday of summer time is 07:00 UTC.
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-03-30T06:59:00Z"))
            .await
            .unwrap(),
        TickOutcome::Skipped {
            week: week("2026-W12")
        }
    );
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-03-30T07:00:00Z"))
            .await
            .unwrap(),
        TickOutcome::Posted {
            week: week("2026-W13"),
            messages: 1
        }
    );
}

async fn empty_and_neutral_weeks_still_get_a_post(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    set_up(&app, "UTC").await;
    assert!(matches!(
        run_tick(&app.state, TEAM, ts("2026-11-23T09:00:00Z"))
            .await
            .unwrap(),
        TickOutcome::Posted { .. }
    ));
    let (text, blocks) = delivered_to(&app, CHANNEL, "2026-11-23T09:00:00Z").await;
    assert!(text.contains("no deal updates"), "{text}");
    assert!(blocks.contains("No deal updates this week"), "{blocks}");
    assert!(blocks.contains("Question of the week"), "{blocks}");

    for day in ["2026-11-24T10:00:00Z", "2026-11-25T10:00:00Z"] {
        observe(
            &app,
            Obs {
                class: Class::Neutral,
                themes: &[],
                at: day,
                ..Obs::default()
            },
        )
        .await;
    }
    let d = digest::preview(
        &app.state.store,
        &app.state.engine,
        TEAM,
        Some(week("2026-W48")),
        ts("2026-12-07T00:00:00Z"),
    )
    .await
    .unwrap();
    assert!(d.text.contains("2 deal updates"), "{}", d.text);
    assert!(
        d.text.contains("None of them showed CUSP themes"),
        "{}",
        d.text
    );
    assert!(
        !d.text.contains("Spotlight"),
        "neutral updates are not spotlighted"
    );
}

async fn another_teams_data_never_shows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    set_up(&app, "UTC").await;
    observe(
        &app,
        Obs {
            account: Some("Mine Corp"),
            ..Obs::default()
        },
    )
    .await;
    for _ in 0..5 {
        observe(
            &app,
            Obs {
                team: OTHER_TEAM,
                user: "U_OTHER",
                account: Some("Their Secret Deal"),
                score: 1.0,
                themes: &[Theme::ProductPitch, Theme::Adoption],
                ..Obs::default()
            },
        )
        .await;
    }
    // Their settings do not make our scheduler post anything for them.
    app.state
        .store
        .save_digest_settings(
            OTHER_TEAM,
            "C_THEIRS",
            1,
            0,
            "UTC",
            "U_OTHER",
            ms("2026-11-01T00:00:00Z"),
        )
        .await
        .unwrap();
    let d = digest::preview(
        &app.state.store,
        &app.state.engine,
        TEAM,
        Some(week("2026-W47")),
        ts("2026-11-23T00:00:00Z"),
    )
    .await
    .unwrap();
    let blocks = serde_json::to_string(&d.blocks).unwrap();
    assert!(d.text.contains("1 deal update"), "{}", d.text);
    assert!(blocks.contains("Mine Corp"));
    assert!(!blocks.contains("Their Secret Deal"));
    assert!(!blocks.contains("product pitch"));
    assert!(!blocks.contains("adoption ("));
    run_tick(&app.state, TEAM, ts("2026-11-23T09:00:00Z"))
        .await
        .unwrap();
    app.deliver_outbox_at(ms("2026-11-23T09:01:00Z")).await;
    assert!(
        app.slack
            .posted_messages()
            .iter()
            .all(|m| m.channel != "C_THEIRS")
    );
}

async fn slash_commands_set_up_preview_and_subscribe(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app
        .slash("digest setup <#C_DIGEST|deals> monday 09:00 Europe/Berlin")
        .await
        .json();
    let text = reply["text"].as_str().unwrap();
    assert_eq!(reply["response_type"], "ephemeral");
    assert!(
        text.contains("<#C_DIGEST> every Monday at 09:00 (Europe/Berlin)"),
        "{text}"
    );
    let saved = app
        .state
        .store
        .digest_settings(TEAM)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            saved.channel_id.as_deref(),
            saved.weekday,
            saved.minute_of_day,
            saved.time_zone.as_str(),
            saved.enabled
        ),
        (Some("C_DIGEST"), 1, 540, "Europe/Berlin", 1)
    );

    let bad = app.slash("digest setup #deals someday 25:00").await.json();
    assert!(
        bad["text"]
            .as_str()
            .unwrap()
            .contains("For example: `/cusp digest setup"),
        "{bad}"
    );

    let preview = app.slash("digest").await.json();
    assert_eq!(preview["response_type"], "ephemeral");
    assert!(
        preview["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("cusp digest so far"),
        "{preview}"
    );

    let me = app.slash("digest me on").await.json();
    assert!(
        me["text"].as_str().unwrap().contains("Only you see it"),
        "{me}"
    );
    assert_eq!(
        app.state.store.digest_subscribers(TEAM).await.unwrap(),
        vec!["U_SELLER".to_owned()]
    );

    let off = app.slash("digest off").await.json();
    assert!(off["text"].as_str().unwrap().contains("is off"), "{off}");
    assert_eq!(
        run_tick(&app.state, TEAM, Timestamp::now()).await.unwrap(),
        TickOutcome::Disabled
    );
}

async fn subscribers_get_their_own_figures_by_dm(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    set_up(&app, "UTC").await;
    app.state
        .store
        .set_digest_preference(TEAM, "U_ME", Some(true), None, 0)
        .await
        .unwrap();
    observe(
        &app,
        Obs {
            user: "U_ME",
            class: Class::Balanced,
            ..Obs::default()
        },
    )
    .await;
    for _ in 0..3 {
        observe(
            &app,
            Obs {
                user: "U_YOU",
                class: Class::SellerCentric,
                ..Obs::default()
            },
        )
        .await;
    }
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-11-23T09:00:00Z"))
            .await
            .unwrap(),
        TickOutcome::Posted {
            week: week("2026-W47"),
            messages: 2
        }
    );
    // Slack takes both posts but the answers are lost: the retry reads the DM
    // conversation back (a user id is not a conversation) and does not post again.
    app.slack
        .push_response("chat.postMessage", Scripted::DropAfterPost);
    app.slack
        .push_response("chat.postMessage", Scripted::DropAfterPost);
    app.deliver_outbox_at(ms("2026-11-23T09:00:01Z")).await;
    app.deliver_outbox_at(ms("2026-11-23T10:00:00Z")).await;
    assert_eq!(app.slack.posted_messages().len(), 2, "one post, one DM");
    let dm: Vec<_> = app
        .slack
        .posted_messages()
        .into_iter()
        .filter(|m| m.channel == "D_U_ME")
        .collect();
    assert_eq!(dm.len(), 1);
    let blocks = dm[0].blocks.to_string();
    assert!(blocks.contains("*1 deal update*"), "{blocks}");
    assert!(blocks.contains("*Balanced*\\n1 (100%)"), "{blocks}");
    assert!(!blocks.contains("U_YOU"));
    assert!(
        app.slack
            .posted_messages()
            .iter()
            .all(|m| m.channel != "D_U_YOU"),
        "no DM without opting in"
    );
}

async fn spotlight_respects_opt_out_and_features_three_people(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.state
        .store
        .set_digest_preference(TEAM, "U_SHY", None, Some(false), 0)
        .await
        .unwrap();
    observe(
        &app,
        Obs {
            user: "U_SHY",
            account: Some("Shy Deal"),
            score: 1.0,
            ..Obs::default()
        },
    )
    .await;
    for (user, account) in [
        ("U_1", "One"),
        ("U_1", "One Again"),
        ("U_2", "Two"),
        ("U_3", "Three"),
        ("U_4", "Four"),
    ] {
        observe(
            &app,
            Obs {
                user,
                account: Some(account),
                score: if user == "U_4" { 0.5 } else { 0.9 },
                ..Obs::default()
            },
        )
        .await;
    }
    let stats = digest::week_stats(
        &app.state.store,
        TEAM,
        week("2026-W47"),
        &jiff::tz::TimeZone::UTC,
        false,
    )
    .await
    .unwrap();
    let accounts: Vec<_> = stats
        .spotlight
        .iter()
        .map(|s| s.account.clone().unwrap())
        .collect();
    assert_eq!(accounts.len(), 3);
    assert!(!accounts.contains(&"Shy Deal".to_owned()));
    assert!(!accounts.contains(&"Four".to_owned()), "{accounts:?}");
    assert_eq!(
        accounts.iter().filter(|a| a.starts_with("One")).count(),
        1,
        "one update per person"
    );
    assert_eq!(
        stats.this_week.total(),
        6,
        "opting out of the spotlight still counts in team figures"
    );
}

async fn long_accounts_and_every_theme_stay_within_block_kit_limits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "Very Long Account Name & Partners <GmbH> ".repeat(8);
    for i in 0..20 {
        observe(
            &app,
            Obs {
                user: &format!("U_{i}"),
                account: Some(&long),
                themes: &Theme::ALL,
                class: Class::Balanced,
                ..Obs::default()
            },
        )
        .await;
        observe(
            &app,
            Obs {
                user: &format!("U_{i}"),
                account: Some(&long),
                themes: &Theme::ALL[4..],
                ..Obs::default()
            },
        )
        .await;
    }
    let d = digest::preview(
        &app.state.store,
        &app.state.engine,
        TEAM,
        Some(week("2026-W47")),
        ts("2026-11-23T00:00:00Z"),
    )
    .await
    .unwrap();
    assert!(d.blocks.len() <= 50);
    for b in &d.blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            let max = if b["type"] == "header" { 150 } else { 3000 };
            assert!(t.chars().count() <= max, "{b}");
        }
        for f in b["fields"].as_array().into_iter().flatten() {
            assert!(f["text"].as_str().unwrap().chars().count() <= 2000);
        }
    }
    assert!(d.fallback.chars().count() < 4000);
}

async fn cli_send_refuses_a_second_post_without_force(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = ts("2026-11-25T12:00:00Z");
    let err = digest::send(&app.state.store, &app.state.engine, TEAM, None, false, now)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/cusp digest setup"), "{err}");
    set_up(&app, "UTC").await;
    assert!(matches!(
        digest::send(
            &app.state.store,
            &app.state.engine,
            TEAM,
            Some(week("2026-W48")),
            false,
            now
        )
        .await,
        Err(digest::DigestError::NotOver(_))
    ));
    assert_eq!(
        digest::send(&app.state.store, &app.state.engine, TEAM, None, false, now)
            .await
            .unwrap(),
        SendOutcome::Queued {
            week: week("2026-W47"),
            messages: 1
        }
    );
    let err = digest::send(
        &app.state.store,
        &app.state.engine,
        TEAM,
        Some(week("2026-W47")),
        false,
        now,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("already sent"), "{err}");
    assert_eq!(
        digest::send(
            &app.state.store,
            &app.state.engine,
            TEAM,
            Some(week("2026-W47")),
            true,
            now
        )
        .await
        .unwrap(),
        SendOutcome::Forced {
            week: week("2026-W47"),
            n: 1
        }
    );
    assert_eq!(digest_rows(&app, "2026-W47").await, 2);
    assert!(
        app.state
            .store
            .outbox_status(TEAM, &format!("digest:{TEAM}:2026-W47:force:1"))
            .await
            .is_ok()
    );
    // The scheduler does not post a week the CLI already sent.
    assert_eq!(
        run_tick(&app.state, TEAM, ts("2026-11-30T09:00:00Z"))
            .await
            .unwrap(),
        TickOutcome::Posted {
            week: week("2026-W48"),
            messages: 1
        }
    );
    assert!(matches!(
        digest::send(
            &app.state.store,
            &app.state.engine,
            TEAM,
            Some(week("2026-W48")),
            false,
            ts("2026-12-01T00:00:00Z")
        )
        .await,
        Err(digest::DigestError::AlreadySent(_))
    ));
}

async fn shared_reflections_are_counted_and_opted_out_people_left_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = &app.state.store;
    let answers = serde_json::json!({"q": "their CFO worries about the rollout"});
    store
        .save_reflection(TEAM, 1, "U_A", &answers, true, ms("2026-11-18T10:00:00Z"))
        .await
        .unwrap();
    store
        .save_reflection(TEAM, 2, "U_B", &answers, true, ms("2026-11-19T10:00:00Z"))
        .await
        .unwrap();
    store
        .save_reflection(TEAM, 3, "U_C", &answers, false, ms("2026-11-19T10:00:00Z"))
        .await
        .unwrap();
    store
        .save_reflection(
            OTHER_TEAM,
            4,
            "U_D",
            &answers,
            true,
            ms("2026-11-19T10:00:00Z"),
        )
        .await
        .unwrap();
    store
        .save_reflection(TEAM, 5, "U_A", &answers, true, ms("2026-11-25T10:00:00Z"))
        .await
        .unwrap();
    store
        .set_digest_preference(TEAM, "U_GONE", Some(true), None, 0)
        .await
        .unwrap();
    store
        .opt_out_and_forget(TEAM, "U_GONE", ms("2026-11-20T00:00:00Z"))
        .await
        .unwrap();
    let stats = digest::week_stats(
        store,
        TEAM,
        week("2026-W47"),
        &jiff::tz::TimeZone::UTC,
        false,
    )
    .await
    .unwrap();
    assert_eq!(stats.shared_reflections, 2);
    let d = digest::compose(&stats, &app.state.engine, 1);
    assert!(
        d.text.contains("2 reflections shared with the team"),
        "{}",
        d.text
    );
    assert!(
        store.digest_subscribers(TEAM).await.unwrap().is_empty(),
        "an opted-out person gets no DM"
    );
}

backend_matrix!(
    shared_reflections_are_counted_and_opted_out_people_left_out,
    scheduled_digest_is_posted_once_and_survives_a_restart,
    two_schedulers_post_exactly_once,
    a_crashed_claim_is_taken_over_after_its_lease,
    downtime_under_a_day_is_caught_up_and_longer_is_skipped,
    weeks_follow_local_midnight_across_dst,
    empty_and_neutral_weeks_still_get_a_post,
    another_teams_data_never_shows,
    slash_commands_set_up_preview_and_subscribe,
    subscribers_get_their_own_figures_by_dm,
    spotlight_respects_opt_out_and_features_three_people,
    long_accounts_and_every_theme_stay_within_block_kit_limits,
    cli_send_refuses_a_second_post_without_force,
);

fn cusp(args: &[&str], db: &str) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn cli_preview_send_and_bad_week() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    store
        .save_digest_settings(TEAM, CHANNEL, 1, 540, "UTC", "U_LEAD", 0)
        .await
        .unwrap();
    store.close().await;

    let bad = cusp(
        &["digest", "preview", "--team", TEAM, "--week", "2026-47"],
        &db.url,
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("2026-W47"),
        "{bad:?}"
    );

    let text = cusp(
        &["digest", "preview", "--team", TEAM, "--week", "2026-W47"],
        &db.url,
    );
    assert!(text.status.success(), "{text:?}");
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("cusp digest so far · 16–22 Nov 2026")
            || String::from_utf8_lossy(&text.stdout)
                .contains("cusp weekly digest · 16–22 Nov 2026"),
        "{text:?}"
    );

    let json = cusp(
        &[
            "digest", "preview", "--team", TEAM, "--week", "2026-W47", "--json",
        ],
        &db.url,
    );
    let body: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(body["blocks"].as_array().unwrap().len() > 3);
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("cusp digest for")
    );

    let first = cusp(
        &["digest", "send", "--team", TEAM, "--week", "2026-W40"],
        &db.url,
    );
    assert!(first.status.success(), "{first:?}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("the running server delivers it"));
    let second = cusp(
        &["digest", "send", "--team", TEAM, "--week", "2026-W40"],
        &db.url,
    );
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("--force"),
        "{second:?}"
    );
    let forced = cusp(
        &[
            "digest", "send", "--team", TEAM, "--week", "2026-W40", "--force",
        ],
        &db.url,
    );
    assert!(forced.status.success(), "{forced:?}");
}
