-- Events of one Slack thread are handled in the order they arrived, by whichever
-- replica claims them: a reply waits while an earlier event of its thread (its root,
-- usually) is still pending or in another worker's hands, so it can inherit what
-- handling the root decided. `channel:root_ts`; NULL (rows stored before this
-- migration, events with no thread) waits for nothing.
ALTER TABLE inbox ADD COLUMN thread_key TEXT;
CREATE INDEX inbox_thread ON inbox (team_id, thread_key, id);
