//! A stateful fake of Slack's Web API for integration tests, served on 127.0.0.1.
//!
//! It records every call, answers the methods cusp uses with Slack-shaped JSON, keeps
//! posted messages so `conversations.history/replies` can return them, and takes
//! one-shot scripted faults (429, 5xx, `ok:false`, delays, "posted but the answer was
//! lost") per method to exercise retries and reconciliation.
//!
//! It serves one or more workspaces (support/fake_slack/workspaces.rs): each call is
//! answered for the workspace whose bot token made it, and recorded with that team. In
//! strict mode (support/fake_slack/examined.rs) a test must examine every call.
//!
//! Simplifications: `ts` values come from the real clock (so `oldest` computed from
//! `now` works); `conversations.replies` applies `oldest` to the parent too; there is no
//! pagination; `reply_broadcast` is recorded but not shown in channel history.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};

// `oauth.v2.access` (install and token rotation) lives in its own file.
mod oauth;
pub use oauth::{OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAuthGrant};
// Several workspaces, each call checked against its token's workspace.
mod workspaces;
pub use workspaces::FakeWorkspace;
// Strict mode: every call must be examined by the test.
mod examined;

pub const TEST_TOKEN: &str = "xoxb-test-token";
pub const TEAM_ID: &str = "T_TEST";
pub const BOT_USER_ID: &str = "U_CUSP";
pub const BOT_ID: &str = "B_CUSP";

/// A one-shot answer for the next call to a method (FIFO per method), used before the
/// default behaviour.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// HTTP 429 with `Retry-After` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited { retry_after_secs: u64 },
    /// This HTTP status with an empty body.
    Status(u16),
    /// HTTP 200 with `{"ok":false,"error":<code>}`.
    OkFalse(&'static str),
    /// Behave normally, but answer only after this long (for client timeouts).
    Delay(Duration),
    /// Perform the call (the message exists) but answer 500: Slack accepted it and the
    /// answer was lost.
    DropAfterPost,
    /// Sit on the request for this long without doing it, then answer 503: a Slack that
    /// never got round to it. A caller that gives up first (timeout, crash) leaves no
    /// effect behind.
    Hang(Duration),
    /// Do the call only after this long, then answer: a Slack slow to act, so a caller
    /// that looks for the effect meanwhile does not find it yet.
    Slow(Duration),
    /// HTTP 200 with `{"ok":false,"error":"ratelimited"}` and a `Retry-After` header: a
    /// rate limit that does not come as a 429.
    OkFalseRateLimited { retry_after_secs: u64 },
}

#[derive(Debug, Clone)]
pub struct RecordedCall {
    pub method: String,
    /// Decoded form or JSON body. Form values are strings, so `blocks`/`metadata` sent as
    /// form fields stay JSON strings; use [`RecordedCall::param_json`].
    pub params: Map<String, Value>,
    pub auth_present: bool,
    /// The token is a bot token of a workspace the fake serves.
    pub auth_ok: bool,
    /// The team whose token made the call (`None`: no token, or one the fake never issued).
    pub team: Option<String>,
    /// The bearer token the call carried.
    pub token: Option<String>,
    /// When the call reached the fake (for "not before Retry-After" checks).
    pub at: Instant,
}

impl RecordedCall {
    /// A parameter as text (numbers and booleans are formatted).
    pub fn param_str(&self, name: &str) -> Option<String> {
        param_str(&self.params, name)
    }

    /// A parameter as JSON, parsing it if it was sent as a JSON string.
    pub fn param_json(&self, name: &str) -> Option<Value> {
        param_json(&self.params, name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PostedMessage {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: String,
    /// `Value::Null` when none were sent.
    pub blocks: Value,
    pub metadata: Value,
    pub user: String,
    pub bot_id: Option<String>,
    /// The workspace whose token posted it (`None` for a seeded message).
    pub team: Option<String>,
}

impl PostedMessage {
    fn to_json(&self, with_metadata: bool) -> Value {
        let mut m = json!({
            "type": "message", "ts": self.ts, "text": self.text, "user": self.user,
        });
        if let Some(obj) = m.as_object_mut() {
            if let Some(bot) = &self.bot_id {
                obj.insert("bot_id".into(), json!(bot));
            }
            if let Some(t) = &self.thread_ts {
                obj.insert("thread_ts".into(), json!(t));
            }
            if !self.blocks.is_null() {
                obj.insert("blocks".into(), self.blocks.clone());
            }
            if with_metadata && !self.metadata.is_null() {
                obj.insert("metadata".into(), self.metadata.clone());
            }
        }
        m
    }
}

#[derive(Default)]
struct Inner {
    directory: workspaces::Directory,
    examined: examined::Examined,
    calls: Vec<RecordedCall>,
    scripted: HashMap<String, VecDeque<Scripted>>,
    emails: HashMap<String, String>,
    /// User id → the `ok:false` error `conversations.open` answers for them.
    unreachable_users: HashMap<String, String>,
    messages: Vec<PostedMessage>,
    reactions: HashSet<(String, String, String)>,
    last_ts_micros: u64,
    views_opened: u64,
    socket_mode: SocketModeInner,
    oauth: oauth::OAuthFake,
}

type Shared = Arc<Mutex<Inner>>;

pub struct FakeSlack {
    addr: SocketAddr,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
        self.check_examined_on_drop();
    }
}

impl FakeSlack {
    /// Serves the one test workspace (`T_TEST`, [`TEST_TOKEN`]).
    pub async fn start() -> FakeSlack {
        FakeSlack::start_serving(vec![FakeWorkspace::default_test()]).await
    }

    /// Serves these workspaces, each with its own token and bot user.
    pub async fn start_serving(workspaces: Vec<FakeWorkspace>) -> FakeSlack {
        let state: Shared = Arc::new(Mutex::new(Inner {
            directory: workspaces::Directory::new(workspaces),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/api/{method}", post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind FakeSlack");
        let addr = listener.local_addr().expect("FakeSlack address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack {
            addr,
            state,
            server,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().expect("FakeSlack state")
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    pub fn calls_to(&self, method: &str) -> Vec<RecordedCall> {
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    pub fn push_response(&self, method: &str, r: Scripted) {
        self.lock()
            .scripted
            .entry(method.to_owned())
            .or_default()
            .push_back(r);
    }

    pub fn set_user_email(&self, email: &str, user_id: &str) {
        self.lock()
            .emails
            .insert(email.to_owned(), user_id.to_owned());
    }

    /// Makes `conversations.open` with this user answer `{"ok":false,"error":<code>}`
    /// every time (e.g. `user_not_found` for an id that is not in the workspace).
    pub fn set_user_unreachable(&self, user_id: &str, code: &str) {
        self.lock()
            .unreachable_users
            .insert(user_id.to_owned(), code.to_owned());
    }

    /// Messages in post order (what `chat.postMessage` stored, as later edited).
    pub fn posted_messages(&self) -> Vec<PostedMessage> {
        self.lock().messages.clone()
    }

    /// Adds a message as if someone else had posted it (e.g. a person's thread parent).
    /// Returns its ts.
    pub fn seed_message(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> String {
        let mut inner = self.lock();
        let ts = next_ts(&mut inner);
        inner.messages.push(PostedMessage {
            channel: channel.to_owned(),
            ts: ts.clone(),
            thread_ts: thread_ts.map(str::to_owned),
            text: text.to_owned(),
            blocks: Value::Null,
            metadata: Value::Null,
            user: user.to_owned(),
            bot_id: None,
            team: None,
        });
        ts
    }
}

fn param_str(params: &Map<String, Value>, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn param_json(params: &Map<String, Value>, name: &str) -> Option<Value> {
    match params.get(name)? {
        Value::String(s) => serde_json::from_str(s)
            .ok()
            .or_else(|| Some(Value::String(s.clone()))),
        Value::Null => None,
        other => Some(other.clone()),
    }
}

fn param_bool(params: &Map<String, Value>, name: &str) -> bool {
    matches!(param_str(params, name).as_deref(), Some("true" | "1"))
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> Map<String, Value> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return serde_json::from_slice(body).unwrap_or_default();
    }
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// Real-clock timestamps (so `oldest` computed from the clock works), strictly
/// increasing so every message has a unique ts.
fn next_ts(inner: &mut Inner) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let micros = now.max(inner.last_ts_micros + 1);
    inner.last_ts_micros = micros;
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Slack ts strings as comparable numbers, without float rounding.
fn ts_key(ts: &str) -> (u64, u64) {
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    (secs.parse().unwrap_or(0), frac.parse().unwrap_or(0))
}

fn ok(mut body: Value) -> Response {
    if let Some(obj) = body.as_object_mut() {
        obj.insert("ok".into(), Value::Bool(true));
    }
    axum::Json(body).into_response()
}

fn err(code: &str) -> Response {
    axum::Json(json!({ "ok": false, "error": code })).into_response()
}

async fn handle(
    State(state): State<Shared>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = decode_body(&headers, &body);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (caller, scripted) = {
        let mut inner = state.lock().expect("FakeSlack state");
        let caller = workspaces::caller(&inner, auth);
        inner.calls.push(RecordedCall {
            method: method.clone(),
            params: params.clone(),
            auth_present: auth.is_some(),
            auth_ok: caller.is_some(),
            team: caller.as_ref().map(|w| w.team_id.clone()),
            token: auth
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(str::to_owned),
            at: Instant::now(),
        });
        let scripted = inner
            .scripted
            .get_mut(&method)
            .and_then(VecDeque::pop_front);
        (caller, scripted)
    };
    match scripted {
        Some(Scripted::RateLimited { retry_after_secs }) => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return r;
        }
        Some(Scripted::Status(code)) => {
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        Some(Scripted::OkFalse(code)) => return err(code),
        Some(Scripted::OkFalseRateLimited { retry_after_secs }) => {
            let mut r = err("ratelimited");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return r;
        }
        Some(Scripted::Slow(d)) => {
            tokio::time::sleep(d).await;
            return default_behaviour(&state, &method, &params, caller.as_ref());
        }
        Some(Scripted::Hang(d)) => {
            tokio::time::sleep(d).await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(Scripted::Delay(d)) => {
            // Slack does the work even when its answer is slow: perform it first, so a
            // client that gives up still finds the effect (and a dropped connection,
            // which cancels this handler, cannot undo it).
            let response = default_behaviour(&state, &method, &params, caller.as_ref());
            tokio::time::sleep(d).await;
            return response;
        }
        Some(Scripted::DropAfterPost) => {
            let _performed = default_behaviour(&state, &method, &params, caller.as_ref());
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        None => {}
    }
    if method == oauth::METHOD {
        return oauth::answer(&state, &headers, &params);
    }
    if method == OPEN_SOCKET_METHOD {
        return open_socket(&state, auth);
    }
    default_behaviour(&state, &method, &params, caller.as_ref())
}

fn default_behaviour(
    state: &Shared,
    method: &str,
    p: &Map<String, Value>,
    caller: Option<&FakeWorkspace>,
) -> Response {
    let Some(me) = caller else {
        return err("invalid_auth");
    };
    let team = me.team_id.as_str();
    let mut inner = state.lock().expect("FakeSlack state");
    // Slack knows nothing of another workspace's channels and people.
    if let Some(code) = inner.directory.refuse(team, method, p) {
        return err(code);
    }
    let s = |name: &str| param_str(p, name);
    match method {
        "auth.test" => ok(json!({
            "url": format!("https://{}.slack.com/", team.to_lowercase()),
            "team": me.team_name, "user": "cusp",
            "team_id": team, "user_id": me.bot_user_id, "bot_id": me.bot_id,
        })),
        "chat.postMessage" => {
            let Some(channel) = s("channel").filter(|c| !c.is_empty()) else {
                return err("channel_not_found");
            };
            // As Slack does: a post to a user id lands in the bot's DM with that person.
            let channel = if is_user_id(&channel) {
                inner.directory.open_dm(team, &channel)
            } else {
                channel
            };
            let blocks = param_json(p, "blocks").unwrap_or(Value::Null);
            let text = s("text").unwrap_or_default();
            if text.is_empty() && blocks.is_null() {
                return err("no_text");
            }
            let ts = next_ts(&mut inner);
            let message = PostedMessage {
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts: s("thread_ts").filter(|t| !t.is_empty()),
                text,
                blocks,
                metadata: param_json(p, "metadata").unwrap_or(Value::Null),
                user: me.bot_user_id.clone(),
                bot_id: Some(me.bot_id.clone()),
                team: Some(team.to_owned()),
            };
            let json = message.to_json(true);
            inner.messages.push(message);
            ok(json!({ "channel": channel, "ts": ts, "message": json }))
        }
        "chat.postEphemeral" => {
            if s("channel").is_none() || s("user").is_none() {
                return err("channel_not_found");
            }
            ok(json!({ "message_ts": next_ts(&mut inner) }))
        }
        "chat.update" => {
            let (channel, ts) = (
                s("channel").unwrap_or_default(),
                s("ts").unwrap_or_default(),
            );
            let Some(m) = inner
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
            else {
                return err("message_not_found");
            };
            if let Some(text) = s("text") {
                m.text = text;
            }
            if let Some(blocks) = param_json(p, "blocks") {
                m.blocks = blocks;
            }
            if let Some(metadata) = param_json(p, "metadata") {
                m.metadata = metadata;
            }
            let text = m.text.clone();
            ok(json!({ "channel": channel, "ts": ts, "text": text }))
        }
        "reactions.add" => {
            let key = (
                s("channel").unwrap_or_default(),
                s("timestamp").unwrap_or_default(),
                s("name").unwrap_or_default(),
            );
            if inner.reactions.insert(key) {
                ok(json!({}))
            } else {
                err("already_reacted")
            }
        }
        "views.open" => {
            if s("trigger_id").is_none() {
                return err("invalid_trigger_id");
            }
            let Some(mut view) = param_json(p, "view").filter(Value::is_object) else {
                return err("invalid_arguments");
            };
            inner.views_opened += 1;
            let id = format!("V_FAKE{}", inner.views_opened);
            if let Some(obj) = view.as_object_mut() {
                obj.insert("id".into(), json!(id));
            }
            ok(json!({ "view": view }))
        }
        "conversations.open" => match s("users") {
            Some(user) if inner.unreachable_users.contains_key(&user) => {
                err(&inner.unreachable_users[&user])
            }
            // A stable DM channel per user, as Slack returns for a bot token.
            Some(user) if !user.contains(',') => {
                ok(json!({ "channel": { "id": inner.directory.open_dm(team, &user) } }))
            }
            _ => err("invalid_arguments"),
        },
        "users.lookupByEmail" => match s("email")
            .and_then(|e| inner.emails.get(&e).cloned())
            .filter(|id| inner.directory.knows_user(team, id))
        {
            Some(id) => ok(
                json!({ "user": { "id": id, "team_id": team, "profile": { "email": s("email") } } }),
            ),
            None => err("users_not_found"),
        },
        "conversations.history" | "conversations.replies" => {
            // History is read by conversation id; Slack does not accept a user id here.
            let Some(channel) = s("channel").filter(|c| !is_user_id(c)) else {
                return err("channel_not_found");
            };
            let thread = if method == "conversations.replies" {
                match s("ts") {
                    Some(ts) => Some(ts),
                    None => return err("thread_not_found"),
                }
            } else {
                None
            };
            let oldest = ts_key(&s("oldest").unwrap_or_else(|| "0".into()));
            let limit = s("limit").and_then(|l| l.parse().ok()).unwrap_or(100usize);
            let with_metadata = param_bool(p, "include_all_metadata");
            let mut found: Vec<&PostedMessage> = inner
                .messages
                .iter()
                .filter(|m| m.channel == channel && ts_key(&m.ts) >= oldest)
                .filter(|m| match &thread {
                    // A thread: the parent plus its replies, oldest first.
                    Some(parent) => m.ts == *parent || m.thread_ts.as_deref() == Some(parent),
                    // The channel: top-level messages only, newest first.
                    None => m.thread_ts.as_ref().is_none_or(|t| *t == m.ts),
                })
                .collect();
            found.sort_by_key(|m| ts_key(&m.ts));
            if thread.is_none() {
                found.reverse();
            }
            let messages: Vec<Value> = found
                .into_iter()
                .take(limit)
                .map(|m| m.to_json(with_metadata))
                .collect();
            ok(json!({ "messages": messages, "has_more": false }))
        }
        _ => err("unknown_method"),
    }
}

fn is_user_id(id: &str) -> bool {
    id.starts_with('U') || id.starts_with('W')
}

// ---------------------------------------------------------------------------------------
// Socket Mode: `apps.connections.open` (see support/fake_socket_mode.rs for the socket)
// ---------------------------------------------------------------------------------------

/// The app-level token `apps.connections.open` accepts.
pub const TEST_APP_TOKEN: &str = "xapp-1-A_CUSP-test-app-token";
const OPEN_SOCKET_METHOD: &str = "apps.connections.open";

#[derive(Default)]
struct SocketModeInner {
    url: Option<String>,
    tickets: u64,
}

impl FakeSlack {
    /// Makes `apps.connections.open` hand out this WebSocket URL (with a fresh ticket).
    pub fn serve_socket_mode(&self, url: &str) {
        self.lock().socket_mode.url = Some(url.to_owned());
    }
}

/// As Slack does: only the app-level token, only in the Authorization header.
fn open_socket(state: &Shared, auth: Option<&str>) -> Response {
    if auth != Some(&format!("Bearer {TEST_APP_TOKEN}")) {
        return err("invalid_auth");
    }
    let mut inner = state.lock().expect("FakeSlack state");
    let Some(url) = inner.socket_mode.url.clone() else {
        return err("internal_error");
    };
    inner.socket_mode.tickets += 1;
    ok(json!({ "url": format!("{url}?ticket=ticket-{}", inner.socket_mode.tickets) }))
}
