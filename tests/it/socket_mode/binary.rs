//! The real binary: `cusp serve` with only an app token and a bot token.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;
use crate::support::app::TestDb;
use crate::support::fake_slack::FakeSlack;

const BIN: &str = env!("CARGO_BIN_EXE_cusp");

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(slack: &FakeSlack, db_url: &str, app_token: &str, addr: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SLACK_APP_TOKEN", app_token)
        .env("SLACK_BOT_TOKEN", "xoxb-test-token")
        .env("DATABASE_URL", db_url)
        .env("CUSP_ADDR", addr)
        .env("SLACK_API_URL", slack.base_url())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_in_socket_mode_needs_no_signing_secret_and_stops_on_sigterm() {
    let db = TestDb::new(Backend::Sqlite).await;
    let slack = FakeSlack::start().await;
    let socket = FakeSocketMode::start().await;
    slack.serve_socket_mode(&socket.url());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Server(
        serve(
            &slack,
            &db.url,
            TEST_APP_TOKEN,
            &format!("127.0.0.1:{port}"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while socket.opened() == 0 {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("cusp serve exited before connecting: {status:?}");
        }
        assert!(Instant::now() < deadline, "cusp serve never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    socket.send(
        1,
        &envelope(
            "slash_commands",
            "env-bin",
            slash(&format!("reflect {SELLER}")),
            0,
        ),
    );
    let ack = socket.ack(1, "env-bin").await;
    assert_eq!(ack["payload"]["response_type"], "ephemeral", "{ack}");

    let events = reqwest::Client::new()
        .post(format!("{base}/slack/events"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.status(),
        404,
        "no signing secret, no HTTP Slack routes"
    );
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "cusp serve did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    socket.wait_closed(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_bot_token_as_app_token_and_a_rejected_app_token() {
    let db = TestDb::new(Backend::Sqlite).await;
    let slack = FakeSlack::start().await;
    let socket = FakeSocketMode::start().await;
    slack.serve_socket_mode(&socket.url());
    for (token, expected) in [
        ("xoxb-wrong-kind", "starting with xapp-"),
        (
            "xapp-1-revoked",
            "Slack rejected SLACK_APP_TOKEN (invalid_auth)",
        ),
    ] {
        let mut command = serve(&slack, &db.url, token, "127.0.0.1:0");
        let out = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            !stderr.contains(token),
            "the token is never printed: {stderr}"
        );
    }
    assert_eq!(socket.opened(), 0);
}
