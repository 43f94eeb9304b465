//! One shutdown signal for the whole process. `cusp serve` triggers it on SIGTERM or
//! SIGINT ([`Shutdown::on_signals`]); tests trigger it by hand. The HTTP server stops
//! accepting and finishes the requests in flight; the workers stop between items; a
//! delivery in flight gets [`DELIVERY_GRACE`] to finish and is otherwise put back in the
//! outbox as pending (see `jobs::outbox_worker`).
//!
//! Anything else that runs until shutdown (e.g. a Socket Mode loop) takes a clone and
//! awaits [`Shutdown::wait`], or polls [`Shutdown::is_triggered`] between items.

use std::time::Duration;

use tokio::sync::watch;

/// How long a Slack call in flight at shutdown may take before its outbox row is put
/// back as pending (Kubernetes allows 30 s from SIGTERM to SIGKILL by default).
pub const DELIVERY_GRACE: Duration = Duration::from_secs(5);
/// How long the HTTP server waits for requests in flight before it stops anyway.
pub const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Cheap to clone; every clone sees the same trigger.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            tx: watch::Sender::new(false),
        }
    }

    /// Starts the shutdown; calling it again changes nothing.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the shutdown has been triggered (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|triggered| *triggered).await;
    }

    /// A receiver that turns `true` on shutdown, for loops that `select!` on it.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// Triggers this shutdown on the first SIGTERM or SIGINT (Ctrl-C).
    pub fn on_signals(&self) {
        let shutdown = self.clone();
        tokio::spawn(async move {
            let signal = wait_for_signal().await;
            tracing::info!(
                signal,
                "shutting down: finishing requests and deliveries in flight"
            );
            shutdown.trigger();
        });
    }
}

async fn wait_for_signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => "SIGINT",
        () = terminate => "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_trigger() {
        let shutdown = Shutdown::new();
        let other = shutdown.clone();
        let mut rx = other.subscribe();
        assert!(!other.is_triggered());
        shutdown.trigger();
        assert!(other.is_triggered());
        other.wait().await;
        assert!(*rx.borrow_and_update());
        // Waiting after the trigger returns at once.
        Shutdown::wait(&shutdown).await;
    }
}
