//! The demo's stand-in for Slack's Web API, on 127.0.0.1 only.
//!
//! It holds the demo workspace (people, channels, DMs), keeps every message, reaction,
//! ephemeral note and opened modal, and records every call cusp makes, with when it came
//! and how it was answered. The renderers read the conversation from here, and the script
//! checks each step against it. One 429 can be armed per method, to show the outbox
//! waiting out `Retry-After`.
//!
//! This is part of the binary, not the test fake (`tests/it/support/fake_slack.rs`): it
//! answers only what cusp calls, the way Slack documents it, with no fault scripting
//! beyond the 429.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use tokio::sync::watch;

pub const TEAM_ID: &str = "T0DEMO";
pub const TEAM_NAME: &str = "Northwind Sales (demo)";
pub const BOT_USER_ID: &str = "U0CUSP";
pub const BOT_ID: &str = "B0CUSP";

/// A person in the demo workspace.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: &'static str,
    pub name: &'static str,
    pub email: &'static str,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub name: String,
    /// For a DM: the person cusp talks to.
    pub dm_with: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Person(String),
    Cusp,
    /// Another app's bot (e.g. a CRM integration posting into the channel).
    OtherBot(String),
}

#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub author: Author,
    pub text: String,
    /// `Value::Null` when none were sent.
    pub blocks: Value,
    pub metadata: Value,
    pub edited: bool,
    /// Emoji names, in the order they were added (by cusp).
    pub reactions: Vec<String>,
    /// The scenario's day label ("Monday"), for people's messages.
    pub day: Option<String>,
}

/// A note only one person sees: a slash command's answer or `chat.postEphemeral`.
#[derive(Debug, Clone)]
pub struct Ephemeral {
    pub channel: String,
    pub user: String,
    pub ts: String,
    /// What prompted it, e.g. `/cusp reflect …` (shown above the note).
    pub context: Option<String>,
    pub text: String,
    pub blocks: Value,
}

/// A modal cusp opened (`views.open`), and what the person typed into it, once saved.
#[derive(Debug, Clone)]
pub struct OpenedView {
    pub id: String,
    pub user: Option<String>,
    pub view: Value,
    pub submitted: Option<Vec<(String, String)>>,
    pub shared: bool,
}

/// One Web API call as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Map<String, Value>,
    pub at: Instant,
    pub status: u16,
    /// `None` for `ok: true`.
    pub error: Option<String>,
}

impl Call {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    /// The outbox's idempotency key, from the message metadata cusp attaches.
    pub fn outbox_key(&self) -> Option<String> {
        let metadata: Value = serde_json::from_str(self.param("metadata")?).ok()?;
        metadata
            .get("event_payload")?
            .get("key")?
            .as_str()
            .map(str::to_owned)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Workspace {
    pub people: Vec<Person>,
    pub channels: Vec<Channel>,
    pub messages: Vec<Message>,
    pub ephemerals: Vec<Ephemeral>,
    pub views: Vec<OpenedView>,
    pub calls: Vec<Call>,
    /// Method → Retry-After seconds of the one 429 armed for its next call.
    armed_429: HashMap<String, u64>,
    /// Method → the `ok: false` error it always answers (to see the demo's checks fail).
    refused: HashMap<String, String>,
    last_ts_micros: u64,
}

impl Workspace {
    /// A workspace with these people and channels and nothing said yet.
    pub fn new(people: Vec<Person>, channels: Vec<Channel>) -> Workspace {
        Workspace {
            people,
            channels,
            ..Workspace::default()
        }
    }

    pub fn person(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }

    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// The display name of whoever wrote `author`.
    pub fn author_name(&self, author: &Author) -> String {
        match author {
            Author::Person(id) => self
                .person(id)
                .map_or_else(|| id.clone(), |p| p.name.to_owned()),
            Author::Cusp => "cusp".to_owned(),
            Author::OtherBot(name) => name.clone(),
        }
    }

    pub fn message(&self, channel: &str, ts: &str) -> Option<&Message> {
        self.messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)
    }

    /// Top-level messages of a channel, oldest first.
    pub fn top_level(&self, channel: &str) -> Vec<&Message> {
        let mut out: Vec<&Message> = self
            .messages
            .iter()
            .filter(|m| m.channel == channel && m.thread_ts.as_ref().is_none_or(|t| *t == m.ts))
            .collect();
        out.sort_by_key(|m| ts_key(&m.ts));
        out
    }

    /// Replies in the thread under `root`, oldest first.
    pub fn replies(&self, channel: &str, root: &str) -> Vec<&Message> {
        let mut out: Vec<&Message> = self
            .messages
            .iter()
            .filter(|m| {
                m.channel == channel && m.ts != root && m.thread_ts.as_deref() == Some(root)
            })
            .collect();
        out.sort_by_key(|m| ts_key(&m.ts));
        out
    }

    /// cusp's replies in the thread under `root`.
    pub fn cusp_replies(&self, channel: &str, root: &str) -> Vec<&Message> {
        self.replies(channel, root)
            .into_iter()
            .filter(|m| m.author == Author::Cusp)
            .collect()
    }

    pub fn ephemerals_in(&self, channel: &str) -> Vec<&Ephemeral> {
        self.ephemerals
            .iter()
            .filter(|e| e.channel == channel)
            .collect()
    }

    pub fn calls_to(&self, method: &str) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.method == method).collect()
    }

    fn next_ts(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let micros = now.max(self.last_ts_micros + 1);
        self.last_ts_micros = micros;
        format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }

    fn dm_channel_for(&mut self, user: &str) -> String {
        if let Some(c) = self
            .channels
            .iter()
            .find(|c| c.dm_with.as_deref() == Some(user))
        {
            return c.id.clone();
        }
        let id = format!("D{}", user.trim_start_matches('U'));
        let name = self
            .person(user)
            .map_or_else(|| user.to_owned(), |p| p.name.to_owned());
        self.channels.push(Channel {
            id: id.clone(),
            name,
            dm_with: Some(user.to_owned()),
        });
        id
    }
}

/// Slack ts strings as comparable numbers, without float rounding.
pub fn ts_key(ts: &str) -> (u64, u64) {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    (secs.parse().unwrap_or(0), frac.parse().unwrap_or(0))
}

type Shared = Arc<Mutex<Workspace>>;

#[derive(Clone)]
struct ServerState {
    workspace: Shared,
    token: Arc<SecretString>,
}

/// The running stand-in. Dropping it stops the server.
pub struct StandIn {
    addr: SocketAddr,
    workspace: Shared,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.server.abort();
    }
}

impl StandIn {
    /// Serves `workspace` on an ephemeral loopback port; calls must carry `token`.
    pub async fn start(workspace: Workspace, token: SecretString) -> std::io::Result<StandIn> {
        let workspace: Shared = Arc::new(Mutex::new(workspace));
        let app = Router::new()
            .route("/api/{method}", post(handle))
            .with_state(ServerState {
                workspace: workspace.clone(),
                token: Arc::new(token),
            });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                })
                .await;
        });
        Ok(StandIn {
            addr,
            workspace,
            stop,
            server,
        })
    }

    /// What `SLACK_API_URL` would be set to.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn workspace(&self) -> MutexGuard<'_, Workspace> {
        // A panic while holding the lock cannot leave the workspace half-written in a way
        // that matters to a demo, so a poisoned lock is simply taken over.
        self.workspace
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Workspace {
        self.workspace().clone()
    }

    /// A person's message, as Slack would store it before sending the event; returns its ts.
    pub fn post_as_person(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
        day: &str,
    ) -> String {
        self.post(
            channel,
            Author::Person(user.to_owned()),
            text,
            thread_ts,
            Some(day),
        )
    }

    /// Another app's bot posting in a channel; returns its ts.
    pub fn post_as_bot(&self, channel: &str, bot_name: &str, text: &str, day: &str) -> String {
        self.post(
            channel,
            Author::OtherBot(bot_name.to_owned()),
            text,
            None,
            Some(day),
        )
    }

    fn post(
        &self,
        channel: &str,
        author: Author,
        text: &str,
        thread_ts: Option<&str>,
        day: Option<&str>,
    ) -> String {
        let mut ws = self.workspace();
        let ts = ws.next_ts();
        ws.messages.push(Message {
            channel: channel.to_owned(),
            ts: ts.clone(),
            thread_ts: thread_ts.map(str::to_owned),
            author,
            text: text.to_owned(),
            blocks: Value::Null,
            metadata: Value::Null,
            edited: false,
            reactions: Vec::new(),
            day: day.map(str::to_owned),
        });
        ts
    }

    /// A person edits their message; returns the edit's event ts.
    pub fn edit(&self, channel: &str, ts: &str, text: &str) -> String {
        let mut ws = self.workspace();
        let event_ts = ws.next_ts();
        if let Some(m) = ws
            .messages
            .iter_mut()
            .find(|m| m.channel == channel && m.ts == ts)
        {
            m.text = text.to_owned();
            m.edited = true;
        }
        event_ts
    }

    /// Shows a slash command's inline answer, as Slack does, to the person who typed it.
    pub fn show_ephemeral(&self, channel: &str, user: &str, context: &str, answer: &Value) {
        let mut ws = self.workspace();
        let ts = ws.next_ts();
        ws.ephemerals.push(Ephemeral {
            channel: channel.to_owned(),
            user: user.to_owned(),
            ts,
            context: Some(context.to_owned()),
            text: answer
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            blocks: answer.get("blocks").cloned().unwrap_or(Value::Null),
        });
    }

    /// Records what a person typed into an opened modal.
    pub fn record_submission(&self, view_id: &str, answers: Vec<(String, String)>, shared: bool) {
        let mut ws = self.workspace();
        if let Some(v) = ws.views.iter_mut().find(|v| v.id == view_id) {
            v.submitted = Some(answers);
            v.shared = shared;
        }
    }

    /// Every call to `method` is answered `{"ok": false, "error": code}` from now on, as
    /// Slack does for a permanent problem (e.g. `not_in_channel`).
    pub fn refuse(&self, method: &str, code: &str) {
        self.workspace()
            .refused
            .insert(method.to_owned(), code.to_owned());
    }

    /// The next call to `method` is answered `429 Too Many Requests` with this `Retry-After`.
    pub fn arm_rate_limit(&self, method: &str, retry_after: Duration) {
        self.workspace()
            .armed_429
            .insert(method.to_owned(), retry_after.as_secs().max(1));
    }
}

async fn handle(
    State(state): State<ServerState>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = decode_form(&body);
    let expected = format!("Bearer {}", state.token.expose_secret());
    let auth_ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    let mut ws = state
        .workspace
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let at = Instant::now();
    let armed = if auth_ok {
        ws.armed_429.remove(&method)
    } else {
        None
    };
    if let Some(secs) = armed {
        ws.calls.push(Call {
            method,
            params,
            at,
            status: 429,
            error: Some("ratelimited".into()),
        });
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({ "ok": false, "error": "ratelimited" })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return response;
    }
    let answer = if let Some(code) = ws.refused.get(&method) {
        Err(code.clone())
    } else if auth_ok {
        answer(&mut ws, &method, &params)
    } else {
        Err("invalid_auth".to_owned())
    };
    ws.calls.push(Call {
        method,
        params,
        at,
        status: 200,
        error: answer.as_ref().err().cloned(),
    });
    match answer {
        Ok(mut body) => {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("ok".into(), Value::Bool(true));
            }
            axum::Json(body).into_response()
        }
        Err(code) => axum::Json(json!({ "ok": false, "error": code })).into_response(),
    }
}

/// cusp sends every call form-encoded, with `blocks`, `metadata` and `view` as JSON strings.
fn decode_form(body: &[u8]) -> Map<String, Value> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

fn json_param(p: &Map<String, Value>, name: &str) -> Value {
    p.get(name)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

fn answer(ws: &mut Workspace, method: &str, p: &Map<String, Value>) -> Result<Value, String> {
    let s = |name: &str| {
        p.get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    match method {
        "auth.test" => Ok(json!({
            "url": "https://northwind-demo.slack.com/", "team": TEAM_NAME, "user": "cusp",
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
        })),
        "chat.postMessage" => {
            let channel = s("channel").ok_or("channel_not_found")?;
            // As Slack does: a post to a user id lands in the bot's DM with that person.
            let channel = if channel.starts_with('U') {
                ws.dm_channel_for(&channel)
            } else {
                channel
            };
            if ws.channel(&channel).is_none() {
                return Err("channel_not_found".into());
            }
            let text = s("text").unwrap_or_default();
            let blocks = json_param(p, "blocks");
            if text.is_empty() && blocks.is_null() {
                return Err("no_text".into());
            }
            let ts = ws.next_ts();
            ws.messages.push(Message {
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts: s("thread_ts"),
                author: Author::Cusp,
                text,
                blocks,
                metadata: json_param(p, "metadata"),
                edited: false,
                reactions: Vec::new(),
                day: None,
            });
            Ok(json!({ "channel": channel, "ts": ts }))
        }
        "chat.postEphemeral" => {
            let (Some(channel), Some(user)) = (s("channel"), s("user")) else {
                return Err("channel_not_found".into());
            };
            let ts = ws.next_ts();
            ws.ephemerals.push(Ephemeral {
                channel,
                user,
                ts: ts.clone(),
                context: None,
                text: s("text").unwrap_or_default(),
                blocks: json_param(p, "blocks"),
            });
            Ok(json!({ "message_ts": ts }))
        }
        "reactions.add" => {
            let (channel, ts, name) = (
                s("channel").unwrap_or_default(),
                s("timestamp").unwrap_or_default(),
                s("name").ok_or("invalid_name")?,
            );
            let message = ws
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
                .ok_or("message_not_found")?;
            if message.reactions.contains(&name) {
                return Err("already_reacted".into());
            }
            message.reactions.push(name);
            Ok(json!({}))
        }
        "views.open" => {
            s("trigger_id").ok_or("invalid_trigger_id")?;
            let mut view = json_param(p, "view");
            if !view.is_object() {
                return Err("invalid_arguments".into());
            }
            let id = format!("V0DEMO{}", ws.views.len() + 1);
            view["id"] = json!(id);
            ws.views.push(OpenedView {
                id,
                user: None,
                view: view.clone(),
                submitted: None,
                shared: false,
            });
            Ok(json!({ "view": view }))
        }
        "conversations.open" => {
            let user = s("users").ok_or("invalid_arguments")?;
            if user.contains(',') || ws.person(&user).is_none() {
                return Err("user_not_found".into());
            }
            let id = ws.dm_channel_for(&user);
            Ok(json!({ "channel": { "id": id } }))
        }
        "users.lookupByEmail" => {
            let email = s("email").ok_or("invalid_arguments")?;
            let person = ws
                .people
                .iter()
                .find(|p| p.email.eq_ignore_ascii_case(&email))
                .ok_or("users_not_found")?;
            Ok(
                json!({ "user": { "id": person.id, "team_id": TEAM_ID, "real_name": person.name,
                                  "profile": { "email": person.email } } }),
            )
        }
        "conversations.history" | "conversations.replies" => {
            // Read only when an earlier delivery may have reached Slack: cusp looks for
            // its own post by metadata before posting again.
            let channel = s("channel").ok_or("channel_not_found")?;
            let thread = if method == "conversations.replies" {
                Some(s("ts").ok_or("thread_not_found")?)
            } else {
                None
            };
            let messages: Vec<Value> = ws
                .messages
                .iter()
                .filter(|m| m.channel == channel)
                .filter(|m| match &thread {
                    Some(root) => m.ts == *root || m.thread_ts.as_deref() == Some(root),
                    None => m.thread_ts.as_ref().is_none_or(|t| *t == m.ts),
                })
                .map(|m| json!({ "type": "message", "ts": m.ts, "text": m.text, "metadata": m.metadata }))
                .collect();
            Ok(json!({ "messages": messages, "has_more": false }))
        }
        _ => Err("unknown_method".into()),
    }
}
