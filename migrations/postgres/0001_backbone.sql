-- Backbone schema. Times are Unix milliseconds (BIGINT) so both backends share one
-- representation and the same queries. Every table carries the Slack team id.

-- Events Slack delivered, stored before the 200 ack; resumed at start.
-- `payload` holds the raw event until it is handled, then it is cleared (privacy).
CREATE TABLE inbox (
    id BIGSERIAL PRIMARY KEY,
    team_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    last_error TEXT,
    received_at BIGINT NOT NULL,
    handled_at BIGINT,
    UNIQUE (team_id, event_id)
);
CREATE INDEX inbox_claim ON inbox (team_id, status, id);

-- One row per analysed deal update (themes, not text).
CREATE TABLE observations (
    id BIGSERIAL PRIMARY KEY,
    team_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    message_ts TEXT,
    source TEXT NOT NULL,
    class TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    account TEXT,
    dedupe_key TEXT NOT NULL,
    text TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (team_id, dedupe_key)
);
CREATE INDEX observations_team_time ON observations (team_id, created_at);

-- One row per detected theme, so digests group by theme without parsing anything.
CREATE TABLE observation_themes (
    observation_id BIGINT NOT NULL REFERENCES observations (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL,
    theme TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (observation_id, theme)
);
CREATE INDEX observation_themes_team_time ON observation_themes (team_id, created_at, theme);

-- Every Web API call cusp makes, written in the same transaction as its cause.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    team_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    method TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    in_doubt BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT,
    last_error TEXT,
    result_ts TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT,
    UNIQUE (team_id, idempotency_key)
);
CREATE INDEX outbox_due ON outbox (team_id, status, next_attempt_at);
