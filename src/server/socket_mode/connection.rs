//! One Socket Mode WebSocket: read frames, answer each envelope on its own task (so a
//! slow command never holds up the next event), send the acknowledgements, ping, and
//! tell the supervisor when Slack says `hello` or `disconnect`, or when the socket ends.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::envelopes;
use crate::slack::socket_mode::{DisconnectReason, Frame, ack};
use crate::state::AppState;

pub(super) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Acknowledgements waiting to be written; envelope tasks block briefly when it is full.
const OUTGOING_QUEUE: usize = 64;
/// How long a closing connection waits for envelopes it is still answering.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(3);
/// How long we wait for Slack to answer our close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

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
    /// Envelopes being answered.
    pub in_flight: JoinSet<()>,
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
                    self.finish_in_flight(&mut socket, &mut outgoing).await;
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(None)).await;
                    // Stragglers finish their work; their acks have nowhere to go.
                    self.in_flight.detach_all();
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
        // Envelopes still being answered finish their work (an event they store is
        // deduplicated if Slack delivers it again); only their acks are lost.
        self.in_flight.detach_all();
        self.report(ReportKind::Ended(ended));
    }

    /// Before closing, lets envelopes this socket received finish (for at most Slack's
    /// 3-second ack deadline) and sends their acks here, rather than making Slack
    /// deliver them again on the next connection.
    async fn finish_in_flight(
        &mut self,
        socket: &mut Socket,
        outgoing: &mut mpsc::Receiver<String>,
    ) {
        let grace = tokio::time::sleep(IN_FLIGHT_GRACE);
        tokio::pin!(grace);
        while !self.in_flight.is_empty() {
            tokio::select! {
                _ = self.in_flight.join_next() => {}
                Some(text) = outgoing.recv() => {
                    let _ = socket.send(Message::Text(text.into())).await;
                }
                () = &mut grace => break,
            }
        }
        while let Ok(text) = outgoing.try_recv() {
            let _ = socket.send(Message::Text(text.into())).await;
        }
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
                // Finished tasks are reaped here so the set only holds the ones running.
                while self.in_flight.try_join_next().is_some() {}
                self.in_flight.spawn(async move {
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
