//! Keeps the events that must not overlap in order while the others run at once.
//!
//! Each event names its keys (its channel and its person, `bot::CheckedEvent::serial_keys`).
//! The worker takes a [`Ticket`] for every claimed event, synchronously and in the order
//! the events arrived; a ticket is ready once it is first in the queue of each of its keys,
//! and gives its places up when dropped (after the event's effects are committed). So two
//! events that share a key run one after the other in arrival order, and events that
//! share none run side by side. There is no deadlock: the earliest ticket still held is
//! first in every queue it is in, so it is always ready.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct Lanes {
    state: Mutex<State>,
    /// Rung whenever a ticket gives up its places.
    released: Notify,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    queues: HashMap<String, VecDeque<u64>>,
}

/// One event's places in the queues of its keys.
#[derive(Debug)]
pub(crate) struct Ticket {
    lanes: Arc<Lanes>,
    id: u64,
    keys: Vec<String>,
}

impl Lanes {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The queues are only changed whole under the lock; a panic elsewhere leaves them valid.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues behind every earlier ticket that shares one of `keys`.
    pub(crate) fn enter(self: &Arc<Self>, mut keys: Vec<String>) -> Ticket {
        keys.sort();
        keys.dedup();
        let mut state = self.lock();
        let id = state.next;
        state.next += 1;
        for key in &keys {
            state.queues.entry(key.clone()).or_default().push_back(id);
        }
        Ticket {
            lanes: self.clone(),
            id,
            keys,
        }
    }

    /// How many keys have an event queued or running (tests: nothing is left behind).
    #[cfg(test)]
    fn busy_keys(&self) -> usize {
        self.lock().queues.len()
    }
}

impl Ticket {
    fn is_first(&self) -> bool {
        let state = self.lanes.lock();
        self.keys
            .iter()
            .all(|key| state.queues.get(key).and_then(VecDeque::front) == Some(&self.id))
    }

    /// Waits until every earlier event sharing a key has given up its places.
    pub(crate) async fn ready(&self) {
        loop {
            let released = self.lanes.released.notified();
            tokio::pin!(released);
            // Registered before looking, so a release in between is not missed.
            released.as_mut().enable();
            if self.is_first() {
                return;
            }
            released.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        {
            let mut state = self.lanes.lock();
            for key in &self.keys {
                if let Some(queue) = state.queues.get_mut(key) {
                    queue.retain(|id| *id != self.id);
                    if queue.is_empty() {
                        state.queues.remove(key);
                    }
                }
            }
        }
        self.lanes.released.notify_waiters();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn keys(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    async fn is_ready(ticket: &Ticket) -> bool {
        tokio::time::timeout(Duration::from_millis(20), ticket.ready())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn events_sharing_a_key_wait_in_arrival_order_and_others_do_not() {
        let lanes = Arc::new(Lanes::default());
        let first = lanes.enter(keys(&["c:C1", "u:U1"]));
        let same_channel = lanes.enter(keys(&["c:C1", "u:U2"]));
        let same_person = lanes.enter(keys(&["c:C2", "u:U1"]));
        let other = lanes.enter(keys(&["c:C3", "u:U3"]));
        let behind_both = lanes.enter(keys(&["c:C1", "u:U1"]));

        assert!(is_ready(&first).await);
        assert!(is_ready(&other).await, "shares nothing: runs at once");
        assert!(!is_ready(&same_channel).await);
        assert!(!is_ready(&same_person).await);

        drop(first);
        assert!(is_ready(&same_channel).await);
        assert!(is_ready(&same_person).await);
        assert!(!is_ready(&behind_both).await, "still behind both");
        drop(same_channel);
        assert!(!is_ready(&behind_both).await, "still behind same_person");
        drop(same_person);
        assert!(is_ready(&behind_both).await);
        drop((behind_both, other));
        assert_eq!(lanes.busy_keys(), 0);
    }

    #[tokio::test]
    async fn a_waiter_is_woken_when_the_event_ahead_finishes() {
        let lanes = Arc::new(Lanes::default());
        let first = lanes.enter(keys(&["c:C1"]));
        let second = lanes.enter(keys(&["c:C1"]));
        let waiter = tokio::spawn(async move {
            second.ready().await;
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
    }

    #[tokio::test]
    async fn a_ticket_given_up_before_its_turn_does_not_block_the_others() {
        let lanes = Arc::new(Lanes::default());
        let first = lanes.enter(keys(&["c:C1"]));
        let abandoned = lanes.enter(keys(&["c:C1"]));
        let third = lanes.enter(keys(&["c:C1"]));
        drop(abandoned);
        drop(first);
        assert!(is_ready(&third).await);
    }
}
