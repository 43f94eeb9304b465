//! Workspaces that installed cusp with OAuth v2: their sealed tokens, token-rotation
//! claims, and the single-use OAuth `state` values of installs in progress.
//!
//! Every query names its installation (enterprise id + team id). Three documented
//! exceptions read across teams because their caller has no team yet: the operators' list
//! (`cusp installations list`), the refresh scheduler's "whose token expires soon", and
//! `cusp rotate-key`, which re-seals every row. The `oauth_states` table belongs to no
//! team: a state is handed out before Slack says which workspace is installing.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::db::sql;
use super::sealed::{Binding, Keyring, SealError};
use super::{Store, StoreError};

/// How long an OAuth `state` is accepted after `GET /slack/install` handed it out; Slack's
/// `code` expires after ten minutes too.
pub const OAUTH_STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long consumed and expired states are kept, so a reused one is reported as reused.
const OAUTH_STATE_KEEP: Duration = Duration::from_secs(24 * 3600);

const BOT_TOKEN: &str = "bot_token";
const REFRESH_TOKEN: &str = "refresh_token";

#[derive(Debug, thiserror::Error)]
pub enum InstallationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("installation {key}: {source}")]
    Seal {
        key: InstallationKey,
        #[source]
        source: SealError,
    },
}

impl From<sqlx::Error> for InstallationError {
    fn from(err: sqlx::Error) -> Self {
        InstallationError::Store(StoreError::Backend(err))
    }
}

/// Which installation: `enterprise_id` is `""` outside Enterprise Grid, `team_id` is `""`
/// for an org-wide install.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstallationKey {
    pub enterprise_id: String,
    pub team_id: String,
}

impl InstallationKey {
    pub fn new(enterprise_id: Option<&str>, team_id: &str) -> InstallationKey {
        InstallationKey {
            enterprise_id: enterprise_id.unwrap_or("").to_owned(),
            team_id: team_id.to_owned(),
        }
    }

    fn binding<'a>(&'a self, column: &'a str) -> Binding<'a> {
        Binding {
            enterprise_id: &self.enterprise_id,
            team_id: &self.team_id,
            column,
        }
    }
}

impl fmt::Display for InstallationKey {
    /// `T123`, `E1/T123`, or `E1` for an org-wide install.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.enterprise_id.as_str(), self.team_id.as_str()) {
            ("", team) => f.write_str(team),
            (org, "") => f.write_str(org),
            (org, team) => write!(f, "{org}/{team}"),
        }
    }
}

/// What an OAuth install (or reinstall) stores.
#[derive(Debug, Clone)]
pub struct NewInstallation {
    pub key: InstallationKey,
    pub team_name: Option<String>,
    pub enterprise_name: Option<String>,
    pub is_enterprise_install: bool,
    pub app_id: Option<String>,
    pub bot_user_id: String,
    pub bot_id: Option<String>,
    pub bot_token: SecretString,
    /// Comma-separated, as Slack sends them.
    pub bot_scopes: String,
    pub installer_user_id: Option<String>,
    /// Present when the app has token rotation on.
    pub refresh_token: Option<SecretString>,
    pub token_expires_at_ms: Option<i64>,
}

/// A live installation with its tokens opened. `Debug` shows no token.
#[derive(Debug, Clone)]
pub struct Installation {
    pub key: InstallationKey,
    pub team_name: Option<String>,
    pub enterprise_name: Option<String>,
    pub is_enterprise_install: bool,
    pub app_id: Option<String>,
    pub bot_user_id: String,
    pub bot_id: Option<String>,
    pub bot_token: SecretString,
    pub bot_scopes: String,
    pub installer_user_id: Option<String>,
    pub refresh_token: Option<SecretString>,
    pub token_expires_at_ms: Option<i64>,
    pub needs_reinstall: bool,
    pub installed_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One row of `cusp installations list`: no tokens, only whether they are there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationSummary {
    pub key: InstallationKey,
    pub team_name: Option<String>,
    pub enterprise_name: Option<String>,
    pub is_enterprise_install: bool,
    pub bot_user_id: String,
    pub bot_scopes: String,
    pub installer_user_id: Option<String>,
    pub has_bot_token: bool,
    pub rotates_tokens: bool,
    pub token_expires_at_ms: Option<i64>,
    pub needs_reinstall: bool,
    pub installed_at_ms: i64,
    pub updated_at_ms: i64,
    pub uninstalled_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    Installed,
    /// The workspace had a row (perhaps uninstalled): it now holds the new tokens.
    Reinstalled,
}

/// The right to refresh one installation's token until the lease ends. `Debug` shows no
/// token.
#[derive(Debug, Clone)]
pub struct RefreshClaim {
    pub key: InstallationKey,
    pub claim_id: String,
    pub refresh_token: SecretString,
}

/// What a successful `oauth.v2.access` refresh returned.
#[derive(Debug, Clone)]
pub struct RefreshedTokens {
    pub bot_token: SecretString,
    pub refresh_token: SecretString,
    pub token_expires_at_ms: i64,
}

/// The answer to "may this OAuth `state` be used now?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateCheck {
    /// Consumed now; the code exchange must send this `redirect_uri` again.
    Valid {
        redirect_uri: String,
    },
    Unknown,
    Expired,
    Reused,
}

/// What `cusp rotate-key` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResealCounts {
    /// Installations whose tokens were re-sealed under the first key.
    pub resealed: u64,
    /// Installations already sealed under it (or holding no token).
    pub unchanged: u64,
}

#[derive(sqlx::FromRow)]
struct InstallationRow {
    enterprise_id: String,
    team_id: String,
    team_name: Option<String>,
    enterprise_name: Option<String>,
    is_enterprise_install: i64,
    app_id: Option<String>,
    bot_user_id: String,
    bot_id: Option<String>,
    bot_token: Option<String>,
    bot_scopes: String,
    installer_user_id: Option<String>,
    refresh_token: Option<String>,
    token_expires_at: Option<i64>,
    needs_reinstall: i64,
    installed_at: i64,
    updated_at: i64,
    uninstalled_at: Option<i64>,
}

const COLUMNS: &str = "enterprise_id, team_id, team_name, enterprise_name, is_enterprise_install, \
     app_id, bot_user_id, bot_id, bot_token, bot_scopes, installer_user_id, refresh_token, \
     token_expires_at, needs_reinstall, installed_at, updated_at, uninstalled_at";

impl InstallationRow {
    /// The row as a live installation, tokens opened; `None` when its tokens are gone.
    fn open(self, keyring: &Keyring) -> Result<Option<Installation>, InstallationError> {
        let key = self.key();
        let Some(sealed_bot) = self.bot_token.as_deref() else {
            return Ok(None);
        };
        let bot_token = open(keyring, &key, BOT_TOKEN, sealed_bot)?;
        let refresh_token = self
            .refresh_token
            .as_deref()
            .map(|t| open(keyring, &key, REFRESH_TOKEN, t))
            .transpose()?;
        Ok(Some(Installation {
            key,
            team_name: self.team_name,
            enterprise_name: self.enterprise_name,
            is_enterprise_install: self.is_enterprise_install != 0,
            app_id: self.app_id,
            bot_user_id: self.bot_user_id,
            bot_id: self.bot_id,
            bot_token,
            bot_scopes: self.bot_scopes,
            installer_user_id: self.installer_user_id,
            refresh_token,
            token_expires_at_ms: self.token_expires_at,
            needs_reinstall: self.needs_reinstall != 0,
            installed_at_ms: self.installed_at,
            updated_at_ms: self.updated_at,
        }))
    }

    fn key(&self) -> InstallationKey {
        InstallationKey {
            enterprise_id: self.enterprise_id.clone(),
            team_id: self.team_id.clone(),
        }
    }

    fn summary(self) -> InstallationSummary {
        InstallationSummary {
            key: self.key(),
            has_bot_token: self.bot_token.is_some(),
            rotates_tokens: self.refresh_token.is_some(),
            team_name: self.team_name,
            enterprise_name: self.enterprise_name,
            is_enterprise_install: self.is_enterprise_install != 0,
            bot_user_id: self.bot_user_id,
            bot_scopes: self.bot_scopes,
            installer_user_id: self.installer_user_id,
            token_expires_at_ms: self.token_expires_at,
            needs_reinstall: self.needs_reinstall != 0,
            installed_at_ms: self.installed_at,
            updated_at_ms: self.updated_at,
            uninstalled_at_ms: self.uninstalled_at,
        }
    }
}

fn seal(
    keyring: &Keyring,
    key: &InstallationKey,
    column: &str,
    token: &SecretString,
) -> Result<String, InstallationError> {
    keyring
        .seal(token.expose_secret(), &key.binding(column))
        .map_err(|source| InstallationError::Seal {
            key: key.clone(),
            source,
        })
}

fn open(
    keyring: &Keyring,
    key: &InstallationKey,
    column: &str,
    sealed: &str,
) -> Result<SecretString, InstallationError> {
    keyring
        .open(sealed, &key.binding(column))
        .map_err(|source| InstallationError::Seal {
            key: key.clone(),
            source,
        })
}

fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Stores an installation; a reinstall (same enterprise id and team id) replaces its
    /// tokens, scopes and installer, clears `needs_reinstall` and any uninstall, and
    /// restarts `installed_at` (so a late `tokens_revoked` for the old install can be told
    /// apart).
    pub async fn save_installation(
        &self,
        keyring: &Keyring,
        new: &NewInstallation,
        now_ms: i64,
    ) -> Result<SaveOutcome, InstallationError> {
        let key = &new.key;
        let bot_token = seal(keyring, key, BOT_TOKEN, &new.bot_token)?;
        let refresh_token = new
            .refresh_token
            .as_ref()
            .map(|t| seal(keyring, key, REFRESH_TOKEN, t))
            .transpose()?;
        let mut tx = self.begin().await?;
        let existed: i64 =
            sql("SELECT COUNT(*) FROM installations WHERE enterprise_id = $1 AND team_id = $2")
                .bind(&key.enterprise_id)
                .bind(&key.team_id)
                .scalar(&mut tx)
                .await?;
        sql(
            "INSERT INTO installations (enterprise_id, team_id, team_name, enterprise_name, \
                 is_enterprise_install, app_id, bot_user_id, bot_id, bot_token, bot_scopes, \
                 installer_user_id, refresh_token, token_expires_at, needs_reinstall, \
                 installed_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $14) \
             ON CONFLICT (enterprise_id, team_id) DO UPDATE SET \
                 team_name = COALESCE(excluded.team_name, installations.team_name), \
                 enterprise_name = COALESCE(excluded.enterprise_name, installations.enterprise_name), \
                 is_enterprise_install = excluded.is_enterprise_install, \
                 app_id = COALESCE(excluded.app_id, installations.app_id), \
                 bot_user_id = excluded.bot_user_id, \
                 bot_id = COALESCE(excluded.bot_id, installations.bot_id), \
                 bot_token = excluded.bot_token, bot_scopes = excluded.bot_scopes, \
                 installer_user_id = excluded.installer_user_id, \
                 refresh_token = excluded.refresh_token, \
                 token_expires_at = excluded.token_expires_at, needs_reinstall = 0, \
                 refresh_claim_id = NULL, refresh_claimed_until = NULL, \
                 installed_at = excluded.installed_at, updated_at = excluded.updated_at, \
                 uninstalled_at = NULL",
        )
        .bind(&key.enterprise_id)
        .bind(&key.team_id)
        .bind(&new.team_name)
        .bind(&new.enterprise_name)
        .bind(i64::from(new.is_enterprise_install))
        .bind(&new.app_id)
        .bind(&new.bot_user_id)
        .bind(&new.bot_id)
        .bind(&bot_token)
        .bind(&new.bot_scopes)
        .bind(&new.installer_user_id)
        .bind(&refresh_token)
        .bind(new.token_expires_at_ms)
        .bind(now_ms)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(if existed > 0 {
            SaveOutcome::Reinstalled
        } else {
            SaveOutcome::Installed
        })
    }

    /// The live installation serving a team, tokens opened. For a workspace of an
    /// Enterprise Grid org that installed org-wide, that is the org's row. `None` when it
    /// never installed or was removed. Pass the enterprise id whenever Slack sends one
    /// (an event's `authorizations`, a command's `enterprise_id`): a Grid workspace's
    /// installation is keyed by both.
    pub async fn find_installation(
        &self,
        keyring: &Keyring,
        enterprise_id: Option<&str>,
        team_id: &str,
    ) -> Result<Option<Installation>, InstallationError> {
        let statement = format!(
            "SELECT {COLUMNS} FROM installations WHERE enterprise_id = $1 \
                 AND (team_id = $2 OR (team_id = '' AND is_enterprise_install = 1)) \
                 AND bot_token IS NOT NULL \
             ORDER BY team_id DESC LIMIT 1"
        );
        let row: Option<InstallationRow> = sql(&statement)
            .bind(enterprise_id.unwrap_or(""))
            .bind(team_id)
            .fetch_optional(self)
            .await?;
        row.map(|row| row.open(keyring))
            .transpose()
            .map(Option::flatten)
    }

    /// The live installation of one workspace when only its team id is known (an outbox
    /// row, a digest run): a workspace-level install, in or out of Enterprise Grid. An
    /// org-wide install has no row per team, so it is not found here.
    pub async fn find_installation_by_team(
        &self,
        keyring: &Keyring,
        team_id: &str,
    ) -> Result<Option<Installation>, InstallationError> {
        let statement = format!(
            "SELECT {COLUMNS} FROM installations WHERE team_id = $1 AND team_id <> '' \
                 AND bot_token IS NOT NULL ORDER BY updated_at DESC LIMIT 1"
        );
        let row: Option<InstallationRow> =
            sql(&statement).bind(team_id).fetch_optional(self).await?;
        row.map(|row| row.open(keyring))
            .transpose()
            .map(Option::flatten)
    }

    /// Team ids of the workspace-level installations that hold a token: whom the digest
    /// scheduler and housekeeping visit. Reads across teams (documented exception: the
    /// scheduler has no team yet).
    pub async fn installed_teams(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<String> = sql("SELECT DISTINCT team_id FROM installations \
             WHERE bot_token IS NOT NULL AND team_id <> '' ORDER BY team_id")
        .scalars(self)
        .await?;
        Ok(rows)
    }

    /// Every installation, removed ones included, without tokens: for operators
    /// (`cusp installations list`). The one listing across teams besides the refresh
    /// scheduler's and key rotation's.
    pub async fn list_installations(&self) -> Result<Vec<InstallationSummary>, StoreError> {
        let statement =
            format!("SELECT {COLUMNS} FROM installations ORDER BY team_id, enterprise_id");
        let rows: Vec<InstallationRow> = sql(&statement).fetch_all(self).await?;
        Ok(rows.into_iter().map(InstallationRow::summary).collect())
    }

    /// Deletes an installation's tokens at once and records when (uninstall, revoked
    /// tokens, `cusp installations remove`). With `installed_before_ms`, only an install
    /// made at or before that time is removed: a late `tokens_revoked` must not undo a
    /// reinstall that came after it. True when tokens were deleted.
    pub async fn remove_installation(
        &self,
        key: &InstallationKey,
        installed_before_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sql(
            "UPDATE installations SET bot_token = NULL, refresh_token = NULL, \
                 refresh_claim_id = NULL, refresh_claimed_until = NULL, \
                 uninstalled_at = $3, updated_at = $3 \
             WHERE enterprise_id = $1 AND team_id = $2 AND bot_token IS NOT NULL \
                 AND ($4 IS NULL OR installed_at <= $4)",
        )
        .bind(&key.enterprise_id)
        .bind(&key.team_id)
        .bind(now_ms)
        .bind(installed_before_ms)
        .execute(self)
        .await?;
        Ok(done > 0)
    }

    /// Flags an installation whose refresh Slack refused: only a reinstall helps. Releases
    /// any refresh claim. True only the first time, so the caller logs it once.
    pub async fn mark_needs_reinstall(
        &self,
        key: &InstallationKey,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sql(
            "UPDATE installations SET needs_reinstall = 1, refresh_claim_id = NULL, \
                 refresh_claimed_until = NULL, updated_at = $3 \
             WHERE enterprise_id = $1 AND team_id = $2 AND needs_reinstall = 0",
        )
        .bind(&key.enterprise_id)
        .bind(&key.team_id)
        .bind(now_ms)
        .execute(self)
        .await?;
        Ok(done > 0)
    }

    /// Live, rotating installations whose token expires before `expiring_before_ms` and
    /// that nobody is refreshing now: what the refresh scheduler works through. Reads
    /// across teams (documented exception: the scheduler has no team yet).
    pub async fn installations_due_for_refresh(
        &self,
        expiring_before_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<InstallationKey>, StoreError> {
        let rows: Vec<(String, String)> = sql("SELECT enterprise_id, team_id FROM installations \
             WHERE bot_token IS NOT NULL AND refresh_token IS NOT NULL AND needs_reinstall = 0 \
                 AND token_expires_at IS NOT NULL AND token_expires_at < $1 \
                 AND (refresh_claimed_until IS NULL OR refresh_claimed_until < $2) \
             ORDER BY token_expires_at")
        .bind(expiring_before_ms)
        .bind(now_ms)
        .fetch_all(self)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(enterprise_id, team_id)| InstallationKey {
                enterprise_id,
                team_id,
            })
            .collect())
    }

    /// Claims the right to refresh one installation's token for `lease`, atomically: of
    /// two replicas asking at once, one gets the claim and the other `None`. A claim whose
    /// lease ran out (a crashed replica) can be taken over.
    pub async fn claim_refresh(
        &self,
        keyring: &Keyring,
        key: &InstallationKey,
        now_ms: i64,
        lease: Duration,
    ) -> Result<Option<RefreshClaim>, InstallationError> {
        self.claim_refresh_expiring(keyring, key, None, now_ms, lease)
            .await
    }

    /// [`Store::claim_refresh`], only while the token still expires before
    /// `expiring_before_ms`: a replica whose list of due tokens is stale (another one
    /// refreshed meanwhile, and released its claim) must not refresh the new token again.
    pub async fn claim_refresh_expiring(
        &self,
        keyring: &Keyring,
        key: &InstallationKey,
        expiring_before_ms: Option<i64>,
        now_ms: i64,
        lease: Duration,
    ) -> Result<Option<RefreshClaim>, InstallationError> {
        let claim_id = hex::encode(rand::random::<[u8; 16]>());
        let sealed: Option<String> = sql(
            "UPDATE installations SET refresh_claim_id = $3, refresh_claimed_until = $4 \
             WHERE enterprise_id = $1 AND team_id = $2 \
                 AND bot_token IS NOT NULL AND refresh_token IS NOT NULL AND needs_reinstall = 0 \
                 AND (refresh_claimed_until IS NULL OR refresh_claimed_until < $5) \
                 AND ($6 IS NULL OR token_expires_at < $6) \
             RETURNING refresh_token",
        )
        .bind(&key.enterprise_id)
        .bind(&key.team_id)
        .bind(&claim_id)
        .bind(now_ms.saturating_add(millis(lease)))
        .bind(now_ms)
        .bind(expiring_before_ms)
        .scalar_optional(self)
        .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let refresh_token = open(keyring, key, REFRESH_TOKEN, &sealed)?;
        Ok(Some(RefreshClaim {
            key: key.clone(),
            claim_id,
            refresh_token,
        }))
    }

    /// Stores refreshed tokens and releases the claim, only while `claim` still holds it
    /// (an expired claim taken over by another replica stores nothing). True when stored.
    pub async fn complete_refresh(
        &self,
        keyring: &Keyring,
        claim: &RefreshClaim,
        tokens: &RefreshedTokens,
        now_ms: i64,
    ) -> Result<bool, InstallationError> {
        let key = &claim.key;
        let bot_token = seal(keyring, key, BOT_TOKEN, &tokens.bot_token)?;
        let refresh_token = seal(keyring, key, REFRESH_TOKEN, &tokens.refresh_token)?;
        let done = sql(
            "UPDATE installations SET bot_token = $4, refresh_token = $5, token_expires_at = $6, \
                 refresh_claim_id = NULL, refresh_claimed_until = NULL, updated_at = $7 \
             WHERE enterprise_id = $1 AND team_id = $2 AND refresh_claim_id = $3 \
                 AND bot_token IS NOT NULL",
        )
        .bind(&key.enterprise_id)
        .bind(&key.team_id)
        .bind(&claim.claim_id)
        .bind(&bot_token)
        .bind(&refresh_token)
        .bind(tokens.token_expires_at_ms)
        .bind(now_ms)
        .execute(self)
        .await?;
        Ok(done > 0)
    }

    /// Records a freshly generated OAuth `state` (only its hash), valid for
    /// [`OAUTH_STATE_TTL`], with the `redirect_uri` the authorize URL carries. Drops
    /// states that expired more than a day ago.
    pub async fn create_oauth_state(
        &self,
        state: &str,
        redirect_uri: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sql("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(now_ms.saturating_sub(millis(OAUTH_STATE_KEEP)))
            .execute(&mut tx)
            .await?;
        sql(
            "INSERT INTO oauth_states (state_hash, redirect_uri, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(state_hash(state))
        .bind(redirect_uri)
        .bind(now_ms)
        .bind(now_ms.saturating_add(millis(OAUTH_STATE_TTL)))
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses up an OAuth `state`: one conditional UPDATE … RETURNING, so of two requests
    /// carrying the same state exactly one gets `Valid`.
    pub async fn consume_oauth_state(
        &self,
        state: &str,
        now_ms: i64,
    ) -> Result<StateCheck, StoreError> {
        let hash = state_hash(state);
        let consumed: Option<String> = sql("UPDATE oauth_states SET consumed_at = $2 \
             WHERE state_hash = $1 AND consumed_at IS NULL AND expires_at > $2 \
             RETURNING redirect_uri")
        .bind(&hash)
        .bind(now_ms)
        .scalar_optional(self)
        .await?;
        if let Some(redirect_uri) = consumed {
            return Ok(StateCheck::Valid { redirect_uri });
        }
        let seen: Option<(Option<i64>, i64)> =
            sql("SELECT consumed_at, expires_at FROM oauth_states WHERE state_hash = $1")
                .bind(&hash)
                .fetch_optional(self)
                .await?;
        Ok(match seen {
            None => StateCheck::Unknown,
            Some((Some(_), _)) => StateCheck::Reused,
            Some((None, _)) => StateCheck::Expired,
        })
    }

    /// `cusp rotate-key`: re-seals every installation's tokens under the keyring's first
    /// key. Opens everything first and writes nothing if any row cannot be opened; then
    /// rewrites, in one transaction, each row that still holds what was read (a token
    /// refreshed meanwhile is already sealed under the first key). Reads across teams
    /// (documented exception: it is the operator's tool).
    pub async fn reseal_installations(
        &self,
        keyring: &Keyring,
        now_ms: i64,
    ) -> Result<ResealCounts, InstallationError> {
        let rows: Vec<(String, String, Option<String>, Option<String>)> = sql(
            "SELECT enterprise_id, team_id, bot_token, refresh_token FROM installations \
                 ORDER BY enterprise_id, team_id",
        )
        .fetch_all(self)
        .await?;
        let mut counts = ResealCounts::default();
        let mut updates = Vec::new();
        for (enterprise_id, team_id, bot, refresh) in rows {
            let key = InstallationKey {
                enterprise_id,
                team_id,
            };
            let stale = |s: &Option<String>| s.as_deref().is_some_and(|t| !keyring.is_current(t));
            if !stale(&bot) && !stale(&refresh) {
                counts.unchanged += 1;
                continue;
            }
            let reseal = |column: &str, sealed: &Option<String>| {
                sealed
                    .as_deref()
                    .map(|t| {
                        let token = open(keyring, &key, column, t)?;
                        seal(keyring, &key, column, &token)
                    })
                    .transpose()
            };
            let new_bot = reseal(BOT_TOKEN, &bot)?;
            let new_refresh = reseal(REFRESH_TOKEN, &refresh)?;
            updates.push((key, bot, refresh, new_bot, new_refresh));
        }
        let mut tx = self.begin().await?;
        for (key, old_bot, old_refresh, new_bot, new_refresh) in &updates {
            // `IS NOT DISTINCT FROM` is PostgreSQL's null-safe `=`; SQLite spells it
            // `IS`, and accepts this spelling too (3.39+).
            let done = sql(
                "UPDATE installations SET bot_token = $5, refresh_token = $6, updated_at = $7 \
                 WHERE enterprise_id = $1 AND team_id = $2 \
                     AND bot_token IS NOT DISTINCT FROM $3 \
                     AND refresh_token IS NOT DISTINCT FROM $4",
            )
            .bind(&key.enterprise_id)
            .bind(&key.team_id)
            .bind(old_bot)
            .bind(old_refresh)
            .bind(new_bot)
            .bind(new_refresh)
            .bind(now_ms)
            .execute(&mut tx)
            .await?;
            if done > 0 {
                counts.resealed += 1;
            } else {
                counts.unchanged += 1;
            }
        }
        tx.commit().await?;
        Ok(counts)
    }
}
