//! Group commit: the writes that answer a request (an inbox row before an event's ack, a
//! `/cusp reflect` observation before its answer) go to one writer task, which commits
//! whatever has queued up meanwhile in ONE transaction and then answers each request.
//!
//! Why: each request running its own transaction paid a commit (an fsync on SQLite, a
//! round trip and a WAL flush on PostgreSQL) and, on SQLite, a queue of connections
//! waiting for the one write lock. One writer pays one commit for the whole batch, and a
//! request is answered only after the commit that holds its write, so nothing answered
//! is ever lost.
//!
//! A batch whose transaction fails is tried again one write at a time, each in its own
//! transaction, so one bad write (or a conflict) fails only its own request; when the
//! database itself is down every request in the batch gets the error. A request whose
//! caller stopped waiting (its budget ran out) is still written: its receiver is gone,
//! not its write.

use tokio::sync::{mpsc, oneshot};

use super::bulk;
use super::db::{Pool, Tx, sql};
use super::effects::apply_effects;
use super::{Applied, Effects, StoreError};

/// The most writes one transaction commits: enough to carry 32+ concurrent requests,
/// small enough that a batch is a few milliseconds of work.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer; a full queue makes callers wait (backpressure), so
/// memory stays bounded under any load.
const QUEUE: usize = 4_096;

/// One write a request waits for.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    /// An Events API event into the inbox; `true` when it was new.
    Inbox {
        team_id: String,
        event_id: String,
        kind: String,
        payload: String,
        /// `channel:root_ts` (`NewInboxItem::thread_key`).
        thread_key: Option<String>,
        now_ms: i64,
    },
    /// Effects outside the inbox (`/cusp reflect`, the CRM hooks). With `unless_opted_out`,
    /// nothing is stored when that person opted out: checked in the same transaction, so
    /// an opt-out committed first always wins.
    Effects {
        team_id: String,
        effects: Box<Effects>,
        unless_opted_out: Option<String>,
        now_ms: i64,
    },
}

/// What a write did, once committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Written {
    Inbox {
        new: bool,
    },
    Effects(Applied),
    /// `unless_opted_out` named a person who opted out: nothing was stored.
    OptedOut,
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Written, StoreError>>,
}

/// The handle requests send their writes through; cloned with the `Store`.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on the current runtime. It stops once every `Writer` handle
    /// is dropped (it holds the pool, never a handle).
    pub(crate) fn spawn(pool: Pool) -> Writer {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(pool, queue));
        Writer { jobs }
    }

    /// Queues `write` and waits until the transaction that holds it has committed.
    pub(crate) async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(pool: Pool, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_batch(&pool, &mut batch).await;
    }
}

/// Commits `batch` in one transaction and answers each job; empties `batch`.
async fn commit_batch(pool: &Pool, batch: &mut Vec<Job>) {
    match write_all(pool, batch.iter().map(|job| &job.write)).await {
        Ok(written) => {
            for (job, written) in batch.drain(..).zip(written) {
                count(&job.write, &written);
                // The caller may have stopped waiting; its write is committed all the same.
                let _ = job.reply.send(Ok(written));
            }
        }
        Err(err) if batch.len() == 1 => {
            if let Some(job) = batch.pop() {
                let _ = job.reply.send(Err(err));
            }
        }
        Err(_) => {
            // One at a time, so that only the write that fails is refused.
            for job in batch.drain(..) {
                let result = write_all(pool, std::iter::once(&job.write))
                    .await
                    .map(|mut written| written.remove(0));
                if let Ok(written) = &result {
                    count(&job.write, written);
                }
                let _ = job.reply.send(result);
            }
        }
    }
}

/// Runs `writes` in one transaction; their results in order, known only after the
/// commit. The batch's inbox rows go in one insert and its observation-only effects
/// (reflections) in three statements (`bulk`); anything else one write at a time.
async fn write_all<'w>(
    pool: &Pool,
    writes: impl Iterator<Item = &'w Write>,
) -> Result<Vec<Written>, StoreError> {
    let writes: Vec<&Write> = writes.collect();
    let mut inbox = Vec::new();
    let mut observations = Vec::new();
    let mut rest = Vec::new();
    for (at, write) in writes.iter().enumerate() {
        match write {
            Write::Inbox {
                team_id,
                event_id,
                kind,
                payload,
                thread_key,
                now_ms,
            } => inbox.push((
                at,
                bulk::InboxRow {
                    team_id,
                    event_id,
                    kind,
                    payload,
                    thread_key: thread_key.as_deref(),
                    now_ms: *now_ms,
                },
            )),
            other => match bulk::ObservationWrite::of(other) {
                Some(observation) => observations.push((at, observation)),
                None => rest.push(at),
            },
        }
    }
    let mut written: Vec<Option<Written>> = vec![None; writes.len()];
    let mut tx = pool.begin_write().await?;
    if !inbox.is_empty() {
        let (at, rows): (Vec<usize>, Vec<_>) = inbox.into_iter().unzip();
        let new = bulk::insert_inbox(&mut tx, &rows).await?;
        for (at, new) in at.into_iter().zip(new) {
            written[at] = Some(Written::Inbox { new });
        }
    }
    if !observations.is_empty() {
        let (at, rows): (Vec<usize>, Vec<_>) = observations.into_iter().unzip();
        let results = bulk::record_observations(&mut tx, &rows).await?;
        for (at, result) in at.into_iter().zip(results) {
            written[at] = Some(result);
        }
    }
    for at in rest {
        written[at] = apply(&mut tx, writes[at]).await?;
    }
    tx.commit().await?;
    written
        .into_iter()
        .map(|w| w.ok_or_else(|| StoreError::Corrupt("a write of the batch was skipped".into())))
        .collect()
}

/// Effects that carry more than an observation (the CRM hooks' nudges and DMs), one at
/// a time. `None` for an inbox row, which `write_all` stores in bulk.
async fn apply(tx: &mut Tx, write: &Write) -> Result<Option<Written>, StoreError> {
    let Write::Effects {
        team_id,
        effects,
        unless_opted_out,
        now_ms,
    } = write
    else {
        return Ok(None);
    };
    if let Some(user_id) = unless_opted_out {
        const SQL: &str = "SELECT opted_out FROM user_prefs WHERE team_id = $1 AND user_id = $2";
        let opted_out: Option<i64> = sql(SQL)
            .bind(team_id)
            .bind(user_id)
            .scalar_optional(&mut *tx)
            .await?;
        if opted_out.unwrap_or(0) != 0 {
            return Ok(Some(Written::OptedOut));
        }
    }
    let applied = apply_effects(tx, team_id, effects, *now_ms).await?;
    Ok(Some(Written::Effects(applied)))
}

/// Metrics for a committed write (only after the commit, so they never count a rollback).
fn count(write: &Write, written: &Written) {
    if let (Write::Effects { effects, .. }, Written::Effects(applied)) = (write, written) {
        applied.count(effects);
    }
}
