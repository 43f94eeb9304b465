-- Retention (CUSP_RETENTION_DAYS) deletes old rows daily in bounded batches; these
-- indexes let each batch find its oldest rows without scanning the whole table.
CREATE INDEX prompts_team_time ON prompts (team_id, created_at);
CREATE INDEX outbox_team_created ON outbox (team_id, created_at);
CREATE INDEX crm_deliveries_team_time ON crm_deliveries (team_id, received_at);
