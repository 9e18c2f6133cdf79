-- The change feed (migration 007). Kinds: 0 gap, 1 put, 2 delete, 3 expire.

-- ChangesRead reads one page of the log after a revision, with the feed's
-- state read in the same snapshot: a watcher must see the compaction marker
-- together with the rows, or it could take a compacted stretch for a hole.
-- Every revision of the page is returned, so the watcher can tell a hole
-- from a change outside its prefix; the key and value only of the changes
-- in [lower, upper) (upper NULL: no bound), the value only on request. The
-- page is one range scan of the primary key. One row, columns as parallel
-- arrays in revision order.
-- name: ChangesRead :one
SELECT
    m.compacted_revision,
    m.enabled,
    coalesce(p.revisions, '{}')::bigint[] AS revisions,
    coalesce(p.kinds, '{}')::smallint[] AS kinds,
    coalesce(p.versions, '{}')::bigint[] AS versions,
    coalesce(p.changed_at, '{}')::timestamptz[] AS changed_at,
    coalesce(p.keys, '{}')::bytea[] AS keys,
    coalesce(p.vals, '{}')::bytea[] AS vals
FROM state_changes_meta AS m
CROSS JOIN LATERAL (
    SELECT
        array_agg(s.revision ORDER BY s.revision) AS revisions,
        array_agg(s.kind ORDER BY s.revision) AS kinds,
        array_agg(s.version ORDER BY s.revision) AS versions,
        array_agg(s.changed_at ORDER BY s.revision) AS changed_at,
        array_agg(CASE WHEN s.matched THEN s.key END ORDER BY s.revision) AS keys,
        array_agg(CASE WHEN s.matched AND @with_values::boolean THEN s.value END ORDER BY s.revision) AS vals
    FROM (
        SELECT
            c.revision,
            c.kind,
            c.version,
            c.changed_at,
            c.key,
            c.value,
            (c.kind <> 0
                AND c.key >= @lower
                AND (sqlc.narg(upper)::bytea IS NULL OR c.key < sqlc.narg(upper))) AS matched
        FROM state_changes AS c
        WHERE c.revision > @after
        ORDER BY c.revision
        LIMIT @page_size
    ) AS s
) AS p;

-- ChangesFillGaps puts a gap row at every revision of [first, last] that has
-- none. At a revision whose change row another transaction has inserted but
-- not committed, the insert waits for that transaction: a commit keeps its
-- row (nothing is inserted), a rollback leaves the gap row. Nothing is
-- inserted once first has been compacted, so a compacted stretch is never
-- mistaken for gaps.
-- name: ChangesFillGaps :execrows
INSERT INTO state_changes (revision, kind)
SELECT g, 0
FROM generate_series(@first::bigint, @last::bigint) AS g
WHERE @first::bigint > (SELECT m.compacted_revision FROM state_changes_meta AS m)
ON CONFLICT (revision) DO NOTHING;

-- ChangesRevision is the store's current revision: the newest in the log,
-- or the compaction marker when the log is empty.
-- name: ChangesRevision :one
SELECT greatest(
    (SELECT max(c.revision) FROM state_changes AS c),
    m.compacted_revision
)::bigint AS revision
FROM state_changes_meta AS m;

-- ChangesStatus describes the feed for operators; its revision is
-- ChangesRevision's (the compaction marker may be ahead of the newest row).
-- name: ChangesStatus :one
SELECT
    m.enabled,
    m.compacted_revision,
    greatest((SELECT max(c.revision) FROM state_changes AS c), m.compacted_revision)::bigint AS revision,
    pg_catalog.pg_total_relation_size('state_changes'::regclass) AS log_bytes
FROM state_changes_meta AS m;

-- ChangesCompactTo deletes the log up to revision, at most batch_size
-- revisions past the current marker per call (so no call holds locks long),
-- and never past the newest revision: a marker ahead of the log would
-- swallow changes not yet written. Returns the rows deleted and the new
-- marker.
-- name: ChangesCompactTo :one
WITH cut AS (
    SELECT least(
        @revision::bigint,
        m.compacted_revision + @batch_size::bigint,
        coalesce((SELECT max(c.revision) FROM state_changes AS c), 0)
    ) AS upto
    FROM state_changes_meta AS m
), gone AS (
    DELETE FROM state_changes AS c
    WHERE c.revision <= (SELECT cut.upto FROM cut)
    RETURNING 1
), marked AS (
    UPDATE state_changes_meta AS m
    SET compacted_revision = greatest(m.compacted_revision, (SELECT cut.upto FROM cut))
    RETURNING m.compacted_revision
)
SELECT
    (SELECT count(*) FROM gone)::bigint AS deleted,
    (SELECT marked.compacted_revision FROM marked)::bigint AS compacted;

-- ChangesCompactBefore deletes the oldest changes made more than retention
-- ago by the database's clock, at most batch_size per call: the run of the
-- oldest batch_size rows up to the first one that is not old enough.
-- Returns the rows deleted and the new marker.
-- name: ChangesCompactBefore :one
WITH horizon AS (
    SELECT now() - sqlc.arg(retention_micros)::bigint * interval '1 microsecond' AS oldest_kept
), head AS (
    SELECT c.revision, c.changed_at
    FROM state_changes AS c
    ORDER BY c.revision
    LIMIT @batch_size::bigint
), young AS (
    SELECT min(h.revision) AS revision
    FROM head AS h, horizon
    WHERE h.changed_at >= horizon.oldest_kept
), cut AS (
    SELECT coalesce(max(h.revision), 0) AS upto
    FROM head AS h, young
    WHERE young.revision IS NULL OR h.revision < young.revision
), gone AS (
    DELETE FROM state_changes AS c
    WHERE c.revision <= (SELECT cut.upto FROM cut)
    RETURNING 1
), marked AS (
    UPDATE state_changes_meta AS m
    SET compacted_revision = greatest(m.compacted_revision, (SELECT cut.upto FROM cut))
    RETURNING m.compacted_revision
)
SELECT
    (SELECT count(*) FROM gone)::bigint AS deleted,
    (SELECT marked.compacted_revision FROM marked)::bigint AS compacted;

-- ChangesSetEnabled switches the feed on or off (see
-- state_changes_set_enabled in migration 007); needs the table's owner.
-- name: ChangesSetEnabled :one
SELECT state_changes_set_enabled(@enabled::boolean)::boolean AS enabled;
