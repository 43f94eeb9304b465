//! The `cusp` command line: each subcommand calls one function.

mod installations;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::bot::export::{ExportFormat, export, parse_date_bound};
use crate::config::{DatabaseArgs, EngineArgs, ServeArgs};
use crate::store::{ExportFilter, Store};
use crate::telemetry::LogFormat;

#[derive(Parser)]
#[command(
    name = "cusp",
    version,
    about = "A Slack coach for customer-centric selling"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        env = "CUSP_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Subcommand)]
pub enum CliCommand {
    /// Run the Slack app: HTTP endpoints, inbox and outbox workers.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Analyse a deal update: deal or not, themes with their evidence, class, score, questions.
    Reflect {
        /// The text to analyse; read from stdin when absent.
        text: Option<String>,
        /// Print one JSON object.
        #[arg(long, conflicts_with = "jsonl")]
        json: bool,
        /// Read JSON Lines (objects with a `text` field) from stdin; print one object per line.
        #[arg(long)]
        jsonl: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Measure the engine on a labelled JSON Lines file.
    Eval {
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// The weekly digest: preview it, or post it now through the outbox.
    Digest {
        #[command(subcommand)]
        action: DigestAction,
    },
    /// Stream observations with their themes to stdout.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Only this Slack team (default: every team, one after another).
        #[arg(long)]
        team: Option<String>,
        /// From this day (YYYY-MM-DD, UTC) or RFC 3339 time, inclusive.
        #[arg(long)]
        since: Option<String>,
        /// Up to this day (inclusive) or RFC 3339 time (exclusive).
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Workspaces installed with OAuth: list them, or remove one's tokens.
    Installations {
        #[command(subcommand)]
        action: installations::InstallationsAction,
    },
    /// Re-encrypt every stored Slack token with the first key of CUSP_ENCRYPTION_KEY.
    RotateKey(installations::RotateKeyArgs),
}

#[derive(Subcommand)]
pub enum DigestAction {
    /// Print the digest: plain text, or the Block Kit JSON with --json.
    Preview {
        /// The Slack team id.
        #[arg(long)]
        team: String,
        /// The ISO week reported on, e.g. 2026-W47 (default: the week in progress).
        #[arg(long, value_parser = parse_week)]
        week: Option<crate::bot::digest::IsoWeek>,
        /// Print `{"text", "blocks"}` as Slack receives them.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Queue the digest in the outbox now; the running server delivers it.
    Send {
        /// The Slack team id.
        #[arg(long)]
        team: String,
        /// The ISO week reported on, e.g. 2026-W47 (default: the last full week).
        #[arg(long, value_parser = parse_week)]
        week: Option<crate::bot::digest::IsoWeek>,
        /// Send even if this week's digest was already posted.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn parse_week(s: &str) -> Result<crate::bot::digest::IsoWeek, String> {
    s.parse()
        .map_err(|e: crate::bot::digest::WeekError| e.to_string())
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        CliCommand::Serve(args) => {
            let config = args.validate()?;
            let engine = args.engine.load()?;
            tracing::debug!(?config, "configuration");
            crate::app::serve(config, engine).await?;
        }
        CliCommand::Migrate(db) => {
            let store = connect(&db).await?;
            eprintln!("migrations applied ({})", store.backend());
        }
        CliCommand::Reflect {
            text,
            json,
            jsonl,
            engine,
        } => {
            let engine = engine.load()?;
            let mode = match (json, jsonl) {
                (_, true) => crate::reflect::ReflectMode::Jsonl,
                (true, false) => crate::reflect::ReflectMode::Json,
                (false, false) => crate::reflect::ReflectMode::Text,
            };
            let stdin = std::io::stdin();
            let mut input: Box<dyn BufRead> = Box::new(stdin.lock());
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            crate::reflect::run(&engine, text, mode, &mut input, &mut out)?;
            out.flush()?;
        }
        CliCommand::Eval { file, json, engine } => {
            let engine = engine.load()?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            crate::eval::run(&engine, &file, json, &mut out)?;
            out.flush()?;
        }
        CliCommand::Digest { action } => return run_digest(action).await,
        CliCommand::Installations { action } => return installations::run(action).await,
        CliCommand::RotateKey(args) => return installations::rotate_key(args).await,
        CliCommand::Export {
            format,
            team,
            since,
            until,
            database,
        } => {
            let filter = ExportFilter {
                since_ms: since
                    .as_deref()
                    .map(|s| parse_date_bound(s, false))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                until_ms: until
                    .as_deref()
                    .map(|s| parse_date_bound(s, true))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
            };
            let store = open_existing(&database).await?;
            if let Some(team) = &team {
                require_known_team(&store, team).await?;
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let count = export(&store, team.as_deref(), &filter, format, &mut out).await?;
            eprintln!("exported {count} observations");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_digest(action: DigestAction) -> anyhow::Result<ExitCode> {
    use crate::bot::digest::{self, SendOutcome};
    let engine = crate::engine::Engine::builtin();
    let now = jiff::Timestamp::now();
    match action {
        DigestAction::Preview {
            team,
            week,
            json,
            database,
        } => {
            let store = open_existing(&database).await?;
            require_known_team(&store, &team).await?;
            let d = digest::preview(&store, &engine, &team, week, now).await?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if json {
                let body = serde_json::json!({ "text": d.fallback, "blocks": d.blocks });
                writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?;
            } else {
                write!(out, "{}", d.text)?;
            }
            out.flush()?;
        }
        DigestAction::Send {
            team,
            week,
            force,
            database,
        } => {
            let store = open_existing(&database).await?;
            require_known_team(&store, &team).await?;
            match digest::send(&store, &engine, &team, week, force, now).await {
                Ok(SendOutcome::Queued { week, messages }) => println!(
                    "queued the digest for {week} ({messages} message{}); the running server delivers it",
                    if messages == 1 { "" } else { "s" }
                ),
                Ok(SendOutcome::Forced { week, n }) => println!(
                    "queued the digest for {week} again (forced send #{n}); the running server delivers it"
                ),
                Err(err @ digest::DigestError::AlreadySent(_)) => {
                    eprintln!("error: {err}");
                    return Ok(ExitCode::FAILURE);
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens a database that must already exist (read commands never create an empty one).
async fn open_existing(db: &DatabaseArgs) -> anyhow::Result<Store> {
    open(db, false).await
}

/// An unknown `--team` is an error that lists the teams the database holds, rather than
/// an empty export or an empty digest.
async fn require_known_team(store: &Store, team: &str) -> anyhow::Result<()> {
    let teams = store.known_teams().await?;
    if teams.iter().any(|t| t == team) {
        return Ok(());
    }
    if teams.is_empty() {
        anyhow::bail!(
            "team {team} is not in this database, which holds no team yet (is DATABASE_URL the \
             database `cusp serve` uses?)"
        );
    }
    anyhow::bail!(
        "team {team} is not in this database; it holds: {}. The team id is the T… id Slack \
         gives the workspace (in `cusp serve`'s \"identified with Slack\" log line, or `cusp export`'s team_id column)",
        teams.join(", ")
    )
}

/// Opens (or creates) the database and makes sure its schema is current.
async fn connect(db: &DatabaseArgs) -> anyhow::Result<Store> {
    open(db, true).await
}

/// Opens the database, creating a missing SQLite file only when `create` is set, and
/// brings its schema up to date (reading an old file must not fail).
async fn open(db: &DatabaseArgs, create: bool) -> anyhow::Result<Store> {
    let opened = if create {
        Store::connect(&db.database_url).await
    } else {
        Store::open_existing(&db.database_url).await
    };
    let store = opened.map_err(|err| match err {
        // Already names the path and the variable; more context would only repeat it.
        missing @ crate::store::StoreError::MissingDatabase(_) => anyhow::Error::new(missing),
        other => anyhow::Error::new(other).context(format!(
            "could not open {}",
            crate::store::redact_url(&db.database_url)
        )),
    })?;
    store
        .migrate()
        .await
        .context("could not apply migrations")?;
    Ok(store)
}
