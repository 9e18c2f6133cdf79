-- The change feed (migrations 007 and 010). Kinds: 1 put, 2 delete, 3 expire;
-- 0 a gap row left by releases before 010.

-- ChangesPage reads the log after a revision: at most page_size changes,
-- and no more values than max_bytes in all (always at least one change), in
-- revision order, with the feed's state read in the same snapshot: a reader
-- must see the compaction marker together with the rows, or it could take a
-- compacted stretch for a hole. One row per change, so a page is bounded in
-- bytes, not by PostgreSQL's 1 GB limit on a single value; the state is
-- joined to every row, and an empty page is one row whose change columns
-- are NULL (revision 0 here). Values only on request (the CASE leaves an unread value
-- untouched in TOAST). fetched is how many changes the page read before
-- the byte bound: more than it returns means the page was cut. Gap rows (kind 0, written before migration 010) are
-- returned like any row, so the reader can move past them.
-- name: ChangesPage :many
SELECT
    m.compacted_revision,
    m.enabled,
    coalesce(p.revision, 0)::bigint AS revision,
    coalesce(p.kind, 0)::smallint AS kind,
    coalesce(p.version, 0)::bigint AS version,
    coalesce(p.changed_at, 'epoch')::timestamptz AS changed_at,
    p.expires_at,
    coalesce(p.key, ''::bytea)::bytea AS key,
    p.value::bytea AS value,
    p.mod_revision,
    coalesce(p.fetched, 0)::bigint AS fetched
FROM state_changes_meta AS m
LEFT JOIN LATERAL (
    SELECT
        w.revision,
        w.kind,
        w.version,
        w.changed_at,
        w.expires_at,
        w.key,
        CASE WHEN @with_values::boolean AND w.kind = 1 THEN w.value END AS value,
        w.mod_revision,
        w.fetched
    FROM (
        SELECT
            c.*,
            count(*) OVER () AS fetched,
            sum(CASE WHEN @with_values::boolean AND c.kind = 1 THEN coalesce(octet_length(c.value), 0) ELSE 0 END)
                OVER (ORDER BY c.revision) AS bytes_through
        FROM (
            SELECT c.revision, c.kind, c.version, c.changed_at, c.expires_at, c.key, c.value, c.mod_revision
            FROM state_changes AS c
            WHERE c.revision > @after
            ORDER BY c.revision
            LIMIT @page_size
        ) AS c
    ) AS w
    -- The first change always passes: nothing comes before it.
    WHERE w.bytes_through - (CASE WHEN @with_values::boolean AND w.kind = 1 THEN coalesce(octet_length(w.value), 0) ELSE 0 END) < @max_bytes::bigint
) AS p ON true
ORDER BY p.revision;

-- ChangesHorizon is the first half of settling the log's holes (migration
-- 010): the last revision drawn from the sequence, then, in that order
-- (the subquery depends on it), the transactions that hold the writers'
-- advisory lock, except the caller's own (inside a transaction that has
-- written, the caller is one). Every revision up to last_taken not yet in
-- the log belongs to one of holders (or the caller), or never will be in
-- the log.
-- name: ChangesHorizon :one
WITH seq AS MATERIALIZED (
    SELECT coalesce(pg_catalog.pg_sequence_last_value('state_changes_revision_seq'::regclass), 0)::bigint AS last_taken
)
SELECT
    seq.last_taken,
    m.compacted_revision,
    coalesce((
        SELECT array_agg(k.virtualtransaction)
        FROM pg_catalog.pg_locks AS k
        WHERE k.locktype = 'advisory'
            AND k.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())
            AND k.classid = 1885828980::oid
            AND k.objid = m.lock_key::oid
            AND k.objsubid = 2
            AND k.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()
            AND seq.last_taken >= 0
    ), '{}')::text[] AS holders
FROM seq, state_changes_meta AS m;

-- ChangesHoldersLeft counts which of the given transactions still hold the
-- writers' advisory lock.
-- name: ChangesHoldersLeft :one
SELECT count(*)::bigint AS remaining
FROM pg_catalog.pg_locks AS k, state_changes_meta AS m
WHERE k.locktype = 'advisory'
    AND k.database = (SELECT d.oid FROM pg_catalog.pg_database AS d WHERE d.datname = current_database())
    AND k.classid = 1885828980::oid
    AND k.objid = m.lock_key::oid
    AND k.objsubid = 2
    AND k.virtualtransaction = ANY (@holders::text[]);

-- ChangesStatus describes the feed for operators; its revision is the
-- newest in the log, or the compaction marker when that is ahead of it.
-- name: ChangesStatus :one
SELECT
    m.enabled,
    m.compacted_revision,
    greatest((SELECT max(c.revision) FROM state_changes AS c), m.compacted_revision)::bigint AS revision,
    pg_catalog.pg_total_relation_size('state_changes'::regclass) AS log_bytes
FROM state_changes_meta AS m;

-- ChangesCompactTo deletes the log up to revision, never past upto (the
-- newest revision the store has settled) and at most batch_size revisions
-- past the current marker per call, so no call holds locks long; through
-- the owner's function (migration 010). Returns the rows deleted and the
-- new marker.
-- name: ChangesCompactTo :one
SELECT r.deleted::bigint AS deleted, r.compacted::bigint AS compacted
FROM state_changes_compact(@revision::bigint, @upto::bigint, @batch_size::bigint) AS r;

-- ChangesCompactBefore deletes the oldest changes made more than retention
-- ago by the database's clock, at most batch_size per call and never past
-- upto. Returns the rows deleted and the new marker.
-- name: ChangesCompactBefore :one
SELECT r.deleted::bigint AS deleted, r.compacted::bigint AS compacted
FROM state_changes_compact_before(sqlc.arg(retention_micros)::bigint, @upto::bigint, @batch_size::bigint) AS r;

-- ChangesSetEnabled switches the feed on or off (see
-- state_changes_set_enabled in migration 007); needs the table's owner.
-- name: ChangesSetEnabled :one
SELECT state_changes_set_enabled(@enabled::boolean)::boolean AS enabled;

-- ChangesLastTaken is the last revision drawn from the sequence: no watch
-- can start beyond it.
-- name: ChangesLastTaken :one
SELECT coalesce(pg_catalog.pg_sequence_last_value('state_changes_revision_seq'::regclass), 0)::bigint AS last_taken;
