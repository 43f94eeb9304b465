//! The real `cusp serve` binary as a child process, against the fake Slack.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::app::SECRET;
use crate::support::fake_slack::FakeSlack;

const BIN: &str = env!("CARGO_BIN_EXE_cusp");

/// Kills the server when the test ends, however it ends.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// `kill -9`: the process gets no chance to finish or put anything back.
    pub fn kill_9(mut self) {
        // `Child::kill` is SIGKILL on Unix.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary with an empty environment (but `PATH`) and these arguments.
pub fn cusp(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

pub async fn start_server(db_url: &str, slack: &FakeSlack) -> Server {
    start_server_on("127.0.0.1", db_url, slack).await
}

/// `cusp serve` with `CUSP_ADDR={host}:{free port}`, once `/healthz` answers there.
pub async fn start_server_on(host: &str, db_url: &str, slack: &FakeSlack) -> Server {
    let port = free_port();
    let child = cusp(&["serve"])
        .env(
            "SLACK_SIGNING_SECRET",
            format!("rotated-old-secret,{SECRET}"),
        )
        .env("SLACK_BOT_TOKEN", "xoxb-test-token")
        .env("DATABASE_URL", db_url)
        .env("CUSP_ADDR", format!("{host}:{port}"))
        .env("SLACK_API_URL", slack.base_url())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://{host}:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(format!("{}/healthz", server.base)).await {
            if response.status().is_success() {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "cusp serve did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs `body` signed with the test signing secret, timestamped now.
pub async fn signed_post(url: &str, content_type: &str, body: String) -> reqwest::Response {
    let ts = jiff::Timestamp::now().as_second();
    reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts.to_string())
        .header(
            "x-slack-signature",
            cusp::slack::signature::sign(SECRET.as_bytes(), ts, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}
