-- Slack's 429s are not failures: count them apart from the attempts that the retry
-- limit applies to, so that a row that was rate limited many times does not die on
-- its first 5xx.
ALTER TABLE outbox ADD COLUMN rate_limited_attempts BIGINT NOT NULL DEFAULT 0;

-- "Do not call this method for this team before `until_ms`", written when Slack answers
-- 429 with Retry-After. The outbox claim skips rows whose method is held, so every
-- worker (and replica) stops calling that method, not just the one that was refused.
-- One row per (team, method), overwritten by the next 429; an expired row is inert.
CREATE TABLE slack_rate_limits (
    team_id TEXT NOT NULL,
    method TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (team_id, method)
);
