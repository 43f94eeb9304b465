//! A workspace removed cusp (`app_uninstalled`) or revoked its bot token
//! (`tokens_revoked`): delete its tokens at once, stop its deliveries, and leave its data
//! for the purge 30 days later (`jobs::uninstalled`) unless it reinstalls first.
//!
//! Handled at the edge, not through the inbox: once the tokens are gone the team has no
//! installation, so the inbox worker (which visits installed teams) would never reach it.

use crate::slack::payloads::{EventCallback, InnerEvent};
use crate::state::Workspaces;
use crate::store::{InstallationKey, Store, StoreError};

/// What an outbox row of a removed workspace says instead of being sent.
pub const STOPPED_REASON: &str = "the workspace removed cusp; not sent";
/// What an inbox row of a removed workspace says instead of being handled.
pub const DROPPED_REASON: &str = "the workspace removed cusp; not handled";

/// Why an installation is being removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Uninstalled,
    TokensRevoked,
}

impl Removal {
    /// The removal an event announces, if any. A `tokens_revoked` that lists no bot
    /// token (only people's tokens, which cusp never holds) removes nothing.
    pub fn of(event: &InnerEvent) -> Option<Removal> {
        match event {
            InnerEvent::AppUninstalled => Some(Removal::Uninstalled),
            InnerEvent::TokensRevoked { bot } if !bot.is_empty() => Some(Removal::TokensRevoked),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Removal::Uninstalled => "app_uninstalled",
            Removal::TokensRevoked => "tokens_revoked",
        }
    }
}

/// What became of a removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// Tokens deleted; `stopped` pending deliveries marked dead.
    Removed { stopped: u64 },
    /// Nothing to remove: already removed (a retried event), or reinstalled after the
    /// event was sent (a late event must not undo the reinstall).
    Nothing,
    /// Single-workspace mode: the token is in the environment, not in the database.
    SingleWorkspace,
}

/// The installation an event belongs to: the org's row for an org-wide install.
pub fn installation_key(callback: &EventCallback) -> InstallationKey {
    let (enterprise, team) = callback.installation();
    let org_wide = callback
        .authorizations
        .first()
        .is_some_and(|a| a.is_enterprise_install);
    if org_wide && enterprise.is_some() {
        InstallationKey::new(enterprise, "")
    } else {
        InstallationKey::new(enterprise, team)
    }
}

/// Removes `key`'s installation as of `event_time_ms` (an install made after the event
/// is spared), stops its team's pending deliveries, drops its waiting events and drops
/// it from the cache.
pub async fn remove(
    store: &Store,
    workspaces: &Workspaces,
    key: &InstallationKey,
    event_time_ms: i64,
    now_ms: i64,
) -> Result<Removed, StoreError> {
    if let Workspaces::Single(workspace) = workspaces {
        return Ok(if workspace.team_id() == key.team_id {
            Removed::SingleWorkspace
        } else {
            Removed::Nothing
        });
    }
    if !store
        .remove_installation(key, Some(event_time_ms), now_ms)
        .await?
    {
        // Already removed, perhaps by an earlier delivery of this event that failed after
        // deleting the tokens and before stopping the team's work: while nothing serves
        // the team, finishing that work is harmless (both steps are idempotent), so Slack's
        // retry completes the removal. A team served again (a reinstall) keeps its work.
        let served = workspaces.for_team(&key.team_id).await?;
        if !key.team_id.is_empty() && served.is_none() {
            stop_team_work(store, &key.team_id, now_ms).await?;
        }
        return Ok(Removed::Nothing);
    }
    workspaces.forget_installation(key);
    // An org-wide installation has no team id of its own: its workspaces' rows are kept
    // under their own ids, which the row does not list, so there is nothing to stop here.
    if key.team_id.is_empty() {
        return Ok(Removed::Removed { stopped: 0 });
    }
    let stopped = stop_team_work(store, &key.team_id, now_ms).await?;
    Ok(Removed::Removed { stopped })
}

/// Marks a removed team's pending deliveries dead and drops its waiting events (with
/// their text); returns how many deliveries were stopped.
async fn stop_team_work(store: &Store, team_id: &str, now_ms: i64) -> Result<u64, StoreError> {
    let stopped = store.stop_team_deliveries(team_id, STOPPED_REASON).await?;
    store
        .drop_team_events(team_id, DROPPED_REASON, now_ms)
        .await?;
    Ok(stopped)
}
