//! The real `cusp serve` binary choosing its mode from the environment: OAuth mode with
//! its install pages, and the settings it refuses to start with.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::app::{Backend, SECRET, TestDb};
use crate::support::fake_slack::{FakeSlack, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET};
use crate::support::oauth_app::ENCRYPTION_KEY;

const BIN: &str = env!("CARGO_BIN_EXE_cusp");

fn serve() -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SLACK_SIGNING_SECRET", SECRET)
        .env("SLACK_CLIENT_ID", OAUTH_CLIENT_ID)
        .env("SLACK_CLIENT_SECRET", OAUTH_CLIENT_SECRET)
        .env("CUSP_ADDR", "127.0.0.1:0");
    command
}

#[test]
fn serve_refuses_oauth_mode_without_an_encryption_key_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cusp.db");
    let out = serve()
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("CUSP_ENCRYPTION_KEY") && stderr.contains("openssl rand -base64 32"),
        "{stderr}"
    );
    assert!(
        !db.exists(),
        "no database is created before the settings are valid"
    );

    let out = serve()
        .env("CUSP_ENCRYPTION_KEY", "not-base64!")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CUSP_ENCRYPTION_KEY"), "{stderr}");
}

#[test]
fn serve_with_a_bot_token_and_client_credentials_asks_to_choose_one_mode() {
    let out = serve()
        .env("CUSP_ENCRYPTION_KEY", ENCRYPTION_KEY)
        .env("SLACK_BOT_TOKEN", "xoxb-test-token")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("choose one mode"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_in_oauth_mode_starts_with_no_workspace_and_offers_the_install_page() {
    let db = TestDb::new(Backend::Sqlite).await;
    let slack = FakeSlack::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = serve()
        .env("CUSP_ENCRYPTION_KEY", ENCRYPTION_KEY)
        .env("DATABASE_URL", &db.url)
        .env("SLACK_API_URL", slack.base_url())
        .env("CUSP_ADDR", format!("127.0.0.1:{port}"))
        .env("CUSP_PUBLIC_URL", "https://cusp.example.com/")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let index = loop {
        if let Ok(response) = reqwest::get(format!("{base}/")).await {
            break response.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "cusp serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let install = reqwest::get(format!("{base}/slack/install")).await.unwrap();
    let status = install.status();
    let page = install.text().await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(index.contains("GET  /slack/install"), "{index}");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("https://slack.com/oauth/v2/authorize?")
            && page
                .contains("redirect_uri=https%3A%2F%2Fcusp.example.com%2Fslack%2Foauth_redirect")
            && page.contains(&format!("client_id={OAUTH_CLIENT_ID}")),
        "{page}"
    );
    // No token to check at start: cusp asked Slack nothing.
    assert!(slack.calls().is_empty(), "{:?}", slack.calls());
}
