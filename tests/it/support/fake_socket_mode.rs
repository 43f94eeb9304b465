//! A stand-in for Slack's Socket Mode WebSocket server on 127.0.0.1. FakeSlack's
//! `apps.connections.open` hands out its `ws://` URL. Every accepted connection is
//! greeted with `hello`, records the frames cusp sends (acks), and takes scripted
//! frames, a spell of silence (no reads, so no pongs) or a close from the test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// How long the `wait_*` helpers wait before failing the test.
pub const WAIT: Duration = Duration::from_secs(5);

enum Command {
    Send(String),
    Silence(Duration),
    Close,
}

struct Connection {
    opened_at: Instant,
    closed_at: Option<Instant>,
    received: Vec<Value>,
    commands: mpsc::UnboundedSender<Command>,
}

type Shared = Arc<Mutex<Vec<Connection>>>;

pub struct FakeSocketMode {
    addr: SocketAddr,
    connections: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSocketMode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSocketMode {
    pub async fn start() -> FakeSocketMode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind FakeSocketMode");
        let addr = listener.local_addr().expect("FakeSocketMode address");
        let connections: Shared = Arc::default();
        let shared = connections.clone();
        let server = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Ok(socket) = tokio_tungstenite::accept_async(tcp).await else {
                    continue;
                };
                let (commands, rx) = mpsc::unbounded_channel();
                let index = {
                    let mut all = shared.lock().expect("FakeSocketMode state");
                    all.push(Connection {
                        opened_at: Instant::now(),
                        closed_at: None,
                        received: Vec::new(),
                        commands,
                    });
                    all.len() - 1
                };
                tokio::spawn(serve(socket, index, shared.clone(), rx));
            }
        });
        FakeSocketMode {
            addr,
            connections,
            server,
        }
    }

    /// What `apps.connections.open` returns (FakeSlack adds a `ticket`).
    pub fn url(&self) -> String {
        format!("ws://{}/link/", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.connections.lock().expect("FakeSocketMode state")
    }

    /// Connections accepted so far.
    pub fn opened(&self) -> usize {
        self.lock().len()
    }

    /// Connections not closed yet.
    pub fn live(&self) -> usize {
        self.lock().iter().filter(|c| c.closed_at.is_none()).count()
    }

    /// When connection `n` (1-based) was accepted and, if it was, closed.
    pub fn times(&self, n: usize) -> (Instant, Option<Instant>) {
        let all = self.lock();
        let c = &all[n - 1];
        (c.opened_at, c.closed_at)
    }

    fn command(&self, n: usize, command: Command) {
        let _ = self.lock()[n - 1].commands.send(command);
    }

    /// Sends a frame to cusp over connection `n`.
    pub fn send(&self, n: usize, frame: &Value) {
        self.command(n, Command::Send(frame.to_string()));
    }

    /// Connection `n` stops reading (and so answering pings) for `silence`.
    pub fn go_silent(&self, n: usize, silence: Duration) {
        self.command(n, Command::Silence(silence));
    }

    pub fn close(&self, n: usize) {
        self.command(n, Command::Close);
    }

    async fn wait_until(&self, what: &str, mut done: impl FnMut(&[Connection]) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            if done(&self.lock()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn wait_for_connections(&self, n: usize) {
        self.wait_until(&format!("{n} connections"), |all| all.len() >= n)
            .await;
    }

    pub async fn wait_closed(&self, n: usize) {
        self.wait_until(&format!("connection {n} to close"), |all| {
            all.get(n - 1).is_some_and(|c| c.closed_at.is_some())
        })
        .await;
    }

    /// The frame cusp sent on connection `n` acknowledging `envelope_id`.
    pub async fn ack(&self, n: usize, envelope_id: &str) -> Value {
        let mut found = None;
        self.wait_until(&format!("ack of {envelope_id}"), |all| {
            found = all.get(n - 1).and_then(|c| {
                c.received
                    .iter()
                    .find(|f| f["envelope_id"] == envelope_id)
                    .cloned()
            });
            found.is_some()
        })
        .await;
        found.unwrap_or(Value::Null)
    }

    /// Frames cusp sent on connection `n` so far.
    pub fn received(&self, n: usize) -> Vec<Value> {
        self.lock()[n - 1].received.clone()
    }
}

/// A Socket Mode envelope as Slack sends it.
pub fn envelope(kind: &str, envelope_id: &str, payload: Value, retry_attempt: u32) -> Value {
    json!({
        "envelope_id": envelope_id,
        "type": kind,
        "payload": payload,
        "accepts_response_payload": kind != "events_api",
        "retry_attempt": retry_attempt,
        "retry_reason": if retry_attempt > 0 { "timeout" } else { "" },
    })
}

pub fn disconnect(reason: &str) -> Value {
    json!({"type": "disconnect", "reason": reason, "debug_info": {"host": "wss-fake"}})
}

async fn serve(
    mut socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    index: usize,
    shared: Shared,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let hello = json!({
        "type": "hello", "num_connections": index + 1,
        "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
        "connection_info": {"app_id": "A_CUSP"},
    });
    let _ = socket.send(Message::Text(hello.to_string().into())).await;
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
                    shared.lock().expect("FakeSocketMode state")[index].received.push(value);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            command = commands.recv() => match command {
                Some(Command::Send(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Command::Silence(silence)) => tokio::time::sleep(silence).await,
                Some(Command::Close) | None => {
                    let _ = socket.close(None).await;
                    break;
                }
            },
        }
    }
    shared.lock().expect("FakeSocketMode state")[index].closed_at = Some(Instant::now());
}
