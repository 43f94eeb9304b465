//! Background work: the inbox worker (events → bot → effects) and the outbox worker
//! (effects → Slack), the digest scheduler, and in OAuth mode token rotation and the
//! purge of removed workspaces. Each exposes a step function that tests call directly.

pub mod gauges;
mod group_commit;
pub mod inbox_worker;
mod lanes;
pub mod lease;
pub mod outbox_worker;
pub mod scheduler;
pub mod token_refresh;
pub mod uninstalled;

use std::time::Duration;

use tokio::sync::{Notify, watch};

/// Waits for a wake-up, the poll interval, or shutdown; `false` means stop.
pub(crate) async fn idle(
    wake: &Notify,
    poll: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        () = wake.notified() => true,
        () = tokio::time::sleep(poll) => true,
        _ = shutdown.changed() => false,
    }
}
