-- Users and their notes. Times are Unix seconds (BIGINT) so that Postgres and
-- SQLite store the same values; ids are random UUIDs as text.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    display_name  TEXT,
    password_hash TEXT NOT NULL,
    disabled_at   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- Emails are stored lower-cased by the application; the index makes them unique.
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE notes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX notes_user_created ON notes (user_id, created_at DESC, id);
