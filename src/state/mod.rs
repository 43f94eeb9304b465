//! The state every handler and worker shares, and the workspaces cusp serves.
//!
//! This module sits below `bot/`, `jobs/` and `server/`: it imports only `store`,
//! `engine`, the protocol clients (`slack`, `hubspot`) and small shared types, never the
//! features that use it, so there is no import cycle. `app.rs` builds an [`AppState`] and
//! wires it to the router and the workers.

pub mod holds;
pub mod workspaces;

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Notify;

use crate::backoff::{Backoff, INBOX_BACKOFF};
use crate::engine::Engine;
use crate::slack::ids::BotIdentity;
use crate::slack::oauth::OAuthClient;
use crate::slack::web_api::SlackClient;
use crate::store::{Keyring, Store};

pub use workspaces::{Workspace, WorkspaceError, Workspaces};

/// How long observations and finished rows are kept when `CUSP_RETENTION_DAYS` is unset.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Everything a request handler or worker needs, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: Arc<Engine>,
    /// The workspaces cusp serves and each one's token: one from `SLACK_BOT_TOKEN`, or
    /// every OAuth installation in the store.
    pub workspaces: Arc<Workspaces>,
    pub signing_secrets: Arc<Vec<SecretString>>,
    /// Rung when an event lands in the inbox, so the worker need not poll.
    pub inbox_wake: Arc<Notify>,
    /// Rung when a delivery lands in the outbox.
    pub outbox_wake: Arc<Notify>,
    /// Delays between attempts at a failing event; `INBOX_BACKOFF` unless a test
    /// shortens them.
    pub inbox_backoff: Backoff,
    /// Verifies `POST /hooks/deals`; `None` turns the route off.
    pub webhook_secret: Option<Arc<SecretString>>,
    /// Verifies and enriches `POST /hooks/hubspot`; `None` turns the route off.
    pub hubspot: Option<Arc<HubSpotHooks>>,
    /// Rows older than this are purged daily (`CUSP_RETENTION_DAYS`).
    pub retention: Duration,
    /// OAuth mode: the install pages are mounted and tokens are rotated. `None` in
    /// single-workspace mode.
    pub install_flow: Option<Arc<InstallFlow>>,
}

/// What OAuth mode adds: Slack's `oauth.v2.access` client (installs and token refresh),
/// the keyring that seals tokens, and where the install pages send people.
#[derive(Debug)]
pub struct InstallFlow {
    pub client: Arc<OAuthClient>,
    pub keyring: Arc<Keyring>,
    /// Slack's authorize page (`SLACK_OAUTH_AUTHORIZE_URL`).
    pub authorize_url: String,
    /// `CUSP_PUBLIC_URL`; `None` builds the `redirect_uri` from the request's `Host`.
    pub public_url: Option<String>,
}

/// What HubSpot webhooks need: the app's client secret (signatures), the public URL
/// HubSpot calls (part of what it signs) and an API client for deal and owner reads.
pub struct HubSpotHooks {
    pub client_secret: SecretString,
    pub public_url: Option<String>,
    pub client: crate::hubspot::HubSpotClient,
}

impl AppState {
    /// Single-workspace mode: one workspace, its token from the environment and its
    /// identity from `auth.test`.
    pub fn new(
        store: Store,
        engine: Engine,
        slack: SlackClient,
        signing_secrets: Vec<SecretString>,
        identity: BotIdentity,
    ) -> AppState {
        let workspaces = Workspaces::single(Workspace { identity, slack });
        AppState::with_workspaces(store, engine, workspaces, signing_secrets)
    }

    /// Any mode: `workspaces` says which teams are served and with which token.
    pub fn with_workspaces(
        store: Store,
        engine: Engine,
        workspaces: Workspaces,
        signing_secrets: Vec<SecretString>,
    ) -> AppState {
        AppState {
            store,
            engine: Arc::new(engine),
            workspaces: Arc::new(workspaces),
            signing_secrets: Arc::new(signing_secrets),
            inbox_wake: Arc::new(Notify::new()),
            outbox_wake: Arc::new(Notify::new()),
            inbox_backoff: INBOX_BACKOFF,
            webhook_secret: None,
            hubspot: None,
            retention: DEFAULT_RETENTION,
            install_flow: None,
        }
    }

    /// OAuth mode: mounts `/slack/install` and `/slack/oauth_redirect` and rotates tokens.
    pub fn with_install_flow(mut self, flow: InstallFlow) -> AppState {
        self.install_flow = Some(Arc::new(flow));
        self
    }

    pub fn with_retention(mut self, retention: Duration) -> AppState {
        self.retention = retention;
        self
    }

    pub fn with_hubspot(mut self, hubspot: Option<HubSpotHooks>) -> AppState {
        self.hubspot = hubspot.map(Arc::new);
        self
    }

    pub fn with_webhook_secret(mut self, secret: Option<SecretString>) -> AppState {
        self.webhook_secret = secret.map(Arc::new);
        self
    }
}

/// What a feature needs to act in one workspace: the store, the engine, the workspace
/// (identity and token) and the outbox's doorbell. Built per request or job by
/// [`AppState::team`]; features never see the rest of the state.
#[derive(Clone, Copy)]
pub struct TeamContext<'a> {
    pub store: &'a Store,
    pub engine: &'a Engine,
    pub workspace: &'a Workspace,
    pub outbox_wake: &'a Notify,
    /// The clock of a worker's step (`now_ms` as of an instant), which its Slack calls'
    /// rate-limit holds are measured on; `None`: the wall clock.
    clock: Option<(i64, Instant)>,
}

impl TeamContext<'_> {
    /// The team this context acts for; every query it makes is scoped by it.
    pub fn team(&self) -> &str {
        self.workspace.team_id()
    }

    /// The workspace's Web API client for calls made now rather than through the outbox
    /// (`views.open`, `users.lookupByEmail`, …). It keeps to the team's per-method
    /// rate-limit holds, the ones the outbox keeps to, and sets them on a rate limit.
    pub fn slack(&self) -> SlackClient {
        let holds = holds::StoreHolds::new(self.store.clone(), self.team());
        match self.clock {
            Some((now_ms, at)) => holds.on_clock(now_ms, at),
            None => holds,
        }
        .client(&self.workspace.slack)
    }
}

impl AppState {
    /// The narrow context features get for `workspace`.
    pub fn team<'a>(&'a self, workspace: &'a Workspace) -> TeamContext<'a> {
        TeamContext {
            store: &self.store,
            engine: &self.engine,
            workspace,
            outbox_wake: &self.outbox_wake,
            clock: None,
        }
    }

    /// [`AppState::team`] for a worker's step that runs at `now_ms`, which was the time
    /// at the instant `at` (the inbox worker; tests step it through time).
    pub fn team_on_clock<'a>(
        &'a self,
        workspace: &'a Workspace,
        now_ms: i64,
        at: Instant,
    ) -> TeamContext<'a> {
        TeamContext {
            clock: Some((now_ms, at)),
            ..self.team(workspace)
        }
    }
}
