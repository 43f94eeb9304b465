//! `cusp installations list|remove` and `cusp rotate-key`, through the real binary.

use std::process::{Command, Output};

use cusp::store::{InstallationKey, Keyring, NewInstallation};
use secrecy::{ExposeSecret, SecretString};

use crate::backend_matrix;
use crate::installations::{KEY_OLD, workspace};
use crate::support::app::{Backend, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_cusp");
const KEY_NEW: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn cusp(db: &TestDb, args: &[&str], key: Option<&str>) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn");
    if let Some(key) = key {
        command.env("CUSP_ENCRYPTION_KEY", key);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// T1 active with token rotation, T2 removed, E1 an org-wide install.
async fn seed(db: &TestDb) {
    let store = db.store().await;
    let ring = Keyring::parse(KEY_OLD).unwrap();
    let t1 = NewInstallation {
        refresh_token: Some(SecretString::from("xoxe-1-secret-refresh".to_owned())),
        token_expires_at_ms: Some(1_780_000_000_000),
        ..workspace("T1", "xoxe.xoxb-secret-one")
    };
    store
        .save_installation(&ring, &t1, 1_700_000_000_000)
        .await
        .unwrap();
    store
        .save_installation(
            &ring,
            &workspace("T2", "xoxb-secret-two"),
            1_700_000_000_000,
        )
        .await
        .unwrap();
    store
        .remove_installation(&InstallationKey::new(None, "T2"), None, 1_700_000_100_000)
        .await
        .unwrap();
    let org = NewInstallation {
        key: InstallationKey::new(Some("E1"), ""),
        enterprise_name: Some("Org".into()),
        team_name: None,
        is_enterprise_install: true,
        ..workspace("", "xoxb-secret-org")
    };
    store
        .save_installation(&ring, &org, 1_700_000_000_000)
        .await
        .unwrap();
    store.close().await;
}

async fn installations_list_shows_every_workspace_and_no_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    seed(&db).await;
    let out = cusp(&db, &["installations", "list"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let line = |id: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(&format!("{id}\t")))
            .unwrap()
    };
    assert!(line("T1").contains("\tactive\t") && line("T1").contains("token rotation (expires"));
    assert!(
        line("T2").contains("removed 2023-11-14T22:15:00Z"),
        "{stdout}"
    );
    assert!(line("E1").contains("Org\tactive"), "{stdout}");
    assert!(text(&out.stderr).contains("3 installations"));
    assert!(!stdout.contains("secret"), "{stdout}");

    let out = cusp(&db, &["installations", "list", "--json"], None);
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert_eq!(rows[1]["team_id"], "T1");
    assert_eq!(rows[1]["token_rotation"], true);
    assert!(!text(&out.stdout).contains("secret"));
}

async fn installations_remove_deletes_the_tokens_and_refuses_an_unknown_team(backend: Backend) {
    let db = TestDb::new(backend).await;
    seed(&db).await;
    let out = cusp(&db, &["installations", "remove", "T9"], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no installation T9") && stderr.contains("E1, T1, T2"),
        "{stderr}"
    );

    let out = cusp(&db, &["installations", "remove", "T1"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("deleted the Slack tokens of T1"));
    let out = cusp(&db, &["installations", "remove", "E1"], None);
    assert!(text(&out.stdout).contains("deleted the Slack tokens of E1"));
    let out = cusp(&db, &["installations", "remove", "T1"], None);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("T1 was already removed"));

    let store = db.store().await;
    let ring = Keyring::parse(KEY_OLD).unwrap();
    assert!(
        store
            .find_installation(&ring, None, "T1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_installation(&ring, Some("E1"), "T5")
            .await
            .unwrap()
            .is_none()
    );
}

async fn rotate_key_reencrypts_every_token_and_refuses_without_keys(backend: Backend) {
    let db = TestDb::new(backend).await;
    seed(&db).await;
    for (key, says) in [
        (None, "CUSP_ENCRYPTION_KEY is not set"),
        (Some("not base64!"), "not valid base64"),
        (Some("c2hvcnQ="), "exactly 32 bytes"),
    ] {
        let out = cusp(&db, &["rotate-key"], key);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(says) && stderr.contains("openssl rand -base64 32"),
            "{stderr}"
        );
    }
    let out = cusp(&db, &["rotate-key"], Some(KEY_NEW));
    assert!(
        !out.status.success(),
        "the old key is needed to read the tokens"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("nothing was re-encrypted") && stderr.contains("CUSP_ENCRYPTION_KEY"),
        "{stderr}"
    );

    let both = format!("{KEY_NEW},{KEY_OLD}");
    let out = cusp(&db, &["rotate-key"], Some(&both));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("re-encrypted 2 installations with key"),
        "{stdout}"
    );
    assert!(stdout.contains("1 already used it"), "{stdout}");

    let store = db.store().await;
    let new_only = Keyring::parse(KEY_NEW).unwrap();
    let t1 = store
        .find_installation(&new_only, None, "T1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t1.bot_token.expose_secret(), "xoxe.xoxb-secret-one");
    assert_eq!(
        t1.refresh_token.unwrap().expose_secret(),
        "xoxe-1-secret-refresh"
    );
    let org = store
        .find_installation(&new_only, Some("E1"), "T7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.bot_token.expose_secret(), "xoxb-secret-org");
}

backend_matrix!(
    installations_list_shows_every_workspace_and_no_token,
    installations_remove_deletes_the_tokens_and_refuses_an_unknown_team,
    rotate_key_reencrypts_every_token_and_refuses_without_keys,
);
