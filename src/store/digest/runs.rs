//! Digest run claims: one row per team and ISO week decides which replica sends that
//! week's digest (insert-first, with a lease a crashed holder's successor can take over).

use std::time::Duration;

use super::super::db::sql;
use super::super::effects::count_enqueued;
use super::super::outbox::insert_outbox;
use super::super::{NewOutboxMessage, Store, StoreError};

/// The outcome of trying to claim a digest run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunClaim {
    /// Ours until the lease runs out; finish with this token.
    Claimed {
        token: String,
        attempt: i64,
    },
    Done,
    Skipped,
    Failed,
    /// Another instance holds a live lease.
    HeldElsewhere,
}

impl Store {
    /// Claims the run of `week`: the first claimer inserts the row; a row left `claimed` by
    /// a holder whose lease ran out (a crash) is taken over. `manual` (the CLI) may also
    /// claim a week the scheduler skipped.
    pub async fn claim_digest_run(
        &self,
        team_id: &str,
        week: &str,
        scheduled_at_ms: i64,
        now_ms: i64,
        lease: Duration,
        manual: bool,
    ) -> Result<RunClaim, StoreError> {
        const INSERT: &str = "INSERT INTO digest_runs \
             (team_id, week, status, claim_token, lease_until, attempts, scheduled_at, claimed_at) \
             VALUES ($1, $2, 'claimed', $3, $4, 1, $5, $6) ON CONFLICT (team_id, week) DO NOTHING";
        const TAKE_OVER: &str = "UPDATE digest_runs SET status = 'claimed', claim_token = $3, \
             lease_until = $4, attempts = attempts + 1, claimed_at = $5 \
             WHERE team_id = $1 AND week = $2 \
               AND ((status = 'claimed' AND lease_until < $5) OR (status = 'skipped' AND $6 = 1)) \
             RETURNING attempts";
        const STATUS: &str = "SELECT status FROM digest_runs WHERE team_id = $1 AND week = $2";
        let token = format!("{:016x}", rand::random::<u64>());
        let until = now_ms.saturating_add(lease.as_millis() as i64);
        let inserted = sql(INSERT)
            .bind(team_id)
            .bind(week)
            .bind(&token)
            .bind(until)
            .bind(scheduled_at_ms)
            .bind(now_ms)
            .execute(self)
            .await?;
        if inserted == 1 {
            return Ok(RunClaim::Claimed { token, attempt: 1 });
        }
        let taken: Option<i64> = sql(TAKE_OVER)
            .bind(team_id)
            .bind(week)
            .bind(&token)
            .bind(until)
            .bind(now_ms)
            .bind(manual)
            .scalar_optional(self)
            .await?;
        if let Some(attempt) = taken {
            return Ok(RunClaim::Claimed { token, attempt });
        }
        let status: Option<String> = sql(STATUS)
            .bind(team_id)
            .bind(week)
            .scalar_optional(self)
            .await?;
        Ok(match status.as_deref() {
            Some("done") => RunClaim::Done,
            Some("skipped") => RunClaim::Skipped,
            Some("failed") => RunClaim::Failed,
            _ => RunClaim::HeldElsewhere,
        })
    }

    /// Marks a claimed run done and enqueues its messages, in ONE transaction, only if the
    /// claim is still ours. `false`: the lease was lost and nothing was enqueued.
    pub async fn complete_digest_run(
        &self,
        team_id: &str,
        week: &str,
        token: &str,
        messages: &[NewOutboxMessage],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE digest_runs SET status = 'done', done_at = $4, lease_until = NULL, \
             last_error = NULL WHERE team_id = $1 AND week = $2 AND status = 'claimed' AND claim_token = $3";
        let mut tx = self.begin().await?;
        let ours = sql(SQL)
            .bind(team_id)
            .bind(week)
            .bind(token)
            .bind(now_ms)
            .execute(&mut tx)
            .await?
            == 1;
        let kinds = if ours {
            insert_outbox(&mut tx, team_id, messages, now_ms).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        count_enqueued(&kinds);
        Ok(ours)
    }

    /// Records why a claimed run failed. The lease stays, so another attempt comes after it
    /// runs out; after `max_attempts` the run is marked `failed`.
    pub async fn fail_digest_run(
        &self,
        team_id: &str,
        week: &str,
        token: &str,
        error: &str,
        max_attempts: i64,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE digest_runs SET last_error = $4, \
             status = CASE WHEN attempts >= $5 THEN 'failed' ELSE status END \
             WHERE team_id = $1 AND week = $2 AND status = 'claimed' AND claim_token = $3";
        sql(SQL)
            .bind(team_id)
            .bind(week)
            .bind(token)
            .bind(error)
            .bind(max_attempts)
            .execute(self)
            .await?;
        Ok(())
    }

    /// Records a run as skipped (it was due 24 hours ago or more). `true` when this call
    /// recorded it; a run done, already skipped, or held under a live lease is left alone.
    pub async fn skip_digest_run(
        &self,
        team_id: &str,
        week: &str,
        scheduled_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO digest_runs (team_id, week, status, attempts, scheduled_at, done_at, last_error) \
             VALUES ($1, $2, 'skipped', 0, $3, $4, 'missed by more than 24 hours') \
             ON CONFLICT (team_id, week) DO UPDATE SET status = 'skipped', done_at = $4, \
             lease_until = NULL, last_error = 'missed by more than 24 hours' \
             WHERE digest_runs.status = 'claimed' AND digest_runs.lease_until < $4";
        let done = sql(SQL)
            .bind(team_id)
            .bind(week)
            .bind(scheduled_at_ms)
            .bind(now_ms)
            .execute(self)
            .await?;
        Ok(done > 0)
    }

    /// Re-sends a week on purpose (`cusp digest send --force`): marks the run done and
    /// enqueues `messages` under a fresh key per forced send (`{key}:force:{n}`), in one
    /// transaction. Returns `n`, the forced-send count of the week.
    pub async fn force_digest_run(
        &self,
        team_id: &str,
        week: &str,
        messages: &[NewOutboxMessage],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO digest_runs (team_id, week, status, attempts, forced, claimed_at, done_at) \
             VALUES ($1, $2, 'done', 1, 1, $3, $3) \
             ON CONFLICT (team_id, week) DO UPDATE SET status = 'done', forced = digest_runs.forced + 1, \
             done_at = $3, lease_until = NULL RETURNING forced";
        let mut tx = self.begin().await?;
        let n: i64 = sql(SQL)
            .bind(team_id)
            .bind(week)
            .bind(now_ms)
            .scalar(&mut tx)
            .await?;
        let keyed: Vec<NewOutboxMessage> = messages
            .iter()
            .map(|m| NewOutboxMessage {
                idempotency_key: format!("{}:force:{n}", m.idempotency_key),
                ..m.clone()
            })
            .collect();
        let kinds = insert_outbox(&mut tx, team_id, &keyed, now_ms).await?;
        tx.commit().await?;
        count_enqueued(&kinds);
        Ok(n)
    }
}
