//! Socket Mode, the second way Slack reaches cusp: instead of POSTing to a public URL,
//! Slack delivers the same events, commands and clicks over a WebSocket that cusp opens
//! (`apps.connections.open` with the app-level token). Envelopes are answered by the
//! same functions as the HTTP handlers (`envelopes.rs`), so the inbox, its dedupe, the
//! workers and the outbox are shared; only the transport differs.
//!
//! The supervisor keeps one connection. When Slack asks for a refresh (`disconnect`
//! `warning`/`refresh_requested`) it opens the next connection while the old one keeps
//! serving, and closes the old one only once the new one said `hello`. A closed or
//! silent socket (no frame and no pong within `silence_timeout`) is replaced at once
//! after a healthy run, and with exponential backoff and jitter when connections keep
//! failing. `link_disabled` (Socket Mode turned off in the app's settings) and a
//! rejected app token are not retried at once: nothing but a person changes them, so
//! cusp logs the fix and looks again every `disabled_retry`.

mod connection;
mod envelopes;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::connection::{Connection, EndReason, Report, ReportKind};
use crate::backoff::Backoff;
use crate::slack::socket_mode::{
    ConnectionUrl, DisconnectReason, is_fatal_open_error, open_connection,
};
use crate::slack::web_api::{SlackApiError, SlackClient};
use crate::state::AppState;

/// Timings of the connection loop; [`SocketModeOptions::default`] is production's.
#[derive(Debug, Clone, Copy)]
pub struct SocketModeOptions {
    /// How often we ping Slack.
    pub ping_interval: Duration,
    /// A socket with no frame (pongs included) for this long is dead.
    pub silence_timeout: Duration,
    /// Limit on the WebSocket handshake and, separately, on the wait for `hello`.
    pub connect_timeout: Duration,
    /// Delays between failing attempts (`apps.connections.open` is rate-limited, Tier 1).
    pub backoff: Backoff,
    /// A connection that lasted this long was healthy: the next one opens without delay.
    pub stable_after: Duration,
    /// Wait after `link_disabled` or a rejected token before looking again.
    pub disabled_retry: Duration,
}

impl Default for SocketModeOptions {
    fn default() -> Self {
        SocketModeOptions {
            ping_interval: Duration::from_secs(10),
            silence_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(120)),
            stable_after: Duration::from_secs(60),
            disabled_retry: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SocketModeError {
    #[error(
        "Slack rejected SLACK_APP_TOKEN ({code}). Create an app-level token with the \
         connections:write scope on your app's Basic Information page (App-Level Tokens) at \
         https://api.slack.com/apps, and turn on Socket Mode under Settings → Socket Mode"
    )]
    Rejected { code: String },
}

/// Why one connection attempt failed.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("apps.connections.open failed: {0}")]
    Open(#[from] SlackApiError),
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    #[error("Slack sent no hello")]
    NoHello,
}

impl ConnectError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Open(err) => err.retry_after(),
            _ => None,
        }
    }
}

/// Connects once (so that a rejected app token fails `cusp serve` at start, naming the
/// fix) and then keeps a connection until `shutdown`. `client` carries the app-level
/// token. Other failures at start are retried in the background, like later ones.
pub async fn start(
    state: AppState,
    client: SlackClient,
    options: SocketModeOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, SocketModeError> {
    let (reports_tx, reports) = mpsc::unbounded_channel();
    let mut supervisor = Supervisor {
        state,
        client: Arc::new(client),
        options,
        reports_tx,
        reports,
        next_id: 0,
        failures: 0,
        retry_after: None,
    };
    crate::telemetry::metrics::set_socket_mode_connected(false);
    let live = match supervisor.connect().await {
        Ok(live) => Some(live),
        Err(ConnectError::Open(err)) if is_fatal_open_error(&err) => {
            return Err(SocketModeError::Rejected {
                code: err.code().unwrap_or("unknown").to_owned(),
            });
        }
        Err(err) => {
            supervisor.failed(&err);
            None
        }
    };
    Ok(tokio::spawn(async move {
        supervisor.run(live, &mut shutdown).await;
        crate::telemetry::metrics::set_socket_mode_connected(false);
        tracing::info!("Socket Mode stopped");
    }))
}

/// The connection that is serving, and how to close it.
struct Live {
    id: u64,
    opened: Instant,
    close: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Live {
    async fn close(mut self) {
        let _ = self.close.send(());
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

struct Supervisor {
    state: AppState,
    client: Arc<SlackClient>,
    options: SocketModeOptions,
    reports_tx: mpsc::UnboundedSender<Report>,
    reports: mpsc::UnboundedReceiver<Report>,
    next_id: u64,
    /// Failed attempts and short-lived connections since the last healthy one.
    failures: i64,
    /// The longest wait Slack or a `disconnect` asked for before the next attempt.
    retry_after: Option<Duration>,
}

impl Supervisor {
    async fn run(&mut self, mut live: Option<Live>, shutdown: &mut watch::Receiver<bool>) {
        loop {
            let Some(current) = live.take() else {
                match self.connect_with_retries(shutdown).await {
                    Some(next) => live = Some(next),
                    None => return,
                }
                continue;
            };
            let report = tokio::select! {
                _ = shutdown.changed() => None,
                report = self.reports.recv() => report,
            };
            let Some(report) = report else {
                current.close().await;
                return;
            };
            if report.connection != current.id {
                // Last words of a connection that was already replaced.
                live = Some(current);
                continue;
            }
            match report.kind {
                ReportKind::Disconnect(DisconnectReason::LinkDisabled) => {
                    tracing::error!(
                        retry_in_s = self.options.disabled_retry.as_secs(),
                        "Slack closed Socket Mode: it was turned off in the app's settings \
                         (link_disabled). Turn it back on under Settings → Socket Mode at \
                         https://api.slack.com/apps, or unset SLACK_APP_TOKEN and use HTTP \
                         request URLs with SLACK_SIGNING_SECRET"
                    );
                    count_reconnect("link_disabled");
                    current.close().await;
                    crate::telemetry::metrics::set_socket_mode_connected(false);
                    self.retry_after = Some(self.options.disabled_retry);
                    self.failures = self.failures.max(1);
                }
                ReportKind::Disconnect(reason) => {
                    // A routine refresh: the old socket keeps serving until the new one
                    // is greeted, so nothing Slack sends meanwhile is missed.
                    tracing::info!(
                        reason = reason.as_str(),
                        "Slack asked for a new Socket Mode connection"
                    );
                    count_reconnect(reason.as_str());
                    self.failures = 0;
                    let next = self.connect_with_retries(shutdown).await;
                    current.close().await;
                    match next {
                        Some(next) => live = Some(next),
                        None => return,
                    }
                }
                ReportKind::Ended(reason) => {
                    let healthy = current.opened.elapsed() >= self.options.stable_after;
                    match &reason {
                        EndReason::Failed(error) => {
                            tracing::warn!(%error, healthy, "Socket Mode connection failed; reconnecting")
                        }
                        other => tracing::warn!(
                            reason = other.as_str(),
                            healthy,
                            "Socket Mode connection lost; reconnecting"
                        ),
                    }
                    count_reconnect(reason.as_str());
                    current.close().await;
                    crate::telemetry::metrics::set_socket_mode_connected(false);
                    self.failures = if healthy { 0 } else { self.failures + 1 };
                }
            }
        }
    }

    /// Connects, waiting between failed attempts; `None` on shutdown.
    async fn connect_with_retries(&mut self, shutdown: &mut watch::Receiver<bool>) -> Option<Live> {
        loop {
            if *shutdown.borrow() {
                return None;
            }
            if self.failures > 0 {
                let delay = self
                    .options
                    .backoff
                    .delay(self.failures, rand::random::<f64>())
                    .max(self.retry_after.take().unwrap_or_default());
                tokio::select! {
                    _ = shutdown.changed() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
            let attempt = tokio::select! {
                _ = shutdown.changed() => return None,
                attempt = self.connect() => attempt,
            };
            match attempt {
                Ok(live) => return Some(live),
                Err(err) => self.failed(&err),
            }
        }
    }

    fn failed(&mut self, err: &ConnectError) {
        self.failures += 1;
        match err {
            ConnectError::Open(api) if is_fatal_open_error(api) => {
                tracing::error!(
                    code = api.code().unwrap_or("unknown"),
                    retry_in_s = self.options.disabled_retry.as_secs(),
                    "Slack rejected SLACK_APP_TOKEN; events are not received until it is \
                     fixed (an app-level token with connections:write, from Basic Information \
                     → App-Level Tokens at https://api.slack.com/apps)"
                );
                self.retry_after = Some(self.options.disabled_retry);
            }
            other => {
                tracing::warn!(error = %other, failures = self.failures, "could not open a Socket Mode connection");
                self.retry_after = other.retry_after();
            }
        }
    }

    /// One attempt: a URL from Slack, the WebSocket handshake, and Slack's `hello`.
    async fn connect(&mut self) -> Result<Live, ConnectError> {
        let url: ConnectionUrl = open_connection(&self.client).await?;
        let (socket, _) = tokio::time::timeout(
            self.options.connect_timeout,
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        .map_err(|_| ConnectError::Handshake("timed out".into()))?
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
        self.next_id += 1;
        let id = self.next_id;
        let (hello_tx, hello_rx) = oneshot::channel();
        let (close, close_rx) = oneshot::channel();
        let connection = Connection {
            id,
            state: self.state.clone(),
            reports: self.reports_tx.clone(),
            hello: Some(hello_tx),
            ping_interval: self.options.ping_interval,
            silence_timeout: self.options.silence_timeout,
            in_flight: tokio::task::JoinSet::new(),
        };
        let mut live = Live {
            id,
            opened: Instant::now(),
            close,
            task: tokio::spawn(connection.run(socket, close_rx)),
        };
        let greeted = tokio::time::timeout(self.options.connect_timeout, async {
            tokio::select! {
                hello = hello_rx => hello.is_ok(),
                // The socket ended before Slack said hello.
                _ = &mut live.task => false,
            }
        })
        .await;
        match greeted {
            Ok(true) => {
                tracing::info!(connection = id, "Socket Mode connected");
                crate::telemetry::metrics::set_socket_mode_connected(true);
                Ok(live)
            }
            _ => {
                live.close().await;
                Err(ConnectError::NoHello)
            }
        }
    }
}

fn count_reconnect(reason: &str) {
    crate::telemetry::metrics::socket_mode_reconnect(reason);
}

#[cfg(test)]
mod tests {
    /// Production connects to `wss://`: rustls must find its crypto provider (the one
    /// reqwest already enables) when the TLS configuration is built, or connecting would
    /// panic. A loopback peer that hangs up lets us get that far without any network.
    #[tokio::test]
    async fn a_wss_url_reaches_the_tls_handshake_without_panicking() {
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            return;
        };
        let Ok(addr) = listener.local_addr() else {
            return;
        };
        let peer = tokio::spawn(async move {
            // Accept and hang up: the TLS handshake fails, as it must.
            let _ = listener.accept().await;
        });
        let result = tokio_tungstenite::connect_async(format!("wss://{addr}/link/")).await;
        use tokio_tungstenite::tungstenite::{Error, error::UrlError};
        match result {
            Err(Error::Url(UrlError::TlsFeatureNotEnabled)) => {
                panic!("tokio-tungstenite was built without TLS")
            }
            Err(Error::Io(_) | Error::Tls(_)) => {}
            other => panic!("expected the TLS handshake to fail, got {other:?}"),
        }
        let _ = peer.await;
    }

    const HTTP_MANIFEST: &str = include_str!("../../../deploy/slack-app-manifest.yaml");
    const SOCKET_MANIFEST: &str = include_str!("../../../deploy/slack-app-manifest-socket.yaml");

    /// The manifest without what differs between the transports: comments, request URLs
    /// and the Socket Mode switch.
    fn app_definition(manifest: &str) -> Vec<&str> {
        manifest
            .lines()
            .map(|line| line.split(" #").next().unwrap_or(line).trim_end())
            .filter(|line| {
                let item = line.trim_start();
                !item.is_empty()
                    && !item.starts_with('#')
                    && !item.starts_with("url:")
                    && !item.starts_with("request_url:")
                    && !item.starts_with("socket_mode_enabled:")
            })
            .collect()
    }

    #[test]
    fn the_socket_mode_manifest_is_the_http_one_without_request_urls() {
        assert_eq!(
            app_definition(SOCKET_MANIFEST),
            app_definition(HTTP_MANIFEST),
            "deploy/slack-app-manifest-socket.yaml must define the same app (commands, \
             scopes, events) as deploy/slack-app-manifest.yaml"
        );
        assert!(SOCKET_MANIFEST.contains("\n  socket_mode_enabled: true"));
        assert!(
            !SOCKET_MANIFEST.contains("HOST"),
            "no request URLs in Socket Mode"
        );
        assert!(HTTP_MANIFEST.contains("\n  socket_mode_enabled: false"));
    }
}
