//! Per-method rate-limit holds as the Web API client sees them.
//!
//! Slack limits each method per workspace, and after a 429 no caller should call that
//! method before `Retry-After`, whichever path it takes (the outbox or a call that cannot
//! wait) and whichever replica it runs on. Where the holds are kept is not the wire
//! protocol's business: a client given a [`MethodHolds`] asks it before each call and
//! tells it about each rate limit, and `state::holds` keeps them in the store.

use std::time::Duration;

use futures_util::future::BoxFuture;

/// Where a workspace's holds live.
pub trait MethodHolds: Send + Sync {
    /// How much longer `method` is held, or `None` when it may be called now. A store
    /// that cannot answer says `None`: a hold is a courtesy to Slack, not worth failing
    /// the call for.
    fn remaining<'a>(&'a self, method: &'a str) -> BoxFuture<'a, Option<Duration>>;

    /// Slack rate-limited `method` and asked for `wait` before the next call.
    fn hold<'a>(&'a self, method: &'a str, wait: Duration) -> BoxFuture<'a, ()>;
}
