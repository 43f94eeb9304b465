//! Handles stored events one at a time: claim, decide (bot), store the effects and mark
//! the event done in one transaction. Events left by a crash are resumed after their lease.
//!
//! A failed attempt is retried later, not at once: the event waits `AppState::inbox_backoff`
//! (2 s doubling, jittered) or, when Slack rate-limited the call, at least its
//! Retry-After. Without the wait a short Slack problem would use up every attempt
//! within milliseconds and the event would be parked `failed`, its payload gone.

use std::time::Duration;
use tracing::Instrument;

use tokio::sync::watch;

use super::backoff::{self, Backoff};
use crate::app::AppState;
use crate::bot;
use crate::store::{Effects, StoreError};

/// How long a claimed event is ours before another worker may take it over.
pub const INBOX_LEASE: Duration = Duration::from_secs(60);
/// Delays between attempts at a failing event: 2 s, 4 s, 8 s, … up to 5 minutes.
pub const INBOX_BACKOFF: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(300));
/// How often the worker looks for work when nobody rang.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Pause after a database error before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        match process_next(&state, jiff::Timestamp::now().as_millisecond()).await {
            Ok(true) => continue,
            Ok(false) => {
                if !super::idle(&state.inbox_wake, POLL_INTERVAL, &mut shutdown).await {
                    return;
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "inbox worker could not reach the database");
                if !super::idle(&state.inbox_wake, ERROR_PAUSE, &mut shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Handles one event if one is due; `false` when the inbox is empty.
pub async fn process_next(state: &AppState, now_ms: i64) -> Result<bool, StoreError> {
    let team = state.identity.team_id.as_str();
    let Some(item) = state
        .store
        .claim_inbox_item(team, now_ms, INBOX_LEASE)
        .await?
    else {
        return Ok(false);
    };
    let span = tracing::info_span!("inbox", team_id = %item.team_id, event_id = %item.event_id, attempt = item.attempts);
    async {
        let outcome = match item.payload.as_deref() {
            Some(raw) => bot::dispatch_event(state, raw, now_ms).await,
            None => Ok(Effects::default()),
        };
        match outcome {
            Ok(effects) => {
                state
                    .store
                    .finish_inbox_item(team, item.id, &effects, now_ms)
                    .await?;
                if !effects.outbox.is_empty() {
                    state.outbox_wake.notify_one();
                }
            }
            Err(err) if err.is_permanent() => {
                tracing::error!(error = %err, "event cannot be handled; parked without retrying");
                state
                    .store
                    .fail_inbox_item(team, item.id, &err.to_string(), now_ms, None)
                    .await?;
            }
            Err(err) => {
                // Slack's Retry-After is a floor: retrying earlier would only be refused again.
                let delay = state
                    .inbox_backoff
                    .delay(item.attempts, rand::random::<f64>())
                    .max(err.retry_after().unwrap_or_default());
                let retry_at = Some(backoff::after(now_ms, delay));
                tracing::warn!(error = %err, ?retry_at, "event could not be handled");
                state
                    .store
                    .fail_inbox_item(team, item.id, &err.to_string(), now_ms, retry_at)
                    .await?;
            }
        }
        Ok(true)
    }
    .instrument(span)
    .await
}

/// Handles every due event (tests, and `cusp` tooling). An event that fails is not due
/// again at the same `now_ms`, so this tries it once.
pub async fn drain(state: &AppState, now_ms: i64) -> Result<usize, StoreError> {
    let mut handled = 0;
    while process_next(state, now_ms).await? {
        handled += 1;
    }
    Ok(handled)
}
