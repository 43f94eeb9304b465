-- Weekly digest: per-team settings, per-person preferences, and one row per digest week
-- (the claim that makes a digest exactly-once across replicas and restarts).

-- Per team. The digest is off until a channel is chosen (`enabled` = 1).
-- `weekday` is ISO (1 = Monday … 7 = Sunday); `minute_of_day` is local time in `time_zone`.
CREATE TABLE digest_settings (
    team_id TEXT PRIMARY KEY,
    channel_id TEXT,
    weekday BIGINT NOT NULL DEFAULT 1,
    minute_of_day BIGINT NOT NULL DEFAULT 540,
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    enabled BIGINT NOT NULL DEFAULT 0,
    -- When the schedule was last saved: runs scheduled before it are not "missed".
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);

-- Per person: the opt-in personal DM and the opt-out from the public spotlight.
CREATE TABLE digest_preferences (
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    personal_dm BIGINT NOT NULL DEFAULT 0,
    spotlight BIGINT NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);

-- One row per team and reported ISO week ('2026-W47'): inserted first-wins by the
-- instance that claims the run. status: claimed | done | skipped | failed.
CREATE TABLE digest_runs (
    team_id TEXT NOT NULL,
    week TEXT NOT NULL,
    status TEXT NOT NULL,
    claim_token TEXT,
    lease_until BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    forced BIGINT NOT NULL DEFAULT 0,
    scheduled_at BIGINT,
    claimed_at BIGINT,
    done_at BIGINT,
    last_error TEXT,
    PRIMARY KEY (team_id, week)
);

-- Covering indexes for the digest's grouped counts (team mix, and a person's own mix).
CREATE INDEX observations_team_time_class ON observations (team_id, created_at, class);
CREATE INDEX observations_team_user_time ON observations (team_id, user_id, created_at, class);
