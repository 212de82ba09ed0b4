-- 0003_alerts_widgets (PostgreSQL): the durable AlertQueue and widget token display.
-- alert_queue: one row per accepted AlertQueue entry (docs/alerts.md "Durability"): the entry
-- as JSON (alert, count, names, replay), its per-user key, and its state: 0 waiting, 1 shown,
-- 2 dropped or cleared. Waiting rows are queued again at start; shown ones only keep their ids
-- as duplicates.
CREATE TABLE alert_queue (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    akey BIGINT NOT NULL,
    state SMALLINT NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
    entry JSONB NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, akey)
);
CREATE INDEX alert_queue_state_idx ON alert_queue(state, user_id, akey);
-- widget_tokens: the token sealed for its owner (sp_seal), so GET /api/widgets can show the
-- URL again; lookups use token_hash only.
ALTER TABLE widget_tokens ADD COLUMN token_sealed TEXT;
