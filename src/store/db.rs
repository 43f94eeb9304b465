//! The one place that knows there are two backends.
//!
//! Every query in `store/` is written once, as a [`Sql`] statement with `$1` placeholders
//! (which SQLite and PostgreSQL both read) and bound [`Arg`]s, and runs on an [`Exec`]:
//! the pool, or an open [`Tx`]. Only this file matches on the backend, so the rest of the
//! store reads like plain sqlx code:
//!
//! ```ignore
//! let n: i64 = sql("SELECT COUNT(*) FROM outbox WHERE team_id = $1")
//!     .bind(team_id)
//!     .scalar(&self.pool)
//!     .await?;
//! ```
//!
//! Why not sqlx's own choices (docs/architecture.md, "One dispatch point"):
//! - Generic functions over `DB: Database` need every bound restated on every function
//!   (`for<'q> i64: Encode<'q, DB>`, `for<'c> &'c mut DB::Connection: Executor<'c>`, …):
//!   Rust does not imply them from a helper trait, and the pool still has to be matched
//!   at each call.
//! - `sqlx::Any` converts every argument and row at run time, reports a type it cannot
//!   carry only when the query runs, and cannot take SQLite's connect options.
//!
//! Here the types stay checked at compile time: a bound value must convert into an
//! [`Arg`] (integer, real or text: what the schema stores), and a row type must decode
//! from both backends' rows ([`FromRows`]). Each statement goes straight to its driver,
//! so prepared statements are cached per connection as sqlx always does.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, FromRow, PgPool, Postgres, QueryBuilder, Sqlite, SqlitePool};

use super::{Store, StoreError};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long SQLite waits for a competing writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection before the store reports itself unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Which database a URL named; for the few statements whose SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// What a queue claim's sub-select appends: PostgreSQL lets replicas skip rows
    /// another one is claiming; SQLite has one writer at a time and no such clause.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }

    /// A statement that makes transactions about the same `$1` (any text) take turns: it
    /// waits for the other one to commit and holds the turn until this one ends.
    /// PostgreSQL: an advisory lock in cusp's own key space (two-key form, first key
    /// "cusp" in ASCII; a hash collision only makes two unrelated transactions wait for
    /// each other). SQLite: nothing, since a transaction holds the database's one write
    /// lock from its first write until it ends, so writing transactions already take turns.
    pub(crate) fn turn_lock(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("SELECT pg_advisory_xact_lock(1668641648, hashtext($1))"),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Pool {
    /// `sqlite:…` (WAL; the file is created when `create`) or `postgres://…`.
    pub(crate) async fn connect(url: &str, create: bool) -> Result<Pool, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let missing = !in_memory && !options.get_filename().exists();
            if missing && !create {
                return Err(StoreError::MissingDatabase(
                    options.get_filename().display().to_string(),
                ));
            }
            if missing {
                // Loud on purpose: on a server that ran before, a new empty file means
                // a mistyped DATABASE_URL or a deleted database (settings, pending
                // nudges and history are not in it).
                tracing::warn!(
                    path = %options.get_filename().display(),
                    "no database file here: creating a new, empty SQLite database; \
                     if cusp ran before, check DATABASE_URL"
                );
            }
            let options = options
                .create_if_missing(create)
                .journal_mode(SqliteJournalMode::Wal)
                // With WAL, NORMAL syncs at checkpoints instead of at every commit: a
                // process crash loses nothing, a power loss may roll back the last
                // commits (README "Performance" says so).
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = SqlitePoolOptions::new()
                .acquire_timeout(ACQUIRE_TIMEOUT)
                // An in-memory database lives as long as its one connection.
                .max_connections(if in_memory { 1 } else { 8 })
                .min_connections(if in_memory { 1 } else { 0 })
                .idle_timeout((!in_memory).then_some(Duration::from_secs(600)))
                .max_lifetime((!in_memory).then_some(Duration::from_secs(1800)))
                .connect_with(options)
                .await?;
            Ok(Pool::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .max_connections(10)
                .connect_with(options)
                .await?;
            Ok(Pool::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl(super::redact_url(url)))
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations (PostgreSQL takes an advisory lock, so replicas
    /// starting together are safe).
    pub(crate) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Pool::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await,
            Pool::Postgres(pool) => POSTGRES_MIGRATOR.run(pool).await,
        }
    }

    pub(crate) async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`): one that
    /// reads first and writes later would otherwise fail with `SQLITE_BUSY` instead of
    /// waiting, when another connection wrote in between. PostgreSQL's `BEGIN` as usual.
    pub(crate) async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Pool::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// The SQLite file a store opened, as it was then: if the path later names no file or
/// another one (deleted or replaced while cusp runs), connections still open keep writing
/// into the old, unlinked file, and new ones would start an empty database.
#[derive(Debug, Clone)]
pub(crate) struct SqliteFile {
    path: std::path::PathBuf,
    identity: (u64, u64),
}

impl SqliteFile {
    /// The file of a `sqlite:` URL that names one (not `:memory:`), once it exists.
    pub(crate) fn of(url: &str) -> Option<SqliteFile> {
        if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
            return None;
        }
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename().to_path_buf();
        let identity = file_identity(&path)?;
        Some(SqliteFile { path, identity })
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Whether the path still names the file that was opened.
    pub(crate) fn still_there(&self) -> bool {
        file_identity(&self.path) == Some(self.identity)
    }
}

/// Device and inode: what tells a replaced file from the original.
#[cfg(unix)]
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Elsewhere only existence is checked.
#[cfg(not(unix))]
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|_| (0, 0))
}

/// An open transaction: statements run on it with `.execute(&mut tx)` and friends, and
/// it is rolled back when dropped without [`Tx::commit`] (an early `?` return).
pub(crate) enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// Where a statement runs: on the pool (it commits on its own) or inside a transaction.
/// Statements take anything that converts into one: a `&Store` (`self`) or a `&mut Tx`.
pub(crate) enum Exec<'c> {
    Pool(&'c Pool),
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl<'c> From<&'c Store> for Exec<'c> {
    fn from(store: &'c Store) -> Exec<'c> {
        Exec::Pool(&store.pool)
    }
}

impl<'c> From<&'c mut Tx> for Exec<'c> {
    fn from(tx: &'c mut Tx) -> Exec<'c> {
        match tx {
            Tx::Sqlite(tx) => Exec::Sqlite(tx),
            Tx::Postgres(tx) => Exec::Postgres(tx),
        }
    }
}

/// A value bound to a placeholder. Every column cusp stores is one of these three
/// (times are Unix milliseconds, flags 0/1), and each maps to one type on both backends
/// (`BIGINT`, `DOUBLE PRECISION`, `TEXT`), so PostgreSQL's strict parameter typing sees
/// the same types it always did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg<'q> {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<Cow<'q, str>>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

/// Flags are stored as 0/1 integers on both backends.
impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}

impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(Some(v))
    }
}

impl<'q> From<&'q str> for Arg<'q> {
    fn from(v: &'q str) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'q> From<&'q String> for Arg<'q> {
    fn from(v: &'q String) -> Self {
        Arg::Text(Some(Cow::Borrowed(v)))
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Some(Cow::Owned(v)))
    }
}

impl<'q> From<Option<&'q str>> for Arg<'q> {
    fn from(v: Option<&'q str>) -> Self {
        Arg::Text(v.map(Cow::Borrowed))
    }
}

impl<'q> From<&'q Option<String>> for Arg<'q> {
    fn from(v: &'q Option<String>) -> Self {
        Arg::Text(v.as_deref().map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v.map(Cow::Owned))
    }
}

/// Binds `args` in order into a backend's argument buffer.
fn encode<'q, A>(args: Vec<Arg<'q>>) -> Result<A, sqlx::Error>
where
    A: Arguments<'q>,
    Option<i64>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    Option<f64>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
    Option<Cow<'q, str>>: sqlx::Encode<'q, A::Database> + sqlx::Type<A::Database>,
{
    let mut out = A::default();
    for arg in args {
        match arg {
            Arg::Int(v) => out.add(v),
            Arg::Real(v) => out.add(v),
            Arg::Text(v) => out.add(v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

fn sqlite_args(args: Vec<Arg<'_>>) -> Result<SqliteArguments<'_>, sqlx::Error> {
    encode(args)
}

fn pg_args(args: Vec<Arg<'_>>) -> Result<PgArguments, sqlx::Error> {
    encode(args)
}

/// A row type both backends can decode: `#[derive(sqlx::FromRow)]` structs and tuples of
/// `i64`, `f64`, `String` and their `Option`s.
pub(crate) trait FromRows:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> FromRows for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// One SQL statement with `$1`-style placeholders and its bound arguments.
#[must_use = "a statement does nothing until it is executed or fetched"]
pub(crate) struct Sql<'q> {
    text: &'q str,
    args: Vec<Arg<'q>>,
}

/// Starts a statement; `.bind(…)` its arguments in placeholder order.
pub(crate) fn sql(text: &str) -> Sql<'_> {
    Sql {
        text,
        args: Vec::with_capacity(8),
    }
}

impl<'q> Sql<'q> {
    pub(crate) fn bind(mut self, value: impl Into<Arg<'q>>) -> Sql<'q> {
        self.args.push(value.into());
        self
    }

    /// Runs the statement; returns how many rows it changed.
    pub(crate) async fn execute<'c>(self, exec: impl Into<Exec<'c>>) -> Result<u64, sqlx::Error> {
        let Sql { text, args } = self;
        Ok(match exec.into() {
            Exec::Pool(Pool::Sqlite(pool)) => sqlx::query_with(text, sqlite_args(args)?)
                .execute(pool)
                .await?
                .rows_affected(),
            Exec::Pool(Pool::Postgres(pool)) => sqlx::query_with(text, pg_args(args)?)
                .execute(pool)
                .await?
                .rows_affected(),
            Exec::Sqlite(conn) => sqlx::query_with(text, sqlite_args(args)?)
                .execute(conn)
                .await?
                .rows_affected(),
            Exec::Postgres(conn) => sqlx::query_with(text, pg_args(args)?)
                .execute(conn)
                .await?
                .rows_affected(),
        })
    }

    pub(crate) async fn fetch_optional<'c, O: FromRows>(
        self,
        exec: impl Into<Exec<'c>>,
    ) -> Result<Option<O>, sqlx::Error> {
        let Sql { text, args } = self;
        match exec.into() {
            Exec::Pool(Pool::Sqlite(pool)) => {
                sqlx::query_as_with(text, sqlite_args(args)?)
                    .fetch_optional(pool)
                    .await
            }
            Exec::Pool(Pool::Postgres(pool)) => {
                sqlx::query_as_with(text, pg_args(args)?)
                    .fetch_optional(pool)
                    .await
            }
            Exec::Sqlite(conn) => {
                sqlx::query_as_with(text, sqlite_args(args)?)
                    .fetch_optional(conn)
                    .await
            }
            Exec::Postgres(conn) => {
                sqlx::query_as_with(text, pg_args(args)?)
                    .fetch_optional(conn)
                    .await
            }
        }
    }

    pub(crate) async fn fetch_one<'c, O: FromRows>(
        self,
        exec: impl Into<Exec<'c>>,
    ) -> Result<O, sqlx::Error> {
        self.fetch_optional(exec)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    pub(crate) async fn fetch_all<'c, O: FromRows>(
        self,
        exec: impl Into<Exec<'c>>,
    ) -> Result<Vec<O>, sqlx::Error> {
        let Sql { text, args } = self;
        match exec.into() {
            Exec::Pool(Pool::Sqlite(pool)) => {
                sqlx::query_as_with(text, sqlite_args(args)?)
                    .fetch_all(pool)
                    .await
            }
            Exec::Pool(Pool::Postgres(pool)) => {
                sqlx::query_as_with(text, pg_args(args)?)
                    .fetch_all(pool)
                    .await
            }
            Exec::Sqlite(conn) => {
                sqlx::query_as_with(text, sqlite_args(args)?)
                    .fetch_all(conn)
                    .await
            }
            Exec::Postgres(conn) => {
                sqlx::query_as_with(text, pg_args(args)?)
                    .fetch_all(conn)
                    .await
            }
        }
    }

    /// The single column of the one row the statement returns (`COUNT(*)`, `RETURNING id`).
    pub(crate) async fn scalar<'c, T>(self, exec: impl Into<Exec<'c>>) -> Result<T, sqlx::Error>
    where
        (T,): FromRows,
    {
        Ok(self.fetch_one::<(T,)>(exec).await?.0)
    }

    /// Like [`Sql::scalar`], `None` when there is no row.
    pub(crate) async fn scalar_optional<'c, T>(
        self,
        exec: impl Into<Exec<'c>>,
    ) -> Result<Option<T>, sqlx::Error>
    where
        (T,): FromRows,
    {
        Ok(self.fetch_optional::<(T,)>(exec).await?.map(|(v,)| v))
    }

    /// The single column of every row.
    pub(crate) async fn scalars<'c, T>(
        self,
        exec: impl Into<Exec<'c>>,
    ) -> Result<Vec<T>, sqlx::Error>
    where
        (T,): FromRows,
    {
        Ok(self
            .fetch_all::<(T,)>(exec)
            .await?
            .into_iter()
            .map(|(v,)| v)
            .collect())
    }

    /// Streams the rows into `each`, one at a time, so memory stays flat however many
    /// rows there are; stops at the first error `each` returns.
    pub(crate) async fn for_each<'c, O, E>(
        self,
        exec: impl Into<Exec<'c>>,
        mut each: impl FnMut(O) -> Result<(), E>,
    ) -> Result<(), E>
    where
        O: FromRows,
        E: From<StoreError>,
    {
        let Sql { text, args } = self;
        let failed = |e: sqlx::Error| E::from(StoreError::from(e));
        match exec.into() {
            Exec::Pool(Pool::Sqlite(pool)) => {
                let mut rows =
                    sqlx::query_as_with(text, sqlite_args(args).map_err(failed)?).fetch(pool);
                while let Some(row) = rows.try_next().await.map_err(failed)? {
                    each(row)?;
                }
            }
            Exec::Pool(Pool::Postgres(pool)) => {
                let mut rows =
                    sqlx::query_as_with(text, pg_args(args).map_err(failed)?).fetch(pool);
                while let Some(row) = rows.try_next().await.map_err(failed)? {
                    each(row)?;
                }
            }
            Exec::Sqlite(conn) => {
                let mut rows =
                    sqlx::query_as_with(text, sqlite_args(args).map_err(failed)?).fetch(conn);
                while let Some(row) = rows.try_next().await.map_err(failed)? {
                    each(row)?;
                }
            }
            Exec::Postgres(conn) => {
                let mut rows =
                    sqlx::query_as_with(text, pg_args(args).map_err(failed)?).fetch(conn);
                while let Some(row) = rows.try_next().await.map_err(failed)? {
                    each(row)?;
                }
            }
        }
        Ok(())
    }
}

/// `{head} VALUES (…), (…) {tail}`: many rows in one statement, built by
/// `sqlx::QueryBuilder` (which writes the placeholders for the backend). Callers keep
/// rows × columns under SQLite's 32,766 bound variables.
#[must_use = "an insert does nothing until it is executed or fetched"]
pub(crate) struct Values<'q> {
    head: &'q str,
    rows: Vec<Vec<Arg<'q>>>,
    tail: &'q str,
}

/// Starts a multi-row insert: `head` names the table and columns, `tail` follows the
/// values (`ON CONFLICT …`, `RETURNING …`).
pub(crate) fn values<'q>(head: &'q str, tail: &'q str) -> Values<'q> {
    Values {
        head,
        rows: Vec::new(),
        tail,
    }
}

impl<'q> Values<'q> {
    /// Adds one row, its values in column order.
    pub(crate) fn row(&mut self, row: Vec<Arg<'q>>) {
        self.rows.push(row);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn builder<DB>(self) -> QueryBuilder<'q, DB>
    where
        DB: sqlx::Database,
        Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<f64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<Cow<'q, str>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let mut builder = QueryBuilder::new(self.head);
        builder.push(" ");
        builder.push_values(self.rows, |mut columns, row| {
            for arg in row {
                match arg {
                    Arg::Int(v) => columns.push_bind(v),
                    Arg::Real(v) => columns.push_bind(v),
                    Arg::Text(v) => columns.push_bind(v),
                };
            }
        });
        builder.push(" ").push(self.tail);
        builder
    }

    /// Runs the insert; returns how many rows it stored.
    pub(crate) async fn execute<'c>(self, exec: impl Into<Exec<'c>>) -> Result<u64, sqlx::Error> {
        if self.is_empty() {
            return Ok(0);
        }
        Ok(match exec.into() {
            Exec::Pool(Pool::Sqlite(pool)) => {
                let mut builder = self.builder::<Sqlite>();
                builder.build().execute(pool).await?.rows_affected()
            }
            Exec::Pool(Pool::Postgres(pool)) => {
                let mut builder = self.builder::<Postgres>();
                builder.build().execute(pool).await?.rows_affected()
            }
            Exec::Sqlite(conn) => {
                let mut builder = self.builder::<Sqlite>();
                builder.build().execute(conn).await?.rows_affected()
            }
            Exec::Postgres(conn) => {
                let mut builder = self.builder::<Postgres>();
                builder.build().execute(conn).await?.rows_affected()
            }
        })
    }

    /// Runs an insert whose `tail` has a `RETURNING` clause; returns those rows.
    #[cfg(feature = "test-support")]
    pub(crate) async fn fetch_all<'c, O: FromRows>(
        self,
        exec: impl Into<Exec<'c>>,
    ) -> Result<Vec<O>, sqlx::Error> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        match exec.into() {
            Exec::Pool(Pool::Sqlite(pool)) => {
                let mut builder = self.builder::<Sqlite>();
                builder.build_query_as().fetch_all(pool).await
            }
            Exec::Pool(Pool::Postgres(pool)) => {
                let mut builder = self.builder::<Postgres>();
                builder.build_query_as().fetch_all(pool).await
            }
            Exec::Sqlite(conn) => {
                let mut builder = self.builder::<Sqlite>();
                builder.build_query_as().fetch_all(conn).await
            }
            Exec::Postgres(conn) => {
                let mut builder = self.builder::<Postgres>();
                builder.build_query_as().fetch_all(conn).await
            }
        }
    }
}
