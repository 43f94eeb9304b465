//! The installation store on both backends: sealed tokens, reinstall, removal, the
//! refresh claim, single-use OAuth states and key rotation.

use std::time::Duration;

use cusp::store::installations::OAUTH_STATE_TTL;
use cusp::store::{
    InstallationError, InstallationKey, Keyring, NewInstallation, RefreshedTokens, SaveOutcome,
    SealError, StateCheck, Store,
};
use secrecy::{ExposeSecret, SecretString};

use crate::backend_matrix;
use crate::support::app::{Backend, TestDb};

pub const KEY_OLD: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
pub const KEY_NEW: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const NOW: i64 = 1_780_000_000_000;

fn keyring(keys: &str) -> Keyring {
    Keyring::parse(keys).unwrap()
}

pub fn workspace(team: &str, token: &str) -> NewInstallation {
    NewInstallation {
        key: InstallationKey::new(None, team),
        team_name: Some(format!("{team} Inc")),
        enterprise_name: None,
        is_enterprise_install: false,
        app_id: Some("A1".into()),
        bot_user_id: format!("U_BOT_{team}"),
        bot_id: None,
        bot_token: SecretString::from(token.to_owned()),
        bot_scopes: "commands,chat:write".into(),
        installer_user_id: Some("U_ADMIN".into()),
        refresh_token: None,
        token_expires_at_ms: None,
    }
}

fn rotating(team: &str, token: &str, refresh: &str, expires_at: i64) -> NewInstallation {
    NewInstallation {
        refresh_token: Some(SecretString::from(refresh.to_owned())),
        token_expires_at_ms: Some(expires_at),
        ..workspace(team, token)
    }
}

/// Everything the installations table holds, as text, for "no token in a dump" checks.
async fn dump(db: &TestDb) -> String {
    let store = db.store().await;
    let rows = store.list_installations().await.unwrap();
    store.close().await;
    let mut text = format!("{rows:?}");
    let raw: Vec<(String, String, Option<String>, Option<String>)> = match db.url.as_str() {
        url if url.starts_with("sqlite") => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let rows = sqlx::query_as(
                "SELECT enterprise_id, team_id, bot_token, refresh_token FROM installations",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows
        }
        url => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let rows = sqlx::query_as(
                "SELECT enterprise_id, team_id, bot_token, refresh_token FROM installations",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            pool.close().await;
            rows
        }
    };
    text.push_str(&format!("{raw:?}"));
    text
}

/// Runs one SQL statement against the test database directly (tampering, ageing).
async fn exec(db: &TestDb, sql: &str) {
    if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

async fn token_of(store: &Store, ring: &Keyring, team: &str) -> Option<String> {
    store
        .find_installation(ring, None, team)
        .await
        .unwrap()
        .map(|i| i.bot_token.expose_secret().to_owned())
}

async fn tokens_are_sealed_and_a_reinstall_replaces_them(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let ring = keyring(KEY_OLD);
    let first = rotating("T1", "xoxe.xoxb-first", "xoxe-1-refresh-first", NOW + 1_000);
    assert_eq!(
        store.save_installation(&ring, &first, NOW).await.unwrap(),
        SaveOutcome::Installed
    );
    store
        .save_installation(&ring, &workspace("T2", "xoxb-second"), NOW)
        .await
        .unwrap();

    let found = store
        .find_installation(&ring, None, "T1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.bot_token.expose_secret(), "xoxe.xoxb-first");
    assert_eq!(
        found.refresh_token.as_ref().unwrap().expose_secret(),
        "xoxe-1-refresh-first"
    );
    assert_eq!(found.bot_user_id, "U_BOT_T1");
    assert_eq!(found.token_expires_at_ms, Some(NOW + 1_000));
    assert!(!found.needs_reinstall);
    assert!(!format!("{found:?}").contains("xoxe.xoxb-first"));
    assert_eq!(token_of(&store, &ring, "T2").await.unwrap(), "xoxb-second");
    assert!(token_of(&store, &ring, "T3").await.is_none());
    store.close().await;

    let dumped = dump(&db).await;
    for secret in ["xoxe.xoxb-first", "xoxe-1-refresh-first", "xoxb-second"] {
        assert!(!dumped.contains(secret), "{secret} in {dumped}");
    }
    assert!(dumped.contains("v1."), "sealed values are stored: {dumped}");

    let store = db.store().await;
    store.mark_needs_reinstall(&first.key, NOW).await.unwrap();
    let again = NewInstallation {
        bot_scopes: "commands,chat:write,reactions:write".into(),
        team_name: None,
        ..workspace("T1", "xoxb-reinstalled")
    };
    assert_eq!(
        store
            .save_installation(&ring, &again, NOW + 5)
            .await
            .unwrap(),
        SaveOutcome::Reinstalled
    );
    let found = store
        .find_installation(&ring, None, "T1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.bot_token.expose_secret(), "xoxb-reinstalled");
    assert!(found.refresh_token.is_none() && found.token_expires_at_ms.is_none());
    assert!(!found.needs_reinstall, "a reinstall clears the flag");
    assert_eq!(found.bot_scopes, "commands,chat:write,reactions:write");
    assert_eq!(
        found.team_name.as_deref(),
        Some("T1 Inc"),
        "a missing name keeps the old one"
    );
    assert_eq!(found.installed_at_ms, NOW + 5);
    let listed = store.list_installations().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].key.team_id, "T1");
}

async fn an_org_wide_install_serves_every_workspace_of_its_org(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let ring = keyring(KEY_OLD);
    let org = NewInstallation {
        key: InstallationKey::new(Some("E1"), ""),
        team_name: None,
        enterprise_name: Some("Org".into()),
        is_enterprise_install: true,
        ..workspace("", "xoxb-org")
    };
    store.save_installation(&ring, &org, NOW).await.unwrap();
    let own = NewInstallation {
        key: InstallationKey::new(Some("E1"), "T_OWN"),
        ..workspace("T_OWN", "xoxb-own")
    };
    store.save_installation(&ring, &own, NOW).await.unwrap();

    let find = |team: &'static str, org: Option<&'static str>| {
        let (store, ring) = (&store, &ring);
        async move {
            store
                .find_installation(ring, org, team)
                .await
                .unwrap()
                .map(|i| (i.key.to_string(), i.bot_token.expose_secret().to_owned()))
        }
    };
    assert_eq!(
        find("T_ANY", Some("E1")).await,
        Some(("E1".into(), "xoxb-org".into()))
    );
    assert_eq!(
        find("T_OWN", Some("E1")).await,
        Some(("E1/T_OWN".into(), "xoxb-own".into())),
        "a workspace's own install wins over the org's"
    );
    assert_eq!(find("T_ANY", Some("E2")).await, None);
    assert_eq!(
        find("T_ANY", None).await,
        None,
        "no org, no org-wide install"
    );
}

async fn a_token_copied_into_another_teams_row_does_not_open(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let ring = keyring(KEY_OLD);
    for (team, token) in [("T1", "xoxb-one"), ("T2", "xoxb-two")] {
        store
            .save_installation(&ring, &workspace(team, token), NOW)
            .await
            .unwrap();
    }
    exec(
        &db,
        "UPDATE installations SET bot_token = \
         (SELECT bot_token FROM installations WHERE team_id = 'T1') WHERE team_id = 'T2'",
    )
    .await;
    match store.find_installation(&ring, None, "T2").await {
        Err(InstallationError::Seal { key, source }) => {
            assert_eq!(key.team_id, "T2");
            assert_eq!(source, SealError::Tampered);
        }
        other => panic!("expected a seal error, got {other:?}"),
    }
    assert_eq!(token_of(&store, &ring, "T1").await.unwrap(), "xoxb-one");
    match store.find_installation(&keyring(KEY_NEW), None, "T1").await {
        Err(InstallationError::Seal { source, .. }) => {
            assert!(matches!(source, SealError::UnknownKey { .. }));
            assert!(source.to_string().contains("CUSP_ENCRYPTION_KEY"));
        }
        other => panic!("expected an unknown key, got {other:?}"),
    }
}

async fn removal_deletes_tokens_at_once_and_spares_a_later_reinstall(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let ring = keyring(KEY_OLD);
    let key = InstallationKey::new(None, "T1");
    store
        .save_installation(&ring, &workspace("T1", "xoxb-old"), NOW)
        .await
        .unwrap();
    store
        .save_installation(&ring, &workspace("T1", "xoxb-new"), NOW + 10)
        .await
        .unwrap();
    assert!(
        !store
            .remove_installation(&key, Some(NOW + 5), NOW + 20)
            .await
            .unwrap(),
        "a late revocation of the first install leaves the reinstall alone"
    );
    assert_eq!(token_of(&store, &ring, "T1").await.unwrap(), "xoxb-new");
    assert!(
        store
            .remove_installation(&key, Some(NOW + 10), NOW + 20)
            .await
            .unwrap()
    );
    assert!(token_of(&store, &ring, "T1").await.is_none());
    assert!(
        !store
            .remove_installation(&key, None, NOW + 30)
            .await
            .unwrap(),
        "removing twice is a no-op"
    );
    let listed = store.list_installations().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].has_bot_token);
    assert_eq!(listed[0].uninstalled_at_ms, Some(NOW + 20));
    store.close().await;
    assert!(!dump(&db).await.contains("v1."), "no sealed token is left");
}

async fn only_one_replica_refreshes_a_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let ring = keyring(KEY_OLD);
    let key = InstallationKey::new(None, "T1");
    let lease = Duration::from_secs(60);
    store
        .save_installation(
            &ring,
            &rotating("T1", "xoxe.xoxb-1", "xoxe-1-r1", NOW + 3_600_000),
            NOW,
        )
        .await
        .unwrap();
    store
        .save_installation(&ring, &workspace("T2", "xoxb-static"), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .installations_due_for_refresh(NOW + 7_200_000, NOW)
            .await
            .unwrap(),
        vec![key.clone()],
        "only rotating tokens are due"
    );
    assert!(
        store
            .installations_due_for_refresh(NOW + 1_000, NOW)
            .await
            .unwrap()
            .is_empty()
    );

    // Two replicas race for the claim, each with its own pool.
    let other = db.store().await;
    let (a, b) = tokio::join!(
        store.claim_refresh(&ring, &key, NOW, lease),
        other.claim_refresh(&ring, &key, NOW, lease)
    );
    let claims: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(claims.len(), 1, "exactly one replica holds the claim");
    let stale = claims.into_iter().next().unwrap();
    assert_eq!(stale.refresh_token.expose_secret(), "xoxe-1-r1");
    assert!(
        store
            .installations_due_for_refresh(NOW + 7_200_000, NOW + 1)
            .await
            .unwrap()
            .is_empty(),
        "a claimed token is not due"
    );
    assert!(
        store
            .claim_refresh(&ring, &key, NOW + 59_000, lease)
            .await
            .unwrap()
            .is_none()
    );

    // The holder crashed; after its lease another replica takes over and finishes.
    let taken = store
        .claim_refresh(&ring, &key, NOW + 61_000, lease)
        .await
        .unwrap()
        .expect("claimable after the lease");
    let tokens = |bot: &str, refresh: &str| RefreshedTokens {
        bot_token: SecretString::from(bot.to_owned()),
        refresh_token: SecretString::from(refresh.to_owned()),
        token_expires_at_ms: NOW + 43_200_000,
    };
    assert!(
        !store
            .complete_refresh(
                &ring,
                &stale,
                &tokens("xoxe.xoxb-stale", "r-stale"),
                NOW + 62_000
            )
            .await
            .unwrap(),
        "the expired claim stores nothing"
    );
    assert!(
        store
            .complete_refresh(
                &ring,
                &taken,
                &tokens("xoxe.xoxb-2", "xoxe-1-r2"),
                NOW + 62_000
            )
            .await
            .unwrap()
    );
    let found = store
        .find_installation(&ring, None, "T1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.bot_token.expose_secret(), "xoxe.xoxb-2");
    assert_eq!(found.refresh_token.unwrap().expose_secret(), "xoxe-1-r2");
    assert_eq!(found.token_expires_at_ms, Some(NOW + 43_200_000));

    // A refused refresh: flagged once, never claimed again until a reinstall.
    assert!(
        store
            .mark_needs_reinstall(&key, NOW + 70_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_needs_reinstall(&key, NOW + 71_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_refresh(&ring, &key, NOW + 200_000, lease)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .installations_due_for_refresh(i64::MAX, NOW + 200_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .find_installation(&ring, None, "T1")
            .await
            .unwrap()
            .unwrap()
            .needs_reinstall
    );
}

async fn an_oauth_state_is_used_once_and_expires(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let other = db.store().await;
    let ttl = i64::try_from(OAUTH_STATE_TTL.as_millis()).unwrap();
    let uri = "https://cusp.example.com/slack/oauth_redirect";
    store.create_oauth_state("s-1", uri, NOW).await.unwrap();
    let (a, b) = tokio::join!(
        store.consume_oauth_state("s-1", NOW + 1),
        other.consume_oauth_state("s-1", NOW + 1)
    );
    let mut answers = vec![a.unwrap(), b.unwrap()];
    answers.sort_by_key(|c| matches!(c, StateCheck::Reused));
    assert_eq!(
        answers,
        vec![
            StateCheck::Valid {
                redirect_uri: uri.into()
            },
            StateCheck::Reused
        ],
        "two requests with one state: exactly one wins"
    );
    assert_eq!(
        store.consume_oauth_state("s-1", NOW + 2).await.unwrap(),
        StateCheck::Reused
    );
    assert_eq!(
        store.consume_oauth_state("never", NOW).await.unwrap(),
        StateCheck::Unknown
    );
    store.create_oauth_state("s-2", uri, NOW).await.unwrap();
    assert_eq!(
        store.consume_oauth_state("s-2", NOW + ttl).await.unwrap(),
        StateCheck::Expired
    );
    store.create_oauth_state("s-3", uri, NOW).await.unwrap();
    assert!(matches!(
        store
            .consume_oauth_state("s-3", NOW + ttl - 1)
            .await
            .unwrap(),
        StateCheck::Valid { .. }
    ));
    // A day later the old states are swept when a new one is made.
    store
        .create_oauth_state("s-4", uri, NOW + ttl + 25 * 3_600_000)
        .await
        .unwrap();
    assert_eq!(
        store.consume_oauth_state("s-1", NOW).await.unwrap(),
        StateCheck::Unknown
    );
}

async fn rotating_the_key_reseals_every_token_or_none(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let old = keyring(KEY_OLD);
    store
        .save_installation(
            &old,
            &rotating("T1", "xoxe.xoxb-1", "xoxe-1-r1", NOW + 1),
            NOW,
        )
        .await
        .unwrap();
    store
        .save_installation(&old, &workspace("T2", "xoxb-2"), NOW)
        .await
        .unwrap();
    store
        .save_installation(&old, &workspace("T3", "xoxb-3"), NOW)
        .await
        .unwrap();
    store
        .remove_installation(&InstallationKey::new(None, "T3"), None, NOW)
        .await
        .unwrap();

    let new_only = keyring(KEY_NEW);
    assert!(
        store.reseal_installations(&new_only, NOW).await.is_err(),
        "without the old key nothing can be opened"
    );
    assert_eq!(token_of(&store, &old, "T1").await.unwrap(), "xoxe.xoxb-1");

    let both = keyring(&format!("{KEY_NEW},{KEY_OLD}"));
    let counts = store.reseal_installations(&both, NOW + 1).await.unwrap();
    assert_eq!((counts.resealed, counts.unchanged), (2, 1));
    assert_eq!(
        token_of(&store, &new_only, "T1").await.unwrap(),
        "xoxe.xoxb-1"
    );
    assert_eq!(token_of(&store, &new_only, "T2").await.unwrap(), "xoxb-2");
    let t1 = store
        .find_installation(&new_only, None, "T1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t1.refresh_token.unwrap().expose_secret(), "xoxe-1-r1");
    assert!(
        store.find_installation(&old, None, "T2").await.is_err(),
        "the old key alone no longer opens anything"
    );
    let again = store.reseal_installations(&both, NOW + 2).await.unwrap();
    assert_eq!((again.resealed, again.unchanged), (0, 3));
}

backend_matrix!(
    tokens_are_sealed_and_a_reinstall_replaces_them,
    an_org_wide_install_serves_every_workspace_of_its_org,
    a_token_copied_into_another_teams_row_does_not_open,
    removal_deletes_tokens_at_once_and_spares_a_later_reinstall,
    only_one_replica_refreshes_a_token,
    an_oauth_state_is_used_once_and_expires,
    rotating_the_key_reseals_every_token_or_none,
);
