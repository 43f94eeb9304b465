//! The outbox: every Web API call cusp makes, written in the same transaction as the
//! work that caused it, then delivered by `jobs::outbox_worker`.

use std::time::Duration;

use super::db::{Exec, Tx, sql};
use super::effects::count_enqueued;
use super::{Store, StoreError};
use crate::slack::calls::SlackCall;

#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxMessage {
    /// Unique per team; enqueueing the same key twice stores one row.
    pub idempotency_key: String,
    /// The call, stored as JSON (`payload`) beside its method name (`method`, which the
    /// rate-limit holds match on).
    pub call: SlackCall,
}

impl NewOutboxMessage {
    pub fn new(idempotency_key: impl Into<String>, call: SlackCall) -> NewOutboxMessage {
        NewOutboxMessage {
            idempotency_key: idempotency_key.into(),
            call,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxItem {
    pub id: i64,
    pub team_id: String,
    pub idempotency_key: String,
    pub method: String,
    pub payload: String,
    pub attempts: i64,
    /// 1 when an earlier attempt may have reached Slack (crash, timeout, 5xx): the
    /// worker must look for the message before posting again.
    pub in_doubt: i64,
    pub created_at: i64,
    /// Attempts Slack answered with 429; they do not count toward the retry limit.
    pub rate_limited_attempts: i64,
}

impl OutboxItem {
    /// The call to make; rows written by older versions (bare parameters) are read too.
    pub fn call(&self) -> Result<SlackCall, StoreError> {
        SlackCall::from_stored(&self.method, &self.payload)
            .map_err(|e| StoreError::Corrupt(format!("outbox row {}: {e}", self.id)))
    }

    /// Attempts that failed (or may have) other than by a rate limit, this one included.
    pub fn failed_attempts(&self) -> i64 {
        self.attempts.saturating_sub(self.rate_limited_attempts)
    }
}

/// Inserts outbox rows inside the open transaction `tx`; returns the kinds
/// (`telemetry::metrics::outbox_kind`) of the rows that were new, for counting once the
/// transaction has committed.
pub(super) async fn insert_outbox(
    tx: &mut Tx,
    team_id: &str,
    messages: &[NewOutboxMessage],
    now_ms: i64,
) -> Result<Vec<&'static str>, StoreError> {
    const SQL: &str = "INSERT INTO outbox (team_id, idempotency_key, method, payload, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (team_id, idempotency_key) DO NOTHING";
    let mut kinds = Vec::new();
    for msg in messages {
        let payload = msg.call.to_stored().map_err(|e| {
            StoreError::Corrupt(format!("outbox call {}: {e}", msg.idempotency_key))
        })?;
        let inserted = sql(SQL)
            .bind(team_id)
            .bind(&msg.idempotency_key)
            .bind(msg.call.method())
            .bind(payload)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        if inserted == 1 {
            kinds.push(crate::telemetry::metrics::outbox_kind(&msg.idempotency_key));
        }
    }
    Ok(kinds)
}

/// Holds `method` for the team until `until_ms`. Keeps the later of two holds: a second
/// 429 with a shorter wait must not shorten what Slack asked for earlier.
async fn hold_method<'c>(
    exec: impl Into<Exec<'c>>,
    team_id: &str,
    method: &str,
    until_ms: i64,
) -> Result<(), StoreError> {
    const HOLD: &str = "INSERT INTO slack_rate_limits (team_id, method, until_ms) \
         VALUES ($1, $2, $3) ON CONFLICT (team_id, method) DO UPDATE SET until_ms = \
         CASE WHEN excluded.until_ms > slack_rate_limits.until_ms \
              THEN excluded.until_ms ELSE slack_rate_limits.until_ms END";
    sql(HOLD)
        .bind(team_id)
        .bind(method)
        .bind(until_ms)
        .execute(exec)
        .await?;
    Ok(())
}

impl Store {
    /// Until when calls to `method` are held back for this team, if a hold was ever set
    /// (it may have passed). Direct Web API calls read it before calling.
    pub async fn rate_limited_until(
        &self,
        team_id: &str,
        method: &str,
    ) -> Result<Option<i64>, StoreError> {
        const SQL: &str =
            "SELECT until_ms FROM slack_rate_limits WHERE team_id = $1 AND method = $2";
        Ok(sql(SQL)
            .bind(team_id)
            .bind(method)
            .scalar_optional(self)
            .await?)
    }

    /// Slack answered a direct call (not an outbox row) with a rate limit: no call to
    /// `method` for this team, from any path or replica, before `until_ms`.
    pub async fn hold_rate_limited_method(
        &self,
        team_id: &str,
        method: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        hold_method(self, team_id, method, until_ms).await
    }

    /// Enqueues messages on their own (digests, CLI); a key already enqueued is skipped.
    pub async fn enqueue_outbox(
        &self,
        team_id: &str,
        messages: &[NewOutboxMessage],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let kinds = insert_outbox(&mut tx, team_id, messages, now_ms).await?;
        tx.commit().await?;
        count_enqueued(&kinds);
        Ok(())
    }

    /// Claims the next due delivery of a team for `lease`. A row left `sending` by a
    /// crashed worker is claimable again after its lease, flagged `in_doubt`. Rows whose
    /// method Slack rate-limited (`slack_rate_limits`) wait until the hold has passed.
    pub async fn claim_outbox_item(
        &self,
        team_id: &str,
        now_ms: i64,
        lease: Duration,
    ) -> Result<Option<OutboxItem>, StoreError> {
        let lock = self.pool.backend().skip_locked();
        // SET expressions see the row's old values on both backends, so `in_doubt`
        // records whether the previous holder was still `sending`.
        let statement = format!(
            "UPDATE outbox SET \
                 in_doubt = CASE WHEN status = 'sending' THEN 1 ELSE in_doubt END, \
                 status = 'sending', attempts = attempts + 1, locked_until = $2 \
             WHERE id = (SELECT id FROM outbox WHERE team_id = $1 \
                 AND ((status = 'pending' AND next_attempt_at <= $3) \
                   OR (status = 'sending' AND locked_until < $3)) \
                 AND NOT EXISTS (SELECT 1 FROM slack_rate_limits r \
                     WHERE r.team_id = $1 AND r.method = outbox.method AND r.until_ms > $3) \
                 ORDER BY next_attempt_at, id LIMIT 1 {lock}) \
             AND team_id = $1 \
             RETURNING id, team_id, idempotency_key, method, payload, attempts, in_doubt, \
                 created_at, rate_limited_attempts"
        );
        let until = now_ms.saturating_add(lease.as_millis() as i64);
        let item = sql(&statement)
            .bind(team_id)
            .bind(until)
            .bind(now_ms)
            .fetch_optional(self)
            .await?;
        Ok(item)
    }

    /// Extends the lease of a delivery in flight to `until_ms`; `false` when the claim
    /// numbered `attempts` is no longer the row's (its lease ran out and another holder
    /// claimed it), which every claim changes by counting an attempt.
    pub async fn renew_outbox_lease(
        &self,
        team_id: &str,
        id: i64,
        attempts: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE outbox SET locked_until = $4 WHERE team_id = $1 AND id = $2 \
                           AND status = 'sending' AND attempts = $3";
        self.renew_claim(SQL, team_id, id, attempts, until_ms).await
    }

    /// Runs a lease renewal `statement` (`$1` team, `$2` id, `$3` the claim's attempts,
    /// `$4` the new lease end) of the inbox or the outbox; `true` when it renewed the row.
    pub(super) async fn renew_claim(
        &self,
        statement: &'static str,
        team_id: &str,
        id: i64,
        attempts: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let renewed = sql(statement)
            .bind(team_id)
            .bind(id)
            .bind(attempts)
            .bind(until_ms)
            .execute(self)
            .await?;
        Ok(renewed == 1)
    }

    pub async fn mark_outbox_sent(
        &self,
        team_id: &str,
        id: i64,
        result_ts: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        // Once Slack has the message, its words need not stay here: a nudge's "Why?" button
        // and its explanation quote the person's message (privacy, like the inbox payload).
        const SQL: &str = "UPDATE outbox SET status = 'sent', result_ts = $3, sent_at = $4, \
                           locked_until = NULL, in_doubt = 0, payload = '{}' WHERE team_id = $1 AND id = $2";
        sql(SQL)
            .bind(team_id)
            .bind(id)
            .bind(result_ts)
            .bind(now_ms)
            .execute(self)
            .await?;
        Ok(())
    }

    /// Schedules another attempt at `next_attempt_ms`. `in_doubt` says whether this
    /// attempt may have reached Slack.
    pub async fn retry_outbox_item(
        &self,
        team_id: &str,
        id: i64,
        error: &str,
        next_attempt_ms: i64,
        in_doubt: bool,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE outbox SET status = 'pending', last_error = $3, next_attempt_at = $4, \
                           locked_until = NULL, in_doubt = $5 WHERE team_id = $1 AND id = $2";
        sql(SQL)
            .bind(team_id)
            .bind(id)
            .bind(error)
            .bind(next_attempt_ms)
            .bind(i64::from(in_doubt))
            .execute(self)
            .await?;
        Ok(())
    }

    /// Slack answered 429: the row is tried again at `until_ms`, the attempt is not
    /// counted as a failure, and no row of this team calling `limited_method` is claimed
    /// before `until_ms` (Slack's limits are per method and workspace). One transaction,
    /// so the hold exists whenever the row is back to `pending`. `in_doubt` is left as
    /// it was: a 429 means this call was refused, but an earlier one may still have landed.
    pub async fn rate_limit_outbox_item(
        &self,
        team_id: &str,
        id: i64,
        error: &str,
        limited_method: &str,
        until_ms: i64,
    ) -> Result<(), StoreError> {
        const ROW: &str = "UPDATE outbox SET status = 'pending', last_error = $3, \
             next_attempt_at = $4, locked_until = NULL, \
             rate_limited_attempts = rate_limited_attempts + 1 \
             WHERE team_id = $1 AND id = $2";
        let mut tx = self.begin().await?;
        sql(ROW)
            .bind(team_id)
            .bind(id)
            .bind(error)
            .bind(until_ms)
            .execute(&mut tx)
            .await?;
        hold_method(&mut tx, team_id, limited_method, until_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Gives up on a delivery, keeping its last error for the operator.
    pub async fn mark_outbox_dead(
        &self,
        team_id: &str,
        id: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE outbox SET status = 'dead', last_error = $3, locked_until = NULL \
                           WHERE team_id = $1 AND id = $2";
        sql(SQL)
            .bind(team_id)
            .bind(id)
            .bind(error)
            .execute(self)
            .await?;
        Ok(())
    }

    /// Deliveries not yet sent or given up.
    pub async fn outbox_backlog(&self, team_id: &str) -> Result<i64, StoreError> {
        const SQL: &str =
            "SELECT COUNT(*) FROM outbox WHERE team_id = $1 AND status IN ('pending', 'sending')";
        let n = sql(SQL).bind(team_id).scalar(self).await?;
        Ok(n)
    }

    /// Deliveries of a team not yet sent or given up, and when the oldest of them was
    /// enqueued (Unix ms), for the `cusp_outbox_*` gauges.
    pub async fn outbox_depth(&self, team_id: &str) -> Result<(i64, Option<i64>), StoreError> {
        const SQL: &str = "SELECT COUNT(*), MIN(created_at) FROM outbox \
                           WHERE team_id = $1 AND status IN ('pending', 'sending')";
        let row: (i64, Option<i64>) = sql(SQL).bind(team_id).fetch_one(self).await?;
        Ok(row)
    }

    /// Every 429 hold a team has had, `(method, until_ms)`; a hold that has passed has
    /// `until_ms` in the past (the gauges show it as 0 rather than a stale value).
    pub async fn rate_limit_holds(&self, team_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        const SQL: &str = "SELECT method, until_ms FROM slack_rate_limits \
                           WHERE team_id = $1 ORDER BY method";
        let rows = sql(SQL).bind(team_id).fetch_all(self).await?;
        Ok(rows)
    }

    /// Puts a claimed delivery back as pending, due at once, as if this attempt had not
    /// happened (used when shutdown interrupts a call). `in_doubt` marks that the call
    /// may have reached Slack, so the next attempt looks for the message first.
    pub async fn release_outbox_item(
        &self,
        team_id: &str,
        id: i64,
        now_ms: i64,
        in_doubt: bool,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE outbox SET status = 'pending', locked_until = NULL, \
             next_attempt_at = $3, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, \
             in_doubt = CASE WHEN $4 = 1 THEN 1 ELSE in_doubt END \
             WHERE team_id = $1 AND id = $2 AND status = 'sending'";
        sql(SQL)
            .bind(team_id)
            .bind(id)
            .bind(now_ms)
            .bind(i64::from(in_doubt))
            .execute(self)
            .await?;
        Ok(())
    }
}
