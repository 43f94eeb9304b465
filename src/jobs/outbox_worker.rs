//! Delivers outbox rows to Slack. Policy:
//! - `ok: false` with a permanent error (e.g. `channel_not_found`): recorded, not retried;
//! - HTTP 429: wait for `Retry-After`, then again (does not use up the attempt budget quickly);
//! - 5xx, timeouts, transport errors: exponential backoff with jitter, up to `MAX_ATTEMPTS`,
//!   then the row is `dead` with its last error.
//!
//! No double posts: every `chat.postMessage` carries its idempotency key in Slack message
//! metadata. When an earlier attempt may have reached Slack (a crash between Slack's
//! answer and the row being marked sent, a timeout, a 5xx), the worker first looks for a
//! message with that key in the channel or thread and, if it is there, marks the row sent
//! instead of posting again.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::app::AppState;
use crate::slack::web_api::SlackApiError;
use crate::store::{OutboxItem, StoreError};

/// A claimed delivery is ours for this long; longer than a Slack call can take.
pub const OUTBOX_LEASE: Duration = Duration::from_secs(60);
/// Attempts before a failing delivery is given up (rate-limit waits excepted).
pub const MAX_ATTEMPTS: i64 = 8;
/// Rate-limited attempts allowed before giving up: Slack says when to come back, so
/// these are cheap, but not endless.
pub const MAX_RATE_LIMITED_ATTEMPTS: i64 = 50;
/// First retry delay; doubles each attempt.
pub const BASE_BACKOFF: Duration = Duration::from_secs(2);
/// Retry delays never exceed this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How often the worker looks for due deliveries when nobody rang.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Slack message metadata event type that carries our idempotency key.
pub const METADATA_EVENT_TYPE: &str = "cusp_outbox";
/// Messages scanned when looking for an earlier attempt's post.
const RECONCILE_SCAN_LIMIT: u32 = 200;
/// Slack errors that mean "already done".
const ALREADY_DONE: &[&str] = &["already_reacted"];

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
    Dead {
        error: String,
    },
}

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        match deliver_next(&state, jiff::Timestamp::now().as_millisecond()).await {
            Ok(Some(_)) => continue,
            Ok(None) => {
                if !super::idle(&state.outbox_wake, POLL_INTERVAL, &mut shutdown).await {
                    return;
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "outbox worker could not reach the database");
                if !super::idle(&state.outbox_wake, POLL_INTERVAL, &mut shutdown).await {
                    return;
                }
            }
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
    let team = state.identity.team_id.as_str();
    let Some(item) = state
        .store
        .claim_outbox_item(team, now_ms, OUTBOX_LEASE)
        .await?
    else {
        return Ok(None);
    };
    let span = tracing::info_span!("outbox", team_id = %item.team_id, method = %item.method, key = %item.idempotency_key, attempt = item.attempts);
    let _entered = span.enter();
    let params = match item.params() {
        Ok(params) => params,
        Err(err) => {
            let error = err.to_string();
            state.store.mark_outbox_dead(team, item.id, &error).await?;
            return Ok(Some(Delivery::Dead { error }));
        }
    };
    let delivery = attempt(state, &item, params, now_ms).await;
    match &delivery {
        Delivery::Sent { ts } => {
            state
                .store
                .mark_outbox_sent(team, item.id, ts.as_deref(), now_ms)
                .await?
        }
        Delivery::FoundEarlierPost { ts } => {
            tracing::info!(ts, "an earlier attempt had posted; not posting again");
            state
                .store
                .mark_outbox_sent(team, item.id, Some(ts), now_ms)
                .await?
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
        Delivery::Dead { error } => {
            tracing::error!(error, "delivery failed for good");
            state.store.mark_outbox_dead(team, item.id, error).await?
        }
    }
    Ok(Some(delivery))
}

async fn attempt(
    state: &AppState,
    item: &OutboxItem,
    mut params: Map<String, Value>,
    now_ms: i64,
) -> Delivery {
    let posts_message = item.method == "chat.postMessage";
    if posts_message {
        if item.in_doubt != 0 {
            match find_earlier_post(state, item, &params).await {
                Ok(Some(ts)) => return Delivery::FoundEarlierPost { ts },
                Ok(None) => {}
                Err(err) => return failure(item, &err, now_ms),
            }
        }
        params.insert(
            "metadata".into(),
            json!({ "event_type": METADATA_EVENT_TYPE, "event_payload": { "key": item.idempotency_key } }),
        );
    }
    match state.slack.call(&item.method, &params).await {
        Ok(response) => {
            let ts = response
                .get("ts")
                .or_else(|| response.get("message_ts"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            Delivery::Sent { ts }
        }
        Err(err) if err.code().is_some_and(|code| ALREADY_DONE.contains(&code)) => {
            Delivery::Sent { ts: None }
        }
        Err(err) => failure(item, &err, now_ms),
    }
}

fn failure(item: &OutboxItem, err: &SlackApiError, now_ms: i64) -> Delivery {
    let error = err.to_string();
    if !err.is_retryable() {
        return Delivery::Dead { error };
    }
    let (budget, delay) = match err.retry_after() {
        Some(wait) => (MAX_RATE_LIMITED_ATTEMPTS, wait),
        None => (MAX_ATTEMPTS, backoff(item.attempts, rand::random::<f64>())),
    };
    if item.attempts >= budget {
        return Delivery::Dead {
            error: format!("gave up after {} attempts: {error}", item.attempts),
        };
    }
    // Slack refused a rate-limited call outright; anything else may have been applied.
    let in_doubt = err.retry_after().is_none();
    Delivery::Retrying {
        at_ms: now_ms.saturating_add(delay.as_millis() as i64),
        error,
        in_doubt,
    }
}

/// Delay before attempt `attempts + 1`: `BASE_BACKOFF · 2^(attempts-1)`, capped, scaled
/// by a jitter factor in [0.5, 1.5) so that many failures do not retry in lockstep.
pub fn backoff(attempts: i64, jitter: f64) -> Duration {
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    let base = BASE_BACKOFF
        .saturating_mul(2u32.saturating_pow(exponent))
        .min(MAX_BACKOFF);
    base.mul_f64(0.5 + jitter.clamp(0.0, 1.0)).min(MAX_BACKOFF)
}

/// Looks for a message carrying this row's idempotency key, posted since the row was created.
async fn find_earlier_post(
    state: &AppState,
    item: &OutboxItem,
    params: &Map<String, Value>,
) -> Result<Option<String>, SlackApiError> {
    let Some(channel) = params.get("channel").and_then(Value::as_str) else {
        return Ok(None);
    };
    let thread_ts = params.get("thread_ts").and_then(Value::as_str);
    // One second of slack for clock differences between us and Slack.
    let oldest_ms = item.created_at.saturating_sub(1000).max(0);
    let oldest = format!("{}.{:06}", oldest_ms / 1000, (oldest_ms % 1000) * 1000);
    let messages = state
        .slack
        .recent_messages(channel, thread_ts, &oldest, RECONCILE_SCAN_LIMIT)
        .await?;
    Ok(messages.iter().find_map(|message| {
        let metadata = message.get("metadata")?;
        let matches = metadata.get("event_type")?.as_str()? == METADATA_EVENT_TYPE
            && metadata.get("event_payload")?.get("key")?.as_str()? == item.idempotency_key;
        matches
            .then(|| message.get("ts").and_then(Value::as_str).map(str::to_owned))
            .flatten()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1, 0.5), Duration::from_secs(2));
        assert_eq!(backoff(2, 0.5), Duration::from_secs(4));
        assert_eq!(backoff(4, 0.5), Duration::from_secs(16));
        assert_eq!(backoff(30, 0.5), MAX_BACKOFF);
        assert_eq!(backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(1, 0.999), Duration::from_secs_f64(2.0 * 1.499));
    }
}
