-- Phone connections (BatchShowPhoneConnectInfos and the connect relay).
-- Keys shared by every replica, created once by whichever replica needs them first, stored
-- sealed with the master key (as AK/SK secrets are).
CREATE TABLE service_keys (
    name          TEXT PRIMARY KEY,
    sealed_key    TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
-- Session ids of connect tickets already used, kept until the ticket expires.
CREATE TABLE connect_sessions (
    session_id    TEXT PRIMARY KEY,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX connect_sessions_expiry ON connect_sessions (expires_at_ms);
