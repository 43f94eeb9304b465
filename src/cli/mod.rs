//! The `cusp` command line: each subcommand calls one function.

pub mod digest;
pub mod eval;
pub mod healthcheck;
mod installations;
pub mod reflect;
pub mod train;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::bot::export::{ExportFormat, export, export_corrections, parse_date_bound};
use crate::config::{DatabaseArgs, EngineArgs, ServeArgs};
use crate::engine::train::TrainConfig;
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
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start; `serve`'s many settings are the point"
)]
pub enum CliCommand {
    /// Run the Slack app: HTTP endpoints, inbox and outbox workers.
    Serve(ServeArgs),
    /// See cusp work without Slack: the real server, a stand-in Slack on loopback, a week
    /// of deal talk, the digest. Prints what cusp did; `--html` also writes a page.
    Demo(crate::demo::DemoArgs),
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
    /// Measure the engine on labelled JSON Lines files (one line per file, then all of them),
    /// or with `--questions` the questions it asks.
    Eval {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Measure the lexicon alone, without the learned model.
        #[arg(long, conflicts_with = "model")]
        lexicon_only: bool,
        /// Use this model file (as `cusp train --out` writes it) instead of the built-in one.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Also list every message read differently from its label (to stderr).
        #[arg(long)]
        show_errors: bool,
        /// Measure the questions instead, over the deal updates of all the files together:
        /// how specific, how varied, how long, and whether they fit the situation.
        #[arg(long)]
        questions: bool,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Train the engine's model on labelled files, or cross-validate (docs/engine.md).
    Train {
        /// Labelled JSON Lines files (paths as seen from the repository root).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the model, e.g. src/engine/model.txt.
        #[arg(long, required_unless_present = "cross_validate")]
        out: Option<PathBuf>,
        /// Hold each file out in turn: train on the others (and --always), measure on it.
        #[arg(long, conflicts_with = "out")]
        cross_validate: bool,
        /// With --cross-validate: a file always trained on, never held out (repeatable).
        #[arg(long, requires = "cross_validate")]
        always: Vec<PathBuf>,
        /// With --cross-validate: hold out one writer at a time, all of their files together
        /// (a writer is the file name up to the first `-`: c1-train.jsonl, c1-test.jsonl).
        #[arg(long, requires = "cross_validate")]
        by_writer: bool,
        /// With --cross-validate: print JSON.
        #[arg(long, requires = "cross_validate")]
        json: bool,
        #[command(flatten)]
        params: TrainParams,
    },
    /// The weekly digest: preview it, or post it now through the outbox.
    Digest {
        #[command(subcommand)]
        action: digest::DigestAction,
    },
    /// Stream observations with their themes to stdout; with --corrections, people's
    /// "Not quite right" corrections as a labelled file for `cusp eval`.
    Export {
        #[arg(long, value_enum, required_unless_present = "corrections")]
        format: Option<ExportFormat>,
        /// Corrections that include the person's text, as JSON Lines in the labelled-file
        /// format (`text`, `is_deal_update`, `class`, `themes`) that `cusp eval` reads.
        #[arg(long)]
        corrections: bool,
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
    /// GET a health URL (default: /healthz of `serve`); exit 0 on 2xx, 1 otherwise.
    /// For container health checks in an image without curl.
    Healthcheck(crate::cli::healthcheck::HealthcheckArgs),
    /// Workspaces installed with OAuth: list them, or remove one's tokens.
    Installations {
        #[command(subcommand)]
        action: installations::InstallationsAction,
    },
    /// Re-encrypt every stored Slack token with the first key of CUSP_ENCRYPTION_KEY.
    RotateKey(installations::RotateKeyArgs),
}

/// Training settings; the defaults are the ones the built-in model was trained with.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainParams {
    /// Passes over the data.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: u32,
    /// AdaGrad learning rate.
    #[arg(long, default_value_t = TrainConfig::default().rate)]
    pub rate: f64,
    /// L2 penalty.
    #[arg(long, default_value_t = TrainConfig::default().l2)]
    pub l2: f64,
    /// Keep a word feature seen in at least this many messages.
    #[arg(long, default_value_t = TrainConfig::default().min_count)]
    pub min_count: u32,
    /// Probability at which a theme fires.
    #[arg(long, default_value_t = TrainConfig::default().threshold)]
    pub threshold: f64,
    /// Probability at which a message is a deal update.
    #[arg(long, default_value_t = TrainConfig::default().deal_threshold)]
    pub deal_threshold: f64,
    /// Probability a theme needs when the lexicon found no cue of it.
    #[arg(long, default_value_t = TrainConfig::default().bare_threshold)]
    pub bare_threshold: f64,
    /// Below this probability a theme the lexicon fires on is dropped.
    #[arg(long, default_value_t = TrainConfig::default().veto_threshold)]
    pub veto_threshold: f64,
    /// Weight of a positive theme example.
    #[arg(long, default_value_t = TrainConfig::default().positive_weight)]
    pub positive_weight: f64,
    /// Seeds the order of each pass.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
}

impl TrainParams {
    fn config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            rate: self.rate,
            l2: self.l2,
            min_count: self.min_count,
            threshold: self.threshold,
            deal_threshold: self.deal_threshold,
            bare_threshold: self.bare_threshold,
            veto_threshold: self.veto_threshold,
            positive_weight: self.positive_weight,
            seed: self.seed,
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        CliCommand::Serve(args) => {
            let config = args.validate()?;
            let engine = args.engine.load()?;
            tracing::debug!(?config, "configuration");
            crate::app::serve(config, engine).await?;
        }
        CliCommand::Demo(args) => return run_demo(&args).await,
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
                (_, true) => crate::cli::reflect::ReflectMode::Jsonl,
                (true, false) => crate::cli::reflect::ReflectMode::Json,
                (false, false) => crate::cli::reflect::ReflectMode::Text,
            };
            let stdin = std::io::stdin();
            let mut input: Box<dyn BufRead> = Box::new(stdin.lock());
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            crate::cli::reflect::run(&engine, text, mode, &mut input, &mut out)?;
            out.flush()?;
        }
        CliCommand::Eval {
            files,
            json,
            lexicon_only,
            model,
            show_errors,
            questions,
            engine,
        } => {
            let mut engine = engine.load()?;
            if lexicon_only {
                engine = engine.without_model();
            }
            if let Some(path) = model {
                let src = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                engine = engine
                    .with_model_text(&src)
                    .with_context(|| format!("{} is not a cusp model", path.display()))?;
            }
            if show_errors {
                let stderr = std::io::stderr();
                let mut err = stderr.lock();
                for f in &files {
                    crate::cli::eval::write_errors(
                        &engine,
                        &crate::cli::eval::read_rows(f)?,
                        &mut err,
                    )?;
                }
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            if questions {
                crate::cli::eval::questions::run(&engine, &files, json, &mut out)?;
            } else {
                crate::cli::eval::run(&engine, &files, json, &mut out)?;
            }
            out.flush()?;
        }
        CliCommand::Train {
            files,
            out,
            cross_validate,
            always,
            by_writer,
            json,
            params,
        } => {
            let cfg = params.config();
            if cross_validate {
                let stdout = std::io::stdout();
                let mut w = std::io::BufWriter::new(stdout.lock());
                crate::cli::train::run_cross_validate(
                    &files, &always, by_writer, &cfg, json, &mut w,
                )?;
                w.flush()?;
            } else if let Some(out) = out {
                let n = crate::cli::train::run_train(&files, &out, &cfg)?;
                eprintln!("trained on {n} messages; wrote {}", out.display());
            }
        }
        CliCommand::Digest { action } => return digest::run(action).await,
        CliCommand::Healthcheck(args) => {
            return Ok(match crate::cli::healthcheck::check(&args.url()).await {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(reason) => {
                    eprintln!("unhealthy: {reason}");
                    ExitCode::FAILURE
                }
            });
        }
        CliCommand::Installations { action } => return installations::run(action).await,
        CliCommand::RotateKey(args) => return installations::rotate_key(args).await,
        CliCommand::Export {
            format,
            corrections,
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
            // `None`: corrections. Checked before the database is opened.
            let format = match (corrections, format) {
                (false, Some(format)) => Some(format),
                (true, None | Some(ExportFormat::Json)) => None,
                (true, Some(ExportFormat::Csv)) => anyhow::bail!(
                    "--corrections writes JSON Lines (the labelled-file format `cusp eval` reads); \
                     leave out --format csv"
                ),
                (false, None) => anyhow::bail!("--format is required (csv or json)"),
            };
            let store = open_existing(&database).await?;
            if let Some(team) = &team {
                require_known_team(&store, team).await?;
            }
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let Some(format) = format else {
                let counts = export_corrections(&store, team.as_deref(), &filter, &mut out).await?;
                eprintln!(
                    "exported {} correction{} with text; {} left out for lacking text (the person did not share it)",
                    counts.written,
                    if counts.written == 1 { "" } else { "s" },
                    counts.without_text
                );
                return Ok(ExitCode::SUCCESS);
            };
            let count = export(&store, team.as_deref(), &filter, format, &mut out).await?;
            eprintln!("exported {count} observations");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_demo(args: &crate::demo::DemoArgs) -> anyhow::Result<ExitCode> {
    let options = args.options()?;
    eprintln!(
        "cusp demo: starting the server and a stand-in Slack on 127.0.0.1 (database {})…",
        options.database.display()
    );
    let report = crate::demo::run(&options).await?;
    if let Some(path) = &args.html {
        std::fs::write(path, crate::demo::render_html::page(&report))
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write!(
        out,
        "{}",
        crate::demo::render_text::report(&report, args.html.as_deref())
    )?;
    out.flush()?;
    let problems = report.problems();
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "\nerror: {} step(s) of the demo did not go as expected:",
        problems.len()
    );
    for step in problems {
        eprintln!(
            "  - {} · {}: {}",
            step.day,
            step.action,
            step.problem.as_deref().unwrap_or_default()
        );
    }
    Ok(ExitCode::FAILURE)
}

/// Opens a database that must already exist (read commands never create an empty one).
pub(crate) async fn open_existing(db: &DatabaseArgs) -> anyhow::Result<Store> {
    open(db, false).await
}

/// An unknown `--team` is an error that lists the teams the database holds, rather than
/// an empty export or an empty digest.
pub(crate) async fn require_known_team(store: &Store, team: &str) -> anyhow::Result<()> {
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
