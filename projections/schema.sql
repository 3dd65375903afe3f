-- The read models. Each is a fold of the event log; `tracking` records the last
-- notification id applied, in the same transaction as the rows it produced.

CREATE TABLE IF NOT EXISTS tracking (
    projection TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
INSERT OR IGNORE INTO tracking (projection, position) VALUES ('jobs', 0);

-- One row per live (not deleted) job. Times are Unix epoch milliseconds.
-- `created_seq` (the id of the job's `created` event) breaks ties in every sort,
-- so (sort key, created_seq) is unique and keyset pagination is exact.
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created_seq INTEGER NOT NULL,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,          -- 0 low, 1 normal, 2 high
    category TEXT,
    parent_id TEXT,
    finished INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL,
    starred INTEGER NOT NULL,
    result_type TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,       -- 0 while unfinished: last in the default order
    run_at INTEGER,
    version INTEGER NOT NULL,
    last_event_id INTEGER NOT NULL,
    document TEXT NOT NULL              -- the Job object, rendered once per change
);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (owner, created_at, created_seq);
CREATE INDEX IF NOT EXISTS jobs_owner_updated ON jobs (owner, updated_at, created_seq);
CREATE INDEX IF NOT EXISTS jobs_owner_finished ON jobs (owner, finished_at, created_seq);
CREATE INDEX IF NOT EXISTS jobs_owner_priority ON jobs (owner, priority, created_at, created_seq);
CREATE INDEX IF NOT EXISTS jobs_owner_status ON jobs (owner, status, created_at, created_seq);
CREATE INDEX IF NOT EXISTS jobs_owner_type ON jobs (owner, type, created_at, created_seq);
-- Admins list across owners: the two common sorts are indexed; their other sorts and
-- filters walk these (each index costs every write, and admin lists are rare).
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at, created_seq);
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs (updated_at, created_seq);
CREATE INDEX IF NOT EXISTS jobs_parent ON jobs (parent_id, created_at, created_seq)
    WHERE parent_id IS NOT NULL;

-- How many live jobs share each combination of the low-cardinality filters, so a
-- list's `total` costs the same at a million jobs as at a thousand.
-- '' stands for a null category or result_type.
CREATE TABLE IF NOT EXISTS job_counts (
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    category TEXT NOT NULL,
    starred INTEGER NOT NULL,
    result_type TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (owner, type, status, priority, category, starred, result_type)
);

-- Every event, rendered, by job and by owner. Events of deleted jobs stay.
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events (job_id, id);
CREATE INDEX IF NOT EXISTS events_job_type ON events (job_id, type, id);
CREATE INDEX IF NOT EXISTS events_owner ON events (owner, id);

-- Idempotency-Key → the job it created (from the `created` event).
CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (owner, key)
);

-- What a claimer searches: pending jobs of a type, best first.
CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (type, priority DESC, created_at, created_seq)
    WHERE status = 'pending';

-- The current lease of each running job. Set from the `started` event; renewals are not
-- events (a heartbeat every few seconds would bloat the streams), so the writer updates
-- `expires_at` in the transaction of the renewing call. Times are epoch milliseconds.
CREATE TABLE IF NOT EXISTS leases (
    job_id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    seconds REAL NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_expiry ON leases (expires_at);
