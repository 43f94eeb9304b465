//! The fake's `oauth.v2.access`, kept apart from the Web API methods above it.
//!
//! Stateful like Slack: a test grants a code (`grant_oauth_code`) or a refresh token
//! (`grant_oauth_refresh`) together with the answer Slack would give; a code works once
//! and only with the `redirect_uri` it was granted for, a refresh token works once, and
//! the client credentials must come in HTTP Basic auth. Everything else gets Slack's
//! error codes (`invalid_code`, `bad_redirect_uri`, `invalid_client_id`,
//! `bad_client_secret`, `invalid_refresh_token`).

use std::collections::{HashMap, HashSet};

use axum::http::{HeaderMap, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::workspaces::FakeWorkspace;
use super::{FakeSlack, Inner, Shared, err, ok, param_str};

pub const METHOD: &str = "oauth.v2.access";
pub const OAUTH_CLIENT_ID: &str = "1111.2222";
pub const OAUTH_CLIENT_SECRET: &str = "fake-client-secret";

/// What `oauth.v2.access` answers for one code or refresh token.
#[derive(Debug, Clone)]
pub struct OAuthGrant {
    pub team: Option<(String, String)>,
    pub enterprise: Option<(String, String)>,
    pub is_enterprise_install: bool,
    pub bot_user_id: Option<String>,
    pub access_token: String,
    pub scope: String,
    pub installer: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
}

impl OAuthGrant {
    /// A plain workspace install without token rotation.
    pub fn workspace(team_id: &str, team_name: &str, token: &str) -> OAuthGrant {
        OAuthGrant {
            team: Some((team_id.into(), team_name.into())),
            enterprise: None,
            is_enterprise_install: false,
            bot_user_id: Some(format!("U_BOT_{team_id}")),
            access_token: token.into(),
            scope: "commands,chat:write".into(),
            installer: "U_INSTALLER".into(),
            refresh_token: None,
            expires_in: None,
        }
    }

    /// The same with token rotation (12 hours, as Slack issues them).
    pub fn rotating(mut self, refresh_token: &str) -> OAuthGrant {
        self.refresh_token = Some(refresh_token.into());
        self.expires_in = Some(43_200);
        self
    }

    fn to_json(&self) -> Value {
        let named = |n: &Option<(String, String)>| match n {
            Some((id, name)) => json!({ "id": id, "name": name }),
            None => Value::Null,
        };
        let mut body = json!({
            "app_id": "A_CUSP", "token_type": "bot", "access_token": self.access_token,
            "scope": self.scope, "bot_user_id": self.bot_user_id,
            "team": named(&self.team), "enterprise": named(&self.enterprise),
            "is_enterprise_install": self.is_enterprise_install,
            "authed_user": { "id": self.installer, "scope": "", "token_type": "user" },
        });
        if let (Some(obj), Some(refresh), Some(expires)) =
            (body.as_object_mut(), &self.refresh_token, self.expires_in)
        {
            obj.insert("refresh_token".into(), json!(refresh));
            obj.insert("expires_in".into(), json!(expires));
        }
        body
    }
}

#[derive(Default)]
pub(super) struct OAuthFake {
    /// code → (answer, the redirect_uri it was issued for).
    codes: HashMap<String, (OAuthGrant, String)>,
    used_codes: HashSet<String>,
    /// refresh token → answer.
    refresh_tokens: HashMap<String, OAuthGrant>,
}

impl OAuthGrant {
    /// The workspace the issued bot token serves from now on (a reinstall or refresh
    /// replaces the token it had).
    fn served_workspace(&self) -> Option<FakeWorkspace> {
        let (team_id, team_name) = self.team.clone()?;
        let mut workspace = FakeWorkspace::new(&team_id, &self.access_token);
        workspace.team_name = team_name;
        if let Some(bot) = &self.bot_user_id {
            workspace.bot_user_id = bot.clone();
        }
        Some(workspace)
    }
}

impl FakeSlack {
    /// Makes `code` exchangeable once, with this `redirect_uri`, for `grant`.
    pub fn grant_oauth_code(&self, code: &str, redirect_uri: &str, grant: OAuthGrant) {
        self.lock()
            .oauth
            .codes
            .insert(code.into(), (grant, redirect_uri.into()));
    }

    /// Revokes a bot token: the Web API answers `invalid_auth` to it from now on.
    pub fn revoke_token(&self, token: &str) {
        self.lock().directory.revoke(token);
    }

    /// Makes `refresh_token` usable once, answered with `grant` (the new tokens).
    pub fn grant_oauth_refresh(&self, refresh_token: &str, grant: OAuthGrant) {
        self.lock()
            .oauth
            .refresh_tokens
            .insert(refresh_token.into(), grant);
    }
}

/// `Basic base64(id:secret)` → (id, secret).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

pub(super) fn answer(state: &Shared, headers: &HeaderMap, p: &Map<String, Value>) -> Response {
    match basic_credentials(headers) {
        Some((id, _)) if id != OAUTH_CLIENT_ID => return err("invalid_client_id"),
        Some((_, secret)) if secret != OAUTH_CLIENT_SECRET => return err("bad_client_secret"),
        Some(_) => {}
        None => return err("invalid_client_id"),
    }
    let mut inner = state.lock().expect("FakeSlack state");
    let oauth = &mut inner.oauth;
    if param_str(p, "grant_type").as_deref() == Some("refresh_token") {
        return match param_str(p, "refresh_token").and_then(|t| oauth.refresh_tokens.remove(&t)) {
            Some(grant) => issue(&mut inner, &grant),
            None => err("invalid_refresh_token"),
        };
    }
    let Some(code) = param_str(p, "code") else {
        return err("invalid_code");
    };
    if oauth.used_codes.contains(&code) {
        return err("invalid_code");
    }
    let Some((grant, redirect_uri)) = oauth.codes.get(&code).cloned() else {
        return err("invalid_code");
    };
    if param_str(p, "redirect_uri").as_deref() != Some(redirect_uri.as_str()) {
        return err("bad_redirect_uri");
    }
    oauth.codes.remove(&code);
    oauth.used_codes.insert(code);
    issue(&mut inner, &grant)
}

/// Answers with `grant`, whose bot token the Web API accepts from now on, for its team.
fn issue(inner: &mut Inner, grant: &OAuthGrant) -> Response {
    if let Some(workspace) = grant.served_workspace() {
        inner.directory.serve(workspace);
    }
    ok(grant.to_json())
}
