//! Delivers outbox rows to Slack. Policy:
//! - `ok: false` with a permanent error (e.g. `channel_not_found`): recorded, not retried;
//! - HTTP 429: Slack's limits are per method and workspace, so the method is held for
//!   the whole team until `Retry-After` has passed (`slack_rate_limits`; the claim skips
//!   held rows, on every replica), and this row is tried again then. A 429 is not a
//!   failure: it does not count toward `MAX_ATTEMPTS`, and 429s alone never kill a row;
//! - 5xx, timeouts, transport errors: exponential backoff with jitter, up to `MAX_ATTEMPTS`
//!   such failures, then the row is `dead` with its last error;
//! - shutdown: the worker stops between deliveries; one in flight gets `DELIVERY_GRACE`,
//!   then goes back to `pending`, due at once and in doubt (`Delivery::Interrupted`);
//! - the claim is a short lease (`jobs::lease`), renewed while the call is in flight, so
//!   a restarted process takes over a dead one's deliveries within seconds; a worker
//!   that cannot renew abandons the call before its lease ends (`Delivery::LeaseLost`).
//!
//! No double posts: every post carries its idempotency key in Slack message metadata
//! (`SlackClient::send`). When an earlier attempt may have reached Slack (a crash between
//! Slack's answer and the row being marked sent, a timeout, a 5xx), the worker first asks
//! `SlackClient::find_post` for a message with that key and, if it is there, marks the row
//! sent instead of posting again. What is sent is the stored `SlackCall`, unchanged: this
//! worker decides when, `slack/` knows how.

use std::time::{Duration, Instant};
use tracing::Instrument;

use tokio::sync::watch;

use super::lease::{self, Lost};
use crate::backoff::{Backoff, after};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::shutdown::DELIVERY_GRACE;
use crate::slack::calls::SlackCall;
use crate::slack::web_api::{SlackApiError, SlackClient};
use crate::state::AppState;
use crate::state::holds::StoreHolds;
use crate::store::{OutboxItem, StoreError};
use crate::telemetry::metrics;

/// A claimed delivery is ours for this long unless renewed (`lease::CLAIM`); it is renewed
/// every second while its Slack call is in flight, however long the call takes.
pub const OUTBOX_LEASE: Duration = lease::CLAIM.length;
/// Failed attempts (5xx, timeouts, transport errors) before a delivery is given up.
/// Rate-limited attempts are not counted.
pub const MAX_ATTEMPTS: i64 = 8;
/// Delays between failed attempts: 2 s, 4 s, 8 s, … up to 10 minutes.
pub const OUTBOX_BACKOFF: Backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(600));
/// How often the worker looks for due deliveries when nobody rang.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Sent {
        ts: Option<String>,
    },
    /// An earlier attempt had posted; found by its metadata and not posted again.
    FoundEarlierPost {
        ts: String,
    },
    /// `in_doubt`: this attempt may have reached Slack, so the next one checks first.
    Retrying {
        at_ms: i64,
        error: String,
        in_doubt: bool,
    },
    /// Slack answered 429: `method` is held for the team until `at_ms`, when this row
    /// is tried again. Not a failure.
    RateLimited {
        at_ms: i64,
        method: String,
        error: String,
    },
    Dead {
        error: String,
    },
    /// Shutdown came and the call was still in flight after [`DELIVERY_GRACE`]: the row
    /// is back to `pending`, due at once, flagged in doubt, the attempt not counted.
    Interrupted,
    /// The claim could not be renewed (the database did not answer, or another worker
    /// took the row): the call was abandoned before the lease ran out and the row left
    /// alone; whoever claims it next finds it in doubt and looks for the post first.
    LeaseLost(Lost),
}

impl Delivery {
    /// The `outcome` label of `cusp_outbox_deliveries_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Delivery::Sent { .. } => "sent",
            Delivery::FoundEarlierPost { .. } => "found_earlier_post",
            Delivery::Retrying { .. } => "retrying",
            Delivery::RateLimited { .. } => "rate_limited",
            Delivery::Dead { .. } => "dead",
            Delivery::Interrupted => "interrupted",
            Delivery::LeaseLost(_) => "lease_lost",
        }
    }
}

/// Resolves [`DELIVERY_GRACE`] after shutdown was triggered; never without it.
async fn grace_expired(shutdown: Option<watch::Receiver<bool>>) {
    let Some(mut shutdown) = shutdown else {
        // A step function (tests, tooling): nobody asks it to stop.
        return std::future::pending().await;
    };
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        // No sender left: nobody can ask us to stop.
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(DELIVERY_GRACE).await;
}

/// The one `info` line per message delivered: what it was, where, and how long it
/// waited in the outbox. Ids only; the message text never reaches the log.
fn log_delivered(item: &OutboxItem, channel: Option<&str>, started: Instant) {
    let queued_ms = jiff::Timestamp::now()
        .as_millisecond()
        .saturating_sub(item.created_at)
        .max(0);
    tracing::info!(
        kind = metrics::outbox_kind(&item.idempotency_key),
        channel_id = channel,
        latency_ms = queued_ms,
        call_ms = started.elapsed().as_millis() as u64,
        "delivered"
    );
}

/// Delivers until `shutdown`: stops between deliveries, and gives one in flight
/// [`DELIVERY_GRACE`] before putting its row back (see [`Delivery::Interrupted`]).
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut failures = 0;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let pause = match deliver(&state, now_ms, Some(&shutdown)).await {
            Ok(delivered) => {
                failures = 0;
                if delivered.is_some() {
                    continue;
                }
                POLL_INTERVAL
            }
            Err(err) => {
                failures += 1;
                let pause = crate::backoff::DATABASE_BACKOFF.delay(failures, rand::random::<f64>());
                tracing::error!(error = %err, failures, pause_ms = pause.as_millis() as u64, "outbox worker could not reach the database");
                pause
            }
        };
        if !super::idle(&state.outbox_wake, pause, &mut shutdown).await {
            return;
        }
    }
}

/// Delivers every due row (tests step the worker with this).
pub async fn drain(state: &AppState, now_ms: i64) -> Result<Vec<Delivery>, StoreError> {
    let mut out = Vec::new();
    while let Some(delivery) = deliver_next(state, now_ms).await? {
        out.push(delivery);
    }
    Ok(out)
}

/// Claims and attempts one due delivery; `None` when nothing is due.
pub async fn deliver_next(state: &AppState, now_ms: i64) -> Result<Option<Delivery>, StoreError> {
    deliver(state, now_ms, None).await
}

/// Where the next search for due work starts among the workspaces served, so that one
/// busy workspace does not starve the others.
static NEXT_TEAM: AtomicUsize = AtomicUsize::new(0);

/// `deliver_next`, interrupted [`DELIVERY_GRACE`] after `shutdown` turns `true`. Tries
/// each workspace served in turn, starting after the one served last.
async fn deliver(
    state: &AppState,
    now_ms: i64,
    shutdown: Option<&watch::Receiver<bool>>,
) -> Result<Option<Delivery>, StoreError> {
    let teams = state.workspaces.teams().await?;
    let start = NEXT_TEAM.fetch_add(1, Ordering::Relaxed);
    for i in 0..teams.len() {
        let team = &teams[start.wrapping_add(i) % teams.len()];
        if let Some(delivery) = deliver_for(state, team, now_ms, shutdown).await? {
            return Ok(Some(delivery));
        }
    }
    Ok(None)
}

async fn deliver_for(
    state: &AppState,
    team: &str,
    now_ms: i64,
    shutdown: Option<&watch::Receiver<bool>>,
) -> Result<Option<Delivery>, StoreError> {
    let Some(item) = state
        .store
        .claim_outbox_item(team, now_ms, OUTBOX_LEASE)
        .await?
    else {
        return Ok(None);
    };
    let span = tracing::info_span!("outbox", team_id = %item.team_id, outbox_id = item.id, method = %item.method, key = %item.idempotency_key, attempt = item.attempts);
    async {
        let workspace = match state.workspaces.for_team(team).await {
            Ok(Some(workspace)) => workspace,
            Ok(None) => {
                // Uninstalled: there is no token to send with, and a reinstall starts afresh.
                let error = "the workspace removed cusp; not sent".to_owned();
                tracing::warn!("delivery for a workspace with no installation; marked dead");
                state.store.mark_outbox_dead(team, item.id, &error).await?;
                return Ok(Some(Delivery::Dead { error }));
            }
            Err(err) => {
                // Leave the row claimed: its lease runs out and it is tried again.
                tracing::error!(error = %err, "could not read the workspace's installation");
                return Err(StoreError::Corrupt(err.to_string()));
            }
        };
        // The claim skipped held methods; the client also keeps to holds set since (by a
        // direct call, or another replica) and to those of the history reads that
        // `find_post` makes, and records the rate limits it gets.
        let holds = StoreHolds::new(state.store.clone(), team);
        let slack = &workspace.slack;
        let call = match item.call() {
            Ok(call) => call,
            Err(err) => {
                let error = err.to_string();
                tracing::error!(error, "stored call cannot be read; marked dead");
                state.store.mark_outbox_dead(team, item.id, &error).await?;
                return Ok(Some(Delivery::Dead { error }));
            }
        };
        let channel = call.destination();
        let started = Instant::now();
        let renew = |until_ms| {
            state
                .store
                .renew_outbox_lease(team, item.id, item.attempts, until_ms)
        };
        let delivery = tokio::select! {
            biased;
            delivery = attempt(slack, holds, &item, &call, now_ms) => delivery,
            lost = lease::CLAIM.keep(now_ms, renew) => Delivery::LeaseLost(lost),
            () = grace_expired(shutdown.cloned()) => Delivery::Interrupted,
        };
        metrics::delivery(&item.method, delivery.outcome(), started.elapsed());
        match &delivery {
            Delivery::Sent { ts } => {
                state
                    .store
                    .mark_outbox_sent(team, item.id, ts.as_deref(), now_ms)
                    .await?;
                log_delivered(&item, channel, started);
            }
            Delivery::FoundEarlierPost { ts } => {
                tracing::info!(ts, "an earlier attempt had posted; not posting again");
                state
                    .store
                    .mark_outbox_sent(team, item.id, Some(ts), now_ms)
                    .await?;
                log_delivered(&item, channel, started);
            }
            Delivery::Interrupted => {
                tracing::warn!(
                    grace_secs = DELIVERY_GRACE.as_secs(),
                    "shutting down: delivery still in flight after the grace period; back to pending"
                );
                state
                    .store
                    .release_outbox_item(team, item.id, now_ms, true)
                    .await?
            }
            Delivery::LeaseLost(lost) => {
                // Not ours any more, or not for long: whoever holds it next decides.
                tracing::warn!(
                    ?lost,
                    "could not keep the claim; delivery abandoned, left to the next holder"
                );
            }
            Delivery::Retrying {
                at_ms,
                error,
                in_doubt,
            } => {
                tracing::warn!(error, retry_at_ms = at_ms, "delivery failed; will retry");
                let in_doubt = *in_doubt || item.in_doubt != 0;
                state
                    .store
                    .retry_outbox_item(team, item.id, error, *at_ms, in_doubt)
                    .await?
            }
            Delivery::RateLimited {
                at_ms,
                method,
                error,
            } => {
                tracing::warn!(
                    error,
                    limited_method = method,
                    retry_at_ms = at_ms,
                    "rate limited or held; trying again when the hold ends"
                );
                state
                    .store
                    .rate_limit_outbox_item(team, item.id, error, method, *at_ms)
                    .await?
            }
            Delivery::Dead { error } => {
                tracing::error!(error, "delivery failed for good");
                state.store.mark_outbox_dead(team, item.id, error).await?
            }
        }
        Ok(Some(delivery))
    }
    .instrument(span)
    .await
}

async fn attempt(
    slack: &SlackClient,
    holds: StoreHolds,
    item: &OutboxItem,
    call: &SlackCall,
    now_ms: i64,
) -> Delivery {
    // Slack's Retry-After counts from its answer, and a call can take seconds: delays are
    // measured from when the answer came, not from `now_ms`.
    let started = Instant::now();
    // On this attempt's clock, so a hold the client writes ends when the one this
    // attempt reports does.
    let slack = &holds.on_clock(now_ms, started).client(slack);
    let answered_ms = || now_ms.saturating_add(ceil_millis(started.elapsed()));
    if item.in_doubt != 0 {
        match slack
            .find_post(call, &item.idempotency_key, item.created_at)
            .await
        {
            Ok(Some(ts)) => return Delivery::FoundEarlierPost { ts },
            Ok(None) => {}
            Err(err) => return failure(item, &err, answered_ms()),
        }
    }
    match slack.send(call, &item.idempotency_key).await {
        Ok(sent) => Delivery::Sent { ts: sent.ts },
        Err(err) => failure(item, &err, answered_ms()),
    }
}

/// Whole milliseconds, rounded up so that a wait computed from it is never short.
fn ceil_millis(d: Duration) -> i64 {
    let rounded = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

fn failure(item: &OutboxItem, err: &SlackApiError, now_ms: i64) -> Delivery {
    let error = err.to_string();
    if let Some(wait) = err.retry_after() {
        // Hold the method that was refused: for an in-doubt row that is the history read,
        // not the post.
        let method = err.method().unwrap_or(&item.method).to_owned();
        return Delivery::RateLimited {
            at_ms: after(now_ms, wait),
            method,
            error,
        };
    }
    if !err.is_retryable() {
        return Delivery::Dead { error };
    }
    let failures = item.failed_attempts();
    if failures >= MAX_ATTEMPTS {
        return Delivery::Dead {
            error: format!("gave up after {failures} failed attempts: {error}"),
        };
    }
    // Not a 429, so Slack may have applied the call: the next attempt checks first.
    Delivery::Retrying {
        at_ms: after(
            now_ms,
            OUTBOX_BACKOFF.delay(failures, rand::random::<f64>()),
        ),
        error,
        in_doubt: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_measured_in_milliseconds_rounded_up() {
        assert_eq!(ceil_millis(Duration::ZERO), 0);
        assert_eq!(ceil_millis(Duration::from_millis(7)), 7);
        assert_eq!(ceil_millis(Duration::from_micros(7_001)), 8);
    }
}
