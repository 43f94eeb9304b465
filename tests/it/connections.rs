//! The real listener on a loopback port against clients that hold connections: requests
//! sent halfway and never finished, idle keep-alive connections, and more connections
//! than the cap. The server must close the first two after the header timeout, close
//! the one idle longest to make room at the cap (503 only when every connection is
//! busy), and keep answering `/healthz` to everyone else.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use cusp::app::run_server_with_limits;
use cusp::server::connections::HttpLimits;
use cusp::shutdown::Shutdown;

use crate::ops::sample;
use crate::support::app::{Backend, TestApp};

/// How long a test waits for anything at all: far above every timeout under test, so a
/// loaded machine does not fail it, and a server that never closes does.
const PATIENCE: Duration = Duration::from_secs(30);
/// A request line cut off in the middle, as a slow or hostile client leaves it.
const HALF_SENT: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: cu";
/// A whole request head, then a tenth of the body it announces.
const SLOW_BODY: &[u8] = b"POST /hooks/deals HTTP/1.1\r\nHost: cusp\r\n\
Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"deal_id\":";

struct Served {
    addr: SocketAddr,
    shutdown: Shutdown,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _app: TestApp,
}

impl Served {
    async fn start(limits: HttpLimits) -> Served {
        let app = TestApp::spawn(Backend::Sqlite).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let server = tokio::spawn(run_server_with_limits(
            listener,
            app.state.clone(),
            shutdown.clone(),
            limits,
        ));
        Served {
            addr,
            shutdown,
            server,
            _app: app,
        }
    }

    async fn stop(self) {
        self.shutdown.trigger();
        timeout(PATIENCE, self.server)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

/// `GET /healthz` on a new connection; the whole answer as text.
async fn healthz(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: cusp\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_until_closed(&mut stream).await
}

/// Everything the server sends until it closes the connection (a reset counts as closed).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = timeout(PATIENCE, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {PATIENCE:?}"
    );
    String::from_utf8_lossy(&out).into_owned()
}

async fn half_sent(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(HALF_SENT).await.unwrap();
        held.push(stream);
    }
    held
}

fn shed_so_far(action: &str) -> f64 {
    sample(
        &cusp::telemetry::metrics::render(),
        "cusp_http_connections_shed_total",
        &[("action", action)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_after_the_header_timeout_while_healthz_answers() {
    let served = Served::start(HttpLimits {
        max_connections: 1_000,
        header_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
    })
    .await;
    let mut held = half_sent(served.addr, 300).await;

    let answer = healthz(served.addr).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    for stream in &mut held {
        // Closed by the server, without an answer: the request never arrived.
        let answer = read_until_closed(stream).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{answer}"
        );
    }
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let served = Served::start(HttpLimits {
        max_connections: 100,
        header_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
    })
    .await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: cusp\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("ok"),
        "one whole answer, then closed: {answer}"
    );
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_the_connection_idle_longest_makes_room_for_a_new_one() {
    let served = Served::start(HttpLimits {
        max_connections: 8,
        // Longer than the test waits for the eviction: what closes them is the cap.
        header_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(60),
    })
    .await;
    let closed_before = shed_so_far("closed_idle");
    let mut held = half_sent(served.addr, 8).await;

    // Each new request closes the oldest half-sent connection and is answered. (Its own
    // connection closes after the answer, so another half-sent one refills the table.)
    for round in 0..3 {
        let answer = healthz(served.addr).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "round {round}: {answer}"
        );
        let closed = timeout(Duration::from_secs(5), read_until_closed(&mut held[round]))
            .await
            .expect("the oldest half-sent connection is closed at once");
        assert!(closed.is_empty(), "{closed}");
        held.extend(half_sent(served.addr, 1).await);
    }
    assert!(shed_so_far("closed_idle") - closed_before >= 3.0);
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_connection_is_busy_a_new_one_is_refused_at_once() {
    let served = Served::start(HttpLimits {
        max_connections: 4,
        header_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(2),
    })
    .await;
    let refused_before = shed_so_far("refused");
    // Four requests whose bodies never finish: each connection is in a request.
    let mut busy = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(served.addr).await.unwrap();
        stream.write_all(SLOW_BODY).await.unwrap();
        busy.push(stream);
    }
    // Let the server read the four heads (it cannot know they are busy before).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = std::time::Instant::now();
    let answer = healthz(served.addr).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused at once"
    );
    assert!(shed_so_far("refused") - refused_before >= 1.0);

    // The slow requests get their 408, and the server answers again.
    for stream in &mut busy {
        let answer = read_until_closed(stream).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    let answer = timeout(PATIENCE, async {
        loop {
            let answer = healthz(served.addr).await;
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
            // The server may not have seen every close yet.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("healthz answers once the slow requests are closed");
    assert!(answer.ends_with("ok"), "{answer}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_finishes_is_answered_408() {
    let served = Served::start(HttpLimits {
        max_connections: 100,
        header_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(1),
    })
    .await;
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream.write_all(SLOW_BODY).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    served.stop().await;
}
