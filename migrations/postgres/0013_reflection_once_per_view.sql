-- A reflection is saved once per modal. Slack sends a retried (or a replayed, within the
-- signature's 5-minute window) view_submission with the same view id, which used to
-- store the reflection again each time. Rows from before this have no view id (NULL),
-- which a unique index never treats as equal, so they stay as they are.
ALTER TABLE reflections ADD COLUMN view_id TEXT;
CREATE UNIQUE INDEX reflections_team_view ON reflections (team_id, view_id);
