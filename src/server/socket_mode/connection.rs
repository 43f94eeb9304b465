//! One Socket Mode WebSocket: read frames, answer each envelope on its own task (so a
//! slow command never holds up the next event), send the acknowledgements, ping, and
//! tell the supervisor when Slack says `hello` or `disconnect`, or when the socket ends.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::envelopes;
use crate::app::AppState;
use crate::slack::socket_mode::{DisconnectReason, Frame, ack};

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Acknowledgements waiting to be written; envelope tasks block briefly when it is full.
const OUTGOING_QUEUE: usize = 64;

/// What a connection tells the supervisor. Each report names its connection, so the
/// last words of a connection that was already replaced can be told apart.
#[derive(Debug)]
pub(super) struct Report {
    pub connection: u64,
    pub kind: ReportKind,
}

#[derive(Debug)]
pub(super) enum ReportKind {
    /// Slack will close this connection (the socket keeps serving until we close it).
    Disconnect(DisconnectReason),
    /// The socket is gone.
    Ended(EndReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum EndReason {
    /// Slack (or the network) closed it.
    Closed,
    /// Nothing arrived, not even a pong, within the silence timeout.
    Silent,
    /// Reading or writing failed.
    Failed(String),
}

impl EndReason {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Closed => "closed",
            Self::Silent => "silent",
            Self::Failed(_) => "failed",
        }
    }
}

pub(super) struct Connection {
    pub id: u64,
    pub state: AppState,
    pub reports: mpsc::UnboundedSender<Report>,
    /// Fired on the first `hello`.
    pub hello: Option<oneshot::Sender<()>>,
    pub ping_interval: Duration,
    pub silence_timeout: Duration,
}

impl Connection {
    /// Serves `socket` until it ends or `close` fires (then it says goodbye politely).
    pub(super) async fn run(mut self, mut socket: Socket, mut close: oneshot::Receiver<()>) {
        let (outgoing_tx, mut outgoing) = mpsc::channel::<String>(OUTGOING_QUEUE);
        let mut ping = tokio::time::interval(self.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ping.tick().await; // the first tick is immediate
        let mut last_heard = Instant::now();
        let ended = loop {
            tokio::select! {
                _ = &mut close => {
                    // Acks already queued still go out: they answer envelopes this socket received.
                    while let Ok(text) = outgoing.try_recv() {
                        let _ = socket.send(Message::Text(text.into())).await;
                    }
                    let _ = tokio::time::timeout(self.ping_interval, socket.close(None)).await;
                    return;
                }
                frame = socket.next() => {
                    last_heard = Instant::now();
                    match frame {
                        None | Some(Ok(Message::Close(_))) => break EndReason::Closed,
                        Some(Err(err)) => break EndReason::Failed(err.to_string()),
                        Some(Ok(Message::Text(text))) => self.on_text(text.as_str(), &outgoing_tx),
                        // Pongs only prove the socket is alive; tungstenite answers pings.
                        Some(Ok(_)) => {}
                    }
                }
                Some(text) = outgoing.recv() => {
                    if let Err(err) = socket.send(Message::Text(text.into())).await {
                        break EndReason::Failed(err.to_string());
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= self.silence_timeout {
                        break EndReason::Silent;
                    }
                    if let Err(err) = socket.send(Message::Ping(Default::default())).await {
                        break EndReason::Failed(err.to_string());
                    }
                }
            }
        };
        self.report(ReportKind::Ended(ended));
    }

    fn report(&self, kind: ReportKind) {
        // The supervisor only stops listening when it is shutting down.
        let _ = self.reports.send(Report {
            connection: self.id,
            kind,
        });
    }

    fn on_text(&mut self, text: &str, outgoing: &mpsc::Sender<String>) {
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(err) => {
                tracing::warn!(reason = %err, "unreadable Socket Mode frame ignored");
                return;
            }
        };
        match frame {
            Frame::Hello {
                num_connections,
                approximate_connection_time,
            } => {
                tracing::debug!(
                    connection = self.id,
                    ?num_connections,
                    ?approximate_connection_time,
                    "Slack said hello"
                );
                if let Some(hello) = self.hello.take() {
                    let _ = hello.send(());
                }
            }
            Frame::Disconnect(reason) => self.report(ReportKind::Disconnect(reason)),
            Frame::Envelope(envelope) => {
                let state = self.state.clone();
                let outgoing = outgoing.clone();
                tokio::spawn(async move {
                    if let Some(answer) = envelopes::answer(&state, &envelope).await {
                        // If the socket closed meanwhile the ack is lost and Slack
                        // redelivers the envelope; the inbox dedupes events.
                        let _ = outgoing.send(answer).await;
                    }
                });
            }
            Frame::Other { kind, envelope_id } => {
                tracing::debug!(%kind, "Socket Mode frame of a type cusp does not handle");
                if let Some(id) = envelope_id {
                    let _ = outgoing.try_send(ack(&id));
                }
            }
        }
    }
}
