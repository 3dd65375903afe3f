-- PostgreSQL's own versions of the statements in queries.sql that its dialect spells
-- differently (same names, same parameters in the same order). Every other statement of
-- queries.sql runs on PostgreSQL as written, with `?` placeholders made psycopg's `%s`
-- (projections/postgres.py).

-- name: advance_tracking
UPDATE tracking SET position = GREATEST(position, ?) WHERE projection = 'jobs';

-- name: renew_lease
UPDATE leases SET expires_at = GREATEST(expires_at, ?) WHERE job_id = ? AND token = ?;
