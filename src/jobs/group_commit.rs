//! Commits the effects of events handled at the same time together.
//!
//! Marking an event done with its effects is one transaction, and on SQLite each commit
//! waits for the disk (an fsync with `synchronous=FULL`); one per event capped handling
//! at about a hundred events a second. The inbox worker's handlers therefore hand their
//! results to one committer task, which commits whatever has queued up meanwhile in one
//! transaction (`Store::finish_inbox_items`) and answers each handler once it is
//! durable. Nothing waits on purpose: while one commit is on its way to disk, the next
//! group forms. The events of a group never depend on each other, because each handler
//! still holds its channel and person (`lanes.rs`) until its answer arrives. If a group
//! fails, its events are committed one by one, so one bad event fails alone.

use tokio::sync::{mpsc, oneshot};
use tracing::instrument::WithSubscriber;

use crate::store::{Applied, Effects, HandledItem, Store, StoreError};

/// At most this many events in one transaction (the worker holds at most `IN_HAND`).
const MAX_GROUP: usize = 64;

/// A handle on the committer; the committer stops once every handle is dropped.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::UnboundedSender<Handled>,
}

struct Handled {
    team_id: String,
    id: i64,
    effects: Effects,
    now_ms: i64,
    reply: oneshot::Sender<(Effects, Result<Applied, StoreError>)>,
}

impl GroupCommit {
    pub(crate) fn start(store: Store) -> GroupCommit {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(commit_groups(store, pending).with_current_subscriber());
        GroupCommit { queue }
    }

    /// Marks event `id` done with its effects once a group including it has committed;
    /// gives the effects back with what was stored.
    pub(crate) async fn finish(
        &self,
        team_id: &str,
        id: i64,
        effects: Effects,
        now_ms: i64,
    ) -> (Effects, Result<Applied, StoreError>) {
        let (reply, answer) = oneshot::channel();
        let handled = Handled {
            team_id: team_id.to_owned(),
            id,
            effects,
            now_ms,
            reply,
        };
        if let Err(mpsc::error::SendError(handled)) = self.queue.send(handled) {
            return (handled.effects, Err(committer_gone()));
        }
        // The committer only drops a reply if it panicked; nothing was committed then.
        answer
            .await
            .unwrap_or_else(|_| (Effects::default(), Err(committer_gone())))
    }
}

fn committer_gone() -> StoreError {
    StoreError::Backend(sqlx::Error::WorkerCrashed)
}

async fn commit_groups(store: Store, mut pending: mpsc::UnboundedReceiver<Handled>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while pending.recv_many(&mut group, MAX_GROUP).await > 0 {
        commit(&store, std::mem::take(&mut group)).await;
    }
}

async fn commit(store: &Store, group: Vec<Handled>) {
    let result = {
        let items: Vec<HandledItem<'_>> = group
            .iter()
            .map(|handled| HandledItem {
                team_id: &handled.team_id,
                id: handled.id,
                effects: &handled.effects,
                now_ms: handled.now_ms,
            })
            .collect();
        store.finish_inbox_items(&items).await
    };
    match result {
        Ok(applied) => {
            for (handled, applied) in group.into_iter().zip(applied) {
                let _ = handled.reply.send((handled.effects, Ok(applied)));
            }
        }
        Err(err) if group.len() == 1 => {
            if let Some(handled) = group.into_iter().next() {
                let _ = handled.reply.send((handled.effects, Err(err)));
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, events = group.len(), "a group of handled events could not be committed; committing them one by one");
            for handled in group {
                let result = store
                    .finish_inbox_item(
                        &handled.team_id,
                        handled.id,
                        &handled.effects,
                        handled.now_ms,
                    )
                    .await;
                let _ = handled.reply.send((handled.effects, result));
            }
        }
    }
}
