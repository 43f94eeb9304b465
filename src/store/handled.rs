//! The group commit of handled inbox events (`Store::finish_inbox_items`) in a few
//! multi-row statements instead of a handful per event.
//!
//! Why: on SQLite every statement is a round trip to the connection's thread, and the
//! committer ran five or six per event (mark done, observation, themes, prompt, outbox),
//! one after the other while the handlers waited. Now a group of events is marked done by
//! one `UPDATE … IN (…)`, and its observations, their themes and its outbox rows are each
//! one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` whose returned keys say which
//! rows were new. Only nudges still go one by one: each takes its person's turn and counts
//! their limits again (`nudges::insert_prompt`), in (team, person) order so that replicas
//! committing groups at once cannot deadlock.
//!
//! The outcome is the same as applying each event's effects in turn (`apply_effects`):
//! a repeated observation, or a prompt its thread already had, stores no outbox rows for
//! that event. A group in which two events share a key (which the inbox worker's lanes
//! rule out, but a caller could do) is applied event by event, so the first one wins as
//! before.

use std::collections::{HashMap, HashSet};

use super::db::{Tx, sql, values};
use super::effects::apply_effects;
use super::inbox::HandledItem;
use super::observations::theme_rows;
use super::{Applied, StoreError};

/// Applies every event of `handled` inside the open transaction `tx`: marked done, its
/// effects stored. The results are in the order of `handled`.
pub(super) async fn finish_all(
    tx: &mut Tx,
    handled: &[HandledItem<'_>],
) -> Result<Vec<Applied>, StoreError> {
    if shares_a_key(handled) {
        return one_by_one(tx, handled).await;
    }
    mark_done(tx, handled).await?;
    let fresh = insert_observations(tx, handled).await?;
    // A nudge holds its person's turn until the commit (`nudges::within_limits`); the
    // turns are taken in one order (team, person).
    let mut prompt_fresh = vec![true; handled.len()];
    for i in in_turn_order(handled) {
        let item = &handled[i];
        if let (Some(prompt), true) = (&item.effects.prompt, fresh[i]) {
            prompt_fresh[i] =
                super::nudges::insert_prompt(tx, item.team_id, prompt, item.now_ms).await?;
        }
    }
    let send: Vec<bool> = fresh
        .iter()
        .zip(&prompt_fresh)
        .map(|(fresh, prompt)| *fresh && *prompt)
        .collect();
    let enqueued = insert_outbox(tx, handled, &send).await?;
    Ok(handled
        .iter()
        .zip(fresh)
        .zip(enqueued)
        .map(|((item, fresh), enqueued)| Applied {
            fresh,
            observation_logged: fresh && item.effects.observation.is_some(),
            enqueued,
        })
        .collect())
}

/// The events in the order their nudges' turns are taken: (team, person, id).
fn in_turn_order(handled: &[HandledItem<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..handled.len()).collect();
    order.sort_by_key(|&i| {
        let item = &handled[i];
        let person = item.effects.prompt.as_ref().map(|p| p.user_id.as_str());
        (item.team_id, person.unwrap_or(""), item.id)
    });
    order
}

/// Whether two events of `handled` name the same observation, thread prompt or outbox
/// row: then which one is stored depends on their order, and a multi-row insert cannot
/// say which of the two it kept.
fn shares_a_key(handled: &[HandledItem<'_>]) -> bool {
    let mut seen: HashSet<(&str, &str, &str)> = HashSet::new();
    for item in handled {
        let effects = item.effects;
        let observation = effects
            .observation
            .as_ref()
            .map(|obs| ("observation", obs.dedupe_key.as_str()));
        let prompt = effects
            .prompt
            .as_ref()
            .map(|prompt| ("prompt", prompt.thread_key.as_str()));
        let outbox = effects
            .outbox
            .iter()
            .map(|msg| ("outbox", msg.idempotency_key.as_str()));
        for (table, key) in observation.into_iter().chain(prompt).chain(outbox) {
            if !seen.insert((item.team_id, table, key)) {
                return true;
            }
        }
    }
    false
}

/// The old way, event after event in turn order: for a group that shares a key.
async fn one_by_one(tx: &mut Tx, handled: &[HandledItem<'_>]) -> Result<Vec<Applied>, StoreError> {
    let mut applied = vec![Applied::default(); handled.len()];
    for i in in_turn_order(handled) {
        let item = &handled[i];
        mark_done(tx, std::slice::from_ref(item)).await?;
        applied[i] = apply_effects(tx, item.team_id, item.effects, item.now_ms).await?;
    }
    Ok(applied)
}

/// Marks the events done, their payload (a person's words) dropped: one statement per
/// team and handling time, which in practice is one per group.
async fn mark_done(tx: &mut Tx, handled: &[HandledItem<'_>]) -> Result<(), StoreError> {
    let mut groups: Vec<((&str, i64), Vec<i64>)> = Vec::new();
    for item in handled {
        let key = (item.team_id, item.now_ms);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(item.id),
            None => groups.push((key, vec![item.id])),
        }
    }
    for ((team_id, now_ms), ids) in groups {
        // `$3, $4, …`: the ids, at most the group's size (64).
        let placeholders: Vec<String> = (3..ids.len() + 3).map(|n| format!("${n}")).collect();
        let text = format!(
            "UPDATE inbox SET status = 'done', payload = NULL, locked_until = NULL, \
             handled_at = $2 WHERE team_id = $1 AND id IN ({})",
            placeholders.join(", ")
        );
        let mut statement = sql(&text).bind(team_id).bind(now_ms);
        for id in ids {
            statement = statement.bind(id);
        }
        statement.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Inserts the events' observations and their themes; per event, whether its
/// observation was new (or it had none).
async fn insert_observations(
    tx: &mut Tx,
    handled: &[HandledItem<'_>],
) -> Result<Vec<bool>, StoreError> {
    let mut rows = values(
        "INSERT INTO observations (team_id, channel_id, user_id, message_ts, source, \
         class, score, account, dedupe_key, text, created_at)",
        "ON CONFLICT (team_id, dedupe_key) DO NOTHING RETURNING id, team_id, dedupe_key",
    );
    for item in handled {
        if let Some(obs) = &item.effects.observation {
            rows.row(vec![
                item.team_id.into(),
                (&obs.channel_id).into(),
                (&obs.user_id).into(),
                (&obs.message_ts).into(),
                obs.source.as_str().into(),
                obs.class.as_str().into(),
                obs.score.into(),
                (&obs.account).into(),
                (&obs.dedupe_key).into(),
                (&obs.text).into(),
                item.now_ms.into(),
            ]);
        }
    }
    let stored: Vec<(i64, String, String)> = if rows.is_empty() {
        Vec::new()
    } else {
        rows.fetch_all(&mut *tx).await?
    };
    let ids: HashMap<(&str, &str), i64> = stored
        .iter()
        .map(|(id, team, key)| ((team.as_str(), key.as_str()), *id))
        .collect();
    let mut themes = theme_rows();
    let mut fresh = Vec::with_capacity(handled.len());
    for item in handled {
        let Some(obs) = &item.effects.observation else {
            fresh.push(true);
            continue;
        };
        let id = ids.get(&(item.team_id, obs.dedupe_key.as_str()));
        fresh.push(id.is_some());
        let Some(&id) = id else { continue };
        for theme in &obs.themes {
            themes.row(vec![
                id.into(),
                item.team_id.into(),
                theme.id().into(),
                item.now_ms.into(),
            ]);
        }
    }
    themes.execute(&mut *tx).await?;
    Ok(fresh)
}

/// Inserts the outbox rows of the events `send` allows; per event, the kinds of its rows
/// that were new (`telemetry::metrics::outbox_kind`), in its rows' order.
async fn insert_outbox(
    tx: &mut Tx,
    handled: &[HandledItem<'_>],
    send: &[bool],
) -> Result<Vec<Vec<&'static str>>, StoreError> {
    let mut rows = values(
        "INSERT INTO outbox (team_id, idempotency_key, method, payload, next_attempt_at, created_at)",
        "ON CONFLICT (team_id, idempotency_key) DO NOTHING RETURNING team_id, idempotency_key",
    );
    for (item, _) in handled.iter().zip(send).filter(|(_, send)| **send) {
        for msg in &item.effects.outbox {
            let payload = msg.call.to_stored().map_err(|e| {
                StoreError::Corrupt(format!("outbox call {}: {e}", msg.idempotency_key))
            })?;
            rows.row(vec![
                item.team_id.into(),
                (&msg.idempotency_key).into(),
                msg.call.method().into(),
                payload.into(),
                item.now_ms.into(),
                item.now_ms.into(),
            ]);
        }
    }
    let stored: Vec<(String, String)> = if rows.is_empty() {
        Vec::new()
    } else {
        rows.fetch_all(&mut *tx).await?
    };
    let new: HashSet<(&str, &str)> = stored
        .iter()
        .map(|(team, key)| (team.as_str(), key.as_str()))
        .collect();
    Ok(handled
        .iter()
        .zip(send)
        .map(|(item, send)| {
            if !*send {
                return Vec::new();
            }
            item.effects
                .outbox
                .iter()
                .filter(|msg| new.contains(&(item.team_id, msg.idempotency_key.as_str())))
                .map(|msg| crate::telemetry::metrics::outbox_kind(&msg.idempotency_key))
                .collect()
        })
        .collect())
}
