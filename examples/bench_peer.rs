//! What `bench/` runs beside cusp, kept out of the cusp binary:
//!
//! - `slack`: the demo's Slack stand-in (`cusp::demo::fake_slack`) on a loopback port,
//!   so `cusp serve` passes `auth.test` and the workers have somewhere to post;
//! - `ceiling`: bare axum doing only what any Slack app must (verify the signature, parse
//!   the form, answer a fixed ephemeral reply): the ceiling cusp is measured against;
//! - `sign`: a pool of signed requests (one per line) that bench/sign.lua cycles through,
//!   because wrk's Lua has no HMAC-SHA256. Every request has its own `trigger_id` or
//!   `event_id`, so each one that is answered must leave exactly one row.
//!
//! Run through bench/run.sh; `cargo run --release --example bench_peer -- --help`.

use std::io::Write;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::{Parser, Subcommand, ValueEnum};
use cusp::demo::fake_slack::{Channel, Person, StandIn, Workspace};
use cusp::slack::payloads::SlashCommand;
use cusp::slack::signature;
use secrecy::SecretString;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Peer,
}

#[derive(Subcommand)]
enum Peer {
    /// Serve the Slack stand-in; prints its API base URL on stdout, runs until killed.
    Slack {
        #[arg(long)]
        token: String,
    },
    /// Serve the bare-axum ceiling on `addr` (POST /slack/commands).
    Ceiling {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        secret: String,
    },
    /// Write `count` signed requests, one per line: `timestamp<TAB>signature<TAB>body`.
    Sign {
        #[arg(long)]
        secret: String,
        #[arg(long, value_enum)]
        kind: Kind,
        #[arg(long)]
        count: u64,
        /// A prefix that makes this pool's ids distinct from every other run's.
        #[arg(long)]
        run: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    Command,
    Event,
}

/// The stand-in's team and the channel and people the requests come from.
const CHANNEL: &str = "C0BENCH";
const USERS: [&str; 4] = ["U0MAYA", "U0SAM", "U0PRIYA", "U0LEO"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Peer::Slack { token } => slack(token).await,
        Peer::Ceiling { addr, secret } => ceiling(&addr, secret).await,
        Peer::Sign {
            secret,
            kind,
            count,
            run,
        } => sign(&secret, kind, count, &run),
    }
}

async fn slack(token: String) -> anyhow::Result<()> {
    let person = |id, name, email| Person { id, name, email };
    let workspace = Workspace::new(
        vec![
            person(USERS[0], "Maya Chen", "maya@bench.example"),
            person(USERS[1], "Sam Ortiz", "sam@bench.example"),
            person(USERS[2], "Priya Nair", "priya@bench.example"),
            person(USERS[3], "Leo Brandt", "leo@bench.example"),
        ],
        vec![Channel {
            id: CHANNEL.to_owned(),
            name: "deals".to_owned(),
            dm_with: None,
        }],
    );
    let stand_in = StandIn::start(workspace, SecretString::from(token)).await?;
    println!("{}", stand_in.base_url());
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn ceiling(addr: &str, secret: String) -> anyhow::Result<()> {
    let app = axum::Router::new()
        .route("/slack/commands", post(answer))
        .with_state(std::sync::Arc::new(secret));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// Verify, parse, fixed answer: the least a Slack app does for a command.
async fn answer(
    State(secret): State<std::sync::Arc<String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, (StatusCode, &'static str)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    signature::verify(
        &[secret.as_bytes()],
        headers
            .get("x-slack-request-timestamp")
            .map(|v| v.as_bytes()),
        headers.get("x-slack-signature").map(|v| v.as_bytes()),
        &body,
        now,
    )
    .map_err(|_| (StatusCode::UNAUTHORIZED, "bad signature"))?;
    let command = SlashCommand::parse(&body).map_err(|_| (StatusCode::BAD_REQUEST, "bad form"))?;
    Ok(Json(json!({
        "response_type": "ephemeral",
        "text": format!("cusp reflection for {}", command.user_id),
    })))
}

fn sign(secret: &str, kind: Kind, count: u64, run: &str) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let user = USERS[(i % USERS.len() as u64) as usize];
        let body = match kind {
            Kind::Command => command_body(run, i, user),
            Kind::Event => event_body(run, i, user, now)?,
        };
        let signature = signature::sign(secret.as_bytes(), now, body.as_bytes());
        writeln!(out, "{now}\t{signature}\t{body}")?;
    }
    out.flush()?;
    Ok(())
}

/// `/cusp reflect` with a deal update (so the observation is logged), the text.
fn command_body(run: &str, i: u64, user: &str) -> String {
    let text = "reflect Acme wants to sign before quarter end";
    serde_urlencoded::to_string([
        ("token", "bench"),
        ("team_id", cusp::demo::fake_slack::TEAM_ID),
        ("team_domain", "bench"),
        ("channel_id", CHANNEL),
        ("channel_name", "deals"),
        ("user_id", user),
        ("user_name", "bench"),
        ("command", "/cusp"),
        ("text", text),
        ("api_app_id", "A0BENCH"),
        (
            "response_url",
            "https://hooks.slack.com/commands/T0DEMO/1/bench",
        ),
        ("trigger_id", &format!("{run}.{i}")),
    ])
    .unwrap_or_default()
}

/// A person's `message` in a channel: cusp stores it in the inbox before the 200.
fn event_body(run: &str, i: u64, user: &str, now: i64) -> anyhow::Result<String> {
    // Slack's `ts` is seconds and six digits of microseconds; distinct per event.
    let ts = format!(
        "{}.{:06}",
        now - 3600 + (i / 1_000_000) as i64,
        i % 1_000_000
    );
    let body = json!({
        "token": "bench",
        "team_id": cusp::demo::fake_slack::TEAM_ID,
        "api_app_id": "A0BENCH",
        "event": {
            "type": "message",
            "channel": CHANNEL,
            "user": user,
            "text": "Acme wants to sign before quarter end, can we offer a discount?",
            "ts": ts,
            "event_ts": ts,
            "channel_type": "channel",
        },
        "type": "event_callback",
        "event_id": format!("Ev{run}x{i}"),
        "event_time": now,
        "authorizations": [{
            "team_id": cusp::demo::fake_slack::TEAM_ID,
            "user_id": cusp::demo::fake_slack::BOT_USER_ID,
            "is_bot": true,
        }],
    });
    Ok(serde_json::to_string(&body)?)
}
