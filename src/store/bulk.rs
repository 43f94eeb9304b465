//! The group-commit writer's batch statements: the inbox rows of a batch in one insert,
//! and the reflections' observations (with their opt-out checks and themes) in three
//! statements, however many requests the batch carries.
//!
//! Why: on SQLite every statement is a round trip to the connection's thread (two
//! context switches), and the writer runs its batch's statements one after the other;
//! a statement per write made the writer the bottleneck of `/cusp reflect` and of the
//! Events API ack (about 7 context switches and 200 µs of CPU per request).

use std::collections::{HashMap, HashSet};

use super::db::{Tx, sql, values};
use super::observations::theme_rows;
use super::{Applied, NewObservation, StoreError, Write, Written};

/// One inbox row of a batch (the fields of `Write::Inbox`).
pub(super) struct InboxRow<'w> {
    pub team_id: &'w str,
    pub event_id: &'w str,
    pub kind: &'w str,
    pub payload: &'w str,
    pub thread_key: Option<&'w str>,
    pub now_ms: i64,
}

/// Inserts `rows` in one statement; for each, whether it was new. A row repeated within
/// the batch (Slack's retry racing the original) is new at most once, in batch order.
pub(super) async fn insert_inbox(
    tx: &mut Tx,
    rows: &[InboxRow<'_>],
) -> Result<Vec<bool>, StoreError> {
    let mut insert = values(
        "INSERT INTO inbox (team_id, event_id, kind, payload, received_at, thread_key)",
        "ON CONFLICT (team_id, event_id) DO NOTHING RETURNING team_id, event_id",
    );
    let mut first = HashSet::new();
    for row in rows {
        if first.insert((row.team_id, row.event_id)) {
            insert.row(vec![
                row.team_id.into(),
                row.event_id.into(),
                row.kind.into(),
                row.payload.into(),
                row.now_ms.into(),
                row.thread_key.into(),
            ]);
        }
    }
    let stored: Vec<(String, String)> = insert.fetch_all(&mut *tx).await?;
    let mut new: HashSet<(&str, &str)> = stored
        .iter()
        .map(|(team, event)| (team.as_str(), event.as_str()))
        .collect();
    // `remove`: only the first of repeated rows counts as new.
    Ok(rows
        .iter()
        .map(|row| new.remove(&(row.team_id, row.event_id)))
        .collect())
}

/// One `/cusp reflect`-style write: an observation and nothing else, stored unless the
/// person named opted out.
pub(super) struct ObservationWrite<'w> {
    pub team_id: &'w str,
    pub observation: &'w NewObservation,
    pub unless_opted_out: Option<&'w str>,
    pub now_ms: i64,
}

impl<'w> ObservationWrite<'w> {
    /// `write` as an observation-only write, when it is one.
    pub(super) fn of(write: &'w Write) -> Option<ObservationWrite<'w>> {
        match write {
            Write::Effects {
                team_id,
                effects,
                unless_opted_out,
                now_ms,
            } if effects.prompt.is_none() && effects.outbox.is_empty() => Some(ObservationWrite {
                team_id,
                observation: effects.observation.as_ref()?,
                unless_opted_out: unless_opted_out.as_deref(),
                now_ms: *now_ms,
            }),
            _ => None,
        }
    }
}

/// Stores `writes` in three statements (opt-outs per team, observations, themes); what
/// each did, in order. An observation whose dedupe key is already stored, or repeated
/// earlier in the batch, is not fresh.
pub(super) async fn record_observations(
    tx: &mut Tx,
    writes: &[ObservationWrite<'_>],
) -> Result<Vec<Written>, StoreError> {
    let opted_out = opted_out(tx, writes).await?;
    let mut insert = values(
        "INSERT INTO observations (team_id, channel_id, user_id, message_ts, source, \
         class, score, account, dedupe_key, text, created_at)",
        "ON CONFLICT (team_id, dedupe_key) DO NOTHING RETURNING id, team_id, dedupe_key",
    );
    let mut first = HashSet::new();
    let mut stores = Vec::with_capacity(writes.len());
    for write in writes {
        let obs = write.observation;
        let refused = write
            .unless_opted_out
            .is_some_and(|user| opted_out.contains(&(write.team_id, user)));
        let stored = !refused && first.insert((write.team_id, obs.dedupe_key.as_str()));
        if stored {
            insert.row(vec![
                write.team_id.into(),
                obs.channel_id.as_str().into(),
                obs.user_id.as_str().into(),
                obs.message_ts.as_deref().into(),
                obs.source.as_str().into(),
                obs.class.as_str().into(),
                obs.score.into(),
                obs.account.as_deref().into(),
                obs.dedupe_key.as_str().into(),
                obs.text.as_deref().into(),
                write.now_ms.into(),
            ]);
        }
        stores.push((refused, stored));
    }
    let ids: Vec<(i64, String, String)> = insert.fetch_all(&mut *tx).await?;
    let ids: HashMap<(&str, &str), i64> = ids
        .iter()
        .map(|(id, team, key)| ((team.as_str(), key.as_str()), *id))
        .collect();
    let mut themes = theme_rows();
    let mut written = Vec::with_capacity(writes.len());
    for (write, (refused, stored)) in writes.iter().zip(stores) {
        let key = (write.team_id, write.observation.dedupe_key.as_str());
        let id = ids.get(&key).copied().filter(|_| stored);
        if let Some(id) = id {
            for theme in &write.observation.themes {
                themes.row(vec![
                    id.into(),
                    write.team_id.into(),
                    theme.id().into(),
                    write.now_ms.into(),
                ]);
            }
        }
        written.push(if refused {
            Written::OptedOut
        } else {
            Written::Effects(Applied {
                fresh: id.is_some(),
                observation_logged: id.is_some(),
                enqueued: Vec::new(),
            })
        });
    }
    themes.execute(&mut *tx).await?;
    Ok(written)
}

/// The `(team, person)` pairs among `writes`' opt-out checks who opted out: one query per
/// team in the batch.
async fn opted_out<'w>(
    tx: &mut Tx,
    writes: &[ObservationWrite<'w>],
) -> Result<HashSet<(&'w str, &'w str)>, StoreError> {
    let mut people: HashMap<&str, Vec<&str>> = HashMap::new();
    for write in writes {
        if let Some(user) = write.unless_opted_out {
            people.entry(write.team_id).or_default().push(user);
        }
    }
    let mut out = HashSet::new();
    for (team, mut users) in people {
        users.sort_unstable();
        users.dedup();
        let placeholders: Vec<String> = (2..users.len() + 2).map(|n| format!("${n}")).collect();
        let statement = format!(
            "SELECT user_id FROM user_prefs WHERE team_id = $1 AND opted_out <> 0 \
             AND user_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sql(&statement).bind(team);
        for user in &users {
            query = query.bind(*user);
        }
        let refused: Vec<String> = query.scalars(&mut *tx).await?;
        for user in users {
            if refused.iter().any(|r| r == user) {
                out.insert((team, user));
            }
        }
    }
    Ok(out)
}
