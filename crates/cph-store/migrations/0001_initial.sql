-- The schema, written once in the portable subset both SQLite and PostgreSQL accept:
-- ids are TEXT, times are BIGINT epoch milliseconds, flags are BIGINT 0/1, JSON is TEXT.
-- Dialect-specific statements live in the per-backend files.

CREATE TABLE domains (
    domain_id   TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE projects (
    project_id  TEXT PRIMARY KEY,
    domain_id   TEXT NOT NULL REFERENCES domains(domain_id),
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    domain_id     TEXT NOT NULL REFERENCES domains(domain_id),
    name          TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE access_keys (
    access_key  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(user_id),
    secret_key  TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    active      BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX access_keys_user ON access_keys (user_id);

-- A grant of one action pattern (e.g. "cph:servers:create", "cph:*:*", "*") to a user,
-- on one project or (project_id = '*') on every project of the user's domain.
CREATE TABLE grants (
    user_id     TEXT NOT NULL REFERENCES users(user_id),
    project_id  TEXT NOT NULL,
    action      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, project_id, action)
);

-- How many hosts of each server model the pool offers.
CREATE TABLE host_capacity (
    server_model_name TEXT PRIMARY KEY,
    capacity          BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);

CREATE TABLE vpcs (
    vpc_id      TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    cidr        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    enterprise_project_id TEXT NOT NULL DEFAULT '0',
    is_default  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX vpcs_project ON vpcs (project_id, created_at);

CREATE TABLE subnets (
    subnet_id   TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    vpc_id      TEXT NOT NULL REFERENCES vpcs(vpc_id),
    name        TEXT NOT NULL,
    cidr        TEXT NOT NULL,
    gateway_ip  TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    availability_zone TEXT NOT NULL DEFAULT '',
    dhcp_enable BIGINT NOT NULL DEFAULT 1,
    primary_dns TEXT NOT NULL DEFAULT '',
    secondary_dns TEXT NOT NULL DEFAULT '',
    is_default  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX subnets_project ON subnets (project_id, created_at);
CREATE INDEX subnets_vpc ON subnets (vpc_id);

-- Addresses handed out inside a subnet (servers and phones) or from the public pool (subnet_id = 'public').
CREATE TABLE ip_allocations (
    subnet_id   TEXT NOT NULL,
    ip          TEXT NOT NULL,
    owner_type  TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    project_id  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (subnet_id, ip)
);
CREATE INDEX ip_allocations_owner ON ip_allocations (owner_id);

CREATE TABLE keypairs (
    project_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    key_type    TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    user_id     TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (project_id, name)
);

CREATE TABLE orders (
    order_id      TEXT PRIMARY KEY,
    product_id    TEXT NOT NULL,
    project_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    charging_mode BIGINT NOT NULL,
    period_type   BIGINT NOT NULL,
    period_num    BIGINT NOT NULL,
    auto_pay      BIGINT NOT NULL,
    auto_renew    BIGINT NOT NULL,
    detail        TEXT NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL
);

CREATE TABLE bandwidths (
    band_width_id   TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    size            BIGINT NOT NULL,
    charge_mode     BIGINT NOT NULL,
    share_type      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX bandwidths_project ON bandwidths (project_id, created_at);

CREATE TABLE servers (
    server_id         TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL,
    server_name       TEXT NOT NULL,
    server_model_name TEXT NOT NULL,
    phone_model_name  TEXT NOT NULL,
    image_id          TEXT NOT NULL,
    keypair_name      TEXT NOT NULL DEFAULT '',
    status            BIGINT NOT NULL,
    vpc_id            TEXT NOT NULL,
    subnet_id         TEXT NOT NULL,
    server_ip         TEXT NOT NULL,
    host_id           TEXT NOT NULL,
    order_id          TEXT NOT NULL,
    product_id        TEXT NOT NULL,
    charging_mode     BIGINT NOT NULL,
    availability_zone TEXT NOT NULL,
    network_version   TEXT NOT NULL,
    enterprise_project_id TEXT NOT NULL DEFAULT '0',
    band_width_id     TEXT NOT NULL DEFAULT '',
    phone_count_per_ip BIGINT NOT NULL,
    ports             TEXT NOT NULL DEFAULT '[]',
    phone_data_volume TEXT NOT NULL DEFAULT '{}',
    share_data_volume TEXT NOT NULL DEFAULT '{}',
    expires_at        BIGINT NOT NULL,
    auto_renew        BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX servers_project ON servers (project_id, created_at);
CREATE INDEX servers_model ON servers (server_model_name);

-- Public addresses (EIPs) bound to a server; phones share them by `phone_count_per_ip`.
CREATE TABLE eips (
    eip_id        TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    public_ip     TEXT NOT NULL UNIQUE,
    eip_type      TEXT NOT NULL,
    server_id     TEXT NOT NULL DEFAULT '',
    band_width_id TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);
CREATE INDEX eips_server ON eips (server_id);

CREATE TABLE phones (
    phone_id          TEXT PRIMARY KEY,
    project_id        TEXT NOT NULL,
    server_id         TEXT NOT NULL REFERENCES servers(server_id),
    phone_name        TEXT NOT NULL,
    phone_model_name  TEXT NOT NULL,
    image_id          TEXT NOT NULL,
    status            BIGINT NOT NULL,
    phone_type        BIGINT NOT NULL DEFAULT 0,
    imei              TEXT NOT NULL,
    traffic_type      TEXT NOT NULL DEFAULT 'direct',
    volume_mode       BIGINT NOT NULL DEFAULT 0,
    phone_ip          TEXT NOT NULL,
    slot              BIGINT NOT NULL,
    properties        TEXT NOT NULL DEFAULT '{}',
    custom_properties TEXT NOT NULL DEFAULT '{}',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX phones_project ON phones (project_id, created_at DESC, server_id, slot);
CREATE INDEX phones_server ON phones (server_id, slot);

CREATE TABLE encode_servers (
    encode_server_id   TEXT PRIMARY KEY,
    project_id         TEXT NOT NULL,
    server_id          TEXT NOT NULL REFERENCES servers(server_id),
    name               TEXT NOT NULL,
    ip                 TEXT NOT NULL,
    encode_type        BIGINT NOT NULL,
    status             BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX encode_servers_project ON encode_servers (project_id, created_at);

CREATE TABLE tags (
    project_id    TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    tag_key       TEXT NOT NULL,
    tag_value     TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, tag_key)
);
CREATE INDEX tags_project ON tags (project_id, resource_type);

-- Jobs are API objects (request_id, job_id, status 1/2/-1) and the work queue at once.
-- state: 'queued' -> 'running' (leased by one worker) -> 'done'.
-- lock_key serialises jobs on one target: at most one 'running' job per key.
CREATE TABLE jobs (
    job_id        TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    phone_id      TEXT,
    server_id     TEXT,
    encode_server_id TEXT,
    node_id       TEXT,
    lock_key      TEXT NOT NULL,
    payload       TEXT NOT NULL DEFAULT '{}',
    state         TEXT NOT NULL,
    status        BIGINT NOT NULL,
    lease_owner   TEXT,
    lease_until   BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_msg     TEXT,
    execute_msg   TEXT,
    seq           BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    begin_time    BIGINT,
    end_time      BIGINT
);
CREATE INDEX jobs_request ON jobs (project_id, request_id, seq);
CREATE INDEX jobs_queue ON jobs (state, seq);
CREATE INDEX jobs_lock ON jobs (lock_key, state, seq);
CREATE INDEX jobs_lease ON jobs (state, lease_until);

-- Monotonic sequence for job ordering (portable; bumped inside write transactions).
CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('job_seq', 0);
