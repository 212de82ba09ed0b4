-- 0002_identities (PostgreSQL): external sign-in identities (Sign in with Twitch / Google).
-- One row per (provider, subject): the provider's stable user id, linked to one user.
-- email / email_verified are what the provider said at the last sign-in (information only:
-- users.email is never taken from an unverified email).
CREATE TABLE user_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT,
    email_verified SMALLINT NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    created_at BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX user_identities_user_id_idx ON user_identities(user_id);
