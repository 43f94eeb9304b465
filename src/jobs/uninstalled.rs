//! Deletes the data of workspaces that removed cusp (OAuth mode): 30 days after an
//! `app_uninstalled`, `tokens_revoked` or `cusp installations remove`, unless the
//! workspace reinstalled meanwhile, every row cusp holds for the team goes, its
//! installation row last. The grace period lets a workspace that removed cusp by
//! mistake reinstall and find its history, settings and mutes as they were.

use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::state::AppState;
use crate::store::{InstallationKey, StoreError};
use crate::telemetry::metrics;

/// How long a removed workspace's data is kept in case it reinstalls.
pub const UNINSTALLED_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// How often the job looks for removed workspaces past the grace period.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Rows deleted per statement, so that no batch holds the write lock long.
pub const PURGE_BATCH: i64 = 1_000;

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    if state.install_flow.is_none() {
        return;
    }
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(err) = purge_due(&state, Timestamp::now()).await {
            tracing::error!(error = %err, "could not look for removed workspaces to purge");
        }
        tokio::select! {
            () = tokio::time::sleep(PURGE_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One pass at `now`; tests call it directly with a clock 30 days on. Returns the
/// installations whose data was deleted; a failure for one team is logged and retried
/// at the next pass.
pub async fn purge_due(
    state: &AppState,
    now: Timestamp,
) -> Result<Vec<InstallationKey>, StoreError> {
    let grace = i64::try_from(UNINSTALLED_GRACE.as_millis()).unwrap_or(i64::MAX);
    let removed_before = now.as_millisecond().saturating_sub(grace);
    let mut purged = Vec::new();
    for key in state.store.uninstalled_before(removed_before).await? {
        match state
            .store
            .purge_uninstalled_team(&key, removed_before, PURGE_BATCH)
            .await
        {
            Ok(Some(rows)) => {
                metrics::team_purged();
                tracing::info!(installation = %key, rows, "data of a workspace that removed cusp 30 days ago deleted");
                purged.push(key);
            }
            Ok(None) => {
                tracing::info!(installation = %key, "workspace reinstalled cusp; its data is kept");
            }
            Err(err) => {
                tracing::warn!(installation = %key, error = %err, "could not delete a removed workspace's data; trying again later");
            }
        }
    }
    Ok(purged)
}
