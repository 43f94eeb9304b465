//! The OAuth v2 install flow's two pages: `GET /slack/install` (an "Add to Slack" link
//! carrying a fresh single-use `state`) and `GET /slack/oauth_redirect` (checks the state,
//! exchanges the code, stores the installation with its tokens sealed).
//!
//! [`oauth_router`] is self-contained (its own [`OAuthState`]); `server::router` merges
//! it in OAuth mode (when `AppState::install_flow` is set). Besides the stored `state`, the
//! browser that started the install carries it in a short-lived cookie, and the redirect
//! must come back with both (Bolt's "state verification"): a link with someone else's
//! state does not install anything.
//!
//! Every page is small static HTML in which every value is escaped. Each rejection names
//! its kind of failure in one place, [`Rejection::status`], and `ApiError` picks the
//! status code for that kind, as for every route.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::error::ApiError;
use crate::slack::oauth::{BOT_SCOPES, OAuthAccess, OAuthClient, OAuthError, authorize_url};
use crate::state::Workspaces;
use crate::store::{
    InstallationKey, Keyring, NewInstallation, SaveOutcome, StateCheck, Store, StoreError,
};

pub const INSTALL_PATH: &str = "/slack/install";
pub const REDIRECT_PATH: &str = "/slack/oauth_redirect";
/// The cookie that ties a `state` to the browser that asked for it.
const STATE_COOKIE: &str = "cusp_oauth_state";
/// How much of Slack's `error` parameter a page repeats.
const MAX_ECHOED_ERROR: usize = 64;

/// What the install pages need; cheap to clone.
#[derive(Clone, Debug)]
pub struct OAuthState {
    store: Store,
    keyring: Arc<Keyring>,
    client: Arc<OAuthClient>,
    /// Slack's authorize page (`SLACK_OAUTH_AUTHORIZE_URL`).
    authorize_url: String,
    /// `CUSP_PUBLIC_URL` without a trailing slash; `None` builds it from `Host`.
    public_url: Option<String>,
    /// The workspaces the server resolves: a reinstall drops the old token from their
    /// cache at once. `None` when the pages run on their own (tests).
    workspaces: Option<Arc<Workspaces>>,
}

impl OAuthState {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        client: Arc<OAuthClient>,
        authorize_url: &str,
        public_url: Option<&str>,
    ) -> OAuthState {
        OAuthState {
            store,
            keyring,
            client,
            authorize_url: authorize_url.to_owned(),
            public_url: public_url
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .filter(|u| !u.is_empty()),
            workspaces: None,
        }
    }

    /// Tells `workspaces` about every (re)install, so the new token is used at once.
    pub fn forgetting(mut self, workspaces: Arc<Workspaces>) -> OAuthState {
        self.workspaces = Some(workspaces);
        self
    }
}

/// `GET /slack/install` and `GET /slack/oauth_redirect`, ready to merge into the main
/// router (whatever its state type).
pub fn oauth_router<S: Clone + Send + Sync + 'static>(state: OAuthState) -> Router<S> {
    Router::new()
        .route(INSTALL_PATH, get(install))
        .route(REDIRECT_PATH, get(redirect))
        .with_state(state)
}

/// Why an install did not complete; each is a page a person reads.
#[derive(Debug)]
enum Rejection {
    /// The public URL cannot be known: no `CUSP_PUBLIC_URL` and no usable `Host`.
    NoPublicUrl,
    /// The person pressed "Cancel" on Slack's page.
    Denied,
    /// Slack sent another `error` parameter.
    SlackError(String),
    MissingState,
    /// The state was not issued to this browser (no or another cookie).
    ForeignState,
    UnknownState,
    ExpiredState,
    ReusedState,
    MissingCode,
    /// Slack refused the code or the redirect URI: starting over helps.
    CodeRefused(OAuthError),
    /// Slack refused our client credentials: the operator must fix the configuration.
    Misconfigured(OAuthError),
    /// Slack could not be reached or answered oddly.
    SlackUnavailable(OAuthError),
    /// Slack's answer had no bot: the app has no bot user.
    NoBot,
    /// An Enterprise Grid org installed cusp org-wide: not served (see `new_installation`).
    OrgWide,
    Database(String),
}

impl Rejection {
    /// What kind of failure this is; `ApiError` turns that into the page's status code,
    /// as it does for every other route.
    fn status(&self) -> StatusCode {
        let kind = match self {
            Rejection::Denied => ApiError::Forbidden(self.explanation()),
            Rejection::NoPublicUrl
            | Rejection::SlackError(_)
            | Rejection::MissingState
            | Rejection::ForeignState
            | Rejection::UnknownState
            | Rejection::ExpiredState
            | Rejection::ReusedState
            | Rejection::MissingCode
            | Rejection::OrgWide
            | Rejection::CodeRefused(_) => ApiError::BadRequest(self.explanation()),
            Rejection::Misconfigured(_) | Rejection::NoBot => ApiError::Internal,
            Rejection::SlackUnavailable(_) => ApiError::Upstream(self.explanation()),
            Rejection::Database(_) => ApiError::Unavailable,
        };
        kind.status()
    }

    fn title(&self) -> &'static str {
        match self {
            Rejection::Denied => "Installation cancelled",
            Rejection::Misconfigured(_)
            | Rejection::NoBot
            | Rejection::SlackUnavailable(_)
            | Rejection::Database(_)
            | Rejection::OrgWide
            | Rejection::NoPublicUrl => "cusp could not be installed",
            _ => "This install link is not valid",
        }
    }

    fn explanation(&self) -> String {
        let restart = "Start again from the install page.";
        match self {
            Rejection::NoPublicUrl => "cusp does not know its public address. The operator sets \
                 CUSP_PUBLIC_URL (e.g. https://cusp.example.com)."
                .into(),
            Rejection::Denied => {
                "cusp was not added to the workspace. You can install it any time from the \
                 install page."
                    .into()
            }
            Rejection::SlackError(code) => format!("Slack reported “{code}”. {restart}"),
            Rejection::MissingState => format!("The link has no state parameter. {restart}"),
            Rejection::ForeignState => format!(
                "This install was started in another browser (or cookies are blocked). {restart}"
            ),
            Rejection::UnknownState => format!("This install link is unknown. {restart}"),
            Rejection::ExpiredState => {
                format!("This install link is older than ten minutes. {restart}")
            }
            Rejection::ReusedState => format!("This install link was already used. {restart}"),
            Rejection::MissingCode => format!("Slack sent no authorization code. {restart}"),
            Rejection::CodeRefused(err) => format!("{err}. {restart}"),
            Rejection::Misconfigured(err) => format!("{err}."),
            Rejection::SlackUnavailable(_) => {
                "Slack could not be reached. Try again in a minute.".into()
            }
            Rejection::NoBot => "Slack's answer had no bot user: give the app a bot user \
                 (App Home) and install again."
                .into(),
            Rejection::Database(_) => {
                "cusp's database is unavailable. Try again in a minute.".into()
            }
            Rejection::OrgWide => "cusp is installed workspace by workspace, not for a whole \
                 Enterprise Grid org. An org admin removes the org-wide installation and adds \
                 cusp to each workspace that wants it."
                .into(),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match &self {
            Rejection::Misconfigured(err) | Rejection::SlackUnavailable(err) => {
                tracing::error!(error = %err, "OAuth install failed");
            }
            Rejection::Database(err) => tracing::error!(error = %err, "OAuth install failed"),
            Rejection::NoBot => tracing::error!("OAuth install: oauth.v2.access had no bot"),
            Rejection::OrgWide => tracing::warn!(
                "OAuth install: an org-wide Enterprise Grid install was refused (not served; \
                 keep org_deploy_enabled false in the manifest)"
            ),
            _ => tracing::info!(reason = ?self.title(), "OAuth install rejected"),
        }
        let body = format!(
            "<p>{}</p>\n<p><a href=\"{}\">Install page</a></p>",
            escape_html(&self.explanation()),
            INSTALL_PATH
        );
        page(self.status(), self.title(), &body)
    }
}

impl From<StoreError> for Rejection {
    fn from(err: StoreError) -> Self {
        Rejection::Database(err.to_string())
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole HTML page; `body` must already be escaped. The page loads nothing, is never
/// cached, and never sends the URL (which carries the code and state) as a referrer.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>\
         body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5}}\
         a.button{{display:inline-block;padding:.6rem 1.2rem;border-radius:.4rem;background:#4a154b;color:#fff;text-decoration:none;font-weight:600}}\
         code{{background:#f4f4f4;padding:.1rem .3rem}}</style>\n</head>\n<body>\n<main>\n<h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n",
        title = escape_html(title),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `CUSP_PUBLIC_URL` + path, or `https://{Host}` + path. A `Host` that is not a plain
/// host name (and port) is refused rather than written into a URL.
fn redirect_uri(state: &OAuthState, headers: &HeaderMap) -> Result<String, Rejection> {
    if let Some(base) = &state.public_url {
        return Ok(format!("{base}{REDIRECT_PATH}"));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .ok_or(Rejection::NoPublicUrl)?;
    Ok(format!("https://{host}{REDIRECT_PATH}"))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `GET /slack/install`: a page with an "Add to Slack" link whose `state` is stored (and
/// set as a cookie) for ten minutes.
async fn install(State(state): State<OAuthState>, headers: HeaderMap) -> Response {
    match install_page(&state, &headers).await {
        Ok(response) => response,
        Err(rejection) => rejection.into_response(),
    }
}

async fn install_page(state: &OAuthState, headers: &HeaderMap) -> Result<Response, Rejection> {
    let redirect_uri = redirect_uri(state, headers)?;
    let oauth_state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    state
        .store
        .create_oauth_state(&oauth_state, &redirect_uri, now_ms())
        .await?;
    let url = authorize_url(
        &state.authorize_url,
        state.client.client_id(),
        BOT_SCOPES,
        &redirect_uri,
        &oauth_state,
    );
    let body = format!(
        "<p>cusp coaches your sales team toward customer-centric selling, in the Slack \
         channels where deals are discussed.</p>\n\
         <p><a class=\"button\" href=\"{}\">Add to Slack</a></p>\n\
         <p>The link is valid for ten minutes.</p>",
        escape_html(&url)
    );
    let mut response = page(StatusCode::OK, "Install cusp", &body);
    let secure = if redirect_uri.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{STATE_COOKIE}={oauth_state}; Path={REDIRECT_PATH}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        crate::store::installations::OAUTH_STATE_TTL.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct RedirectQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The state cookie's value, if the browser sent one.
fn state_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == STATE_COOKIE).then_some(value)
        })
}

/// Clears the state cookie (set on every answer of the redirect: the state is spent).
fn clear_cookie(mut response: Response) -> Response {
    let cookie =
        format!("{STATE_COOKIE}=; Path={REDIRECT_PATH}; Max-Age=0; HttpOnly; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /slack/oauth_redirect?code=…&state=…` (or `?error=access_denied&state=…`).
async fn redirect(
    State(state): State<OAuthState>,
    headers: HeaderMap,
    query: Result<Query<RedirectQuery>, QueryRejection>,
) -> Response {
    // A query that does not parse is treated as one without parameters: the page then
    // says which one is missing.
    let query = query.map_or(
        RedirectQuery {
            code: None,
            state: None,
            error: None,
        },
        |Query(q)| q,
    );
    clear_cookie(match complete_install(&state, &headers, query).await {
        Ok(response) => response,
        Err(rejection) => rejection.into_response(),
    })
}

async fn complete_install(
    state: &OAuthState,
    headers: &HeaderMap,
    query: RedirectQuery,
) -> Result<Response, Rejection> {
    let oauth_state = query.state.filter(|s| !s.is_empty());
    let own_state = oauth_state
        .as_deref()
        .is_some_and(|s| state_cookie(headers) == Some(s));
    if let Some(error) = query.error {
        // The person cancelled (or Slack refused): their state is spent either way.
        if let (Some(s), true) = (&oauth_state, own_state) {
            state.store.consume_oauth_state(s, now_ms()).await?;
        }
        return Err(if error == "access_denied" {
            Rejection::Denied
        } else {
            // Slack's codes are short; anything longer is not worth echoing whole.
            Rejection::SlackError(error.chars().take(MAX_ECHOED_ERROR).collect())
        });
    }
    let oauth_state = oauth_state.ok_or(Rejection::MissingState)?;
    // Check the browser before using the state up: someone else's link must not spend
    // the state of the person who really is installing.
    if !own_state {
        return Err(Rejection::ForeignState);
    }
    let redirect_uri = match state
        .store
        .consume_oauth_state(&oauth_state, now_ms())
        .await?
    {
        StateCheck::Valid { redirect_uri } => redirect_uri,
        StateCheck::Unknown => return Err(Rejection::UnknownState),
        StateCheck::Expired => return Err(Rejection::ExpiredState),
        StateCheck::Reused => return Err(Rejection::ReusedState),
    };
    let code = query
        .code
        .filter(|c| !c.is_empty())
        .ok_or(Rejection::MissingCode)?;
    let access = state
        .client
        .exchange_code(&code, &redirect_uri)
        .await
        .map_err(|err| match err {
            OAuthError::InvalidCode | OAuthError::BadRedirectUri => Rejection::CodeRefused(err),
            OAuthError::InvalidClient { .. } | OAuthError::InvalidConfig(_) => {
                Rejection::Misconfigured(err)
            }
            other => Rejection::SlackUnavailable(other),
        })?;
    let now = now_ms();
    let installation = new_installation(access, now)?;
    let outcome = state
        .store
        .save_installation(&state.keyring, &installation, now)
        .await
        .map_err(|err| Rejection::Database(err.to_string()))?;
    if let Some(workspaces) = &state.workspaces {
        workspaces.forget_installation(&installation.key);
    }
    tracing::info!(
        installation = %installation.key,
        reinstall = outcome == SaveOutcome::Reinstalled,
        "cusp installed"
    );
    let name = installation
        .team_name
        .as_deref()
        .or(installation.enterprise_name.as_deref())
        .unwrap_or("your workspace");
    let verb = match outcome {
        SaveOutcome::Installed => "is installed in",
        SaveOutcome::Reinstalled => "is installed again in",
    };
    let body = format!(
        "<p>cusp {verb} <strong>{}</strong>.</p>\n\
         <p>Next step: invite cusp to a channel where your team discusses deals. In that \
         channel, type <code>/invite @cusp</code>.</p>\n\
         <p>Then try <code>/cusp help</code>.</p>",
        escape_html(name)
    );
    Ok(page(StatusCode::OK, "cusp is installed", &body))
}

/// The row an `oauth.v2.access` answer becomes. An org-wide install is refused: the
/// workers visit workspace-level installations (a team id per row), so the org's
/// workspaces would have their events acknowledged and never handled. A workspace of a
/// Grid org installs on its own and is keyed by enterprise id and team id.
fn new_installation(access: OAuthAccess, now_ms: i64) -> Result<NewInstallation, Rejection> {
    if access.is_enterprise_install {
        return Err(Rejection::OrgWide);
    }
    let bot_user_id = access.bot_user_id.ok_or(Rejection::NoBot)?;
    let enterprise_id = access.enterprise.as_ref().map(|e| e.id.as_str());
    let team_id = match &access.team {
        Some(team) => team.id.as_str(),
        None => {
            return Err(Rejection::SlackUnavailable(OAuthError::Decode(
                "no team in the answer".into(),
            )));
        }
    };
    let key = InstallationKey::new(enterprise_id, team_id);
    Ok(NewInstallation {
        key,
        team_name: access.team.as_ref().and_then(|t| t.name.clone()),
        enterprise_name: access.enterprise.as_ref().and_then(|e| e.name.clone()),
        is_enterprise_install: access.is_enterprise_install,
        app_id: access.app_id,
        bot_user_id: bot_user_id.as_str().to_owned(),
        bot_id: None,
        bot_token: access.access_token,
        bot_scopes: access.scope,
        installer_user_id: access.authed_user.map(|u| u.id.as_str().to_owned()),
        refresh_token: access.refresh_token,
        token_expires_at_ms: access
            .expires_in
            .map(|d| now_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_covers_every_special_character() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn only_the_state_cookie_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cusp_oauth_state=abc; b=2"),
        );
        assert_eq!(state_cookie(&headers), Some("abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x_cusp_oauth_state=abc"),
        );
        assert_eq!(state_cookie(&headers), None);
    }
}
