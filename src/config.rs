//! Configuration for `cusp serve`, from the environment (flags override). Read once in
//! `main`, validated once, passed down; secrets are `SecretString` and never printed.

pub mod oauth;

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::engine::Engine;
use crate::server::connections::{
    DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT, HttpLimits,
};
use crate::store::{DEFAULT_SQLITE_CACHE_KIB, PoolLimits};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://cusp.db";
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";
pub const DEFAULT_ADDR: &str = "0.0.0.0:3000";
pub const DEFAULT_RETENTION_DAYS: u32 = 365;
/// A hundred years: anything longer is surely a typo.
const MAX_RETENTION_DAYS: u32 = 36_500;

fn parse_retention_days(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(days) if (1..=MAX_RETENTION_DAYS).contains(&days) => Ok(days),
        _ => Err(format!(
            "CUSP_RETENTION_DAYS must be a whole number of days from 1 to {MAX_RETENTION_DAYS} (e.g. 365), got {s:?}"
        )),
    }
}

/// Where the database lives; shared by every subcommand that touches it.
#[derive(clap::Args, Clone)]
pub struct DatabaseArgs {
    /// `sqlite://path.db` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
}

/// The lexicon override shared by every subcommand that runs the engine.
#[derive(clap::Args, Clone, Debug)]
pub struct EngineArgs {
    /// A lexicon file that extends or replaces the built-in vocabulary (docs/engine.md).
    #[arg(long, env = "CUSP_LEXICON")]
    pub lexicon: Option<PathBuf>,
}

impl EngineArgs {
    /// The engine, with the lexicon file applied; a bad file names its line and reason.
    pub fn load(&self) -> Result<Engine, ConfigError> {
        let Some(path) = &self.lexicon else {
            return Ok(Engine::builtin());
        };
        let bytes = std::fs::read(path).map_err(|e| ConfigError::Lexicon {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let source = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
            ConfigError::Lexicon {
                path: path.clone(),
                reason: format!("line {line}: not valid UTF-8 (save the file as UTF-8)"),
            }
        })?;
        Engine::from_lexicon(&source).map_err(|e| ConfigError::Lexicon {
            path: path.clone(),
            reason: e.to_string(),
        })
    }
}

#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    /// Slack signing secret(s); comma-separated while rotating.
    #[arg(long, env = "SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Option<String>,
    /// App-level token (xapp-…, scope `connections:write`): receive Slack over Socket
    /// Mode, with no public URL and no signing secret needed.
    #[arg(long, env = "SLACK_APP_TOKEN", hide_env_values = true)]
    pub app_token: Option<String>,
    /// Bot User OAuth Token (xoxb-…) of a single-workspace install. Leave it unset and
    /// set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET to install in many workspaces (OAuth).
    #[arg(long, env = "SLACK_BOT_TOKEN", hide_env_values = true)]
    pub bot_token: Option<String>,
    /// OAuth mode: the app's client credentials, authorize page and encryption key.
    #[command(flatten)]
    pub oauth: oauth::OAuthArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Listen address, `host:port` (`0.0.0.0:3000`, `localhost:3000`, `[::]:3000`);
    /// `PORT` alone also works (as on most PaaS).
    #[arg(long, env = "CUSP_ADDR")]
    pub addr: Option<String>,
    #[arg(long, env = "PORT", hide = true)]
    pub port: Option<u16>,
    /// Slack Web API base URL (tests point it at a fake).
    #[arg(long, env = "SLACK_API_URL", default_value = DEFAULT_SLACK_API_URL)]
    pub slack_api_url: String,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Shared secret that signs `POST /hooks/deals`; unset turns CRM webhooks off.
    #[arg(long, env = "CUSP_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// HubSpot app client secret; turns on `POST /hooks/hubspot`.
    #[arg(long, env = "HUBSPOT_CLIENT_SECRET", hide_env_values = true)]
    pub hubspot_client_secret: Option<String>,
    /// HubSpot private-app token (scopes crm.objects.deals.read, crm.objects.owners.read).
    #[arg(long, env = "HUBSPOT_ACCESS_TOKEN", hide_env_values = true)]
    pub hubspot_access_token: Option<String>,
    #[arg(long, env = "HUBSPOT_API_URL", default_value = crate::hubspot::DEFAULT_API_URL)]
    pub hubspot_api_url: String,
    /// Observations, prompts, reflections and finished deliveries older than this many
    /// days are deleted daily.
    #[arg(long, env = "CUSP_RETENTION_DAYS", default_value_t = DEFAULT_RETENTION_DAYS, value_parser = parse_retention_days)]
    pub retention_days: u32,
    /// The public base URL Slack and HubSpot call, e.g. `https://cusp.example.com`
    /// (HubSpot signs the full URL).
    #[arg(long, env = "CUSP_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// At most this many HTTP connections open at once; one more is answered 503 and
    /// closed (a flood of idle clients cannot exhaust memory or file descriptors).
    #[arg(long, env = "CUSP_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = parse_max_connections)]
    pub max_connections: usize,
    /// Seconds a client has to send a request's line and headers, on a new connection
    /// or a kept-alive one between requests; then the connection is closed.
    #[arg(long, env = "CUSP_HTTP_HEADER_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs(), value_parser = parse_header_timeout)]
    pub http_header_timeout_secs: u64,
    /// Seconds to receive and answer a whole request, body included; then 408.
    #[arg(long, env = "CUSP_HTTP_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT.as_secs(), value_parser = parse_request_timeout)]
    pub http_request_timeout_secs: u64,
    /// Database connections open at most (default 8 on SQLite, 10 on PostgreSQL).
    #[arg(long, env = "CUSP_DB_MAX_CONNECTIONS", value_parser = parse_db_max_connections)]
    pub db_max_connections: Option<u32>,
    /// SQLite's page cache per connection, in KiB.
    #[arg(long, env = "CUSP_SQLITE_CACHE_KIB", default_value_t = DEFAULT_SQLITE_CACHE_KIB, value_parser = parse_sqlite_cache_kib)]
    pub sqlite_cache_kib: u32,
}

/// More database connections than this is surely a typo (and past PostgreSQL's default
/// `max_connections` of 100 for one replica anyway).
const MAX_DB_CONNECTIONS: u32 = 100;
/// SQLite's page cache per connection: 1 GiB at most.
const MAX_SQLITE_CACHE_KIB: u32 = 1_048_576;
/// Below this SQLite would re-read the inbox's index pages for every claim.
const MIN_SQLITE_CACHE_KIB: u32 = 64;

fn parse_db_max_connections(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_DB_CONNECTIONS).contains(&n) => Ok(n),
        _ => Err(format!(
            "CUSP_DB_MAX_CONNECTIONS must be a whole number from 1 to {MAX_DB_CONNECTIONS} (e.g. 8), got {s:?}"
        )),
    }
}

fn parse_sqlite_cache_kib(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(kib) if (MIN_SQLITE_CACHE_KIB..=MAX_SQLITE_CACHE_KIB).contains(&kib) => Ok(kib),
        _ => Err(format!(
            "CUSP_SQLITE_CACHE_KIB must be a whole number of KiB from {MIN_SQLITE_CACHE_KIB} to {MAX_SQLITE_CACHE_KIB} (e.g. {DEFAULT_SQLITE_CACHE_KIB}), got {s:?}"
        )),
    }
}

/// More than this is surely a typo (and past any descriptor limit).
const MAX_MAX_CONNECTIONS: usize = 1_000_000;
/// An hour: a longer wait for a request head only helps a slow client hold a connection.
const MAX_HTTP_TIMEOUT_SECS: u64 = 3_600;

fn parse_max_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_MAX_CONNECTIONS).contains(&n) => Ok(n),
        _ => Err(format!(
            "CUSP_MAX_CONNECTIONS must be a whole number from 1 to {MAX_MAX_CONNECTIONS} (e.g. {DEFAULT_MAX_CONNECTIONS}), got {s:?}"
        )),
    }
}

fn parse_header_timeout(s: &str) -> Result<u64, String> {
    parse_timeout_secs("CUSP_HTTP_HEADER_TIMEOUT_SECS", s)
}

fn parse_request_timeout(s: &str) -> Result<u64, String> {
    parse_timeout_secs("CUSP_HTTP_REQUEST_TIMEOUT_SECS", s)
}

fn parse_timeout_secs(name: &str, s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(secs) if (1..=MAX_HTTP_TIMEOUT_SECS).contains(&secs) => Ok(secs),
        _ => Err(format!(
            "{name} must be a whole number of seconds from 1 to {MAX_HTTP_TIMEOUT_SECS} (e.g. 10), got {s:?}"
        )),
    }
}

/// HubSpot webhook settings, present only when all required values are.
pub struct HubSpotConfig {
    pub client_secret: SecretString,
    pub access_token: SecretString,
    pub api_url: String,
    pub public_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither transport is configured.
    #[error(
        "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set. For Socket Mode (no public \
         URL), create an app-level token with the connections:write scope on your Slack app's \
         Basic Information page (App-Level Tokens) at https://api.slack.com/apps and set \
         SLACK_APP_TOKEN=xapp-…; for HTTP request URLs, copy the Signing Secret from the same \
         page (App Credentials) into SLACK_SIGNING_SECRET"
    )]
    MissingSigningSecret,
    #[error(
        "SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information → \
         App-Level Tokens at https://api.slack.com/apps, scope connections:write); the bot \
         token (xoxb-…) goes in SLACK_BOT_TOKEN"
    )]
    InvalidAppToken,
    #[error(
        "SLACK_BOT_TOKEN is not set. For one workspace, install the app there and copy the Bot \
         User OAuth Token (xoxb-…) from its OAuth & Permissions page at \
         https://api.slack.com/apps; to install cusp in many workspaces, set SLACK_CLIENT_ID, \
         SLACK_CLIENT_SECRET (Basic Information page) and CUSP_ENCRYPTION_KEY instead"
    )]
    MissingBotToken,
    #[error(
        "SLACK_BOT_TOKEN and SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are both set: choose one mode. \
         Keep SLACK_BOT_TOKEN to serve one workspace, or unset it to install cusp in many \
         workspaces with OAuth (/slack/install)"
    )]
    BothModes,
    #[error(transparent)]
    OAuth(#[from] oauth::OAuthConfigError),
    #[error(
        "HUBSPOT_CLIENT_SECRET is set but HUBSPOT_ACCESS_TOKEN is not: create a HubSpot private app with \
         crm.objects.deals.read and crm.objects.owners.read and set its token (or unset HUBSPOT_CLIENT_SECRET)"
    )]
    MissingHubSpotToken,
    #[error(
        "invalid listen address {0:?} in CUSP_ADDR: expected host:port, e.g. 0.0.0.0:3000, \
         localhost:3000 or [::]:3000"
    )]
    Addr(String),
    #[error("lexicon file {path}: {reason}")]
    Lexicon { path: PathBuf, reason: String },
}

/// Which workspaces `cusp serve` serves, and where their tokens come from.
pub enum WorkspaceMode {
    /// `SLACK_BOT_TOKEN`: one workspace, learned with `auth.test` at start.
    Single { bot_token: SecretString },
    /// `SLACK_CLIENT_ID` + `SLACK_CLIENT_SECRET`: every workspace that installs cusp
    /// through `/slack/install`, tokens sealed under `CUSP_ENCRYPTION_KEY`.
    OAuth(oauth::OAuthConfig),
}

impl std::fmt::Debug for WorkspaceMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkspaceMode::Single { .. } => f.write_str("Single { bot_token: [redacted] }"),
            WorkspaceMode::OAuth(config) => f.debug_tuple("OAuth").field(config).finish(),
        }
    }
}

/// Validated configuration of `cusp serve`.
pub struct ServeConfig {
    /// Empty in Socket Mode without a signing secret: `/slack/*` then answers 404.
    pub signing_secrets: Vec<SecretString>,
    /// Set: receive Slack over Socket Mode.
    pub app_token: Option<SecretString>,
    pub mode: WorkspaceMode,
    pub database_url: SecretString,
    /// `host:port`; the host may be a name, resolved when the server binds.
    pub addr: String,
    pub slack_api_url: String,
    /// How long observations, prompts and finished rows are kept.
    pub retention: Duration,
    pub webhook_secret: Option<SecretString>,
    pub hubspot: Option<HubSpotConfig>,
    /// `CUSP_PUBLIC_URL` without a trailing slash: the base of the OAuth `redirect_uri`
    /// (else built from the request's `Host`) and of the URL HubSpot signs.
    pub public_url: Option<String>,
    /// What HTTP clients may hold: connections, and time to send a request.
    pub http_limits: HttpLimits,
    /// Database connections and SQLite's page cache.
    pub pool_limits: PoolLimits,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field(
                "signing_secrets",
                &format_args!("[{} redacted]", self.signing_secrets.len()),
            )
            .field("app_token", &self.app_token.as_ref().map(|_| "[redacted]"))
            .field("mode", &self.mode)
            .field(
                "database_url",
                &crate::store::redact_url(self.database_url.expose_secret()),
            )
            .field("addr", &self.addr)
            .field("slack_api_url", &self.slack_api_url)
            .field("http_limits", &self.http_limits)
            .field("pool_limits", &self.pool_limits)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl ServeArgs {
    pub fn validate(&self) -> Result<ServeConfig, ConfigError> {
        let signing_secrets: Vec<SecretString> = self
            .signing_secret
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        let app_token = match non_empty(self.app_token.as_deref()) {
            Some(token) if token.starts_with("xapp-") => Some(SecretString::from(token.to_owned())),
            Some(_) => return Err(ConfigError::InvalidAppToken),
            None => None,
        };
        if signing_secrets.is_empty() && app_token.is_none() {
            return Err(ConfigError::MissingSigningSecret);
        }
        let mode = match (non_empty(self.bot_token.as_deref()), self.oauth.validate()?) {
            (Some(_), Some(_)) => return Err(ConfigError::BothModes),
            (Some(token), None) => WorkspaceMode::Single {
                bot_token: SecretString::from(token.to_owned()),
            },
            (None, Some(oauth)) => WorkspaceMode::OAuth(oauth),
            (None, None) => return Err(ConfigError::MissingBotToken),
        };
        let addr = match (non_empty(self.addr.as_deref()), self.port) {
            (Some(addr), _) => validate_addr(addr)?,
            (None, Some(port)) => format!("0.0.0.0:{port}"),
            (None, None) => DEFAULT_ADDR.to_owned(),
        };
        Ok(ServeConfig {
            signing_secrets,
            app_token,
            mode,
            database_url: SecretString::from(self.database.database_url.clone()),
            addr,
            slack_api_url: self.slack_api_url.trim_end_matches('/').to_owned(),
            retention: Duration::from_secs(u64::from(self.retention_days) * 24 * 3600),
            webhook_secret: self
                .webhook_secret
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| SecretString::from(s.to_owned())),
            hubspot: self.hubspot()?,
            public_url: self.public_url(),
            http_limits: HttpLimits {
                max_connections: self.max_connections,
                header_timeout: Duration::from_secs(self.http_header_timeout_secs),
                request_timeout: Duration::from_secs(self.http_request_timeout_secs),
            },
            pool_limits: PoolLimits {
                max_connections: self.db_max_connections,
                sqlite_cache_kib: self.sqlite_cache_kib,
            },
        })
    }
}

/// `host:port` with a numeric port and a non-empty host; the host is resolved at bind time
/// (so `localhost:3000` works), and an IPv6 literal needs brackets (`[::1]:3000`).
fn validate_addr(addr: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError::Addr(addr.to_owned());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let bare_ipv6 = host.contains(':') && !(host.starts_with('[') && host.ends_with(']'));
    if host.is_empty() || bare_ipv6 || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(addr.to_owned())
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|s| !s.is_empty())
}

impl ServeArgs {
    fn hubspot(&self) -> Result<Option<HubSpotConfig>, ConfigError> {
        let Some(secret) = non_empty(self.hubspot_client_secret.as_deref()) else {
            return Ok(None);
        };
        let token = non_empty(self.hubspot_access_token.as_deref())
            .ok_or(ConfigError::MissingHubSpotToken)?;
        Ok(Some(HubSpotConfig {
            client_secret: SecretString::from(secret.to_owned()),
            access_token: SecretString::from(token.to_owned()),
            api_url: self.hubspot_api_url.trim_end_matches('/').to_owned(),
            public_url: self.public_url(),
        }))
    }

    fn public_url(&self) -> Option<String> {
        non_empty(self.public_url.as_deref()).map(|u| u.trim_end_matches('/').to_owned())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_lexicon_that_is_not_utf8_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lexicon.txt");
        std::fs::write(
            &path,
            b"# ok\nquota_pressure 1 bonus\nclosing_push 1 sign \xff now\n",
        )
        .unwrap();
        let err = EngineArgs {
            lexicon: Some(path.clone()),
        }
        .load()
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 3: not valid UTF-8"), "{err}");
    }

    fn args(secret: Option<&str>, token: Option<&str>) -> ServeArgs {
        ServeArgs {
            signing_secret: secret.map(String::from),
            app_token: None,
            bot_token: token.map(String::from),
            oauth: oauth::OAuthArgs::default(),
            database: DatabaseArgs {
                database_url: DEFAULT_DATABASE_URL.into(),
            },
            addr: None,
            port: None,
            retention_days: DEFAULT_RETENTION_DAYS,
            slack_api_url: "http://127.0.0.1:9/api/".into(),
            engine: EngineArgs { lexicon: None },
            webhook_secret: Some("whsec-secret".into()),
            hubspot_client_secret: None,
            hubspot_access_token: None,
            hubspot_api_url: crate::hubspot::DEFAULT_API_URL.into(),
            public_url: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            http_header_timeout_secs: DEFAULT_HEADER_TIMEOUT.as_secs(),
            http_request_timeout_secs: DEFAULT_REQUEST_TIMEOUT.as_secs(),
            db_max_connections: None,
            sqlite_cache_kib: DEFAULT_SQLITE_CACHE_KIB,
        }
    }

    #[test]
    fn pool_limits_are_bounded_and_name_their_variable() {
        assert_eq!(parse_db_max_connections(" 4 "), Ok(4));
        assert_eq!(parse_db_max_connections("100"), Ok(100));
        for bad in ["0", "-1", "many", "101", "2.5", ""] {
            let err = parse_db_max_connections(bad).unwrap_err();
            assert!(err.contains("CUSP_DB_MAX_CONNECTIONS"), "{bad}: {err}");
        }
        assert_eq!(parse_sqlite_cache_kib("64"), Ok(64));
        assert_eq!(parse_sqlite_cache_kib(" 1048576 "), Ok(1_048_576));
        for bad in ["0", "63", "1048577", "-2000", "2MiB", ""] {
            let err = parse_sqlite_cache_kib(bad).unwrap_err();
            assert!(err.contains("CUSP_SQLITE_CACHE_KIB"), "{bad}: {err}");
        }
        let mut a = args(Some("s"), Some("xoxb-1"));
        assert_eq!(a.validate().unwrap().pool_limits, PoolLimits::default());
        a.db_max_connections = Some(3);
        a.sqlite_cache_kib = 512;
        assert_eq!(
            a.validate().unwrap().pool_limits,
            PoolLimits {
                max_connections: Some(3),
                sqlite_cache_kib: 512
            }
        );
    }

    #[test]
    fn http_limits_are_bounded_and_name_their_variable() {
        assert_eq!(parse_max_connections(" 64 "), Ok(64));
        for bad in ["0", "-1", "lots", "1000001"] {
            let err = parse_max_connections(bad).unwrap_err();
            assert!(err.contains("CUSP_MAX_CONNECTIONS"), "{err}");
        }
        assert_eq!(parse_header_timeout("5"), Ok(5));
        for bad in ["0", "1.5", "3601", ""] {
            let err = parse_header_timeout(bad).unwrap_err();
            assert!(err.contains("CUSP_HTTP_HEADER_TIMEOUT_SECS"), "{err}");
            let err = parse_request_timeout(bad).unwrap_err();
            assert!(err.contains("CUSP_HTTP_REQUEST_TIMEOUT_SECS"), "{err}");
        }
        let config = args(Some("s"), Some("xoxb-1")).validate().unwrap();
        assert_eq!(config.http_limits, HttpLimits::default());
    }

    #[test]
    fn missing_signing_secret_names_the_variable_and_where_slack_shows_it() {
        let err = args(None, Some("xoxb-1"))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SLACK_SIGNING_SECRET") && err.contains("Basic Information"),
            "{err}"
        );
        let err = args(Some(" , "), Some("xoxb-1")).validate().unwrap_err();
        assert!(matches!(err, ConfigError::MissingSigningSecret));
    }

    #[test]
    fn an_app_token_replaces_the_signing_secret_and_must_be_app_level() {
        let mut a = args(None, Some("xoxb-1"));
        let err = a.validate().unwrap_err().to_string();
        assert!(
            err.contains("SLACK_APP_TOKEN") && err.contains("SLACK_SIGNING_SECRET"),
            "{err}"
        );
        a.app_token = Some("xapp-1-A1-secret".into());
        let config = a.validate().unwrap();
        assert!(config.signing_secrets.is_empty());
        assert_eq!(
            config.app_token.as_ref().map(|t| t.expose_secret()),
            Some("xapp-1-A1-secret")
        );
        assert!(!format!("{config:?}").contains("xapp-1-A1-secret"));
        a.app_token = Some("xoxb-not-an-app-token".into());
        let err = a.validate().unwrap_err();
        assert!(matches!(err, ConfigError::InvalidAppToken));
        assert!(err.to_string().contains("xapp-"), "{err}");
        a.signing_secret = Some("s".into());
        a.app_token = Some(" ".into());
        assert!(a.validate().unwrap().app_token.is_none());
    }

    #[test]
    fn comma_separated_secrets_allow_rotation() {
        let config = args(Some("new, old"), Some("xoxb-1")).validate().unwrap();
        let secrets: Vec<&str> = config
            .signing_secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(secrets, ["new", "old"]);
        assert_eq!(config.slack_api_url, "http://127.0.0.1:9/api");
    }

    #[test]
    fn port_is_honoured_when_no_address_is_given() {
        let mut a = args(Some("s"), Some("xoxb-1"));
        a.port = Some(8080);
        assert_eq!(a.validate().unwrap().addr, "0.0.0.0:8080");
        a.addr = Some("127.0.0.1:9000".into());
        assert_eq!(a.validate().unwrap().addr, "127.0.0.1:9000");
    }

    #[test]
    fn listen_addresses_take_host_names_and_refuse_nonsense() {
        let mut a = args(Some("s"), Some("xoxb-1"));
        for good in ["localhost:3000", "[::1]:3000", "0.0.0.0:80"] {
            a.addr = Some(good.into());
            assert_eq!(a.validate().unwrap().addr, good);
        }
        for bad in [
            "localhost",
            ":3000",
            "localhost:http",
            "::1:3000",
            "host:99999",
        ] {
            a.addr = Some(bad.into());
            let err = a.validate().unwrap_err().to_string();
            assert!(
                err.contains("CUSP_ADDR") && err.contains("host:port"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn retention_days_must_be_a_sensible_number() {
        assert_eq!(parse_retention_days("30"), Ok(30));
        for bad in ["0", "-1", "forever", "36501"] {
            let err = parse_retention_days(bad).unwrap_err();
            assert!(err.contains("CUSP_RETENTION_DAYS"), "{err}");
        }
        let config = args(Some("s"), Some("xoxb-1")).validate().unwrap();
        assert_eq!(config.retention, Duration::from_secs(365 * 24 * 3600));
    }

    #[test]
    fn hubspot_needs_both_its_secret_and_a_token() {
        let mut a = args(Some("s"), Some("xoxb-1"));
        assert!(a.validate().unwrap().hubspot.is_none());
        a.hubspot_client_secret = Some("hs-secret".into());
        assert!(matches!(
            a.validate().unwrap_err(),
            ConfigError::MissingHubSpotToken
        ));
        a.hubspot_access_token = Some("pat-1".into());
        a.public_url = Some("https://cusp.example.com/".into());
        let hubspot = a.validate().unwrap().hubspot.unwrap();
        assert_eq!(
            hubspot.public_url.as_deref(),
            Some("https://cusp.example.com")
        );
    }

    const KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

    fn oauth(a: &mut ServeArgs, key: Option<&str>) {
        a.oauth = oauth::OAuthArgs {
            client_id: Some("1111.2222".into()),
            client_secret: Some("client-s3cret".into()),
            authorize_url: crate::slack::oauth::DEFAULT_AUTHORIZE_URL.into(),
            encryption_key: key.map(String::from),
        };
    }

    #[test]
    fn client_credentials_without_a_bot_token_mean_oauth_mode() {
        let mut a = args(Some("s"), None);
        let err = a.validate().unwrap_err().to_string();
        assert!(
            err.contains("SLACK_BOT_TOKEN") && err.contains("SLACK_CLIENT_ID"),
            "names both modes: {err}"
        );
        oauth(&mut a, Some(KEY));
        a.public_url = Some("https://cusp.example.com/".into());
        let config = a.validate().unwrap();
        assert!(matches!(config.mode, WorkspaceMode::OAuth(_)));
        assert_eq!(
            config.public_url.as_deref(),
            Some("https://cusp.example.com")
        );
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("client-s3cret") && !shown.contains(KEY),
            "{shown}"
        );
    }

    #[test]
    fn oauth_mode_without_a_key_refuses_to_start_and_says_why() {
        let mut a = args(Some("s"), None);
        oauth(&mut a, None);
        let err = a.validate().unwrap_err().to_string();
        assert!(
            err.contains("CUSP_ENCRYPTION_KEY") && err.contains("openssl rand -base64 32"),
            "{err}"
        );
    }

    #[test]
    fn a_bot_token_and_client_credentials_together_ask_to_choose_one_mode() {
        let mut a = args(Some("s"), Some("xoxb-1"));
        oauth(&mut a, Some(KEY));
        let err = a.validate().unwrap_err();
        assert!(matches!(err, ConfigError::BothModes));
        assert!(err.to_string().contains("choose one mode"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let mut a = args(Some("topsecret"), Some("xoxb-very-secret"));
        a.database.database_url = "postgres://app:dbpass@db/cusp".into();
        let shown = format!("{:?}", a.validate().unwrap());
        for secret in ["topsecret", "xoxb-very-secret", "dbpass", "whsec-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
