-- EntriesUpsertMany writes a whole batch in one statement. The arrays are
-- parallel: element i of each describes entry i. A NULL metadata clears the
-- entry's metadata; a ttl_micros of 0 means no expiry, and a TTL is added as
-- whole seconds plus microseconds so that it stays exact (see EntryPut).
-- Keys must be unique within one call (ON CONFLICT cannot touch a row
-- twice), so the caller resolves duplicates first; it also sorts them, and
-- rows are inserted and locked in the order of the arrays, so that
-- concurrent batches lock overlapping rows in the same order.
-- name: EntriesUpsertMany :execrows
INSERT INTO state_entries (key, value, metadata, expires_at)
SELECT
    b.key,
    b.value,
    b.metadata,
    CASE
        WHEN b.ttl_micros > 0 THEN now()
            + (b.ttl_micros / 1000000) * interval '1 second'
            + (b.ttl_micros % 1000000) * interval '1 microsecond'
    END
FROM (
    -- Set-returning functions in one select list advance in lockstep.
    SELECT
        unnest(@keys::bytea[]) AS key,
        unnest(@values::bytea[]) AS value,
        unnest(@metadata::jsonb[]) AS metadata,
        unnest(@ttl_micros::bigint[]) AS ttl_micros
) AS b
ON CONFLICT (key) DO UPDATE
SET value = excluded.value,
    metadata = excluded.metadata,
    expires_at = excluded.expires_at,
    updated_at = now(),
    created_at = CASE
        WHEN state_entries.expires_at <= now() THEN now()
        ELSE state_entries.created_at
    END,
    mod_revision = nextval('state_entries_revision_seq'),
    create_revision = CASE
        WHEN state_entries.expires_at <= now() THEN NULL
        ELSE coalesce(state_entries.create_revision, state_entries.mod_revision)
    END,
    version = state_entries.version + 1;

-- name: EntriesGetMany :many
SELECT key, value
FROM state_entries
WHERE key = ANY(@keys::bytea[])
    AND (expires_at IS NULL OR expires_at > now());

-- name: EntriesDeleteMany :execrows
DELETE FROM state_entries
WHERE key = ANY(@keys::bytea[]);

-- EntriesInsertManyCopyFrom bulk-loads entries with COPY, the fastest way
-- into a table. COPY cannot resolve conflicts, so BatchPut uses it only for
-- large batches, inside a savepoint, and falls back to EntriesUpsertMany
-- when a key already exists. expires_at is computed by the caller from
-- TransactionNow, the same clock reading now() gives the other statements
-- of the transaction.
-- name: EntriesInsertManyCopyFrom :copyfrom
INSERT INTO state_entries (key, value, metadata, expires_at)
VALUES (@key, @value, @metadata, @expires_at);

-- TransactionNow reads the transaction's timestamp: now() is fixed for the
-- whole transaction, so times computed from it match the server's.
-- name: TransactionNow :one
SELECT now()::timestamptz AS now;
