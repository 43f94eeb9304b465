//! A workspace's rate-limit holds, kept in the store (`slack_rate_limits`), for the Web
//! API client: the outbox's claims skip a held method's rows, and a client given these
//! holds neither calls a held method nor forgets a rate limit it was given. So a 429 on
//! a call that cannot wait (`views.open`, `users.lookupByEmail`, `conversations.open`,
//! `conversations.replies`) holds the outbox back, and the outbox's 429s hold those calls
//! back, on every replica.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use crate::backoff::after;
use crate::slack::holds::MethodHolds;
use crate::slack::web_api::SlackClient;
use crate::store::Store;
use crate::telemetry::metrics;

/// How long a call waits to learn whether its method is held. The database is asked
/// before calls that have little time (a `trigger_id` lives 3 s): past this the call is
/// made, since the hold only spares Slack a call it would refuse.
const LOOKUP_BUDGET: Duration = Duration::from_millis(500);

/// The holds of one team, read and written in the store.
pub struct StoreHolds {
    store: Store,
    team_id: String,
    /// `Some((now_ms, at))`: the clock of a step function (`now_ms` at the instant
    /// `at`), so that tests that step a worker through time see the holds it writes;
    /// `None`: the wall clock.
    clock: Option<(i64, Instant)>,
}

impl StoreHolds {
    pub fn new(store: Store, team_id: &str) -> StoreHolds {
        StoreHolds {
            store,
            team_id: team_id.to_owned(),
            clock: None,
        }
    }

    /// Measures time as `now_ms` at the instant `at`, instead of the wall clock.
    pub fn on_clock(mut self, now_ms: i64, at: Instant) -> StoreHolds {
        self.clock = Some((now_ms, at));
        self
    }

    /// `slack` with these holds.
    pub fn client(self, slack: &SlackClient) -> SlackClient {
        slack.with_holds(Arc::new(self))
    }

    fn now_ms(&self) -> i64 {
        match self.clock {
            Some((now_ms, at)) => {
                let elapsed = i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX);
                now_ms.saturating_add(elapsed)
            }
            None => jiff::Timestamp::now().as_millisecond(),
        }
    }
}

impl MethodHolds for StoreHolds {
    fn remaining<'a>(&'a self, method: &'a str) -> BoxFuture<'a, Option<Duration>> {
        Box::pin(async move {
            let lookup = self.store.rate_limited_until(&self.team_id, method);
            match tokio::time::timeout(LOOKUP_BUDGET, lookup).await {
                Ok(Ok(Some(until_ms))) => {
                    let left = until_ms.saturating_sub(self.now_ms());
                    (left > 0).then(|| Duration::from_millis(left.unsigned_abs()))
                }
                Ok(Ok(None)) => None,
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, method, "could not read the rate-limit hold; calling anyway");
                    None
                }
                Err(_) => {
                    tracing::warn!(
                        method,
                        "reading the rate-limit hold timed out; calling anyway"
                    );
                    None
                }
            }
        })
    }

    fn hold<'a>(&'a self, method: &'a str, wait: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            metrics::rate_limit_hold(method);
            let until_ms = after(self.now_ms(), wait);
            tracing::warn!(
                limited_method = method,
                retry_at_ms = until_ms,
                "rate limited; holding the method until Retry-After"
            );
            if let Err(err) = self
                .store
                .hold_rate_limited_method(&self.team_id, method, until_ms)
                .await
            {
                tracing::error!(error = %err, method, "could not store the rate-limit hold");
            }
        })
    }
}
