-- EntriesDeleteExpiredBatch deletes at most batch_size expired entries,
-- oldest expiry first, found through the partial index on expires_at and
-- deleted by their physical row ids: a TID scan, with no second lookup by
-- key and no row locks taken beforehand. A row that another session rewrote
-- in the meantime has a new row id and is skipped. The expiry is tested
-- again on the row being deleted, which PostgreSQL re-evaluates on a
-- rewritten row, for servers whose TID scans do not re-check row ids; it is
-- written as IS TRUE so that the planner cannot turn it into a scan of the
-- expiry index that tests every row against the list of ids.
-- name: EntriesDeleteExpiredBatch :execrows
DELETE FROM state_entries
WHERE ctid = ANY(ARRAY(
        SELECT e.ctid
        FROM state_entries AS e
        WHERE e.expires_at <= now()
        ORDER BY e.expires_at
        LIMIT @batch_size
    ))
    AND (expires_at <= now()) IS TRUE;

-- CleanupLockTryXact elects one cleaner per store (per schema) among every
-- process sharing the database. The lock is transaction-level, taken by the
-- transaction that then deletes a batch: it ends with that transaction
-- however the transaction ends, so a cancelled call cannot leave it on a
-- connection that goes back to the pool.
-- name: CleanupLockTryXact :one
SELECT pg_try_advisory_xact_lock(hashtextextended('pgstate.cleanup.' || current_schema(), 0)) AS acquired;

-- TableSizes reports the on-disk size and tuple counts of the store's tables
-- from the statistics collector (counts are as of the last report, not
-- transactional). The three parts of state_entries add up to its total: the
-- table (heap with its free-space and visibility maps), its TOAST table
-- (values too large to stay in the heap, with the TOAST index) and its
-- indexes.
-- name: TableSizes :one
SELECT
    pg_catalog.pg_stat_get_live_tuples(c.oid) AS live_rows,
    pg_catalog.pg_stat_get_dead_tuples(c.oid) AS dead_rows,
    (pg_catalog.pg_table_size(c.oid)
        - coalesce(pg_catalog.pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0))::bigint AS table_bytes,
    coalesce(pg_catalog.pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)::bigint AS toast_bytes,
    pg_catalog.pg_indexes_size(c.oid) AS index_bytes,
    pg_catalog.pg_total_relation_size(c.oid) AS total_bytes,
    (pg_catalog.pg_total_relation_size('state_checkpoints'::regclass)
        + pg_catalog.pg_total_relation_size('state_checkpoint_entries'::regclass))::bigint AS checkpoint_bytes
FROM pg_catalog.pg_class AS c
WHERE c.oid = 'state_entries'::regclass;

-- StoreVacuumAllowed reports whether the current role may vacuum every table
-- of the store: as PostgreSQL decides it, a superuser, the table's owner or
-- the database's owner (USAGE: having the role's privileges, as the owner
-- checks do, not only membership). For anyone else VACUUM skips the table
-- with only a warning.
-- name: StoreVacuumAllowed :one
SELECT coalesce(bool_and(
        pg_catalog.pg_has_role(c.relowner, 'USAGE')
        OR pg_catalog.pg_has_role(d.datdba, 'USAGE')
    ), false)::boolean AS allowed
FROM pg_catalog.pg_class AS c
CROSS JOIN pg_catalog.pg_database AS d
WHERE d.datname = current_database()
    AND c.oid IN (
        'state_entries'::regclass,
        'state_checkpoints'::regclass,
        'state_checkpoint_entries'::regclass
    );
