//! Settings of the OAuth install flow, flattened into `ServeArgs`: with client
//! credentials and no `SLACK_BOT_TOKEN`, `cusp serve` runs in OAuth mode and builds
//! `state::InstallFlow` from [`OAuthConfig`] (docs/architecture.md, "Workspaces").

use std::fmt;

use secrecy::SecretString;

use crate::slack::oauth::DEFAULT_AUTHORIZE_URL;
use crate::store::{KeyError, Keyring};

#[derive(clap::Args, Clone, Default)]
pub struct OAuthArgs {
    /// The app's Client ID (Basic Information page); with the secret, turns on OAuth installs.
    #[arg(long, env = "SLACK_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The app's Client Secret.
    #[arg(long, env = "SLACK_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Slack's authorize page (tests point it elsewhere).
    #[arg(long, env = "SLACK_OAUTH_AUTHORIZE_URL", default_value = DEFAULT_AUTHORIZE_URL)]
    pub authorize_url: String,
    /// Comma-separated base64 keys that encrypt stored tokens; the first encrypts.
    #[arg(long, env = "CUSP_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthConfigError {
    #[error(
        "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together: set both (from the app's Basic \
         Information page at https://api.slack.com/apps) to install cusp with OAuth, or neither"
    )]
    HalfCredentials,
    #[error("OAuth installs store Slack tokens encrypted: {0}")]
    Key(#[from] KeyError),
    #[error(
        "SLACK_OAUTH_AUTHORIZE_URL must be an http:// or https:// URL, e.g. {DEFAULT_AUTHORIZE_URL}"
    )]
    AuthorizeUrl,
}

/// Validated OAuth settings; `Debug` shows no secret.
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    pub authorize_url: String,
    pub keyring: Keyring,
}

impl fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("authorize_url", &self.authorize_url)
            .field("keyring", &self.keyring)
            .finish()
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|s| !s.is_empty())
}

impl OAuthArgs {
    /// `None` when no client credentials are set (single-workspace mode). With them, a
    /// missing or bad `CUSP_ENCRYPTION_KEY` is an error: OAuth mode refuses to start.
    pub fn validate(&self) -> Result<Option<OAuthConfig>, OAuthConfigError> {
        let (id, secret) = match (
            non_empty(self.client_id.as_deref()),
            non_empty(self.client_secret.as_deref()),
        ) {
            (None, None) => return Ok(None),
            (Some(id), Some(secret)) => (id, secret),
            _ => return Err(OAuthConfigError::HalfCredentials),
        };
        let authorize_url = self.authorize_url.trim();
        if !(authorize_url.starts_with("https://") || authorize_url.starts_with("http://")) {
            return Err(OAuthConfigError::AuthorizeUrl);
        }
        let keyring = Keyring::from_env_value(self.encryption_key.as_deref())?;
        Ok(Some(OAuthConfig {
            client_id: id.to_owned(),
            client_secret: SecretString::from(secret.to_owned()),
            authorize_url: authorize_url.to_owned(),
            keyring,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

    fn args(id: Option<&str>, secret: Option<&str>, key: Option<&str>) -> OAuthArgs {
        OAuthArgs {
            client_id: id.map(String::from),
            client_secret: secret.map(String::from),
            authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            encryption_key: key.map(String::from),
        }
    }

    #[test]
    fn no_credentials_means_single_workspace_mode() {
        assert!(args(None, None, None).validate().unwrap().is_none());
        assert!(
            args(Some(" "), None, Some(KEY))
                .validate()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn oauth_mode_refuses_to_start_without_a_key_and_says_why() {
        let err = args(Some("1.2"), Some("s3cret"), None)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CUSP_ENCRYPTION_KEY") && err.contains("openssl rand -base64 32"),
            "{err}"
        );
        let err = args(Some("1.2"), None, Some(KEY)).validate().unwrap_err();
        assert!(matches!(err, OAuthConfigError::HalfCredentials));
        let mut bad_url = args(Some("1.2"), Some("s3cret"), Some(KEY));
        bad_url.authorize_url = "slack.com/oauth".into();
        assert!(matches!(
            bad_url.validate().unwrap_err(),
            OAuthConfigError::AuthorizeUrl
        ));
    }

    #[test]
    fn a_complete_configuration_hides_its_secrets() {
        let config = args(Some("1.2"), Some("s3cret-value"), Some(KEY))
            .validate()
            .unwrap()
            .unwrap();
        assert_eq!(config.client_id, "1.2");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret-value") && !shown.contains(KEY),
            "{shown}"
        );
    }
}
