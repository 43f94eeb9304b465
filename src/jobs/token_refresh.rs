//! Token rotation (OAuth mode, apps with `token_rotation_enabled`): bot tokens expire
//! after 12 hours, so every [`REFRESH_INTERVAL`] this job refreshes each token that
//! expires within [`REFRESH_MARGIN`] with `oauth.v2.access` (`grant_type=refresh_token`).
//!
//! Slack's refresh tokens are single-use, so two replicas must never both refresh one:
//! each installation is claimed in the database first (`claim_refresh`, a lease), and
//! the new tokens are stored only while the claim still holds (`complete_refresh`). A
//! refresh Slack refuses (`invalid_refresh_token`, …) cannot succeed later: the
//! installation is marked as needing a reinstall, which is logged once. Anything else
//! (Slack down, a timeout) is tried again at the next pass, as long as the token has
//! not expired.

use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::slack::oauth::OAuthError;
use crate::state::{AppState, InstallFlow};
use crate::store::{InstallationError, InstallationKey, RefreshedTokens, StoreError};
use crate::telemetry::metrics;

/// How often the job looks for tokens to refresh.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A token is refreshed once it expires within this long (Bolt's default, 2 hours):
/// many passes before expiry, so a short Slack outage does not let a token lapse.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(2 * 3600);

/// How long one replica holds the right to refresh an installation; a replica that
/// crashed mid-refresh is taken over after this.
pub const REFRESH_LEASE: Duration = Duration::from_secs(60);

/// What one pass did, per installation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshPass {
    /// New tokens stored.
    pub refreshed: Vec<InstallationKey>,
    /// Slack refused the refresh: only a reinstall helps now.
    pub needs_reinstall: Vec<InstallationKey>,
    /// Another replica held the claim (or took it over): nothing done here.
    pub held_elsewhere: Vec<InstallationKey>,
    /// Slack or the database failed; tried again at the next pass.
    pub failed: Vec<InstallationKey>,
}

pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let Some(flow) = state.install_flow.clone() else {
        return;
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Err(err) = refresh_due(&state, &flow, Timestamp::now()).await {
            tracing::error!(error = %err, "token refresh pass failed");
        }
        tokio::select! {
            () = tokio::time::sleep(REFRESH_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One pass at `now`: refreshes every token expiring within [`REFRESH_MARGIN`]; tests
/// call it directly. An error means the list itself could not be read; a failure for one
/// installation is reported in the pass and does not stop the others.
pub async fn refresh_due(
    state: &AppState,
    flow: &InstallFlow,
    now: Timestamp,
) -> Result<RefreshPass, StoreError> {
    let now_ms = now.as_millisecond();
    let expiring_before = now_ms.saturating_add(millis(REFRESH_MARGIN));
    let due = state
        .store
        .installations_due_for_refresh(expiring_before, now_ms)
        .await?;
    let mut pass = RefreshPass::default();
    for key in due {
        match refresh_one(state, flow, &key, expiring_before, now_ms).await {
            Ok(Outcome::Refreshed) => {
                metrics::token_refresh("refreshed");
                state.workspaces.forget_installation(&key);
                tracing::info!(installation = %key, "bot token refreshed");
                pass.refreshed.push(key);
            }
            Ok(Outcome::HeldElsewhere) => {
                metrics::token_refresh("lost_claim");
                pass.held_elsewhere.push(key);
            }
            Ok(Outcome::Rejected { first_time, code }) => {
                metrics::token_refresh("rejected");
                if first_time {
                    tracing::error!(
                        installation = %key,
                        code,
                        "Slack refused to refresh the bot token: the workspace must reinstall \
                         cusp (from /slack/install)"
                    );
                }
                state.workspaces.forget_installation(&key);
                pass.needs_reinstall.push(key);
            }
            Err(err) => {
                metrics::token_refresh("failed");
                tracing::warn!(installation = %key, error = %err, "could not refresh the bot token; trying again at the next pass");
                pass.failed.push(key);
            }
        }
    }
    Ok(pass)
}

enum Outcome {
    Refreshed,
    HeldElsewhere,
    Rejected { first_time: bool, code: String },
}

#[derive(Debug, thiserror::Error)]
enum OneError {
    #[error(transparent)]
    Installation(#[from] InstallationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Slack(#[from] OAuthError),
    #[error("oauth.v2.access answered without a refresh token or expiry")]
    NotRotating,
}

async fn refresh_one(
    state: &AppState,
    flow: &InstallFlow,
    key: &InstallationKey,
    expiring_before_ms: i64,
    now_ms: i64,
) -> Result<Outcome, OneError> {
    let store = &state.store;
    // Still due when claimed: the list may be stale if another replica just refreshed.
    let Some(claim) = store
        .claim_refresh_expiring(
            &flow.keyring,
            key,
            Some(expiring_before_ms),
            now_ms,
            REFRESH_LEASE,
        )
        .await?
    else {
        return Ok(Outcome::HeldElsewhere);
    };
    let access = match flow.client.refresh(&claim.refresh_token).await {
        Ok(access) => access,
        Err(OAuthError::InvalidRefreshToken { code }) => {
            let first_time = store.mark_needs_reinstall(key, now_ms).await?;
            return Ok(Outcome::Rejected { first_time, code });
        }
        Err(err) => return Err(err.into()),
    };
    let (Some(refresh_token), Some(expires_in)) = (access.refresh_token, access.expires_in) else {
        return Err(OneError::NotRotating);
    };
    let tokens = RefreshedTokens {
        bot_token: access.access_token,
        refresh_token,
        token_expires_at_ms: now_ms.saturating_add(millis(expires_in)),
    };
    let stored = store
        .complete_refresh(&flow.keyring, &claim, &tokens, now_ms)
        .await?;
    Ok(if stored {
        Outcome::Refreshed
    } else {
        Outcome::HeldElsewhere
    })
}
