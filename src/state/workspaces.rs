//! Which workspaces cusp serves, and with which token.
//!
//! Two modes. **Single workspace**: `SLACK_BOT_TOKEN` is set, so there is one workspace,
//! its identity learned from `auth.test` at start. **OAuth**: every workspace that
//! installed cusp through `/slack/install` has a row in `installations` with its sealed
//! bot token; a request or a job for a team resolves that row here. A team with no live
//! installation resolves to `None`, and the caller stores nothing for it.
//!
//! Resolved installations are cached for [`CACHE_TTL`]: a busy workspace does not read
//! and decrypt its row on every event. A refresh or an uninstall in this process drops
//! the entry at once ([`Workspaces::forget`]); another replica's change is seen within the
//! TTL. That is safe because a rotated token stays valid until it expires (hours later),
//! and a revoked one only makes calls fail until the entry lapses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::slack::ids::{BotId, BotIdentity, TeamId, UserId};
use crate::slack::web_api::{SlackApiError, SlackClient, SlackConnector};
use crate::store::{InstallationError, InstallationKey, Keyring, Store, StoreError};

/// How long a resolved installation is reused before its row is read again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// How long the list of installed teams is reused: the workers ask for it on every pass
/// (the inbox worker many times a second under load). An install or removal in this
/// process drops it at once; another replica's is seen within this time.
pub const TEAMS_TTL: Duration = Duration::from_secs(5);

/// One workspace cusp serves: who cusp is there and a client holding its token.
#[derive(Debug)]
pub struct Workspace {
    pub identity: BotIdentity,
    pub slack: SlackClient,
}

impl Workspace {
    pub fn team_id(&self) -> &str {
        self.identity.team_id.as_str()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error(transparent)]
    Installation(#[from] InstallationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored row that cannot be an installation (an id Slack never sends).
    #[error("installation of {team}: {reason}")]
    BadRow { team: String, reason: String },
}

/// To a worker or a feature whose errors are store errors, an installation that cannot
/// be read is the database failing: a store error stays itself, anything else (a token
/// that does not open, a row Slack could never have sent) is stored data that is invalid.
impl From<WorkspaceError> for StoreError {
    fn from(err: WorkspaceError) -> StoreError {
        match err {
            WorkspaceError::Store(err) => err,
            other => StoreError::Corrupt(other.to_string()),
        }
    }
}

pub enum Workspaces {
    Single(Arc<Workspace>),
    Installed(Installed),
}

impl std::fmt::Debug for Workspaces {
    /// The mode only: the cache holds clients with tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Workspaces::Single(workspace) => {
                write!(f, "Workspaces::Single({})", workspace.team_id())
            }
            Workspaces::Installed(_) => f.write_str("Workspaces::Installed"),
        }
    }
}

/// OAuth mode: installations read from the store, tokens opened with the keyring.
pub struct Installed {
    store: Store,
    keyring: Arc<Keyring>,
    connector: SlackConnector,
    cache: Mutex<HashMap<String, (Arc<Workspace>, Instant)>>,
    teams: Mutex<Option<(Arc<[String]>, Instant)>>,
}

impl Workspaces {
    pub fn single(workspace: Workspace) -> Workspaces {
        Workspaces::Single(Arc::new(workspace))
    }

    pub fn installed(store: Store, keyring: Arc<Keyring>, connector: SlackConnector) -> Workspaces {
        Workspaces::Installed(Installed {
            store,
            keyring,
            connector,
            cache: Mutex::new(HashMap::new()),
            teams: Mutex::new(None),
        })
    }

    /// The keyring that seals tokens, in OAuth mode.
    pub fn keyring(&self) -> Option<&Arc<Keyring>> {
        match self {
            Workspaces::Single(_) => None,
            Workspaces::Installed(installed) => Some(&installed.keyring),
        }
    }

    /// The workspace serving `team_id`. `enterprise_id` is what Slack sent with the
    /// request (an event's `authorizations`, a command's `enterprise_id`): with it, a
    /// workspace of an Enterprise Grid org that installed cusp org-wide is found too.
    pub async fn resolve(
        &self,
        enterprise_id: Option<&str>,
        team_id: &str,
    ) -> Result<Option<Arc<Workspace>>, WorkspaceError> {
        match self {
            Workspaces::Single(workspace) => {
                Ok((workspace.team_id() == team_id).then(|| workspace.clone()))
            }
            Workspaces::Installed(installed) => installed.resolve(enterprise_id, team_id).await,
        }
    }

    /// The workspace serving `team_id` when only the team is known (an outbox row, a
    /// digest run).
    pub async fn for_team(&self, team_id: &str) -> Result<Option<Arc<Workspace>>, WorkspaceError> {
        self.resolve(None, team_id).await
    }

    /// Every team served now: the one team, or each workspace-level installation.
    pub async fn teams(&self) -> Result<Vec<String>, WorkspaceError> {
        match self {
            Workspaces::Single(workspace) => Ok(vec![workspace.team_id().to_owned()]),
            Workspaces::Installed(installed) => Ok(installed.teams().await?.to_vec()),
        }
    }

    /// Drops what this process remembers of one installation: a workspace's, or for an
    /// org-wide install (no team id) every workspace of the org it served.
    pub fn forget_installation(&self, key: &InstallationKey) {
        if !key.team_id.is_empty() {
            return self.forget(&key.team_id);
        }
        if let Workspaces::Installed(installed) = self {
            installed.forget_teams();
            let org = format!("{}/", key.enterprise_id);
            installed
                .lock_cache()
                .retain(|cache_key, _| !cache_key.starts_with(&org));
        }
    }

    /// Drops what this process remembers of `team_id`'s installation (after an uninstall
    /// or a token refresh), so the next use reads the row again.
    pub fn forget(&self, team_id: &str) {
        if let Workspaces::Installed(installed) = self {
            installed.forget_teams();
            installed
                .lock_cache()
                .retain(|_, (workspace, _)| workspace.team_id() != team_id);
        }
    }
}

impl Installed {
    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<Workspace>, Instant)>> {
        // A panic while holding this lock leaves only cache entries behind: still usable.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock_teams(&self) -> std::sync::MutexGuard<'_, Option<(Arc<[String]>, Instant)>> {
        // Only a cached list is kept here: still usable after a panic elsewhere.
        self.teams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn forget_teams(&self) {
        *self.lock_teams() = None;
    }

    async fn teams(&self) -> Result<Arc<[String]>, StoreError> {
        if let Some((teams, at)) = self.lock_teams().as_ref()
            && at.elapsed() < TEAMS_TTL
        {
            return Ok(teams.clone());
        }
        let teams: Arc<[String]> = self.store.installed_teams().await?.into();
        *self.lock_teams() = Some((teams.clone(), Instant::now()));
        Ok(teams)
    }

    async fn resolve(
        &self,
        enterprise_id: Option<&str>,
        team_id: &str,
    ) -> Result<Option<Arc<Workspace>>, WorkspaceError> {
        let enterprise_id = enterprise_id.filter(|e| !e.is_empty());
        let cache_key = format!("{}/{team_id}", enterprise_id.unwrap_or(""));
        if let Some((workspace, at)) = self.lock_cache().get(&cache_key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(Some(workspace.clone()));
        }
        let found = match enterprise_id {
            Some(enterprise) => {
                self.store
                    .find_installation(&self.keyring, Some(enterprise), team_id)
                    .await?
            }
            None => {
                self.store
                    .find_installation_by_team(&self.keyring, team_id)
                    .await?
            }
        };
        let Some(installation) = found else {
            self.lock_cache().remove(&cache_key);
            return Ok(None);
        };
        let bad_row = |reason: String| WorkspaceError::BadRow {
            team: team_id.to_owned(),
            reason,
        };
        let identity = BotIdentity {
            // The team asked about: for an org-wide install the row's team id is empty.
            team_id: TeamId::parse(team_id).map_err(|e| bad_row(e.to_string()))?,
            user_id: UserId::parse(&installation.bot_user_id)
                .map_err(|e| bad_row(e.to_string()))?,
            bot_id: installation
                .bot_id
                .as_deref()
                .map(BotId::parse)
                .transpose()
                .map_err(|e| bad_row(e.to_string()))?,
        };
        let slack = self
            .connector
            .client(installation.bot_token)
            .map_err(|e: SlackApiError| bad_row(e.to_string()))?;
        let workspace = Arc::new(Workspace { identity, slack });
        self.lock_cache()
            .insert(cache_key, (workspace.clone(), Instant::now()));
        Ok(Some(workspace))
    }
}
