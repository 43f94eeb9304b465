//! Handles stored events one at a time: claim, decide (bot), store the effects and mark
//! the event done in one transaction. The claim is a short lease (`jobs::lease`), renewed
//! while the event is handled, so events left by a crash are resumed within seconds.
//!
//! A failed attempt is retried later, not at once: the event waits `AppState::inbox_backoff`
//! (2 s doubling, jittered) or, when Slack rate-limited the call, at least its
//! Retry-After. Without the wait a short Slack problem would use up every attempt
//! within milliseconds and the event would be parked `failed`, its payload gone.

use std::time::{Duration, Instant};
use tracing::Instrument;

use tokio::sync::watch;

use super::lease;
use crate::backoff;
use crate::bot;
use crate::state::AppState;
use crate::store::{Applied, Effects, InboxItem, StoreError};
use crate::telemetry::metrics;

/// How long a claimed event is ours, unless renewed, before another worker may take it
/// over; renewed every second while the event is handled (`lease::CLAIM`).
pub const INBOX_LEASE: Duration = lease::CLAIM.length;
/// How often the worker looks for work when nobody rang.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Handles events until `shutdown`, stopping between events (the one in hand is
/// finished: it is bounded by the Slack call timeout).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut failures = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let pause = match process_next(&state, jiff::Timestamp::now().as_millisecond()).await {
            Ok(handled) => {
                failures = 0;
                if handled {
                    continue;
                }
                POLL_INTERVAL
            }
            Err(err) => {
                failures += 1;
                let pause = backoff::DATABASE_BACKOFF.delay(failures, rand::random::<f64>());
                tracing::error!(error = %err, failures, pause_ms = pause.as_millis() as u64, "inbox worker could not reach the database");
                pause
            }
        };
        if !super::idle(&state.inbox_wake, pause, &mut shutdown).await {
            return;
        }
    }
}

/// Handles at most one due event of each workspace served, so a busy workspace does not
/// hold up the others; `false` when no inbox had one.
pub async fn process_next(state: &AppState, now_ms: i64) -> Result<bool, StoreError> {
    // `now_ms` as of this instant: the clock the step's Slack calls measure holds on.
    let clock = (now_ms, Instant::now());
    let teams = match state.workspaces.teams().await {
        Ok(teams) => teams,
        Err(err) => return Err(err.into()),
    };
    let mut handled = false;
    for team in &teams {
        handled |= process_next_of(state, team, clock).await?;
    }
    Ok(handled)
}

/// Handles one due event of `team`; `false` when its inbox is empty, or when its
/// installation cannot be read now.
async fn process_next_of(
    state: &AppState,
    team: &str,
    (now_ms, at): (i64, Instant),
) -> Result<bool, StoreError> {
    // Resolved before claiming: an installation that cannot be read now (the database
    // failing for a moment, a token sealed under a key no longer in CUSP_ENCRYPTION_KEY)
    // must not use up the attempts of the team's events, which would park them with
    // their payload deleted. They wait untouched, and the other teams carry on.
    let workspace = match state.workspaces.for_team(team).await {
        Ok(workspace) => workspace,
        Err(err) => {
            tracing::error!(team_id = %team, error = %err, "could not read the workspace's installation; its events wait");
            return Ok(false);
        }
    };
    let Some(item) = state
        .store
        .claim_inbox_item(team, now_ms, INBOX_LEASE)
        .await?
    else {
        return Ok(false);
    };
    let span = tracing::info_span!("inbox", team_id = %item.team_id, event_id = %item.event_id, attempt = item.attempts);
    async {
        let started = Instant::now();
        let dispatched = async {
            match (item.payload.as_deref(), workspace) {
                (Some(payload), Some(workspace)) => {
                    let ctx = state.team_on_clock(&workspace, now_ms, at);
                    bot::dispatch_event(&ctx, &item.kind, payload, now_ms).await
                }
                // Uninstalled since the event arrived: nothing is done for it.
                (_, None) | (None, _) => Ok(Effects::default()),
            }
        };
        let renew = |until_ms| {
            state
                .store
                .renew_inbox_lease(team, item.id, item.attempts, until_ms)
        };
        let outcome = tokio::select! {
            biased;
            outcome = dispatched => outcome,
            lost = lease::CLAIM.keep(now_ms, renew) => {
                // Stopped before the lease ran out; the next holder handles the event
                // (its effects are deduplicated, so a half-done attempt causes no double).
                tracing::warn!(?lost, "could not keep the claim; event left to the next holder");
                return Ok(true);
            }
        };
        match outcome {
            Ok(effects) => {
                let applied = state
                    .store
                    .finish_inbox_item(team, item.id, &effects, now_ms)
                    .await?;
                if !applied.enqueued.is_empty() {
                    state.outbox_wake.notify_one();
                }
                log_handled(&item, &effects, &applied, started);
            }
            Err(err) if err.is_permanent() => {
                metrics::event_failed(true);
                tracing::error!(error = %err, "event cannot be handled; parked without retrying");
                state
                    .store
                    .fail_inbox_item(team, item.id, &err.to_string(), now_ms, None)
                    .await?;
            }
            Err(err) => {
                // Slack's Retry-After is a floor: retrying earlier would only be refused
                // again. It counts from Slack's answer (on the step's clock, rounded up),
                // as the method's hold does, so the retry never comes before the hold ends.
                let backoff_at = backoff::after(
                    now_ms,
                    state
                        .inbox_backoff
                        .delay(item.attempts, rand::random::<f64>()),
                );
                let answered_ms = now_ms.saturating_add(
                    i64::try_from(at.elapsed().as_millis())
                        .unwrap_or(i64::MAX)
                        .saturating_add(1),
                );
                let retry_at = Some(match err.retry_after() {
                    Some(wait) => backoff_at.max(backoff::after(answered_ms, wait)),
                    None => backoff_at,
                });
                metrics::event_failed(item.attempts >= crate::store::INBOX_MAX_ATTEMPTS);
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

/// The one `info` line per handled event: what it caused, the class and themes of
/// the deal update, and how long it took from arrival. Ids only, never the text.
fn log_handled(item: &InboxItem, effects: &Effects, applied: &Applied, started: Instant) {
    let outcome = if applied.enqueued.contains(&"nudge") {
        "nudge"
    } else if applied.enqueued.contains(&"reaction") {
        "reaction"
    } else if let Some(kind) = applied.enqueued.first() {
        kind
    } else if applied.observation_logged {
        "logged"
    } else if !applied.fresh {
        "duplicate"
    } else {
        "ignored"
    };
    let latency_ms = jiff::Timestamp::now()
        .as_millisecond()
        .saturating_sub(item.received_at)
        .max(0);
    metrics::event_handled(outcome, Duration::from_millis(latency_ms.unsigned_abs()));
    let observation = effects.observation.as_ref();
    let themes = observation.map_or_else(String::new, |obs| {
        obs.themes
            .iter()
            .map(|theme| theme.id())
            .collect::<Vec<_>>()
            .join(",")
    });
    tracing::info!(
        channel_id = observation.map_or("", |obs| obs.channel_id.as_str()),
        class = observation.map_or("", |obs| obs.class.as_str()),
        themes,
        outcome,
        latency_ms,
        handle_ms = started.elapsed().as_millis() as u64,
        "event handled"
    );
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
