-- 0004_sessions (PostgreSQL): what GET /api/sessions shows. kind: 'cookie' (login, sign-in) or
-- 'bearer' (POST /api/auth/token); last_used_at: the last authenticated request, written at
-- most once a minute per session (NULL on rows older than this migration).
ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'cookie'
    CHECK (kind IN ('cookie', 'bearer'));
ALTER TABLE sessions ADD COLUMN last_used_at BIGINT;
