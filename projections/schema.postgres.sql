-- The read models of schema.sql in PostgreSQL's dialect: the same tables, columns (in the
-- same order, so `SELECT *` rows compare equal) and indexes. Times and ids are BIGINT
-- (epoch milliseconds overflow INTEGER); flags stay 0/1 integers, as the queries compare them.
-- Made by the store's migration 2 (service/store/postgres.py); a change is a new migration.

CREATE TABLE tracking (
    projection TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO tracking (projection, position) VALUES ('jobs', 0);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    created_seq BIGINT NOT NULL,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    category TEXT,
    parent_id TEXT,
    finished INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL,
    starred INTEGER NOT NULL,
    result_type TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    run_at BIGINT,
    version BIGINT NOT NULL,
    last_event_id BIGINT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX jobs_owner_created ON jobs (owner, created_at, created_seq);
CREATE INDEX jobs_owner_updated ON jobs (owner, updated_at, created_seq);
CREATE INDEX jobs_owner_finished ON jobs (owner, finished_at, created_seq);
CREATE INDEX jobs_owner_priority ON jobs (owner, priority, created_at, created_seq);
CREATE INDEX jobs_owner_status ON jobs (owner, status, created_at, created_seq);
CREATE INDEX jobs_owner_type ON jobs (owner, type, created_at, created_seq);
CREATE INDEX jobs_created ON jobs (created_at, created_seq);
CREATE INDEX jobs_updated ON jobs (updated_at, created_seq);
CREATE INDEX jobs_parent ON jobs (parent_id, created_at, created_seq)
    WHERE parent_id IS NOT NULL;

CREATE TABLE job_counts (
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    category TEXT NOT NULL,
    starred INTEGER NOT NULL,
    result_type TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (owner, type, status, priority, category, starred, result_type)
);

CREATE TABLE events (
    id BIGINT PRIMARY KEY,
    job_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX events_job ON events (job_id, id);
CREATE INDEX events_job_type ON events (job_id, type, id);
CREATE INDEX events_owner ON events (owner, id);

CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (owner, key)
);

CREATE INDEX jobs_claim ON jobs (type, priority DESC, created_at, created_seq)
    WHERE status = 'pending';

CREATE TABLE leases (
    job_id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX leases_expiry ON leases (expires_at);
