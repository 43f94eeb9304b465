//! All SQL lives here. One `Store` over either backend: the queries are written once
//! (`$1` placeholders work on SQLite and PostgreSQL alike) and run on whichever pool the
//! URL chose; `db.rs` is the one place that matches on the backend, and the few dialect
//! differences are explicit there. `tests/it/store.rs` runs the same scenarios on both
//! backends.

mod bulk;
pub(crate) mod corrections;
mod db;
pub(crate) mod digest;
mod effects;
mod inbox;
pub mod installations;
pub(crate) mod lifecycle;
pub(crate) mod nudges;
pub(crate) mod observations;
pub(crate) mod outbox;
mod question_cache;
pub mod sealed;
#[cfg(feature = "test-support")]
mod test_support;
pub mod uninstall;
mod writer;

use db::{Pool, SqliteFile, Tx, sql};
use question_cache::QuestionCache;
use writer::Writer;
pub(crate) use writer::{Write, Written};

pub use corrections::{CorrectionRow, NewCorrection, ReadingLabels};
pub use db::{
    DEFAULT_POSTGRES_CONNECTIONS, DEFAULT_SQLITE_CACHE_KIB, DEFAULT_SQLITE_CONNECTIONS, PoolLimits,
};
pub use digest::{ClassCounts, DigestSettingsRow, RunClaim, SpotlightRow};
pub use effects::{Applied, Effects};
pub use inbox::{HandledItem, INBOX_MAX_ATTEMPTS, InboxItem, InboxState, NewInboxItem};
pub use installations::{
    Installation, InstallationError, InstallationKey, InstallationSummary, NewInstallation,
    RefreshClaim, RefreshedTokens, ResealCounts, SaveOutcome, StateCheck,
};
pub use lifecycle::{ForgetCounts, PurgeCounts};
pub use nudges::{
    MUTED_FOREVER, MessageContext, NewPrompt, NewReflection, NudgeHistory, NudgeLimits,
    NudgeSubject, Prompt, TeamSettings, UserPrefs,
};
pub use observations::{ExportFilter, ExportRow, NewObservation, ObservationSource};
pub use outbox::{NewOutboxMessage, OutboxItem};
pub use sealed::{KeyError, Keyring, SealError};
#[cfg(feature = "test-support")]
pub use test_support::{DigestRunRow, OutboxStatus};

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
    #[error("the database writer has stopped (the server is shutting down)")]
    WriterStopped,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error(
        "the database file {0} was deleted or replaced while cusp was running: writes would be lost"
    )]
    FileGone(String),
    #[error(
        "the database file {0} does not exist. Point DATABASE_URL (or --database-url) at the file \
         `cusp serve` or `cusp demo` uses, e.g. DATABASE_URL=sqlite://cusp.db"
    )]
    MissingDatabase(String),
}

impl StoreError {
    /// Why the database refused a write, in a few fixed words (for `/readyz`; the
    /// driver's own message may name hosts or paths).
    pub fn write_refusal(&self) -> &'static str {
        let db = match self {
            StoreError::Backend(sqlx::Error::Database(db)) => db,
            StoreError::FileGone(_) => return "its file was deleted or replaced",
            _ => return "the write failed",
        };
        let code = db.code().unwrap_or_default();
        if code.len() == 5 {
            // A PostgreSQL SQLSTATE: 25006 is read_only_sql_transaction.
            return if code == "25006" {
                "read-only"
            } else {
                "the write failed"
            };
        }
        // A SQLite (extended) result code; its low byte is the primary code.
        match code.parse::<i64>().map(|c| c & 0xff) {
            Ok(8) => "read-only",
            Ok(5 | 6) => "locked",
            _ => "the write failed",
        }
    }
}

/// The database, whichever backend the URL names.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// SQLite: the file opened at connect, checked by [`Store::probe_write`].
    file: Option<SqliteFile>,
    /// The group-commit writer (`writer.rs`) the request paths' writes go through.
    writer: Writer,
    /// What question selection reads on every reflection (`question_cache.rs`).
    questions: std::sync::Arc<QuestionCache>,
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
        Store::connect_with(url, true, PoolLimits::default()).await
    }

    /// [`Store::connect`] within `limits` (`cusp serve`'s configuration).
    pub async fn connect_limited(url: &str, limits: PoolLimits) -> Result<Store, StoreError> {
        Store::connect_with(url, true, limits).await
    }

    /// Like [`Store::connect`], but a SQLite file that does not exist is an error instead of
    /// a new empty database: for commands that only read (`export`, `digest preview`).
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, false, PoolLimits::default()).await
    }

    async fn connect_with(
        url: &str,
        create: bool,
        limits: PoolLimits,
    ) -> Result<Store, StoreError> {
        let pool = Pool::connect(url, create, limits).await?;
        Ok(Store {
            writer: Writer::spawn(pool.clone()),
            pool,
            file: SqliteFile::of(url),
            questions: std::sync::Arc::default(),
        })
    }

    pub fn backend(&self) -> &'static str {
        self.pool.backend().name()
    }

    /// Applies pending migrations (PostgreSQL takes an advisory lock, so replicas
    /// starting together are safe).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Ok(self.pool.migrate().await?)
    }

    /// Readiness: can we run a trivial query right now?
    pub async fn ping(&self) -> Result<(), StoreError> {
        sql("SELECT 1").execute(self).await?;
        Ok(())
    }

    /// Readiness of writes: a write statement that changes no row. It still needs what
    /// every write needs, so it fails where they would: SQLite's write lock (held by
    /// another process, it waits like any write) and a file SQLite could only open
    /// read-only; PostgreSQL refuses it in a read-only session (a standby after a
    /// failover, `default_transaction_read_only`). It stores nothing and names no team.
    /// A SQLite file deleted or replaced since it was opened fails too: the open
    /// connections would go on writing into the unlinked file, which nothing reads again.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        if let Some(file) = self.file.as_ref().filter(|f| !f.still_there()) {
            return Err(StoreError::FileGone(file.path().display().to_string()));
        }
        sql("UPDATE team_settings SET updated_at = updated_at WHERE 1 = 0")
            .execute(self)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await
    }

    /// Opens a transaction; statements take it as `&mut *tx`, and dropping it without
    /// `commit` rolls it back.
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin().await?)
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::{Pool, PoolLimits, Store, redact_url, sql};

    #[tokio::test]
    async fn sqlite_connections_get_the_configured_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cusp.db").display());
        let limits = PoolLimits {
            max_connections: Some(2),
            sqlite_cache_kib: 512,
        };
        let store = Store::connect_limited(&url, limits).await.unwrap();
        // Negative: KiB, as cusp sets it; SQLite's own default would read -2000.
        let cache: i64 = sql("PRAGMA cache_size").scalar(&store).await.unwrap();
        assert_eq!(cache, -512);
        let Pool::Sqlite(pool) = &store.pool else {
            panic!("a sqlite URL opened another backend");
        };
        assert_eq!(pool.options().get_max_connections(), 2);
    }

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
