//! Operators' commands for OAuth installations: `cusp installations list|remove` and
//! `cusp rotate-key`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::config::DatabaseArgs;
use crate::store::{InstallationSummary, Keyring, Store};

#[derive(Subcommand)]
pub enum InstallationsAction {
    /// List the workspaces that installed cusp with OAuth (tokens are never shown).
    List {
        /// Print a JSON array instead of one line per installation.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Delete a workspace's Slack tokens now, as an uninstall does; a reinstall restores it.
    Remove {
        /// The team id (T…), the enterprise id (E…) of an org-wide install, or E…/T….
        team: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(clap::Args)]
pub struct RotateKeyArgs {
    /// One or more comma-separated base64 keys (`openssl rand -base64 32`); the first
    /// encrypts, every one decrypts.
    #[arg(long, env = "CUSP_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

fn status(s: &InstallationSummary) -> String {
    match (s.uninstalled_at_ms, s.needs_reinstall) {
        (Some(at), _) => format!("removed {}", time(at)),
        (None, true) => "needs reinstall".into(),
        (None, false) => "active".into(),
    }
}

fn line(s: &InstallationSummary) -> String {
    let name = s
        .team_name
        .as_deref()
        .or(s.enterprise_name.as_deref())
        .unwrap_or("-");
    let rotation = match (s.rotates_tokens, s.token_expires_at_ms) {
        (true, Some(at)) => format!("token rotation (expires {})", time(at)),
        (true, None) => "token rotation".into(),
        (false, _) => "no token rotation".into(),
    };
    format!(
        "{}\t{name}\t{}\tinstalled {} by {}\t{rotation}\tscopes {}",
        s.key,
        status(s),
        time(s.installed_at_ms),
        s.installer_user_id.as_deref().unwrap_or("-"),
        s.bot_scopes
    )
}

fn json(s: &InstallationSummary) -> serde_json::Value {
    serde_json::json!({
        "enterprise_id": s.key.enterprise_id,
        "team_id": s.key.team_id,
        "team_name": s.team_name,
        "enterprise_name": s.enterprise_name,
        "is_enterprise_install": s.is_enterprise_install,
        "bot_user_id": s.bot_user_id,
        "scopes": s.bot_scopes,
        "installer_user_id": s.installer_user_id,
        "status": status(s),
        "token_rotation": s.rotates_tokens,
        "token_expires_at": s.token_expires_at_ms.map(time),
        "installed_at": time(s.installed_at_ms),
        "updated_at": time(s.updated_at_ms),
        "uninstalled_at": s.uninstalled_at_ms.map(time),
    })
}

/// Which installation `arg` names: `T…`, `E…` (org-wide) or `E…/T…`.
fn matches(s: &InstallationSummary, arg: &str) -> bool {
    s.key.to_string() == arg
        || (s.key.team_id == arg)
        || (s.key.team_id.is_empty() && s.key.enterprise_id == arg)
}

pub async fn run(action: InstallationsAction) -> anyhow::Result<ExitCode> {
    match action {
        InstallationsAction::List {
            json: as_json,
            database,
        } => {
            let store = super::open_existing(&database).await?;
            let all = store.list_installations().await?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if as_json {
                let rows: Vec<serde_json::Value> = all.iter().map(json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else {
                for s in &all {
                    writeln!(out, "{}", line(s))?;
                }
            }
            out.flush()?;
            eprintln!(
                "{} installation{}",
                all.len(),
                if all.len() == 1 { "" } else { "s" }
            );
        }
        InstallationsAction::Remove { team, database } => {
            let store = super::open_existing(&database).await?;
            return remove(&store, team.trim()).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove(store: &Store, arg: &str) -> anyhow::Result<ExitCode> {
    let all = store.list_installations().await?;
    let found: Vec<&InstallationSummary> = all.iter().filter(|s| matches(s, arg)).collect();
    let known = || {
        let keys: Vec<String> = all.iter().map(|s| s.key.to_string()).collect();
        if keys.is_empty() {
            "this database holds no installation (is DATABASE_URL the database `cusp serve` uses?)"
                .to_owned()
        } else {
            format!("it holds: {}", keys.join(", "))
        }
    };
    let target = match found.as_slice() {
        [one] => *one,
        [] => anyhow::bail!("no installation {arg}: {}", known()),
        _ => anyhow::bail!(
            "{arg} names several installations; name one as ENTERPRISE/TEAM: {}",
            found
                .iter()
                .map(|s| s.key.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let now = jiff::Timestamp::now().as_millisecond();
    if store.remove_installation(&target.key, None, now).await? {
        // As for an uninstall: what was waiting to be sent would only fail now.
        let stopped = if target.key.team_id.is_empty() {
            0
        } else {
            store
                .drop_team_events(
                    &target.key.team_id,
                    crate::bot::uninstall::DROPPED_REASON,
                    now,
                )
                .await?;
            store
                .stop_team_deliveries(&target.key.team_id, crate::bot::uninstall::STOPPED_REASON)
                .await?
        };
        println!(
            "deleted the Slack tokens of {} and stopped {stopped} pending deliveries; its data \
             is deleted in 30 days unless the workspace reinstalls cusp (a running `cusp serve` \
             notices within 30 seconds)",
            target.key
        );
    } else {
        println!("{} was already removed", target.key);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rotate_key(args: RotateKeyArgs) -> anyhow::Result<ExitCode> {
    // Checked before the database is touched: without keys nothing can be re-encrypted.
    let keyring = Keyring::from_env_value(args.encryption_key.as_deref())?;
    let store = super::open_existing(&args.database).await?;
    let now = jiff::Timestamp::now().as_millisecond();
    let counts = store
        .reseal_installations(&keyring, now)
        .await
        .context("nothing was re-encrypted")?;
    println!(
        "re-encrypted {} installation{} with key {}; {} already used it",
        counts.resealed,
        if counts.resealed == 1 { "" } else { "s" },
        keyring.primary_key_id(),
        counts.unchanged
    );
    if counts.resealed > 0 {
        eprintln!("every token now opens with the first key alone; older keys can be removed");
    }
    Ok(ExitCode::SUCCESS)
}
