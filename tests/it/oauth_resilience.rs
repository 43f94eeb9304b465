//! OAuth mode when an installation cannot be used for a while: events already stored
//! must wait for it, not be used up and thrown away; other workspaces carry on.

use axum::http::StatusCode;

use crate::backend_matrix;
use crate::support::app::{Backend, TestApp, TestDb, now_ms};
use crate::support::fake_slack::OAuthGrant;
use crate::support::oauth_app::{app_uninstalled, message_in};

const ONE: &str = "T_ONE";
const TWO: &str = "T_TWO";
/// About another account, so no cooldown from [`UPDATE`] holds its nudge back.
const OTHER_UPDATE: &str =
    "Globex renewal: chasing them to sign before EOQ, I need this for my number";
const MINUTE_MS: i64 = 60 * 1000;
const UPDATE: &str =
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO";

/// Runs one statement binding `team` (what an operator's mistake or a bad disk does to
/// a row; the application itself never writes these).
async fn sql_execute(db: &TestDb, sql: &str, team: &str) {
    if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query(sql).bind(team).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(sql).bind(team).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// The bearer tokens of every `chat.postMessage` so far, in order.
fn post_tokens(app: &TestApp) -> Vec<String> {
    app.slack
        .calls_to("chat.postMessage")
        .into_iter()
        .map(|c| c.token.unwrap_or_default())
        .collect()
}

async fn an_unreadable_installation_does_not_use_up_its_stored_events(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    app.install("c2", OAuthGrant::workspace(TWO, "Two", "xoxb-two"))
        .await;
    let stored = app
        .event(&message_in(TWO, "EvTwo1", UPDATE, "1700000001.000100"))
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.body);
    // TWO's sealed token no longer opens (sealed under a key the operator dropped from
    // CUSP_ENCRYPTION_KEY before running `cusp rotate-key`), and this process has no
    // cached copy.
    sql_execute(
        &app.db,
        "UPDATE installations SET bot_token = 'v1.00000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' \
         WHERE team_id = $1",
        TWO,
    )
    .await;
    app.state.workspaces.forget(TWO);

    // Well past every backoff, many times over: the worker keeps going around.
    let start = now_ms();
    for pass in 1..=12 {
        cusp::jobs::inbox_worker::drain(&app.state, start + pass * 10 * MINUTE_MS)
            .await
            .expect("one workspace's installation must not stop the worker");
    }
    assert_eq!(
        app.db
            .scalar_for_team(
                "SELECT COUNT(*) FROM inbox WHERE team_id = $1 AND status = 'pending' \
             AND payload IS NOT NULL",
                TWO,
            )
            .await,
        1,
        "the event waits, payload kept, for the installation to be readable again"
    );

    // The other workspace is served meanwhile.
    app.event(&message_in(ONE, "EvOne1", UPDATE, "1700000002.000100"))
        .await;
    app.drain_inbox().await;
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(post_tokens(&app), vec!["xoxb-one".to_owned()]);

    // Reinstalled (a fresh token sealed under the current key): the waiting event is
    // handled with it.
    app.install("c3", OAuthGrant::workspace(TWO, "Two", "xoxb-two-new"))
        .await;
    app.drain_inbox_at(start + 200 * MINUTE_MS).await;
    app.deliver_outbox_at(start + 200 * MINUTE_MS).await;
    assert_eq!(
        post_tokens(&app),
        vec!["xoxb-one".to_owned(), "xoxb-two-new".to_owned()]
    );
}

async fn a_purge_spares_a_workspace_installed_again_under_its_grid_org(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    app.event(&message_in(ONE, "EvOne1", UPDATE, "1700000001.000100"))
        .await;
    app.drain_inbox().await;
    let observations = "SELECT COUNT(*) FROM observations WHERE team_id = $1";
    assert_eq!(app.db.scalar_for_team(observations, ONE).await, 1);
    let removed_at = now_ms();
    let answer = app
        .event(&app_uninstalled(ONE, "EvU", removed_at / 1000))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // Meanwhile the workspace joined an Enterprise Grid org; installing again, Slack now
    // names the org, so the new installation has another key than the removed one.
    app.install(
        "c2",
        OAuthGrant {
            enterprise: Some(("E_ORG".into(), "Org".into())),
            ..OAuthGrant::workspace(ONE, "One", "xoxb-one-grid")
        },
    )
    .await;
    let purged = cusp::jobs::uninstalled::purge_due(
        &app.state,
        jiff::Timestamp::from_millisecond(removed_at + 31 * 24 * 3600 * 1000).unwrap(),
    )
    .await
    .unwrap();
    assert!(purged.is_empty(), "purged {purged:?}");
    assert_eq!(
        app.db.scalar_for_team(observations, ONE).await,
        1,
        "a served workspace keeps its history"
    );
    app.event(&message_in(
        ONE,
        "EvOne2",
        OTHER_UPDATE,
        "1700000002.000100",
    ))
    .await;
    app.drain_inbox().await;
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(
        post_tokens(&app).last().map(String::as_str),
        Some("xoxb-one-grid")
    );
}

/// Slack gives up on an event not answered within 3 seconds; the events route answers
/// 503 (Slack sends it again) well before that, whatever the database is doing.
const ACK_DEADLINE: std::time::Duration = std::time::Duration::from_millis(2_900);

/// Another session holding the `installations` table, as a long migration or a
/// `cusp rotate-key` on a big table would: SQLite's write lock, PostgreSQL's table lock
/// (which blocks reads too). Released when the returned guard is dropped.
enum Held {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

async fn hold_installations(app: &TestApp) -> Held {
    use sqlx::Connection;
    if app.db.url.starts_with("sqlite") {
        Held::Sqlite(app.hold_sqlite_write_lock().await)
    } else {
        let mut other = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut other).await.unwrap();
        sqlx::query("LOCK TABLE installations IN ACCESS EXCLUSIVE MODE")
            .execute(&mut other)
            .await
            .unwrap();
        Held::Postgres(other)
    }
}

/// A request that would hang as long as the lock is held fails the test instead.
async fn within_test_limit<T>(request: impl Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), request)
        .await
        .expect("the events route must answer even while the database is held")
}

async fn release(held: Held) {
    match held {
        Held::Sqlite(mut c) => {
            sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
        }
        Held::Postgres(mut c) => {
            sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
        }
    }
}

async fn an_uninstall_is_answered_in_time_while_the_database_is_held(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    let uninstall = app_uninstalled(ONE, "EvU1", now_ms() / 1000 + 1);
    let held = hold_installations(&app).await;
    let started = std::time::Instant::now();
    let answer = within_test_limit(app.event(&uninstall)).await;
    let took = started.elapsed();
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert!(took < ACK_DEADLINE, "answered after {took:?}");
    release(held).await;
    // Slack's retry of the same event removes the installation.
    let again = app.event(&uninstall).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let answer = app.slash_in(ONE, "help").await;
    assert!(answer.body.contains("isn't installed"), "{}", answer.body);
}

async fn an_event_is_answered_in_time_while_the_installation_cannot_be_read(backend: Backend) {
    if backend == Backend::Sqlite {
        // SQLite (WAL) never makes a reader wait; only PostgreSQL's lock can.
        return;
    }
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    app.state.workspaces.forget(ONE);
    let held = hold_installations(&app).await;
    let started = std::time::Instant::now();
    let answer =
        within_test_limit(app.event(&message_in(ONE, "EvOne1", UPDATE, "1700000001.000100"))).await;
    let took = started.elapsed();
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert!(took < ACK_DEADLINE, "answered after {took:?}");
    release(held).await;
}

fn org_wide_grant() -> OAuthGrant {
    OAuthGrant {
        team: None,
        enterprise: Some(("E_ORG".into(), "Org".into())),
        is_enterprise_install: true,
        ..OAuthGrant::workspace("", "Org", "xoxb-org")
    }
}

async fn an_org_wide_install_is_refused_with_a_page_saying_what_to_do(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    let state = app.start_install().await;
    app.slack.grant_oauth_code(
        "c1",
        crate::support::oauth_app::REDIRECT_URI,
        org_wide_grant(),
    );
    let page = app
        .oauth_redirect(&format!("code=c1&state={state}"), Some(&state))
        .await;
    // The workers visit workspace-level installations only: an org-wide one would take
    // its workspaces' events with a 200 and never handle them.
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("each workspace"), "{}", page.body);
    assert!(
        app.state
            .store
            .list_installations()
            .await
            .unwrap()
            .is_empty()
    );
}

/// A signed `POST /hooks/deals` with `body`.
async fn post_deal(app: &TestApp, body: &serde_json::Value) -> (StatusCode, String) {
    let body = body.to_string();
    let ts = jiff::Timestamp::now().as_second();
    let secret = crate::support::app::WEBHOOK_SECRET.as_bytes();
    let signature = cusp::server::crm_signature::sign(secret, ts, body.as_bytes());
    let request = axum::http::Request::post("/hooks/deals")
        .header("content-type", "application/json")
        .header("x-cusp-timestamp", ts.to_string())
        .header("x-cusp-signature", signature)
        .body(axum::body::Body::from(body))
        .unwrap();
    let response = app.request(request).await;
    (response.status, response.body)
}

async fn a_crm_hook_in_oauth_mode_must_name_an_installed_workspace(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    let deal = |team: Option<&str>| {
        let mut body = serde_json::json!({
            "deal_id": "D-42", "account": "Acme Logistics", "stage": "closedwon",
            "owner": {"slack_user_id": "U_SELLER"},
        });
        if let Some(team) = team {
            body["team_id"] = serde_json::json!(team);
        }
        body
    };
    let (status, body) = post_deal(&app, &deal(None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("team_id"), "{body}");
    let (status, body) = post_deal(&app, &deal(Some(TWO))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = post_deal(&app, &deal(Some(ONE))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(post_tokens(&app), vec!["xoxb-one".to_owned()]);
}

async fn events_waiting_when_a_workspace_removes_cusp_are_dropped_not_answered_later(
    backend: Backend,
) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    // Stored, not yet handled, when the workspace removes cusp.
    app.event(&message_in(ONE, "EvOne1", UPDATE, "1700000001.000100"))
        .await;
    let answer = app
        .event(&app_uninstalled(ONE, "EvU", now_ms() / 1000 + 1))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let waiting = "SELECT COUNT(*) FROM inbox WHERE team_id = $1 AND payload IS NOT NULL";
    assert_eq!(
        app.db.scalar_for_team(waiting, ONE).await,
        0,
        "a removed workspace's message text is not kept for 30 days"
    );
    // Reinstalled days later: the old message gets no late nudge.
    app.install("c2", OAuthGrant::workspace(ONE, "One", "xoxb-one-new"))
        .await;
    app.drain_inbox().await;
    app.deliver_outbox_at(now_ms()).await;
    assert_eq!(post_tokens(&app), Vec::<String>::new());
}

/// A removal interrupted after the tokens were deleted (a crash, a database error before
/// the deliveries were stopped) is finished by Slack's retry of the same event: the
/// retry finds no tokens to delete, but the team's waiting work still stops.
async fn a_retried_uninstall_finishes_a_removal_that_stopped_half_way(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    app.event(&message_in(ONE, "EvOne1", UPDATE, "1700000001.000100"))
        .await;
    app.drain_inbox().await;
    let pending = "SELECT COUNT(*) FROM outbox WHERE team_id = $1 AND status = 'pending'";
    assert_eq!(
        app.db.scalar_for_team(pending, ONE).await,
        1,
        "a nudge waits"
    );
    // The first delivery of the event got as far as deleting the tokens.
    let key = cusp::store::InstallationKey::new(None, ONE);
    assert!(
        app.state
            .store
            .remove_installation(&key, None, now_ms())
            .await
            .unwrap()
    );
    app.state.workspaces.forget(ONE);
    let answer = app
        .event(&app_uninstalled(ONE, "EvU", now_ms() / 1000 + 1))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        app.db.scalar_for_team(pending, ONE).await,
        0,
        "the retry stops what the interrupted removal left pending"
    );
}

backend_matrix!(
    an_unreadable_installation_does_not_use_up_its_stored_events,
    an_uninstall_is_answered_in_time_while_the_database_is_held,
    an_event_is_answered_in_time_while_the_installation_cannot_be_read,
    a_purge_spares_a_workspace_installed_again_under_its_grid_org,
    an_org_wide_install_is_refused_with_a_page_saying_what_to_do,
    a_crm_hook_in_oauth_mode_must_name_an_installed_workspace,
    events_waiting_when_a_workspace_removes_cusp_are_dropped_not_answered_later,
    a_retried_uninstall_finishes_a_removal_that_stopped_half_way,
);
