-- name: tracking_position
SELECT position FROM tracking WHERE projection = 'jobs';

-- name: advance_tracking
UPDATE tracking SET position = MAX(position, ?) WHERE projection = 'jobs';

-- name: insert_event
INSERT INTO events (id, job_id, seq, owner, type, document) VALUES (?, ?, ?, ?, ?, ?);

-- name: insert_idempotency_key
INSERT INTO idempotency_keys (owner, key, request_hash, job_id) VALUES (?, ?, ?, ?);

-- name: job_count_keys
-- {ids} is a list of placeholders, one per id.
SELECT id, owner, type, status, priority, COALESCE(category, ''), starred,
       COALESCE(result_type, ''), created_seq, finished_at
FROM jobs WHERE id IN ({ids});

-- name: add_to_count
INSERT INTO job_counts (owner, type, status, priority, category, starred, result_type, n)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (owner, type, status, priority, category, starred, result_type)
DO UPDATE SET n = job_counts.n + excluded.n;

-- name: upsert_job
INSERT INTO jobs (id, created_seq, owner, type, status, priority, category, parent_id,
                  finished, cancel_requested, starred, result_type, created_at, updated_at,
                  finished_at, run_at, version, last_event_id, document)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, priority = excluded.priority, category = excluded.category,
    finished = excluded.finished, cancel_requested = excluded.cancel_requested,
    starred = excluded.starred,
    result_type = excluded.result_type, updated_at = excluded.updated_at,
    finished_at = excluded.finished_at, run_at = excluded.run_at,
    version = excluded.version, last_event_id = excluded.last_event_id,
    document = excluded.document;

-- name: touch_job
-- A change that moves the job in no index but the two by updated_at (progress, a log line,
-- a star, a cancel request): SQLite rewrites only the indexes of the columns it sets.
UPDATE jobs SET category = ?, finished = ?, cancel_requested = ?, starred = ?,
                result_type = ?, updated_at = ?, run_at = ?, version = ?, last_event_id = ?,
                document = ?
WHERE id = ?;

-- name: delete_job
DELETE FROM jobs WHERE id = ?;

-- name: clear_read_models
DELETE FROM jobs;
DELETE FROM job_counts;
DELETE FROM events;
DELETE FROM idempotency_keys;
DELETE FROM leases;
UPDATE tracking SET position = 0 WHERE projection = 'jobs';

-- name: find_idempotency_key
SELECT request_hash, job_id FROM idempotency_keys WHERE owner = ? AND key = ?;

-- name: newest_active_job
-- A running job already asked to stop is skipped: cancelling again would change nothing.
SELECT id FROM jobs WHERE owner = ? AND status = ? AND cancel_requested = 0
ORDER BY created_at DESC, created_seq DESC LIMIT 1;

-- name: claim_candidates
-- One type at a time: each walks the jobs_claim index in order (an IN list of types would
-- sort every pending job of those types); the claimer merges the types' lists.
SELECT id, priority, created_at, created_seq FROM jobs
WHERE status = 'pending' AND type = ? AND (run_at IS NULL OR run_at <= ?)
ORDER BY priority DESC, created_at, created_seq LIMIT ?;

-- name: next_run_at
-- {types} is a list of placeholders, one per type.
SELECT MIN(run_at) FROM jobs WHERE status = 'pending' AND type IN ({types}) AND run_at > ?;

-- name: set_lease
INSERT INTO leases (job_id, token, seconds, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (job_id) DO UPDATE SET
    token = excluded.token, seconds = excluded.seconds, expires_at = excluded.expires_at;

-- name: renew_lease
UPDATE leases SET expires_at = MAX(expires_at, ?) WHERE job_id = ? AND token = ?;

-- name: drop_lease
DELETE FROM leases WHERE job_id = ?;

-- name: get_lease
SELECT token, seconds, expires_at FROM leases WHERE job_id = ?;

-- name: all_leases
-- Renewals are the one state of the read models that no event holds: copying a store
-- carries them over (service/store/transfer.py).
SELECT job_id, token, seconds, expires_at FROM leases ORDER BY job_id;

-- name: expired_leases
SELECT job_id FROM leases WHERE expires_at <= ? ORDER BY expires_at LIMIT ?;

-- name: next_lease_expiry
SELECT MIN(expires_at) FROM leases;

-- name: unfinished_children
SELECT id FROM jobs WHERE parent_id = ? AND finished = 0 ORDER BY created_at, created_seq;

-- name: children
SELECT id FROM jobs WHERE parent_id = ? ORDER BY created_at, created_seq;

-- name: audit_events
SELECT * FROM events;

-- name: audit_jobs
SELECT * FROM jobs;

-- name: audit_idempotency_keys
SELECT * FROM idempotency_keys;

-- name: audit_job_counts
-- A zero count is the same as no row: counters go down to 0 and stay.
SELECT * FROM job_counts WHERE n != 0;

-- name: audit_events_by_job
SELECT * FROM events ORDER BY job_id, id;

-- name: audit_jobs_by_job
SELECT * FROM jobs ORDER BY id;

-- name: audit_idempotency_keys_by_job
SELECT * FROM idempotency_keys ORDER BY job_id, owner, key;

-- name: audit_tracking
SELECT projection, position FROM tracking;
