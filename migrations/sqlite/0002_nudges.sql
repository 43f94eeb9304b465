-- Automatic nudges: per-team settings, per-person preferences, channel switches,
-- the prompts cusp sent (cooldowns, question history, feedback), deal mutes,
-- reflections, and CRM delivery dedupe. Times are Unix milliseconds.

CREATE TABLE team_settings (
    team_id TEXT PRIMARY KEY,
    reaction TEXT NOT NULL DEFAULT 'seedling',
    account_cooldown_hours BIGINT NOT NULL DEFAULT 24,
    daily_nudge_limit BIGINT NOT NULL DEFAULT 3,
    updated_at BIGINT NOT NULL
);

-- muted_until: NULL = not muted; a far-future value = forever.
CREATE TABLE user_prefs (
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    muted_until BIGINT,
    opted_out BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);

CREATE TABLE channel_settings (
    team_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    nudges_off BIGINT NOT NULL DEFAULT 0,
    changed_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, channel_id)
);

-- One row per nudge sent (or reflection prompt from a CRM update or a mention).
-- thread_key makes "a thread gets at most one nudge" a constraint, not a check.
CREATE TABLE prompts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    thread_key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    account TEXT,
    kind TEXT NOT NULL,
    question_ids TEXT NOT NULL,
    stage TEXT,
    feedback TEXT,
    feedback_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (team_id, thread_key)
);
CREATE INDEX prompts_user_time ON prompts (team_id, user_id, created_at);

CREATE TABLE deal_mutes (
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    deal_key TEXT NOT NULL,
    until_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id, deal_key)
);

-- A person's written reflection on a prompt; shown only to its author unless shared.
CREATE TABLE reflections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id TEXT NOT NULL,
    prompt_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    answers TEXT NOT NULL,
    shared BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX reflections_team_time ON reflections (team_id, created_at);

CREATE TABLE crm_deliveries (
    team_id TEXT NOT NULL,
    delivery_key TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, delivery_key)
);
