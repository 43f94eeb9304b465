//! A loopback TCP proxy in front of the test PostgreSQL server that a test can cut and
//! restore: the database "goes away" for the server under test (its connections drop,
//! new ones are closed at once) while the real server keeps serving everyone else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct DbProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped on every cut: each pipe watches it and closes both ends.
    generation: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl DbProxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> DbProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let accept = tokio::spawn({
            let cut = cut.clone();
            let generation = generation.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    // Subscribed before the check, so a cut from now on reaches the pipe.
                    let cuts = generation.subscribe();
                    if cut.load(Ordering::SeqCst) {
                        drop(client); // the client sees the connection closed at once
                        continue;
                    }
                    tokio::spawn(pipe(client, upstream.clone(), cuts));
                }
            }
        });
        DbProxy {
            port,
            cut,
            generation,
            accept,
        }
    }

    /// `url` (a PostgreSQL URL on 127.0.0.1) with its port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap();
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (format!("{user}@"), host),
            None => (String::new(), authority),
        };
        let host = host.split(':').next().unwrap();
        format!("{scheme}://{user}{host}:{}/{path}", self.port)
    }

    /// Drops every proxied connection and refuses new ones until [`DbProxy::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `host:port` of a PostgreSQL URL (default port 5432).
pub fn upstream_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

async fn pipe(mut client: TcpStream, upstream: String, mut generation: watch::Receiver<u64>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = generation.changed() => {} // cut: both sockets close when dropped
    }
}
