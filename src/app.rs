//! Wiring: builds the [`AppState`] from the configuration, and `serve` runs the router
//! with the background workers until a graceful shutdown (`crate::shutdown`).

use anyhow::Context;

use std::sync::Arc;

use crate::config::oauth::OAuthConfig;
use crate::config::{ServeConfig, WorkspaceMode};
use crate::engine::Engine;
use crate::server::connections::HttpLimits;
use crate::shutdown::Shutdown;
use crate::slack::ids::BotIdentity;
use crate::slack::oauth::OAuthClient;
use crate::slack::web_api::{SLACK_CALL_TIMEOUT, SlackApiError, SlackClient, SlackConnector};
use crate::state::{AppState, HubSpotHooks, InstallFlow, Workspaces};
use crate::store::Store;

pub fn build_router(state: AppState) -> axum::Router {
    crate::server::router(state)
}

/// Asks Slack who we are; a rejected token fails here, at start, not at the first message.
pub async fn identify(slack: &SlackClient) -> anyhow::Result<BotIdentity> {
    match slack.auth_test().await {
        Ok(auth) => Ok(BotIdentity {
            team_id: auth.team_id,
            user_id: auth.user_id,
            bot_id: auth.bot_id,
        }),
        Err(SlackApiError::Api { code, .. }) => anyhow::bail!(
            "Slack rejected SLACK_BOT_TOKEN ({code}). Copy the Bot User OAuth Token (xoxb-…) from your \
             app's OAuth & Permissions page at https://api.slack.com/apps and make sure the app is installed"
        ),
        Err(err) => Err(err).context(
            "could not reach Slack's auth.test to check SLACK_BOT_TOKEN (is SLACK_API_URL right?)",
        ),
    }
}

/// OAuth mode's install flow from its validated settings.
pub fn install_flow(
    oauth: OAuthConfig,
    slack_api_url: &str,
    public_url: Option<String>,
) -> anyhow::Result<InstallFlow> {
    let client = OAuthClient::new(
        slack_api_url,
        &oauth.client_id,
        oauth.client_secret,
        SLACK_CALL_TIMEOUT,
    )
    .context("could not build the Slack OAuth client")?;
    Ok(InstallFlow {
        client: Arc::new(client),
        keyring: Arc::new(oauth.keyring),
        authorize_url: oauth.authorize_url,
        public_url,
    })
}

/// `cusp serve`: migrate, identify, resume the inbox and outbox, listen; stop on
/// SIGTERM or SIGINT.
pub async fn serve(config: ServeConfig, engine: Engine) -> anyhow::Result<()> {
    let shutdown = Shutdown::new();
    shutdown.on_signals();
    serve_with_shutdown(config, engine, shutdown).await
}

/// `serve`, stopping when `shutdown` is triggered instead of on a signal.
pub async fn serve_with_shutdown(
    config: ServeConfig,
    engine: Engine,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    use secrecy::ExposeSecret;
    let store = Store::connect_limited(config.database_url.expose_secret(), config.pool_limits)
        .await
        .with_context(|| {
            format!(
                "could not open the database {} (DATABASE_URL)",
                crate::store::redact_url(config.database_url.expose_secret())
            )
        })?;
    store
        .migrate()
        .await
        .context("could not apply database migrations")?;
    let hubspot = match config.hubspot {
        Some(hubspot) => Some(HubSpotHooks {
            client: crate::hubspot::HubSpotClient::new(
                &hubspot.api_url,
                hubspot.access_token,
                SLACK_CALL_TIMEOUT,
            )
            .context("could not build the HubSpot client")?,
            client_secret: hubspot.client_secret,
            public_url: hubspot.public_url,
        }),
        None => None,
    };
    let state = match config.mode {
        WorkspaceMode::Single { bot_token } => {
            let slack = SlackClient::new(&config.slack_api_url, bot_token, SLACK_CALL_TIMEOUT)
                .context("could not build the Slack client")?;
            let identity = identify(&slack).await?;
            tracing::info!(team_id = %identity.team_id, bot_user_id = %identity.user_id, backend = store.backend(), "identified with Slack");
            AppState::new(
                store.clone(),
                engine,
                slack,
                config.signing_secrets,
                identity,
            )
        }
        WorkspaceMode::OAuth(oauth) => {
            let flow = install_flow(oauth, &config.slack_api_url, config.public_url)?;
            let connector = SlackConnector::new(&config.slack_api_url, SLACK_CALL_TIMEOUT)
                .context("could not build the Slack client")?;
            let workspaces =
                Workspaces::installed(store.clone(), flow.keyring.clone(), connector);
            let installed = workspaces
                .teams()
                .await
                .context("could not read the installations")?;
            tracing::info!(
                workspaces = installed.len(),
                backend = store.backend(),
                "OAuth mode: serving the workspaces that installed cusp (/slack/install)"
            );
            AppState::with_workspaces(store.clone(), engine, workspaces, config.signing_secrets)
                .with_install_flow(flow)
        }
    }
    .with_webhook_secret(config.webhook_secret)
    .with_hubspot(hubspot)
    .with_retention(config.retention);

    // Before Socket Mode connects: anything recorded before the recorder exists is lost.
    crate::telemetry::metrics::install();
    // Socket Mode first: a rejected app token stops `serve` here, before any work starts.
    let socket_mode = match config.app_token {
        Some(app_token) => {
            let client = SlackClient::new(&config.slack_api_url, app_token, SLACK_CALL_TIMEOUT)
                .context("could not build the Socket Mode client")?;
            let options = crate::server::socket_mode::SocketModeOptions::default();
            Some(
                crate::server::socket_mode::start(
                    state.clone(),
                    client,
                    options,
                    shutdown.subscribe(),
                )
                .await?,
            )
        }
        None => None,
    };

    // A host name (`localhost:3000`) is resolved here.
    let listener = tokio::net::TcpListener::bind(config.addr.as_str())
        .await
        .with_context(|| {
            format!(
                "could not listen on {} (set CUSP_ADDR or PORT)",
                config.addr
            )
        })?;
    tracing::info!(
        addr = %config.addr,
        max_connections = config.http_limits.max_connections,
        header_timeout_secs = config.http_limits.header_timeout.as_secs(),
        request_timeout_secs = config.http_limits.request_timeout.as_secs(),
        "listening"
    );
    let result = run_server_with_limits(listener, state, shutdown, config.http_limits).await;
    // `run_server` has triggered the shutdown on its way out; the socket loop sees it.
    if let Some(socket_mode) = socket_mode {
        let _ = socket_mode.await;
    }
    store.close().await;
    result
}

/// Serves `state` on `listener` with the background workers until `shutdown`, with the
/// default connection limits; see [`run_server_with_limits`].
pub async fn run_server(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    run_server_with_limits(listener, state, shutdown, HttpLimits::default()).await
}

/// Serves `state` on `listener` with the background workers until `shutdown`: then
/// stops accepting, finishes the requests in flight (at most `HTTP_DRAIN_TIMEOUT`),
/// lets the workers finish their current item, and returns. The store stays open.
/// `limits` bounds what clients can hold (`server::connections`).
pub async fn run_server_with_limits(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: Shutdown,
    limits: HttpLimits,
) -> anyhow::Result<()> {
    let workers = [
        tokio::spawn(crate::jobs::inbox_worker::run(
            state.clone(),
            shutdown.subscribe(),
        )),
        tokio::spawn(crate::jobs::outbox_worker::run(
            state.clone(),
            shutdown.subscribe(),
        )),
        tokio::spawn(crate::jobs::scheduler::run(
            state.clone(),
            shutdown.subscribe(),
        )),
        tokio::spawn(crate::jobs::gauges::run(
            state.clone(),
            shutdown.subscribe(),
        )),
        // These two return at once in single-workspace mode (no installations).
        tokio::spawn(crate::jobs::token_refresh::run(
            state.clone(),
            shutdown.subscribe(),
        )),
        tokio::spawn(crate::jobs::uninstalled::run(
            state.clone(),
            shutdown.subscribe(),
        )),
    ];
    let server =
        crate::server::connections::serve(listener, build_router(state), limits, shutdown.clone());
    let drain_deadline = async {
        shutdown.wait().await;
        tokio::time::sleep(crate::shutdown::HTTP_DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        () = server => {}
        () = drain_deadline => {
            tracing::warn!(
                timeout_secs = crate::shutdown::HTTP_DRAIN_TIMEOUT.as_secs(),
                "requests still in flight after the drain timeout; stopping anyway"
            );
        }
    }
    // The server only returns on shutdown, but make sure the workers stop with it.
    shutdown.trigger();
    for worker in workers {
        let _ = worker.await;
    }
    tracing::info!("stopped");
    Ok(())
}
