-- 0001_init (SQLite): accounts, sessions, streaming accounts, livestream tables.
-- Timestamps are BIGINT milliseconds since the epoch; ids are TEXT UUIDs;
-- booleans are INTEGER 0/1; JSON columns are TEXT checked with json_valid().
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    user_agent TEXT,
    ip TEXT
);
CREATE INDEX sessions_user_id_idx ON sessions(user_id);

CREATE TABLE streaming_account (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    access_token_expires_at BIGINT,
    extra_data TEXT CHECK (extra_data IS NULL OR json_valid(extra_data)),
    inserted_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, platform)
);
CREATE INDEX streaming_account_user_id_idx ON streaming_account(user_id);
CREATE INDEX streaming_account_expires_idx ON streaming_account(access_token_expires_at);

CREATE TABLE destinations (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    platform TEXT NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    stream_key_sealed TEXT,
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX destinations_user_id_idx ON destinations(user_id);

CREATE TABLE live_inputs (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    input_uid TEXT NOT NULL UNIQUE,
    rtmp_url TEXT NOT NULL,
    stream_key_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE stream_state (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    stream_id TEXT,
    state_changed_at BIGINT NOT NULL,
    disconnect_deadline BIGINT,
    input_status TEXT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE streams (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title TEXT,
    description TEXT,
    state TEXT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    end_reason TEXT,
    destinations TEXT CHECK (destinations IS NULL OR json_valid(destinations)),
    stats TEXT CHECK (stats IS NULL OR json_valid(stats)),
    peak_viewers BIGINT NOT NULL DEFAULT 0,
    avg_viewers BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX streams_user_id_idx ON streams(user_id);

CREATE TABLE stream_outputs (
    id TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    destination_id TEXT,
    output_uid TEXT,
    state TEXT NOT NULL CHECK (state IN ('creating', 'active', 'failed', 'deleting', 'closed')),
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX stream_outputs_user_id_idx ON stream_outputs(user_id);
CREATE INDEX stream_outputs_stream_id_idx ON stream_outputs(stream_id);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stream_id TEXT,
    platform TEXT NOT NULL,
    platform_event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT CHECK (payload IS NULL OR json_valid(payload)),
    seq BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (platform, platform_event_id)
);
CREATE INDEX events_user_id_idx ON events(user_id, created_at);
CREATE INDEX events_stream_id_idx ON events(stream_id);

CREATE TABLE viewer_samples (
    stream_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    ts BIGINT NOT NULL,
    viewers BIGINT NOT NULL
);
CREATE INDEX viewer_samples_stream_idx ON viewer_samples(stream_id, ts);

CREATE TABLE widget_configs (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    widget_type TEXT NOT NULL,
    config TEXT NOT NULL CHECK (json_valid(config)),
    updated_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, widget_type)
);
CREATE INDEX widget_configs_user_id_idx ON widget_configs(user_id);

CREATE TABLE widget_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    widget_type TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX widget_tokens_user_id_idx ON widget_tokens(user_id);
