//! What handling one event or command stores, applied in one transaction.

use super::db::Tx;
use super::{NewObservation, NewOutboxMessage, NewPrompt, Store, StoreError};

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
    /// Records an observation (and what it caused) outside the inbox, e.g. for `/cusp reflect`.
    /// Returns `false` when the dedupe key was already used.
    pub async fn record_effects(
        &self,
        team_id: &str,
        effects: &Effects,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let applied = apply_effects(&mut tx, team_id, effects, now_ms).await?;
        tx.commit().await?;
        applied.count(effects);
        Ok(applied.fresh)
    }
}
