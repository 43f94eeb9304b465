//! `cusp digest preview|send`: the same composition and claim as the scheduler's.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;

use super::{open_existing, require_known_team};
use crate::config::DatabaseArgs;

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

pub async fn run(action: DigestAction) -> anyhow::Result<ExitCode> {
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
