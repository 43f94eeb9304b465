//! Refreshes the gauges that describe stored state (outbox depth and age, 429 holds)
//! from the database every [`REFRESH_INTERVAL`], and folds histogram samples. Counters
//! are recorded where things happen; only these need a look at the tables.

use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;
use crate::store::StoreError;
use crate::telemetry::metrics;

/// How often the gauges are refreshed: a scrape every 15-60 s sees values this fresh.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(15);

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(err) = refresh(&state, jiff::Timestamp::now().as_millisecond()).await {
            tracing::warn!(error = %err, "could not refresh the outbox gauges");
        }
        metrics::run_upkeep();
        tokio::select! {
            () = tokio::time::sleep(REFRESH_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One refresh over every workspace served at `now_ms` (depths add up, the oldest
/// row and the longest hold win); tests call it directly.
pub async fn refresh(state: &AppState, now_ms: i64) -> Result<(), StoreError> {
    let teams = state.workspaces.teams().await?;
    let (mut depth, mut age_ms) = (0, 0);
    let mut holds = std::collections::BTreeMap::<String, u64>::new();
    for team in &teams {
        let (team_depth, oldest) = state.store.outbox_depth(team).await?;
        depth += team_depth;
        age_ms = age_ms.max(oldest.map_or(0, |created| now_ms.saturating_sub(created).max(0)));
        for (method, until_ms) in state.store.rate_limit_holds(team).await? {
            let left = until_ms.saturating_sub(now_ms).max(0).unsigned_abs();
            let longest = holds.entry(method).or_default();
            *longest = (*longest).max(left);
        }
    }
    metrics::set_outbox_depth(depth, Duration::from_millis(age_ms.unsigned_abs()));
    for (method, left) in holds {
        metrics::set_rate_limit_hold_remaining(&method, Duration::from_millis(left));
    }
    Ok(())
}
