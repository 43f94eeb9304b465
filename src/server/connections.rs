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
//! - at most `max_connections` are open at once. One more first makes room by closing
//!   the connection that has waited longest for a request head (a half-sent request or
//!   an idle keep-alive: nothing is lost), so a flood of idle clients cannot lock out
//!   a real one; only when every connection is in the middle of a request is the new
//!   one answered 503 and closed. Both are counted in
//!   `cusp_http_connections_shed_total{action}` and logged at most once every
//!   [`SHED_LOG_INTERVAL`]. Memory and descriptors stay bounded by the cap.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tower_http::timeout::Timeout;

use super::error::REQUEST_TIMED_OUT;
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
/// At most one "connection limit reached" line per this interval, however many are shed.
pub const SHED_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// After an accept error that is not the client's (out of descriptors), wait this long
/// before accepting again, instead of spinning on the same error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// How often the drain at shutdown looks whether every connection has closed.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// The answer to a connection over the limit, before hyper (and so `ApiError`) is
/// involved: raw bytes written without waiting, then the socket is closed.
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
    let service = Timeout::with_status_code(router, REQUEST_TIMED_OUT, limits.request_timeout);
    let open = Arc::new(OpenConnections::new(limits.max_connections.max(1)));
    let mut shed_log = ShedLog::new(limits.max_connections);
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
                shed_log.accept_failed(&err);
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let (id, tracked) = match open.admit() {
            Admitted::Room(id, tracked) => (id, tracked),
            Admitted::MadeRoom(id, tracked) => {
                metrics::http_connection_shed("closed_idle");
                shed_log.shed(Instant::now());
                (id, tracked)
            }
            Admitted::Full => {
                refuse(stream);
                metrics::http_connection_shed("refused");
                shed_log.shed(Instant::now());
                continue;
            }
        };
        let service = TowerToHyperService::new(service.clone());
        let shutdown = shutdown.clone();
        let open = open.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            metrics::http_connection_opened();
            serve_connection(stream, service, &tracked, header_timeout, shutdown).await;
            open.remove(id);
            metrics::http_connection_closed();
        });
    }
    drop(listener);
    while !open.is_empty() {
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

async fn serve_connection(
    stream: TcpStream,
    service: TowerToHyperService<Timeout<Router>>,
    tracked: &Arc<Tracked>,
    header_timeout: Duration,
    shutdown: Shutdown,
) {
    // Small answers go out at once rather than waiting for more to send (Nagle).
    let _ = stream.set_nodelay(true);
    // hyper calls the service once a request's head is in: from then until the answer
    // the connection is busy, and is not closed to make room.
    let marked = tracked.clone();
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        marked.busy();
        let answer = service.call(request);
        let marked = marked.clone();
        async move {
            let answer = answer.await;
            marked.waiting();
            answer
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let result = tokio::select! {
        result = conn.as_mut() => result,
        // Dropping the connection closes the socket.
        () = tracked.evict.notified() => return,
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

/// One open connection, as the listener sees it.
struct Tracked {
    /// Milliseconds (since the listener started, plus one) at which the connection
    /// began waiting for a request head; 0 while it is answering a request.
    waiting_since: AtomicU64,
    epoch: Instant,
    /// Rung to close the connection and make room for a new one.
    evict: Notify,
}

impl Tracked {
    fn busy(&self) {
        self.waiting_since.store(0, Ordering::Relaxed);
    }

    fn waiting(&self) {
        let since = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.waiting_since.store(since + 1, Ordering::Relaxed);
    }
}

enum Admitted {
    Room(u64, Arc<Tracked>),
    /// Admitted after closing the connection that had waited longest for a head.
    MadeRoom(u64, Arc<Tracked>),
    /// Every connection is answering a request.
    Full,
}

/// The open connections, at most `max`.
struct OpenConnections {
    max: usize,
    epoch: Instant,
    next_id: AtomicU64,
    table: Mutex<HashMap<u64, Arc<Tracked>>>,
}

impl OpenConnections {
    fn new(max: usize) -> OpenConnections {
        OpenConnections {
            max,
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            table: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        // The table holds only handles; a panic elsewhere leaves it usable.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for a new connection: free, or made by closing the connection that has
    /// waited longest for a request head (scanning at most `max` entries, only when full).
    fn admit(&self) -> Admitted {
        let mut table = self.lock();
        let mut made_room = false;
        if table.len() >= self.max {
            let longest_waiting = table
                .iter()
                .map(|(id, t)| (t.waiting_since.load(Ordering::Relaxed), *id))
                .filter(|(since, _)| *since != 0)
                .min();
            let Some((_, id)) = longest_waiting else {
                return Admitted::Full;
            };
            if let Some(evicted) = table.remove(&id) {
                evicted.evict.notify_one();
            }
            made_room = true;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            waiting_since: AtomicU64::new(0),
            epoch: self.epoch,
            evict: Notify::new(),
        });
        tracked.waiting();
        table.insert(id, tracked.clone());
        if made_room {
            Admitted::MadeRoom(id, tracked)
        } else {
            Admitted::Room(id, tracked)
        }
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
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
}

/// Logs shed connections and accept failures at most once per [`SHED_LOG_INTERVAL`],
/// with the count since the last line: a flood must not become a flood of log lines.
struct ShedLog {
    limit: usize,
    last_logged: Option<Instant>,
    shed_since: u64,
    last_error_logged: Option<Instant>,
}

impl ShedLog {
    fn new(limit: usize) -> ShedLog {
        ShedLog {
            limit,
            last_logged: None,
            shed_since: 0,
            last_error_logged: None,
        }
    }

    fn shed(&mut self, now: Instant) {
        self.shed_since += 1;
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < SHED_LOG_INTERVAL)
        {
            return;
        }
        tracing::warn!(
            limit = self.limit,
            shed = self.shed_since,
            "connection limit reached: closing the connections idle longest, or refusing \
             with 503 when all are busy (raise CUSP_MAX_CONNECTIONS if this is real traffic)"
        );
        self.last_logged = Some(now);
        self.shed_since = 0;
    }

    fn accept_failed(&mut self, err: &std::io::Error) {
        let now = Instant::now();
        if self
            .last_error_logged
            .is_some_and(|at| now.duration_since(at) < SHED_LOG_INTERVAL)
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
    fn shedding_is_logged_once_per_interval_with_its_count() {
        let mut log = ShedLog::new(4);
        let start = Instant::now();
        log.shed(start);
        assert_eq!((log.last_logged, log.shed_since), (Some(start), 0));
        for i in 1..=5 {
            log.shed(start + Duration::from_millis(i));
        }
        assert_eq!(log.shed_since, 5, "counted, not logged");
        let later = start + SHED_LOG_INTERVAL;
        log.shed(later);
        assert_eq!((log.last_logged, log.shed_since), (Some(later), 0));
    }

    #[test]
    fn a_full_table_closes_the_connection_waiting_longest_and_never_a_busy_one() {
        let open = OpenConnections::new(3);
        let ids: Vec<(u64, Arc<Tracked>)> = (0..3)
            .map(|_| match open.admit() {
                Admitted::Room(id, tracked) => (id, tracked),
                _ => (
                    u64::MAX,
                    Arc::new(Tracked {
                        waiting_since: AtomicU64::new(0),
                        epoch: open.epoch,
                        evict: Notify::new(),
                    }),
                ),
            })
            .collect();
        assert!(ids.iter().all(|(id, _)| *id != u64::MAX), "room for three");
        // The oldest is answering a request; the second waited longer than the third.
        ids[0].1.busy();
        ids[1].1.waiting_since.store(5, Ordering::Relaxed);
        ids[2].1.waiting_since.store(9, Ordering::Relaxed);
        assert!(matches!(open.admit(), Admitted::MadeRoom(..)));
        let left: Vec<u64> = {
            let mut ids: Vec<u64> = open.lock().keys().copied().collect();
            ids.sort_unstable();
            ids
        };
        assert_eq!(left, vec![0, 2, 3], "the second was closed");
        // Everyone busy: no room is made, the newcomer is refused.
        for tracked in open.lock().values() {
            tracked.busy();
        }
        assert!(matches!(open.admit(), Admitted::Full));
        assert_eq!(open.lock().len(), 3);
    }
}
