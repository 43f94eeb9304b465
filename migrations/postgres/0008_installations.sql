-- Workspaces that installed cusp with OAuth v2, one row per (enterprise id, team id).
-- `enterprise_id` is '' outside Enterprise Grid and `team_id` is '' for an org-wide
-- install, so the key never holds NULL. Tokens are sealed (store/sealed.rs): a dump of
-- this table never reveals one. Times are Unix milliseconds; flags are 0/1.
CREATE TABLE installations (
    enterprise_id TEXT NOT NULL DEFAULT '',
    team_id TEXT NOT NULL,
    team_name TEXT,
    enterprise_name TEXT,
    is_enterprise_install BIGINT NOT NULL DEFAULT 0,
    app_id TEXT,
    bot_user_id TEXT NOT NULL,
    -- `oauth.v2.access` does not return it; learned later with `auth.test`.
    bot_id TEXT,
    -- Sealed; NULL once the installation is removed (uninstall, revoked tokens).
    bot_token TEXT,
    bot_scopes TEXT NOT NULL DEFAULT '',
    installer_user_id TEXT,
    -- Token rotation: the sealed refresh token and when the bot token expires.
    refresh_token TEXT,
    token_expires_at BIGINT,
    -- A refresh was refused: only a reinstall helps.
    needs_reinstall BIGINT NOT NULL DEFAULT 0,
    -- The refresh claim: only the holder of `refresh_claim_id` may store the refreshed
    -- tokens, and nobody else claims before `refresh_claimed_until`.
    refresh_claim_id TEXT,
    refresh_claimed_until BIGINT,
    installed_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    uninstalled_at BIGINT,
    PRIMARY KEY (enterprise_id, team_id)
);
CREATE INDEX installations_team ON installations (team_id);
CREATE INDEX installations_expiry ON installations (token_expires_at);

-- OAuth `state` values handed out by GET /slack/install: single use, short-lived. Only a
-- SHA-256 of the state is kept. A consumed row stays (until it is a day past its expiry)
-- so that reusing a state can be told apart from an unknown one.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    -- The redirect_uri sent with the authorize step; the code exchange must repeat it.
    redirect_uri TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);
