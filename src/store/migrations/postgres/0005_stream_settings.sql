-- 0005_stream_settings (PostgreSQL): per-user stream settings (GET/PUT /api/stream/settings),
-- the input's last known status (shown truthfully after a restart), and an index for the
-- stream event log (GET /api/stream/events, retention by count per user).
-- auto_start_destinations: a JSON array of destination ids (text). auto_start_pending: an
-- encoder connected with auto go-live on and the start is not done yet (kill -9 safety).
CREATE TABLE stream_settings (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    auto_start SMALLINT NOT NULL DEFAULT 0 CHECK (auto_start IN (0, 1)),
    auto_start_destinations TEXT NOT NULL DEFAULT '[]',
    disconnect_protection SMALLINT NOT NULL DEFAULT 1 CHECK (disconnect_protection IN (0, 1)),
    auto_start_pending SMALLINT NOT NULL DEFAULT 0 CHECK (auto_start_pending IN (0, 1)),
    updated_at BIGINT NOT NULL
);
ALTER TABLE live_inputs ADD COLUMN last_status TEXT;
ALTER TABLE live_inputs ADD COLUMN last_status_at BIGINT;
CREATE INDEX events_user_platform_seq_idx ON events(user_id, platform, seq);
