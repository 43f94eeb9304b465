//! All SQL lives here. One `Store` over either backend: the queries are written once
//! (`$1` placeholders work on SQLite and PostgreSQL alike) and run against whichever
//! pool the URL chose; the few dialect differences are explicit `match`es.
//! `tests/it/store.rs` runs the same scenarios on both backends.

pub(crate) mod corrections;
pub(crate) mod digest;
mod inbox;
pub mod installations;
pub(crate) mod lifecycle;
pub(crate) mod nudges;
pub(crate) mod observations;
pub(crate) mod outbox;
pub mod sealed;
pub mod uninstall;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use corrections::{CorrectionRow, NewCorrection, ReadingLabels};
pub use digest::{ClassCounts, DigestRunRow, DigestSettingsRow, RunClaim, SpotlightRow};
pub use inbox::{INBOX_MAX_ATTEMPTS, InboxItem, InboxState, NewInboxItem};
pub use installations::{
    Installation, InstallationError, InstallationKey, InstallationSummary, NewInstallation,
    RefreshClaim, RefreshedTokens, ResealCounts, SaveOutcome, StateCheck,
};
pub use lifecycle::{ForgetCounts, PurgeCounts};
pub use nudges::{
    MUTED_FOREVER, NewPrompt, NudgeHistory, NudgeSubject, Prompt, TeamSettings, UserPrefs,
};
pub use observations::{ExportFilter, ExportRow, NewObservation, ObservationSource};
pub use outbox::{NewOutboxMessage, OutboxItem, OutboxStatus};
pub use sealed::{KeyError, Keyring, SealError};

/// What handling one event or command stores, all in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    pub observation: Option<NewObservation>,
    /// A prompt (nudge) this work sends; unique per thread.
    pub prompt: Option<NewPrompt>,
    pub outbox: Vec<NewOutboxMessage>,
}

/// Applies `Effects` inside an open transaction `$tx`; evaluates to an [`Applied`]
/// whose `fresh` is `true` when the observation was new (or there was none). A repeated observation, or a prompt for a
/// thread that already has one, skips the outbox messages, so a duplicate never causes
/// a second reply.
macro_rules! apply_effects {
    ($tx:ident, $team_id:expr, $effects:expr, $now_ms:expr) => {{
        let effects: &$crate::store::Effects = $effects;
        let fresh = match &effects.observation {
            Some(obs) => {
                $crate::store::observations::insert_observation!($tx, $team_id, obs, $now_ms)
                    .is_some()
            }
            None => true,
        };
        let prompt_fresh = match (&effects.prompt, fresh) {
            (Some(prompt), true) => {
                $crate::store::nudges::insert_prompt!($tx, $team_id, prompt, $now_ms)
            }
            _ => true,
        };
        let enqueued = if fresh && prompt_fresh {
            $crate::store::outbox::insert_outbox!($tx, $team_id, &effects.outbox, $now_ms)
        } else {
            Vec::new()
        };
        $crate::store::Applied {
            fresh,
            observation_logged: fresh && effects.observation.is_some(),
            enqueued,
        }
    }};
}
pub(crate) use apply_effects;

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
    fn count(&self, effects: &Effects) {
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
fn count_enqueued(kinds: &[&'static str]) {
    for kind in kinds {
        crate::telemetry::metrics::outbox_enqueued(kind);
    }
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long SQLite waits for a competing writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (expected sqlite:… or postgres://…): {0}")]
    UnsupportedUrl(String),
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(
        "the database file {0} does not exist. Point DATABASE_URL (or --database-url) at the file \
         `cusp serve` or `cusp demo` uses, e.g. DATABASE_URL=sqlite://cusp.db"
    )]
    MissingDatabase(String),
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same query-building expression against whichever pool is in use.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs a block inside one transaction on whichever backend is in use.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::store::Pool::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}
pub(crate) use in_transaction;

/// The database, whichever backend the URL names.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
}

impl std::fmt::Debug for Store {
    // The URL may carry a password; show only the backend.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

impl Store {
    /// Connects to `sqlite:…` (the file is created if missing, WAL) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, true).await
    }

    /// Like [`Store::connect`], but a SQLite file that does not exist is an error instead of
    /// a new empty database: for commands that only read (`export`, `digest preview`).
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, false).await
    }

    async fn connect_with(url: &str, create: bool) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            if !create && !in_memory && !options.get_filename().exists() {
                return Err(StoreError::MissingDatabase(
                    options.get_filename().display().to_string(),
                ));
            }
            let options = options
                .create_if_missing(create)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = SqlitePoolOptions::new()
                .acquire_timeout(ACQUIRE_TIMEOUT)
                // An in-memory database lives as long as its one connection.
                .max_connections(if in_memory { 1 } else { 8 })
                .min_connections(if in_memory { 1 } else { 0 })
                .idle_timeout(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(600))
                })
                .max_lifetime(if in_memory {
                    None
                } else {
                    Some(Duration::from_secs(1800))
                })
                .connect_with(options)
                .await?;
            Ok(Store {
                pool: Pool::Sqlite(pool),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .max_connections(10)
                .connect_with(options)
                .await?;
            Ok(Store {
                pool: Pool::Postgres(pool),
            })
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Applies pending migrations (PostgreSQL takes an advisory lock, so replicas
    /// starting together are safe).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Readiness: can we run a trivial query right now?
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for error messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_the_password_of_a_database_url() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/cusp"),
            "postgres://app:***@db:5432/cusp"
        );
        assert_eq!(redact_url("sqlite://cusp.db"), "sqlite://cusp.db");
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
    }
}
