//! OAuth mode end to end, through the mounted router and the fake Slack on loopback, on
//! both backends: install, per-workspace tokens, uninstall and the 30-day purge, token
//! rotation across replicas.

use axum::http::StatusCode;
use jiff::Timestamp;

use cusp::jobs::{token_refresh, uninstalled};
use cusp::store::uninstall::TEAM_TABLES;

use crate::backend_matrix;
use crate::support::app::{Backend, TEAM, TestApp, TestDb, now_ms};
use crate::support::fake_slack::OAuthGrant;
use crate::support::oauth_app::{app_uninstalled, message_in, tokens_revoked};

const ONE: &str = "T_ONE";
const TWO: &str = "T_TWO";
/// Seller-centric deal updates about different accounts (so no account cooldown holds
/// a nudge back).
const UPDATES: [&str; 5] = [
    "Acme Logistics: need them to sign by Friday so I hit my quota, pushing hard for the PO",
    "Globex renewal: chasing them to sign before EOQ, I need this for my number",
    "Initech deal: pushing them to sign this week so I make quota, offered a discount to close",
    "Umbrella Corp contract: need the signature by Friday for my number, chasing their buyer",
    "Hooli pilot: I need them to sign before quarter end to hit my quota",
];
const DAY_MS: i64 = 24 * 3600 * 1000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap()
}

/// The bearer tokens of every `chat.postMessage` so far, in order.
fn post_tokens(app: &TestApp) -> Vec<String> {
    app.slack
        .calls_to("chat.postMessage")
        .into_iter()
        .map(|c| c.token.unwrap_or_default())
        .collect()
}

/// A deal update in `team`, handled and delivered: the nudge's token.
async fn nudge_in(app: &TestApp, team: &str, n: u32) -> Option<String> {
    let before = app.slack.calls_to("chat.postMessage").len();
    let ts = format!("1700000{n:03}.000100");
    let answer = app
        .event(&message_in(
            team,
            &format!("Ev{team}{n}"),
            UPDATES[n as usize % UPDATES.len()],
            &ts,
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    app.drain_inbox().await;
    app.deliver_outbox_at(now_ms()).await;
    post_tokens(app).get(before).cloned()
}

async fn rows_of(db: &TestDb, table: &str, team: &str) -> i64 {
    db.scalar_for_team(
        &format!("SELECT COUNT(*) FROM {table} WHERE team_id = $1"),
        team,
    )
    .await
}

/// Every table of the schema with a `team_id` column.
async fn team_tables_in_schema(db: &TestDb) -> Vec<String> {
    let mut tables: Vec<String> = if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let t = sqlx::query_scalar(
            "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name = 'team_id'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        t
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let t = sqlx::query_scalar(
            "SELECT table_name::TEXT FROM information_schema.columns \
             WHERE column_name = 'team_id' AND table_schema = current_schema()",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        t
    };
    tables.sort();
    tables
}

async fn an_installed_workspace_is_served_with_its_own_token(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    let index = app.get("/", None).await;
    assert!(
        index.body.contains("/slack/install") && index.body.contains("/slack/oauth_redirect"),
        "{}",
        index.body
    );
    // Nobody installed yet: events are acknowledged and dropped, commands say so.
    assert_eq!(nudge_in(&app, ONE, 1).await, None);
    assert_eq!(rows_of(&app.db, "inbox", ONE).await, 0);
    let answer = app.slash_in(ONE, "help").await;
    assert!(answer.body.contains("isn't installed"), "{}", answer.body);

    let page = app
        .install(
            "code-one",
            OAuthGrant::workspace(ONE, "One Inc", "xoxb-one"),
        )
        .await;
    assert!(page.body.contains("One Inc"), "{}", page.body);
    app.install(
        "code-two",
        OAuthGrant::workspace(TWO, "Two Ltd", "xoxb-two"),
    )
    .await;
    // Sealed at rest: the database never holds a token in the clear.
    let stored = app
        .db
        .scalar_for_team(
            "SELECT COUNT(*) FROM installations WHERE team_id = $1 AND bot_token LIKE 'v1.%'",
            ONE,
        )
        .await;
    assert_eq!(stored, 1);
    assert_eq!(
        app.db
            .scalar_for_team(
                "SELECT COUNT(*) FROM installations WHERE bot_token LIKE '%' || $1 || '%'",
                "xoxb-"
            )
            .await,
        0
    );

    assert_eq!(nudge_in(&app, ONE, 2).await.as_deref(), Some("xoxb-one"));
    assert_eq!(nudge_in(&app, TWO, 3).await.as_deref(), Some("xoxb-two"));
    let answer = app.slash_in(TWO, "help").await;
    assert!(!answer.body.contains("isn't installed"), "{}", answer.body);

    // A reinstall replaces the token, and the next delivery uses the new one at once.
    let page = app
        .install(
            "code-one-b",
            OAuthGrant::workspace(ONE, "One Inc", "xoxb-one-b"),
        )
        .await;
    assert!(page.body.contains("installed again"), "{}", page.body);
    assert_eq!(nudge_in(&app, ONE, 4).await.as_deref(), Some("xoxb-one-b"));
    assert!(
        app.slack
            .calls()
            .iter()
            .all(|c| c.auth_ok || c.method == "oauth.v2.access")
    );
}

async fn the_mounted_pages_refuse_reused_foreign_and_cancelled_installs(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    let state = app.start_install().await;
    app.slack.grant_oauth_code(
        "c1",
        crate::support::oauth_app::REDIRECT_URI,
        OAuthGrant::workspace(ONE, "One", "xoxb-one"),
    );
    // Someone else's browser (no cookie) cannot use the link, nor spend it.
    let foreign = app
        .oauth_redirect(&format!("code=c1&state={state}"), None)
        .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST);
    let ok = app
        .oauth_redirect(&format!("code=c1&state={state}"), Some(&state))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let reused = app
        .oauth_redirect(&format!("code=c1&state={state}"), Some(&state))
        .await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert!(reused.body.contains("already used"), "{}", reused.body);
    let unknown = app
        .oauth_redirect("code=c2&state=made-up", Some("made-up"))
        .await;
    assert!(unknown.body.contains("unknown"), "{}", unknown.body);
    let state = app.start_install().await;
    let denied = app
        .oauth_redirect(&format!("error=access_denied&state={state}"), Some(&state))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.body.contains("cancelled"), "{}", denied.body);
    // An expired state: issued eleven minutes ago.
    let expired = "expired-state";
    app.state
        .store
        .create_oauth_state(
            expired,
            crate::support::oauth_app::REDIRECT_URI,
            now_ms() - 11 * 60 * 1000,
        )
        .await
        .unwrap();
    let late = app
        .oauth_redirect(&format!("code=c3&state={expired}"), Some(expired))
        .await;
    assert!(
        late.body.contains("older than ten minutes"),
        "{}",
        late.body
    );
    let rows = app.state.store.list_installations().await.unwrap();
    assert_eq!(rows.len(), 1, "only the one good install: {rows:?}");
}

async fn an_uninstall_deletes_tokens_stops_deliveries_and_purges_data_after_30_days(
    backend: Backend,
) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    app.install("c2", OAuthGrant::workspace(TWO, "Two", "xoxb-two"))
        .await;
    assert!(nudge_in(&app, ONE, 1).await.is_some());
    assert!(nudge_in(&app, TWO, 2).await.is_some());
    // Settings and preferences in both teams; one nudge of ONE still waiting to go out.
    for team in [ONE, TWO] {
        app.slash_in(team, "mute 1d").await;
        app.slash_in(team, "channel off").await;
    }
    app.slash_in(ONE, "unmute").await;
    app.slash_in(ONE, "channel on").await;
    app.event(&message_in(
        ONE,
        "EvPending",
        UPDATES[4],
        "1700000999.000100",
    ))
    .await;
    app.drain_inbox().await;
    let pending = app
        .db
        .scalar_for_team(
            "SELECT COUNT(*) FROM outbox WHERE team_id = $1 AND status = 'pending'",
            ONE,
        )
        .await;
    assert_eq!(pending, 1, "a delivery waits when cusp is removed");

    let removed_at = now_ms();
    let answer = app
        .event(&app_uninstalled(ONE, "EvUninstall", removed_at / 1000))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // Slack retries the event: still a 200, nothing more to do.
    let again = app
        .event(&app_uninstalled(ONE, "EvUninstall", removed_at / 1000))
        .await;
    assert_eq!(again.status, StatusCode::OK);

    let rows = app.state.store.list_installations().await.unwrap();
    let one = rows.iter().find(|r| r.key.team_id == ONE).unwrap();
    assert!(
        !one.has_bot_token && one.uninstalled_at_ms.is_some(),
        "{one:?}"
    );
    assert_eq!(
        app.db
            .scalar_for_team(
                "SELECT COUNT(*) FROM installations WHERE team_id = $1 AND bot_token IS NOT NULL",
                ONE
            )
            .await,
        0
    );
    let (status, error, _) = app
        .state
        .store
        .outbox_status(ONE, &sql_key(&app, ONE).await)
        .await
        .unwrap();
    assert_eq!(status, cusp::store::OutboxStatus::Dead);
    assert_eq!(
        error.as_deref(),
        Some("the workspace removed cusp; not sent")
    );
    let posts = app.slack.calls_to("chat.postMessage").len();
    app.deliver_outbox_at(now_ms() + 60_000).await;
    assert_eq!(
        app.slack.calls_to("chat.postMessage").len(),
        posts,
        "nothing sent"
    );
    let answer = app.slash_in(ONE, "help").await;
    assert!(answer.body.contains("isn't installed"), "{}", answer.body);
    let inbox_before = rows_of(&app.db, "inbox", ONE).await;
    assert_eq!(nudge_in(&app, ONE, 3).await, None);
    assert_eq!(
        rows_of(&app.db, "inbox", ONE).await,
        inbox_before,
        "nothing stored"
    );
    // TWO is untouched (its seller muted cusp, so it answers a command instead).
    let answer = app.slash_in(TWO, "help").await;
    assert!(!answer.body.contains("isn't installed"), "{}", answer.body);

    // Day 29: the data is still there.
    let purged = uninstalled::purge_due(&app.state, at(removed_at + 29 * DAY_MS))
        .await
        .unwrap();
    assert!(purged.is_empty());
    assert!(rows_of(&app.db, "observations", ONE).await > 0);
    // Day 31: every row of ONE is gone, in every table that has a team; TWO keeps its own.
    let seeded = [
        "inbox",
        "observations",
        "observation_themes",
        "outbox",
        "prompts",
        "user_prefs",
        "channel_settings",
    ];
    for table in seeded {
        assert!(rows_of(&app.db, table, ONE).await > 0, "{table} was seeded");
    }
    let purged = uninstalled::purge_due(&app.state, at(removed_at + 31 * DAY_MS))
        .await
        .unwrap();
    assert_eq!(purged.len(), 1);
    for table in team_tables_in_schema(&app.db).await {
        assert_eq!(
            rows_of(&app.db, &table, ONE).await,
            0,
            "{table} still holds ONE's rows"
        );
    }
    for table in seeded {
        assert!(
            rows_of(&app.db, table, TWO).await > 0,
            "{table} of TWO was kept"
        );
    }
    let rows = app.state.store.list_installations().await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        uninstalled::purge_due(&app.state, at(removed_at + 32 * DAY_MS))
            .await
            .unwrap()
            .is_empty()
    );
}

/// The idempotency key of the team's only pending-then-dead nudge.
async fn sql_key(app: &TestApp, team: &str) -> String {
    let sql = "SELECT idempotency_key FROM outbox WHERE team_id = $1 AND last_error IS NOT NULL";
    if app.db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
        let k = sqlx::query_scalar(sql)
            .bind(team)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        k
    } else {
        let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
        let k = sqlx::query_scalar(sql)
            .bind(team)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        k
    }
}

async fn the_team_purge_knows_every_table_with_a_team(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.store().await.close().await;
    let mut expected: Vec<String> = TEAM_TABLES.iter().map(|t| (*t).to_owned()).collect();
    expected.push("installations".into());
    expected.sort();
    assert_eq!(
        team_tables_in_schema(&db).await,
        expected,
        "a table with team_id must be added to store::uninstall::TEAM_TABLES"
    );
}

async fn a_reinstall_within_30_days_keeps_the_data(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    assert!(nudge_in(&app, ONE, 1).await.is_some());
    let removed_at = now_ms();
    app.event(&app_uninstalled(ONE, "EvU", removed_at / 1000))
        .await;
    app.install("c2", OAuthGrant::workspace(ONE, "One", "xoxb-one-new"))
        .await;
    // A late copy of the revocation that came with the uninstall spares the reinstall.
    let late = app
        .event(&tokens_revoked(
            ONE,
            "EvR",
            removed_at / 1000 - 1,
            &["U_BOT_T_ONE"],
        ))
        .await;
    assert_eq!(late.status, StatusCode::OK);
    let purged = uninstalled::purge_due(&app.state, at(removed_at + 31 * DAY_MS))
        .await
        .unwrap();
    assert!(purged.is_empty());
    assert!(rows_of(&app.db, "observations", ONE).await > 0);
    assert_eq!(
        nudge_in(&app, ONE, 2).await.as_deref(),
        Some("xoxb-one-new")
    );
}

async fn tokens_revoked_removes_only_a_bot_token(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install("c1", OAuthGrant::workspace(ONE, "One", "xoxb-one"))
        .await;
    let now_s = now_ms() / 1000 + 1;
    // Only a person's token: cusp holds none, so nothing changes.
    app.event(&tokens_revoked(ONE, "EvR1", now_s, &[])).await;
    assert_eq!(nudge_in(&app, ONE, 1).await.as_deref(), Some("xoxb-one"));
    app.slack.revoke_token("xoxb-one");
    let answer = app
        .event(&tokens_revoked(ONE, "EvR2", now_s, &["U_BOT_T_ONE"]))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(nudge_in(&app, ONE, 2).await, None);
    let answer = app.slash_in(ONE, "help").await;
    assert!(answer.body.contains("isn't installed"), "{}", answer.body);
}

async fn tokens_are_refreshed_before_expiry_by_one_replica_only(backend: Backend) {
    let app = TestApp::spawn_oauth(backend).await;
    app.install(
        "c1",
        OAuthGrant::workspace(ONE, "One", "xoxe.xoxb-one-1").rotating("xoxe-1-r1"),
    )
    .await;
    let flow = app.state.install_flow.clone().unwrap();
    let now = now_ms();
    // Twelve hours to go: not yet.
    let pass = token_refresh::refresh_due(&app.state, &flow, at(now))
        .await
        .unwrap();
    assert_eq!(pass, token_refresh::RefreshPass::default());

    // 10.5 hours later two replicas look at once; Slack's refresh token works once.
    app.slack.grant_oauth_refresh(
        "xoxe-1-r1",
        OAuthGrant::workspace(ONE, "One", "xoxe.xoxb-one-2").rotating("xoxe-1-r2"),
    );
    let other = app.another_oauth_replica().await;
    let other_flow = other.install_flow.clone().unwrap();
    let later = at(now + 10 * 3600 * 1000 + 30 * 60 * 1000);
    let (a, b) = tokio::join!(
        token_refresh::refresh_due(&app.state, &flow, later),
        token_refresh::refresh_due(&other, &other_flow, later),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.refreshed.len() + b.refreshed.len(), 1, "{a:?} {b:?}");
    assert!(
        a.needs_reinstall.is_empty() && b.needs_reinstall.is_empty(),
        "{a:?} {b:?}"
    );
    let refreshes = app
        .slack
        .calls_to("oauth.v2.access")
        .iter()
        .filter(|c| c.param_str("grant_type").as_deref() == Some("refresh_token"))
        .count();
    assert_eq!(refreshes, 1);
    // A replica whose list of due tokens is stale (it listed before the refresh above
    // and claims after it) finds nothing left to claim: the new token is not due.
    let key = cusp::store::InstallationKey::new(None, ONE);
    let margin = i64::try_from(token_refresh::REFRESH_MARGIN.as_millis()).unwrap();
    let stale = app
        .state
        .store
        .claim_refresh_expiring(
            &flow.keyring,
            &key,
            Some(later.as_millisecond() + margin),
            later.as_millisecond(),
            token_refresh::REFRESH_LEASE,
        )
        .await
        .unwrap();
    assert!(stale.is_none(), "the refreshed token was claimed again");
    // The new token is used at once.
    assert_eq!(
        nudge_in(&app, ONE, 1).await.as_deref(),
        Some("xoxe.xoxb-one-2")
    );
    // Not due again until the new token nears its own expiry.
    let pass = token_refresh::refresh_due(&app.state, &flow, later)
        .await
        .unwrap();
    assert_eq!(pass, token_refresh::RefreshPass::default());

    // Slack refuses the next refresh (no grant for r2): needs reinstall, reported once.
    let much_later = at(now + 2 * 10 * 3600 * 1000 + 3600 * 1000);
    let pass = token_refresh::refresh_due(&app.state, &flow, much_later)
        .await
        .unwrap();
    assert_eq!(pass.needs_reinstall.len(), 1, "{pass:?}");
    let pass = token_refresh::refresh_due(&app.state, &flow, much_later)
        .await
        .unwrap();
    assert_eq!(pass, token_refresh::RefreshPass::default());
    let rows = app.state.store.list_installations().await.unwrap();
    assert!(rows[0].needs_reinstall, "{rows:?}");
    // A reinstall clears it.
    app.install(
        "c2",
        OAuthGrant::workspace(ONE, "One", "xoxe.xoxb-one-3").rotating("xoxe-1-r3"),
    )
    .await;
    let rows = app.state.store.list_installations().await.unwrap();
    assert!(!rows[0].needs_reinstall, "{rows:?}");
}

async fn single_workspace_mode_has_no_install_pages_and_keeps_its_env_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let index = app.get("/", None).await;
    assert!(!index.body.contains("/slack/install"), "{}", index.body);
    assert_eq!(
        app.get("/slack/install", None).await.status,
        StatusCode::NOT_FOUND
    );
    // The token lives in the environment: the event is acknowledged, logged, and changes
    // nothing stored (nothing to delete, nothing to stop).
    let answer = app
        .event(&app_uninstalled(TEAM, "EvU", now_ms() / 1000))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(rows_of(&app.db, "inbox", TEAM).await, 0);
    let answer = app.slash("help").await;
    assert!(!answer.body.contains("isn't installed"), "{}", answer.body);
}

backend_matrix!(
    single_workspace_mode_has_no_install_pages_and_keeps_its_env_token,
    an_installed_workspace_is_served_with_its_own_token,
    the_mounted_pages_refuse_reused_foreign_and_cancelled_installs,
    an_uninstall_deletes_tokens_stops_deliveries_and_purges_data_after_30_days,
    the_team_purge_knows_every_table_with_a_team,
    a_reinstall_within_30_days_keeps_the_data,
    tokens_revoked_removes_only_a_bot_token,
    tokens_are_refreshed_before_expiry_by_one_replica_only,
);
