//! `cusp demo`: cusp's main job end to end, with no Slack workspace and no network.
//!
//! It starts the real server (router, inbox and outbox workers, digest scheduler) on a
//! fresh SQLite file, with generated secrets and an in-process stand-in for Slack's Web
//! API on 127.0.0.1 ([`fake_slack`]). Then [`script`] drives it the way Slack would, over
//! HTTP with signed requests: a week in two deal channels, button clicks, a CRM webhook,
//! one 429, the weekly digest. Every step is checked against what the stand-in recorded
//! and what the database holds; the conversation is printed ([`render_text`]) and can be
//! written as one HTML page ([`render_html`]).
//!
//! Nothing here is on a production path: `serve` never reaches this module.

pub mod fake_slack;
pub mod render_html;
pub mod render_text;
pub(crate) mod script;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::app::{build_router, identify};
use crate::engine::Engine;
use crate::slack::web_api::SLACK_CALL_TIMEOUT;
use crate::slack::web_api::{SlackApiError, SlackClient};
use crate::state::AppState;
use crate::store::{Store, StoreError};
use fake_slack::{StandIn, Workspace};

/// Where the demo's database goes unless `--database-url` says otherwise.
pub const DEFAULT_DATABASE: &str = "cusp-demo.db";
/// How long cusp may take to handle what one step sent before the demo gives up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(15);

#[derive(clap::Args, Clone, Debug)]
pub struct DemoArgs {
    /// The demo's SQLite database, `sqlite://PATH` (default `sqlite://cusp-demo.db`,
    /// replaced on every run). An existing file is only replaced with `--replace`.
    #[arg(long, value_name = "sqlite://PATH")]
    pub database_url: Option<String>,
    /// Replace the file named by `--database-url` if it exists.
    #[arg(long)]
    pub replace: bool,
    /// Also write the conversation as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Where the demo's database goes and whether an existing file may be replaced.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub database: PathBuf,
    pub replace: bool,
}

impl DemoArgs {
    pub fn options(&self) -> Result<DemoOptions, DemoError> {
        match self.database_url.as_deref() {
            None => Ok(DemoOptions {
                database: PathBuf::from(DEFAULT_DATABASE),
                // The default file is the demo's own: each run starts it afresh.
                replace: true,
            }),
            Some(url) => {
                let path = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .map(|p| p.split('?').next().unwrap_or(p))
                    .filter(|p| !p.is_empty() && *p != ":memory:")
                    .ok_or_else(|| DemoError::NotSqlite(crate::store::redact_url(url)))?;
                Ok(DemoOptions {
                    database: PathBuf::from(path),
                    replace: self.replace,
                })
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "the demo needs a fresh SQLite file: `{0}` is not `sqlite://PATH` (leave --database-url out to use ./{DEFAULT_DATABASE})"
    )]
    NotSqlite(String),
    #[error(
        "{0} already exists; the demo starts from an empty database. Delete it, choose another --database-url, or add --replace"
    )]
    Exists(PathBuf),
    #[error("could not remove the previous demo database {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Database { path: PathBuf, source: StoreError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not listen on 127.0.0.1: {0}")]
    Listen(std::io::Error),
    #[error("the stand-in Slack: {0}")]
    Slack(#[from] SlackApiError),
    #[error("request to cusp failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error(
        "cusp still had {inbox} event(s) and {outbox} delivery(ies) pending {SETTLE_TIMEOUT:?} after {step}"
    )]
    Stuck {
        step: String,
        inbox: i64,
        outbox: i64,
    },
    #[error("the weekly digest could not be composed: {0}")]
    Digest(#[from] crate::bot::digest::DigestError),
}

/// What one step of the script did, and what went wrong if it did not do what it should.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub day: String,
    pub action: String,
    pub outcome: String,
    pub problem: Option<String>,
}

/// The run's figures, read from the stand-in's records and the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages people (not bots) posted in the deal channels.
    pub messages_from_people: usize,
    /// Deal updates cusp logged from channel messages (thread replies included).
    pub deal_updates_in_channels: usize,
    /// Observations in the database: channel updates, `/cusp reflect` and the CRM change.
    pub observations_logged: i64,
    /// Threaded nudges cusp posted in channels.
    pub nudges: usize,
    pub reactions: usize,
    /// Messages cusp sent by DM (the CRM prompt).
    pub direct_messages: usize,
    /// Notes only one person saw (command answers, button acknowledgements).
    pub ephemeral_notes: usize,
    pub reflections_saved: usize,
    /// 429s the stand-in answered whose call cusp repeated only after `Retry-After`.
    pub rate_limits_respected: usize,
    pub rate_limits_answered: usize,
    pub digest_posted: bool,
    /// Web API calls cusp made.
    pub slack_calls: usize,
}

/// Everything a finished run leaves for the renderers and the caller.
#[derive(Debug, Clone)]
pub struct DemoReport {
    pub team_id: String,
    pub database: PathBuf,
    pub slack_api_url: String,
    pub server_url: String,
    pub workspace: Workspace,
    pub steps: Vec<StepResult>,
    pub summary: Summary,
    pub elapsed: Duration,
}

impl DemoReport {
    pub fn problems(&self) -> Vec<&StepResult> {
        self.steps.iter().filter(|s| s.problem.is_some()).collect()
    }

    /// The command that exports what the demo logged.
    pub fn export_command(&self) -> String {
        format!(
            "cusp export --format json --team {} --database-url sqlite://{}",
            self.team_id,
            self.database.display()
        )
    }
}

/// Removes the demo's previous database (and SQLite's side files), or refuses.
fn prepare_database(options: &DemoOptions) -> Result<(), DemoError> {
    let path = &options.database;
    let side_files = ["-wal", "-shm", "-journal"].map(|suffix| {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        PathBuf::from(p)
    });
    if path.exists() && !options.replace {
        return Err(DemoError::Exists(path.clone()));
    }
    for file in std::iter::once(path.clone()).chain(side_files) {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(DemoError::Remove { path: file, source }),
        }
    }
    Ok(())
}

fn random_secret(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// Runs the whole demo and returns what happened; steps that did not go as expected are
/// in [`DemoReport::problems`]. Errors mean the demo itself could not run.
pub async fn run(options: &DemoOptions) -> Result<DemoReport, DemoError> {
    run_with(options, |_| {}).await
}

/// [`run`], with a chance to change the stand-in's behaviour before the week starts
/// (tests use it to see a step fail).
pub async fn run_with(
    options: &DemoOptions,
    prepare: impl FnOnce(&StandIn),
) -> Result<DemoReport, DemoError> {
    let started = Instant::now();
    prepare_database(options)?;
    let url = format!("sqlite://{}", options.database.display());
    let db_err = |source| DemoError::Database {
        path: options.database.clone(),
        source,
    };
    let store = Store::connect(&url).await.map_err(db_err)?;
    store.migrate().await.map_err(db_err)?;

    let token = random_secret("xoxb-demo-");
    let stand_in = StandIn::start(script::workspace(), SecretString::from(token.clone()))
        .await
        .map_err(DemoError::Listen)?;
    let slack = SlackClient::new(
        &stand_in.base_url(),
        SecretString::from(token),
        SLACK_CALL_TIMEOUT,
    )?;
    let identity = identify(&slack).await.map_err(|e| {
        SlackApiError::InvalidConfig(format!("auth.test on the stand-in failed: {e:#}"))
    })?;
    let team_id = identity.team_id.as_str().to_owned();
    let signing_secret = random_secret("");
    let webhook_secret = random_secret("");
    let state = AppState::new(
        store.clone(),
        Engine::builtin(),
        slack,
        vec![SecretString::from(signing_secret.clone())],
        identity,
    )
    .with_webhook_secret(Some(SecretString::from(webhook_secret.clone())));

    // The same workers and router `cusp serve` runs.
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let workers = [
        tokio::spawn(crate::jobs::inbox_worker::run(
            state.clone(),
            shutdown_rx.clone(),
        )),
        tokio::spawn(crate::jobs::outbox_worker::run(
            state.clone(),
            shutdown_rx.clone(),
        )),
        tokio::spawn(crate::jobs::scheduler::run(
            state.clone(),
            shutdown_rx.clone(),
        )),
    ];
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(DemoError::Listen)?;
    let addr = listener.local_addr().map_err(DemoError::Listen)?;
    let mut server_stop = shutdown_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, build_router(state.clone()))
            .with_graceful_shutdown(async move {
                let _ = server_stop.changed().await;
            })
            .await
    });

    let driver = Driver {
        http: reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()?,
        base: format!("http://{addr}"),
        signing_secret,
        webhook_secret,
        team_id: team_id.clone(),
        store: store.clone(),
    };
    prepare(&stand_in);
    let outcome = script::run(&driver, &stand_in).await;

    let _ = shutdown_tx.send(true);
    let _ = server.await;
    for worker in workers {
        let _ = worker.await;
    }
    let steps = outcome?;
    let workspace = stand_in.snapshot();
    let summary = summarize(&store, &team_id, &workspace).await?;
    store.close().await;
    Ok(DemoReport {
        team_id,
        database: options.database.clone(),
        slack_api_url: stand_in.base_url(),
        server_url: driver.base,
        workspace,
        steps,
        summary,
        elapsed: started.elapsed(),
    })
}

async fn summarize(store: &Store, team: &str, ws: &Workspace) -> Result<Summary, DemoError> {
    use fake_slack::Author;
    let in_deal_channels =
        |m: &&fake_slack::Message| script::DEAL_CHANNELS.contains(&m.channel.as_str());
    let mut reflections = 0;
    for person in &ws.people {
        reflections += store.reflections_of(team, person.id).await?.len();
    }
    let mut by_source = std::collections::HashMap::<String, usize>::new();
    store
        .for_each_observation::<StoreError>(
            team,
            &crate::store::ExportFilter::default(),
            &mut |row| {
                *by_source.entry(row.source).or_default() += 1;
                Ok(())
            },
        )
        .await?;
    let rate_limited: Vec<_> = ws.calls.iter().filter(|c| c.status == 429).collect();
    let respected = rate_limited
        .iter()
        .filter(|limited| {
            script::retried_after(ws, limited)
                .is_some_and(|(waited, _)| waited >= Duration::from_secs(1))
        })
        .count();
    Ok(Summary {
        messages_from_people: ws
            .messages
            .iter()
            .filter(in_deal_channels)
            .filter(|m| matches!(m.author, Author::Person(_)))
            .count(),
        deal_updates_in_channels: by_source.get("message").copied().unwrap_or(0),
        observations_logged: store.count_observations(team).await?,
        nudges: ws
            .messages
            .iter()
            .filter(in_deal_channels)
            .filter(|m| m.author == Author::Cusp && m.thread_ts.is_some())
            .count(),
        reactions: ws.messages.iter().map(|m| m.reactions.len()).sum(),
        direct_messages: ws
            .messages
            .iter()
            .filter(|m| m.author == Author::Cusp)
            .filter(|m| ws.channel(&m.channel).is_some_and(|c| c.dm_with.is_some()))
            .count(),
        ephemeral_notes: ws.ephemerals.len(),
        reflections_saved: reflections,
        rate_limits_respected: respected,
        rate_limits_answered: rate_limited.len(),
        digest_posted: ws
            .messages
            .iter()
            .any(|m| m.channel == script::DIGEST_CHANNEL && m.author == Author::Cusp),
        slack_calls: ws.calls.len(),
    })
}

/// Sends what Slack and a CRM would send to cusp, signed with the generated secrets.
struct Driver {
    http: reqwest::Client,
    base: String,
    signing_secret: String,
    webhook_secret: String,
    team_id: String,
    store: Store,
}

impl Driver {
    async fn slack_request(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        extra: &[(&str, String)],
    ) -> Result<(u16, String), DemoError> {
        let ts = jiff::Timestamp::now().as_second();
        let signature =
            crate::slack::signature::sign(self.signing_secret.as_bytes(), ts, body.as_bytes());
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature);
        for (name, value) in extra {
            request = request.header(*name, value);
        }
        let response = request.body(body).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    /// An Events API `event_callback`; `retry` sets `X-Slack-Retry-Num` as Slack does when
    /// it redelivers.
    async fn event(
        &self,
        event_id: &str,
        event: Value,
        retry: Option<u32>,
    ) -> Result<u16, DemoError> {
        let envelope = json!({
            "token": "demo-verification-token-unused",
            "team_id": self.team_id,
            "api_app_id": "A0CUSPDEMO",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": jiff::Timestamp::now().as_second(),
            "authorizations": [{ "team_id": self.team_id, "user_id": fake_slack::BOT_USER_ID, "is_bot": true }],
        });
        let extra: Vec<(&str, String)> = match retry {
            Some(n) => vec![
                ("x-slack-retry-num", n.to_string()),
                ("x-slack-retry-reason", "http_timeout".to_owned()),
            ],
            None => Vec::new(),
        };
        let (status, _) = self
            .slack_request(
                "/slack/events",
                "application/json",
                envelope.to_string(),
                &extra,
            )
            .await?;
        Ok(status)
    }

    /// `/cusp <text>` typed by `user` in `channel`; returns cusp's JSON answer.
    async fn command(
        &self,
        channel: &str,
        channel_name: &str,
        user: &str,
        text: &str,
        trigger: &str,
    ) -> Result<(u16, Value), DemoError> {
        let form = serde_urlencoded::to_string([
            ("team_id", self.team_id.as_str()),
            ("team_domain", "northwind-demo"),
            ("channel_id", channel),
            ("channel_name", channel_name),
            ("user_id", user),
            ("command", "/cusp"),
            ("text", text),
            ("api_app_id", "A0CUSPDEMO"),
            (
                "response_url",
                "https://hooks.slack.com/commands/T0DEMO/1/demo",
            ),
            ("trigger_id", trigger),
        ])
        .unwrap_or_default();
        let (status, body) = self
            .slack_request(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                form,
                &[],
            )
            .await?;
        Ok((
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        ))
    }

    /// A `block_actions` or `view_submission` payload, form-encoded as Slack sends it.
    async fn interaction(&self, payload: &Value) -> Result<(u16, String), DemoError> {
        let form =
            serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap_or_default();
        self.slack_request(
            "/slack/interactivity",
            "application/x-www-form-urlencoded",
            form,
            &[],
        )
        .await
    }

    /// `POST /hooks/deals`, signed as README's "CRM deal updates" describes.
    async fn crm(&self, body: &Value, delivery: &str) -> Result<(u16, Value), DemoError> {
        let body = body.to_string();
        let ts = jiff::Timestamp::now().as_second();
        let signature =
            crate::server::crm_signature::sign(self.webhook_secret.as_bytes(), ts, body.as_bytes());
        let response = self
            .http
            .post(format!("{}/hooks/deals", self.base))
            .header("content-type", "application/json")
            .header("x-cusp-timestamp", ts.to_string())
            .header("x-cusp-signature", signature)
            .header("x-cusp-delivery", delivery)
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Waits (polling, bounded) until cusp has handled every stored event and delivered
    /// or given up every outbox row.
    async fn settle(&self, step: &str) -> Result<(), DemoError> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let inbox = self.store.inbox_backlog(&self.team_id).await?;
            let outbox = self.store.outbox_backlog(&self.team_id).await?;
            if inbox == 0 && outbox == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DemoError::Stuck {
                    step: step.to_owned(),
                    inbox,
                    outbox,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
