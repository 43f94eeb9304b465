-- "Not quite right": a person's correction of how cusp read the message a prompt was
-- about. Themes are comma-separated theme ids. `text` is NULL unless the person chose to
-- include their message text; it is the only message text cusp ever stores.
-- One correction per prompt: a resubmission updates it (and is counted once).
CREATE TABLE corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id TEXT NOT NULL,
    prompt_id BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    engine_deal_update BIGINT NOT NULL,
    engine_themes TEXT NOT NULL,
    deal_update BIGINT NOT NULL,
    themes TEXT NOT NULL,
    class TEXT NOT NULL,
    text TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (team_id, prompt_id)
);
CREATE INDEX corrections_team_time ON corrections (team_id, created_at);
CREATE INDEX corrections_team_user ON corrections (team_id, user_id);
