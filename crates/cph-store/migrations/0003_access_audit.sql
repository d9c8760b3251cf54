-- Keyed access to phones: every SSH login, tunnel and refusal at a server's gateway, accepted or
-- not. Rows are appended and pruned by age; nothing updates them.
CREATE TABLE access_audit (
    event_id        TEXT PRIMARY KEY,
    at_ms           BIGINT NOT NULL,
    project_id      TEXT NOT NULL,
    server_id       TEXT NOT NULL,
    phone_id        TEXT NOT NULL,
    kind            TEXT NOT NULL,
    peer            TEXT NOT NULL,
    user_name       TEXT NOT NULL,
    key_fingerprint TEXT NOT NULL,
    accepted        BIGINT NOT NULL,
    detail          TEXT NOT NULL
);
CREATE INDEX access_audit_project ON access_audit (project_id, at_ms, event_id);
CREATE INDEX access_audit_at ON access_audit (at_ms);
