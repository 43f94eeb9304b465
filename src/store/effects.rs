//! What handling one event or command stores, applied in one transaction.

use super::db::Tx;
use super::{NewObservation, NewOutboxMessage, NewPrompt, Store, StoreError, Write, Written};

/// What handling one event or command stores, all in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub observation: Option<NewObservation>,
    /// A prompt (nudge) this work sends; unique per thread.
    pub prompt: Option<NewPrompt>,
    pub outbox: Vec<NewOutboxMessage>,
}

/// What applying `Effects` stored, known once its transaction has committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The observation was new, or there was none: the effects were not a repeat.
    pub fresh: bool,
    /// An observation was stored.
    pub observation_logged: bool,
    /// Kinds of the outbox rows that were new (`nudge`, `reaction`, …).
    pub enqueued: Vec<&'static str>,
}

impl Applied {
    /// Counts a committed `Applied` in the metrics (call after the commit only).
    pub(super) fn count(&self, effects: &Effects) {
        if let Some(obs) = effects
            .observation
            .as_ref()
            .filter(|_| self.observation_logged)
        {
            crate::telemetry::metrics::observation_logged(obs.class.as_str(), obs.source.as_str());
        }
        count_enqueued(&self.enqueued);
    }
}

/// Counts outbox rows a committed transaction wrote.
pub(super) fn count_enqueued(kinds: &[&'static str]) {
    for kind in kinds {
        crate::telemetry::metrics::outbox_enqueued(kind);
    }
}

/// Applies `effects` inside the open transaction `tx`. `fresh` is `true` when the
/// observation was new (or there was none). A repeated observation, or a prompt for a
/// thread that already has one, skips the outbox messages, so a duplicate never causes a
/// second reply.
pub(super) async fn apply_effects(
    tx: &mut Tx,
    team_id: &str,
    effects: &Effects,
    now_ms: i64,
) -> Result<Applied, StoreError> {
    let fresh = match &effects.observation {
        Some(obs) => super::observations::insert_observation(tx, team_id, obs, now_ms)
            .await?
            .is_some(),
        None => true,
    };
    let prompt_fresh = match (&effects.prompt, fresh) {
        (Some(prompt), true) => super::nudges::insert_prompt(tx, team_id, prompt, now_ms).await?,
        _ => true,
    };
    let enqueued = if fresh && prompt_fresh {
        super::outbox::insert_outbox(tx, team_id, &effects.outbox, now_ms).await?
    } else {
        Vec::new()
    };
    Ok(Applied {
        fresh,
        observation_logged: fresh && effects.observation.is_some(),
        enqueued,
    })
}

impl Store {
    /// Records an observation (and what it caused) outside the inbox, e.g. for the CRM
    /// hooks. Returns `false` when the dedupe key was already used. Goes through the
    /// group-commit writer: when this returns `Ok`, the write is committed.
    pub async fn record_effects(
        &self,
        team_id: &str,
        effects: &Effects,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let applied = self.write_effects(team_id, effects, None, now_ms).await?;
        Ok(applied.is_some_and(|applied| applied.fresh))
    }

    /// Like [`Store::record_effects`], but stores nothing when `user_id` opted out,
    /// checked in the same transaction as the write (an opt-out committed first always
    /// wins). `None` when they opted out. For `/cusp reflect`.
    pub async fn record_effects_unless_opted_out(
        &self,
        team_id: &str,
        user_id: &str,
        effects: &Effects,
        now_ms: i64,
    ) -> Result<Option<Applied>, StoreError> {
        self.write_effects(team_id, effects, Some(user_id.to_owned()), now_ms)
            .await
    }

    async fn write_effects(
        &self,
        team_id: &str,
        effects: &Effects,
        unless_opted_out: Option<String>,
        now_ms: i64,
    ) -> Result<Option<Applied>, StoreError> {
        let write = Write::Effects {
            team_id: team_id.to_owned(),
            effects: Box::new(effects.clone()),
            unless_opted_out,
            now_ms,
        };
        let written = self.writer.write(write).await?;
        if let Some(prompt) = &effects.prompt {
            self.prompt_written(team_id, &prompt.user_id);
        }
        match written {
            Written::Effects(applied) => Ok(Some(applied)),
            Written::OptedOut => Ok(None),
            other => Err(StoreError::Corrupt(format!(
                "the writer answered {other:?} to effects"
            ))),
        }
    }
}
