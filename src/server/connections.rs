//! The HTTP listener: accepts TCP connections and serves each with hyper's HTTP/1.1,
//! within limits that a flood of slow or idle clients cannot get past.
//!
//! `axum::serve` sets no timer, so hyper never times out a request head: a client that
//! sends half a request line and stops holds its connection (a task, a buffer and a file
//! descriptor) forever, and a few thousand of them starve everyone else. Here:
//! - a request head (request line and headers) must arrive within `header_timeout` of
//!   the connection waiting for one, whether it is new or kept alive after an answer, so
//!   the same limit closes idle keep-alive connections (hyper starts that timer whenever
//!   it waits for a head);
//! - a whole request, body included, must be answered within `request_timeout` (408);
//! - at most `max_connections` are open at once; one more is answered 503 and closed at
//!   once, counted in `cusp_http_connections_refused_total` and logged (at most one line
//!   every [`REFUSAL_LOG_INTERVAL`]), so memory and descriptors stay bounded.

use std::io::ErrorKind;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_http::timeout::Timeout;

use crate::shutdown::Shutdown;
use crate::telemetry::metrics;

/// Connections open at once when `CUSP_MAX_CONNECTIONS` is unset: far above what Slack
/// and a CRM need, far below a default descriptor limit, about 10 MB of buffers when full.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Time to send a request head when `CUSP_HTTP_HEADER_TIMEOUT_SECS` is unset; also how
/// long an idle kept-alive connection stays open.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time to receive and answer a whole request when `CUSP_HTTP_REQUEST_TIMEOUT_SECS` is
/// unset; every handler has its own, shorter budget, so this only stops slow bodies.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// At most one "connection limit reached" line per this interval, however many are refused.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// After an accept error that is not the client's (out of descriptors), wait this long
/// before accepting again, instead of spinning on the same error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The answer to a connection over the limit; written without waiting, then closed.
const REFUSAL: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\nconnection: close\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 27\r\n\r\ntoo many connections, retry";

/// How much the listener lets clients hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Serves `router` on `listener` until `shutdown`; then stops accepting, lets each
/// connection finish the request it is answering (idle ones close at once) and returns
/// once all are closed. The caller bounds that wait.
pub async fn serve(listener: TcpListener, router: Router, limits: HttpLimits, shutdown: Shutdown) {
    // A semaphore holds at most u32::MAX permits; the configuration keeps far below.
    let max = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max as usize));
    let service =
        Timeout::with_status_code(router, StatusCode::REQUEST_TIMEOUT, limits.request_timeout);
    let mut refusals = RefusalLog::new(limits.max_connections);
    let mut stopping = pin!(shutdown.wait());
    loop {
        let accepted = tokio::select! {
            () = &mut stopping => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) if is_the_clients(&err) => continue,
            Err(err) => {
                refusals.accept_failed(&err);
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(stream);
            refusals.refused(Instant::now());
            continue;
        };
        let service = TowerToHyperService::new(service.clone());
        let shutdown = shutdown.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            metrics::http_connection_opened();
            serve_connection(stream, service, header_timeout, shutdown).await;
            metrics::http_connection_closed();
            drop(slot);
        });
    }
    drop(listener);
    // Every slot back means every connection has closed.
    let _ = slots.acquire_many(max).await;
}

type Service = TowerToHyperService<Timeout<Router>>;

async fn serve_connection(
    stream: TcpStream,
    service: Service,
    header_timeout: Duration,
    shutdown: Shutdown,
) {
    // Small answers go out at once rather than waiting for more to send (Nagle).
    let _ = stream.set_nodelay(true);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.wait() => {
            // Finishes the request in flight, if any, then closes.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        if err.is_timeout() {
            metrics::http_connection_timed_out();
        }
        tracing::debug!(error = %err, "connection closed with an error");
    }
}

/// Errors about one client's connection (it reset before we accepted it): the listener
/// is fine, accept the next one.
fn is_the_clients(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// Answers 503 without waiting (a fresh socket's send buffer is empty) and closes.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(REFUSAL);
    metrics::http_connection_refused();
}

/// Logs refusals and accept failures at most once per [`REFUSAL_LOG_INTERVAL`], with the
/// count since the last line: a flood must not become a flood of log lines.
struct RefusalLog {
    limit: usize,
    last_logged: Option<Instant>,
    refused_since: u64,
    last_error_logged: Option<Instant>,
}

impl RefusalLog {
    fn new(limit: usize) -> RefusalLog {
        RefusalLog {
            limit,
            last_logged: None,
            refused_since: 0,
            last_error_logged: None,
        }
    }

    fn refused(&mut self, now: Instant) {
        self.refused_since += 1;
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < REFUSAL_LOG_INTERVAL)
        {
            return;
        }
        tracing::warn!(
            limit = self.limit,
            refused = self.refused_since,
            "connection limit reached: refusing new connections with 503 \
             (raise CUSP_MAX_CONNECTIONS if this is real traffic)"
        );
        self.last_logged = Some(now);
        self.refused_since = 0;
    }

    fn accept_failed(&mut self, err: &std::io::Error) {
        let now = Instant::now();
        if self
            .last_error_logged
            .is_some_and(|at| now.duration_since(at) < REFUSAL_LOG_INTERVAL)
        {
            return;
        }
        tracing::error!(
            error = %err,
            "could not accept a connection (out of file descriptors? raise the limit, \
             `ulimit -n`, or lower CUSP_MAX_CONNECTIONS)"
        );
        self.last_error_logged = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_http_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
    }

    #[test]
    fn refusals_are_logged_once_per_interval_with_their_count() {
        let mut log = RefusalLog::new(4);
        let start = Instant::now();
        log.refused(start);
        assert_eq!((log.last_logged, log.refused_since), (Some(start), 0));
        for i in 1..=5 {
            log.refused(start + Duration::from_millis(i));
        }
        assert_eq!(log.refused_since, 5, "counted, not logged");
        let later = start + REFUSAL_LOG_INTERVAL;
        log.refused(later);
        assert_eq!((log.last_logged, log.refused_since), (Some(later), 0));
    }
}
