//! A short-lived, write-through cache of what question selection reads on every
//! `/cusp reflect`: a person's recent question ids and the team's unhelpful ones.
//!
//! Why: those two reads were two of the four database round trips of each reflection.
//! What it may cost: this process forgets an entry as soon as it writes a prompt or
//! feedback (write-through), but another replica's writes are seen only once the entry
//! is [`FRESH_FOR`] old, so for that long a question may be repeated. Nothing that decides
//! whether to store or send anything is cached here (opt-outs and mutes are read from
//! the database each time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an entry is served before it is read again.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(10);
/// Entries kept before the map is cleared, so memory stays bounded for any number of people.
const MAX_ENTRIES: usize = 10_000;

type Entry = (Instant, Arc<Vec<String>>);

#[derive(Default)]
pub(super) struct QuestionCache {
    /// `(team, user)` → their recent question ids.
    recent: Mutex<HashMap<(String, String), Entry>>,
    /// `team` → its unhelpful question ids.
    unhelpful: Mutex<HashMap<String, Entry>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves only a cache behind: use it as it is.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fresh(entry: Option<&Entry>, now: Instant) -> Option<Arc<Vec<String>>> {
    entry
        .filter(|(at, _)| now.saturating_duration_since(*at) < FRESH_FOR)
        .map(|(_, ids)| ids.clone())
}

fn put<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Entry>, key: K, ids: Arc<Vec<String>>) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, (Instant::now(), ids));
}

impl QuestionCache {
    pub(super) fn recent(&self, team: &str, user: &str) -> Option<Arc<Vec<String>>> {
        let map = lock(&self.recent);
        fresh(map.get(&(team.to_owned(), user.to_owned())), Instant::now())
    }

    pub(super) fn put_recent(&self, team: &str, user: &str, ids: Arc<Vec<String>>) {
        put(
            &mut lock(&self.recent),
            (team.to_owned(), user.to_owned()),
            ids,
        );
    }

    pub(super) fn unhelpful(&self, team: &str) -> Option<Arc<Vec<String>>> {
        fresh(lock(&self.unhelpful).get(team), Instant::now())
    }

    pub(super) fn put_unhelpful(&self, team: &str, ids: Arc<Vec<String>>) {
        put(&mut lock(&self.unhelpful), team.to_owned(), ids);
    }

    /// After a committed prompt for `user` (or their data deleted).
    pub(super) fn forget_user(&self, team: &str, user: &str) {
        lock(&self.recent).remove(&(team.to_owned(), user.to_owned()));
    }

    /// After committed feedback, or anything that changes a team's prompts wholesale.
    pub(super) fn forget_team(&self, team: &str) {
        lock(&self.unhelpful).remove(team);
        lock(&self.recent).retain(|(t, _), _| t != team);
    }
}
