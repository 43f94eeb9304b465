//! The OAuth install pages (`oauth_router` on its own; `oauth_mode.rs` drives them mounted) against
//! the fake Slack's `oauth.v2.access`, on both backends.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use secrecy::{ExposeSecret, SecretString};
use tower::ServiceExt;

use cusp::server::oauth::{OAuthState, oauth_router};
use cusp::slack::oauth::{BOT_SCOPES, OAuthClient};
use cusp::store::{Keyring, Store};

use crate::backend_matrix;
use crate::installations::KEY_OLD;
use crate::support::app::{Backend, TestDb, now_ms};
use crate::support::fake_slack::{
    FakeSlack, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAuthGrant, Scripted,
};

const PUBLIC: &str = "https://cusp.example.com";
const REDIRECT: &str = "https://cusp.example.com/slack/oauth_redirect";
const AUTHORIZE: &str = "https://slack.test/oauth/v2/authorize";

struct Flow {
    router: axum::Router,
    slack: FakeSlack,
    store: Store,
    ring: Keyring,
    _db: TestDb,
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The state the install page set as a cookie.
    fn state_cookie(&self) -> String {
        let cookie = self.header(header::SET_COOKIE);
        let value = cookie
            .strip_prefix("cusp_oauth_state=")
            .expect("a state cookie");
        value.split(';').next().unwrap().to_owned()
    }

    /// The "Add to Slack" link, unescaped, and its query parameters.
    fn authorize_link(&self) -> (String, Vec<(String, String)>) {
        let start = self.body.find("href=\"https://slack.test").expect("link") + 6;
        let end = start + self.body[start..].find('"').unwrap();
        let href = self.body[start..end].replace("&amp;", "&");
        let query = href.split_once('?').unwrap().1.to_owned();
        (href, serde_urlencoded::from_str(&query).unwrap())
    }
}

/// Asserts that `html` is a whole document whose elements nest and close properly and
/// whose text holds no raw `<`, `>` or stray `&` (so nothing unescaped slipped in).
fn assert_valid_html(html: &str) {
    assert!(
        html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
        "{html}"
    );
    let tag =
        regex::Regex::new(r#"<(/?)([a-z][a-z0-9]*)((?:\s+[a-z-]+(?:="[^"<>]*")?)*)\s*>"#).unwrap();
    let entity = regex::Regex::new(r"&(amp|lt|gt|quot|#39);").unwrap();
    let body = html.trim_start_matches("<!DOCTYPE html>");
    let mut stack: Vec<String> = Vec::new();
    let mut last = 0;
    for m in tag.captures_iter(body) {
        let whole = m.get(0).unwrap();
        let text = &body[last..whole.start()];
        if stack.last().is_none_or(|t| t != "style") {
            assert!(
                !text.contains('<') && !text.contains('>'),
                "raw markup in text {text:?}: {html}"
            );
            assert_eq!(
                entity.replace_all(text, "").matches('&').count(),
                0,
                "stray & in {text:?}"
            );
        }
        last = whole.end();
        let name = m[2].to_owned();
        if name == "meta" {
            continue;
        }
        if m[1].is_empty() {
            stack.push(name);
        } else {
            assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "{html}");
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}: {html}");
    assert_eq!(body[last..].trim(), "", "{html}");
    assert!(!html.contains("<script"), "{html}");
}

async fn flow_with(backend: Backend, public_url: Option<&str>, client_secret: &str) -> Flow {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let slack = FakeSlack::start().await;
    let ring = Keyring::parse(KEY_OLD).unwrap();
    let client = OAuthClient::new(
        &slack.base_url(),
        OAUTH_CLIENT_ID,
        SecretString::from(client_secret.to_owned()),
        Duration::from_secs(5),
    )
    .unwrap();
    let state = OAuthState::new(
        store.clone(),
        Arc::new(Keyring::parse(KEY_OLD).unwrap()),
        Arc::new(client),
        AUTHORIZE,
        public_url,
    );
    Flow {
        router: oauth_router(state),
        slack,
        store,
        ring,
        _db: db,
    }
}

async fn flow(backend: Backend) -> Flow {
    flow_with(backend, Some(PUBLIC), OAUTH_CLIENT_SECRET).await
}

impl Flow {
    async fn get(&self, uri: &str, cookie: Option<&str>, host: Option<&str>) -> Page {
        let mut request = Request::get(uri);
        if let Some(state) = cookie {
            request = request.header(header::COOKIE, format!("other=1; cusp_oauth_state={state}"));
        }
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// Opens the install page and returns the state it handed out.
    async fn start(&self) -> String {
        let page = self.get("/slack/install", None, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.state_cookie()
    }

    async fn redirect(&self, query: &str, cookie: Option<&str>) -> Page {
        let page = self
            .get(&format!("/slack/oauth_redirect?{query}"), cookie, None)
            .await;
        assert_valid_html(&page.body);
        assert!(
            page.header(header::SET_COOKIE).contains("Max-Age=0"),
            "the state cookie is cleared"
        );
        page
    }

    async fn install(&self, code: &str, grant: OAuthGrant) -> Page {
        let state = self.start().await;
        self.slack.grant_oauth_code(code, REDIRECT, grant);
        self.redirect(&format!("code={code}&state={state}"), Some(&state))
            .await
    }
}

async fn the_install_page_links_to_slack_with_a_stored_state(backend: Backend) {
    let flow = flow(backend).await;
    let page = flow.get("/slack/install", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_valid_html(&page.body);
    assert!(page.body.contains("Add to Slack"), "{}", page.body);
    assert_eq!(
        page.header(header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(page.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(page.header(header::REFERRER_POLICY), "no-referrer");
    let cookie = page.header(header::SET_COOKIE);
    for attribute in [
        "Path=/slack/oauth_redirect",
        "Max-Age=600",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let state = page.state_cookie();
    assert!(state.len() >= 43, "32 random bytes: {state}");
    let (href, params) = page.authorize_link();
    assert!(href.starts_with(AUTHORIZE), "{href}");
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(param("client_id").as_deref(), Some(OAUTH_CLIENT_ID));
    assert_eq!(param("scope"), Some(BOT_SCOPES.join(",")));
    assert_eq!(param("redirect_uri").as_deref(), Some(REDIRECT));
    assert_eq!(param("state"), Some(state.clone()));
    assert!(
        page.body.contains("&amp;scope="),
        "the link is escaped in HTML"
    );

    let second = flow.get("/slack/install", None, None).await.state_cookie();
    assert_ne!(state, second, "every visit gets its own state");
}

async fn an_install_stores_the_workspace_and_a_reinstall_updates_it(backend: Backend) {
    let flow = flow(backend).await;
    let before = now_ms();
    let grant = OAuthGrant::workspace("T_ACME", r#"Acme <Sales> & "Co""#, "xoxe.xoxb-acme-1")
        .rotating("xoxe-1-acme-refresh");
    let page = flow.install("code-1", grant).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("<strong>Acme &lt;Sales&gt; &amp; &quot;Co&quot;</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("/invite @cusp"), "{}", page.body);

    let calls = flow.slack.calls_to("oauth.v2.access");
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0].auth_present,
        "client credentials in HTTP Basic auth"
    );
    assert_eq!(calls[0].param_str("code").as_deref(), Some("code-1"));
    assert_eq!(
        calls[0].param_str("redirect_uri").as_deref(),
        Some(REDIRECT)
    );
    assert!(
        calls[0].param_str("client_secret").is_none(),
        "never in the body"
    );

    let installed = flow
        .store
        .find_installation(&flow.ring, None, "T_ACME")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(installed.bot_token.expose_secret(), "xoxe.xoxb-acme-1");
    assert_eq!(
        installed.refresh_token.unwrap().expose_secret(),
        "xoxe-1-acme-refresh"
    );
    assert_eq!(installed.bot_user_id, "U_BOT_T_ACME");
    assert_eq!(installed.installer_user_id.as_deref(), Some("U_INSTALLER"));
    assert_eq!(installed.bot_scopes, "commands,chat:write");
    assert_eq!(
        installed.team_name.as_deref(),
        Some(r#"Acme <Sales> & "Co""#)
    );
    let expires = installed.token_expires_at_ms.unwrap();
    assert!(
        (before + 43_200_000..=now_ms() + 43_200_000).contains(&expires),
        "{expires}"
    );

    let page = flow
        .install(
            "code-2",
            OAuthGrant::workspace("T_ACME", "Acme", "xoxb-acme-2"),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("is installed again in"), "{}", page.body);
    let installed = flow
        .store
        .find_installation(&flow.ring, None, "T_ACME")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(installed.bot_token.expose_secret(), "xoxb-acme-2");
    assert!(installed.refresh_token.is_none());
    assert_eq!(flow.store.list_installations().await.unwrap().len(), 1);
}

async fn every_bad_redirect_is_refused_with_a_clear_page(backend: Backend) {
    let flow = flow(backend).await;
    let grant = || OAuthGrant::workspace("T1", "One", "xoxb-one");
    let expect = |page: &Page, status: StatusCode, says: &str| {
        assert_eq!(page.status, status, "{}", page.body);
        assert!(page.body.contains(says), "{says:?} not in {}", page.body);
    };

    expect(
        &flow.redirect("", None).await,
        StatusCode::BAD_REQUEST,
        "no state parameter",
    );
    expect(
        &flow.redirect("code=x&state=made-up", Some("made-up")).await,
        StatusCode::BAD_REQUEST,
        "unknown",
    );

    // Another browser's link: refused, and the real installer's state is not spent.
    let state = flow.start().await;
    flow.slack.grant_oauth_code("code-a", REDIRECT, grant());
    let query = format!("code=code-a&state={state}");
    expect(
        &flow.redirect(&query, None).await,
        StatusCode::BAD_REQUEST,
        "another browser",
    );
    expect(
        &flow.redirect(&query, Some("someone-else")).await,
        StatusCode::BAD_REQUEST,
        "another browser",
    );
    expect(
        &flow.redirect(&query, Some(&state)).await,
        StatusCode::OK,
        "is installed in",
    );
    expect(
        &flow.redirect(&query, Some(&state)).await,
        StatusCode::BAD_REQUEST,
        "already used",
    );

    // Cancelled on Slack's page: 403, and the state is spent.
    let state = flow.start().await;
    expect(
        &flow
            .redirect(&format!("error=access_denied&state={state}"), Some(&state))
            .await,
        StatusCode::FORBIDDEN,
        "was not added",
    );
    expect(
        &flow
            .redirect(&format!("code=c&state={state}"), Some(&state))
            .await,
        StatusCode::BAD_REQUEST,
        "already used",
    );
    expect(
        &flow
            .redirect("error=%3Cscript%3Ealert(1)%3C%2Fscript%3E", None)
            .await,
        StatusCode::BAD_REQUEST,
        "&lt;script&gt;",
    );

    let old_uri = REDIRECT;
    flow.store
        .create_oauth_state("old-state", old_uri, now_ms() - 11 * 60 * 1000)
        .await
        .unwrap();
    expect(
        &flow
            .redirect("code=x&state=old-state", Some("old-state"))
            .await,
        StatusCode::BAD_REQUEST,
        "older than ten minutes",
    );

    let state = flow.start().await;
    expect(
        &flow.redirect(&format!("state={state}"), Some(&state)).await,
        StatusCode::BAD_REQUEST,
        "no authorization code",
    );
    let state = flow.start().await;
    expect(
        &flow
            .redirect(&format!("code=never-granted&state={state}"), Some(&state))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_code",
    );
    let state = flow.start().await;
    flow.slack
        .grant_oauth_code("code-b", "https://elsewhere.example/cb", grant());
    expect(
        &flow
            .redirect(&format!("code=code-b&state={state}"), Some(&state))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_redirect_uri",
    );
    let state = flow.start().await;
    flow.slack.grant_oauth_code("code-c", REDIRECT, grant());
    flow.slack
        .push_response("oauth.v2.access", Scripted::Status(500));
    expect(
        &flow
            .redirect(&format!("code=code-c&state={state}"), Some(&state))
            .await,
        StatusCode::BAD_GATEWAY,
        "could not be reached",
    );

    let installed = flow.store.list_installations().await.unwrap();
    assert_eq!(installed.len(), 1, "only the one good install stored a row");
}

async fn wrong_client_credentials_name_the_settings_to_fix(backend: Backend) {
    let flow = flow_with(backend, Some(PUBLIC), "not-the-secret").await;
    let page = flow
        .install("code-1", OAuthGrant::workspace("T1", "One", "xoxb-one"))
        .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        page.body.contains("bad_client_secret") && page.body.contains("SLACK_CLIENT_SECRET"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("not-the-secret"));
    assert!(flow.store.list_installations().await.unwrap().is_empty());
}

async fn without_a_public_url_the_redirect_uri_comes_from_the_host(backend: Backend) {
    let flow = flow_with(backend, None, OAUTH_CLIENT_SECRET).await;
    let page = flow
        .get("/slack/install", None, Some("cusp.example.org"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (_, params) = page.authorize_link();
    assert!(params.contains(&(
        "redirect_uri".into(),
        "https://cusp.example.org/slack/oauth_redirect".into()
    )));
    for host in [None, Some("evil\"><b>x")] {
        let page = flow.get("/slack/install", None, host).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{host:?}");
        assert_valid_html(&page.body);
        assert!(page.body.contains("CUSP_PUBLIC_URL"), "{}", page.body);
        assert!(page.header(header::SET_COOKIE).is_empty());
    }
}

/// The chain the refresh scheduler will run: claim, `oauth.v2.access` with the refresh
/// token, store the new pair; a refused refresh marks the installation once.
async fn a_refresh_trades_the_token_once_and_a_refused_one_needs_reinstall(backend: Backend) {
    let flow = flow(backend).await;
    let grant = OAuthGrant::workspace("T1", "One", "xoxe.xoxb-1").rotating("xoxe-1-r1");
    assert_eq!(flow.install("code-1", grant).await.status, StatusCode::OK);
    flow.slack.grant_oauth_refresh(
        "xoxe-1-r1",
        OAuthGrant::workspace("T1", "One", "xoxe.xoxb-2").rotating("xoxe-1-r2"),
    );
    let client = OAuthClient::new(
        &flow.slack.base_url(),
        OAUTH_CLIENT_ID,
        SecretString::from(OAUTH_CLIENT_SECRET.to_owned()),
        Duration::from_secs(5),
    )
    .unwrap();
    let key = cusp::store::InstallationKey::new(None, "T1");
    let now = now_ms();
    let claim = flow
        .store
        .claim_refresh(&flow.ring, &key, now, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("claim");
    let access = client.refresh(&claim.refresh_token).await.unwrap();
    let call = flow.slack.calls_to("oauth.v2.access").pop().unwrap();
    assert_eq!(
        call.param_str("grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(
        call.param_str("refresh_token").as_deref(),
        Some("xoxe-1-r1")
    );
    assert!(call.auth_present && call.param_str("client_secret").is_none());
    let tokens = cusp::store::RefreshedTokens {
        bot_token: access.access_token,
        refresh_token: access.refresh_token.expect("a new refresh token"),
        token_expires_at_ms: now + access.expires_in.unwrap().as_millis() as i64,
    };
    assert!(
        flow.store
            .complete_refresh(&flow.ring, &claim, &tokens, now)
            .await
            .unwrap()
    );
    let installed = flow
        .store
        .find_installation(&flow.ring, None, "T1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(installed.bot_token.expose_secret(), "xoxe.xoxb-2");

    // The spent refresh token is refused: that needs a reinstall, flagged once.
    let err = client
        .refresh(&SecretString::from("xoxe-1-r1".to_owned()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            cusp::slack::oauth::OAuthError::InvalidRefreshToken { .. }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(flow.store.mark_needs_reinstall(&key, now).await.unwrap());
    assert!(!flow.store.mark_needs_reinstall(&key, now).await.unwrap());
}

backend_matrix!(
    a_refresh_trades_the_token_once_and_a_refused_one_needs_reinstall,
    the_install_page_links_to_slack_with_a_stored_state,
    an_install_stores_the_workspace_and_a_reinstall_updates_it,
    every_bad_redirect_is_refused_with_a_clear_page,
    wrong_client_credentials_name_the_settings_to_fix,
    without_a_public_url_the_redirect_uri_comes_from_the_host,
);
