-- 0006_recordings: a user's own recording mode (PUT /api/stream/recording), overriding
-- RECORDING_MODE; no row = the server default.
CREATE TABLE recording_settings (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    mode TEXT NOT NULL CHECK (mode IN ('off', 'automatic')),
    updated_at BIGINT NOT NULL
);
