-- Failed events wait before they are tried again (exponential backoff with jitter, or
-- Slack's Retry-After), instead of being claimed again at once and burning every
-- attempt within milliseconds. 0 means "due now", so rows stored before this
-- migration, and new rows, are claimable at once (resume-at-start is unchanged).
ALTER TABLE inbox ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0;
