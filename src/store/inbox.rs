//! The inbox: Slack events stored before the ack, handled by `jobs::inbox_worker`.

use std::time::Duration;

use super::db::sql;
use super::effects::apply_effects;
use super::{Applied, Effects, Store, StoreError, Write, Written};

/// How many times a failing event is tried before it is parked as `failed`. With the
/// inbox worker's backoff (2 s doubling) the attempts span about four minutes, long
/// enough to ride out a short Slack problem.
pub const INBOX_MAX_ATTEMPTS: i64 = 8;

#[derive(Debug, Clone)]
pub struct NewInboxItem<'a> {
    pub team_id: &'a str,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub payload: &'a str,
    /// `channel:root_ts`: events with the same key are claimed in arrival order.
    pub thread_key: Option<&'a str>,
}

/// Marks an event handled; its payload (a person's words) is not kept.
const FINISH_SQL: &str = "UPDATE inbox SET status = 'done', payload = NULL, locked_until = NULL, \
                          handled_at = $3 WHERE team_id = $1 AND id = $2";

/// A handled event and what it caused, for [`Store::finish_inbox_items`].
#[derive(Debug, Clone, Copy)]
pub struct HandledItem<'a> {
    pub team_id: &'a str,
    pub id: i64,
    pub effects: &'a Effects,
    pub now_ms: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InboxItem {
    pub id: i64,
    pub team_id: String,
    pub event_id: String,
    pub kind: String,
    pub payload: Option<String>,
    pub attempts: i64,
    /// When the event was stored (Unix ms), for the handling latency.
    pub received_at: i64,
}

/// Where one stored event stands (operators and tests).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboxState {
    /// `pending`, `working`, `done` or `failed`.
    pub status: String,
    pub attempts: i64,
    /// When a `pending` event may be claimed (Unix ms; 0 = at once).
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

/// An event is the head of its thread when no earlier event of the thread is still open.
/// Written `NOT IN ('done', 'failed')` so that only `inbox_thread (team_id, thread_key,
/// id)` can serve it: as `IN ('pending', 'working')`, PostgreSQL with stale statistics
/// (a burst into a fresh table) probed `inbox_claim (team_id, status, id)` instead,
/// walking every open event once per candidate: minutes for 70,000 queued events.
const HEAD_OF_THREAD: &str = "NOT EXISTS (SELECT 1 FROM inbox AS earlier \
     WHERE earlier.team_id = $1 AND earlier.thread_key = due.thread_key \
     AND earlier.id < due.id AND earlier.status NOT IN ('done', 'failed'))";

/// The claim of [`Store::claim_inbox_items`] (`$1` team, `$2` lease end, `$3` now,
/// `$4` limit). Pending and expired events are picked by two walks, each in id order
/// along `inbox_claim` that stops after `$4` heads of threads: the claim reads about
/// `limit` rows however many are queued, whatever the planner believes about the table.
/// Both steps are MATERIALIZED CTEs, run once: as plain `IN (…)` subqueries PostgreSQL
/// re-ran them per row (and claimed more than `limit`). The UPDATE states the due-ness
/// again, so that when another replica claimed a row meanwhile, PostgreSQL's re-check of
/// the newest row version drops it; as a CASE, which no index serves, so that the
/// UPDATE is driven by the chosen ids, not by a walk of every due event. The team is
/// named where the heads are found and nowhere after: a `team_id = $1` beside the ids
/// led SQLite (which has no statistics) to walk all of the team's rows, handled ones
/// included, instead of looking the ids up.
fn claim_statement(lock: &str) -> String {
    format!(
        "WITH heads AS MATERIALIZED ( \
           SELECT id FROM (SELECT id FROM inbox AS due WHERE team_id = $1 \
             AND status = 'pending' AND next_attempt_at <= $3 AND {HEAD_OF_THREAD} \
             ORDER BY id LIMIT $4) AS pending_heads \
           UNION ALL \
           SELECT id FROM (SELECT id FROM inbox AS due WHERE team_id = $1 \
             AND status = 'working' AND locked_until < $3 AND {HEAD_OF_THREAD} \
             ORDER BY id LIMIT $4) AS expired_heads), \
         chosen AS MATERIALIZED (SELECT id FROM inbox WHERE id IN (SELECT id FROM heads) \
           ORDER BY id LIMIT $4 {lock}) \
         UPDATE inbox SET status = 'working', attempts = attempts + 1, locked_until = $2 \
         WHERE id IN (SELECT id FROM chosen) \
         AND CASE status WHEN 'pending' THEN next_attempt_at <= $3 \
           WHEN 'working' THEN locked_until < $3 ELSE FALSE END \
         RETURNING id, team_id, event_id, kind, payload, attempts, received_at"
    )
}

impl Store {
    /// The inbox claim statement, for tests that read its query plan.
    #[doc(hidden)]
    pub fn inbox_claim_statement(&self) -> String {
        claim_statement(self.pool.backend().skip_locked())
    }

    /// Stores an event; `false` when this `event_id` was already stored (a Slack retry,
    /// or another replica got it first). Goes through the group-commit writer: when this
    /// returns `Ok`, the row is committed, so the ack may go out.
    pub async fn enqueue_inbox(
        &self,
        item: &NewInboxItem<'_>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let write = Write::Inbox {
            team_id: item.team_id.to_owned(),
            event_id: item.event_id.to_owned(),
            kind: item.kind.to_owned(),
            payload: item.payload.to_owned(),
            thread_key: item.thread_key.map(str::to_owned),
            now_ms,
        };
        match self.writer.write(write).await? {
            Written::Inbox { new } => Ok(new),
            other => Err(StoreError::Corrupt(format!(
                "the writer answered {other:?} to an inbox row"
            ))),
        }
    }

    /// Claims the oldest due event of a team for `lease`: pending and not waiting for a
    /// retry. An event whose previous holder crashed becomes claimable again once its
    /// lease runs out. An event waits while an earlier one of its thread is pending or
    /// being handled (here or on another replica), so a reply is never decided before
    /// its root; a parked (`failed`) or finished one no longer holds it up.
    pub async fn claim_inbox_item(
        &self,
        team_id: &str,
        now_ms: i64,
        lease: Duration,
    ) -> Result<Option<InboxItem>, StoreError> {
        let mut items = self.claim_inbox_items(team_id, now_ms, lease, 1).await?;
        Ok(items.pop())
    }

    /// Claims up to `limit` of a team's oldest due events for `lease` in one statement,
    /// oldest first; see [`Store::claim_inbox_item`]. On PostgreSQL, rows another replica
    /// is claiming at the same moment are skipped rather than waited for.
    pub async fn claim_inbox_items(
        &self,
        team_id: &str,
        now_ms: i64,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let statement = claim_statement(self.pool.backend().skip_locked());
        let until = now_ms.saturating_add(lease.as_millis() as i64);
        let mut items: Vec<InboxItem> = sql(&statement)
            .bind(team_id)
            .bind(until)
            .bind(now_ms)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self)
            .await?;
        // RETURNING promises no order; the worker relies on arrival order.
        items.sort_by_key(|item| item.id);
        Ok(items)
    }

    /// Extends the lease of an event being handled to `until_ms`; `false` when the claim
    /// numbered `attempts` is no longer the row's (see `Store::renew_outbox_lease`).
    pub async fn renew_inbox_lease(
        &self,
        team_id: &str,
        id: i64,
        attempts: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE inbox SET locked_until = $4 WHERE team_id = $1 AND id = $2 \
                           AND status = 'working' AND attempts = $3";
        self.renew_claim(SQL, team_id, id, attempts, until_ms).await
    }

    /// Marks an event handled and applies everything it caused, in one transaction:
    /// either all of it is stored or none of it is, and the event is retried.
    pub async fn finish_inbox_item(
        &self,
        team_id: &str,
        id: i64,
        effects: &Effects,
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.begin().await?;
        sql(FINISH_SQL)
            .bind(team_id)
            .bind(id)
            .bind(now_ms)
            .execute(&mut tx)
            .await?;
        let applied = apply_effects(&mut tx, team_id, effects, now_ms).await?;
        tx.commit().await?;
        applied.count(effects);
        if let Some(prompt) = &effects.prompt {
            self.prompt_written(team_id, &prompt.user_id);
        }
        Ok(applied)
    }

    /// Like [`Store::finish_inbox_item`] for several handled events at once, in ONE
    /// transaction: one commit (one fsync on SQLite) for the lot. Either every event is
    /// marked done with its effects or none is; the caller retries them one by one when
    /// the lot fails, so one bad event cannot hold up the others. The events must not
    /// depend on each other's effects (the inbox worker groups only events of different
    /// channels and people).
    pub async fn finish_inbox_items(
        &self,
        handled: &[HandledItem<'_>],
    ) -> Result<Vec<Applied>, StoreError> {
        // A nudge holds its person's turn until the commit (`nudges::within_limits`); a
        // group takes those turns in one order (team, person), so two replicas committing
        // groups at once wait for each other instead of deadlocking.
        let mut order: Vec<usize> = (0..handled.len()).collect();
        order.sort_by_key(|&i| {
            let item = &handled[i];
            let person = item.effects.prompt.as_ref().map(|p| p.user_id.as_str());
            (item.team_id, person.unwrap_or(""), item.id)
        });
        let mut tx = self.begin().await?;
        let mut applied = vec![Applied::default(); handled.len()];
        for i in order {
            let item = &handled[i];
            sql(FINISH_SQL)
                .bind(item.team_id)
                .bind(item.id)
                .bind(item.now_ms)
                .execute(&mut tx)
                .await?;
            applied[i] = apply_effects(&mut tx, item.team_id, item.effects, item.now_ms).await?;
        }
        tx.commit().await?;
        for (item, applied) in handled.iter().zip(&applied) {
            applied.count(item.effects);
            if let Some(prompt) = &item.effects.prompt {
                self.prompt_written(item.team_id, &prompt.user_id);
            }
        }
        Ok(applied)
    }

    /// Records a failed attempt: the event is claimable again from `retry_at_ms`. After
    /// `INBOX_MAX_ATTEMPTS` it is parked as `failed` (payload cleared) so one poisoned
    /// event cannot block the queue.
    pub async fn fail_inbox_item(
        &self,
        team_id: &str,
        id: i64,
        error: &str,
        now_ms: i64,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        // No retry time: the failure is permanent and the event is parked at once.
        let max_attempts = if retry_at_ms.is_some() {
            INBOX_MAX_ATTEMPTS
        } else {
            0
        };
        const SQL: &str = "UPDATE inbox SET \
             status = CASE WHEN attempts >= $3 THEN 'failed' ELSE 'pending' END, \
             payload = CASE WHEN attempts >= $3 THEN NULL ELSE payload END, \
             next_attempt_at = $6, locked_until = NULL, last_error = $4, handled_at = $5 \
             WHERE team_id = $1 AND id = $2";
        sql(SQL)
            .bind(team_id)
            .bind(id)
            .bind(max_attempts)
            .bind(error)
            .bind(now_ms)
            .bind(retry_at_ms.unwrap_or(now_ms))
            .execute(self)
            .await?;
        Ok(())
    }

    /// Deletes handled events (`done` or `failed`) handled before `before_ms`; returns how
    /// many. Their payload is already gone; the row only served to recognise Slack's
    /// retries, which stop within the hour.
    pub async fn prune_inbox(&self, team_id: &str, before_ms: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM inbox WHERE team_id = $1 \
             AND status IN ('done', 'failed') AND handled_at < $2";
        let n = sql(SQL).bind(team_id).bind(before_ms).execute(self).await?;
        Ok(n)
    }

    /// Events stored but not yet handled (pending or in progress).
    pub async fn inbox_backlog(&self, team_id: &str) -> Result<i64, StoreError> {
        const SQL: &str =
            "SELECT COUNT(*) FROM inbox WHERE team_id = $1 AND status IN ('pending', 'working')";
        let n: i64 = sql(SQL).bind(team_id).scalar(self).await?;
        Ok(n)
    }

    /// Status, attempts, next attempt and last error of one event.
    pub async fn inbox_state(
        &self,
        team_id: &str,
        event_id: &str,
    ) -> Result<InboxState, StoreError> {
        const SQL: &str = "SELECT status, attempts, next_attempt_at, last_error FROM inbox \
                           WHERE team_id = $1 AND event_id = $2";
        let row = sql(SQL)
            .bind(team_id)
            .bind(event_id)
            .fetch_optional(self)
            .await?;
        row.ok_or(StoreError::NotFound)
    }
}
