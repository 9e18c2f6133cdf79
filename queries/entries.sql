-- EntryGet reads one live value. An entry is live while expires_at is NULL
-- or later than the database's clock; every read in this file filters on
-- that, so an expired entry is invisible before any cleanup removes it.
-- name: EntryGet :one
SELECT value
FROM state_entries
WHERE key = @key
    AND (expires_at IS NULL OR expires_at > now());

-- name: EntryGetFull :one
SELECT key, value, created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE key = @key
    AND (expires_at IS NULL OR expires_at > now());

-- name: EntryExists :one
SELECT EXISTS (
    SELECT 1
    FROM state_entries
    WHERE key = @key
        AND (expires_at IS NULL OR expires_at > now())
);

-- EntryPut replaces the entry: value, metadata and expiry all come from the
-- arguments (NULL metadata or TTL clears them). The expiry is computed from
-- the database's clock. Overwriting an expired, not yet cleaned-up row starts
-- a new life for the key: created_at resets. bigint * interval multiplies in
-- float8, which is inexact above 2^53 microseconds (285 years), so the TTL
-- is added as whole seconds plus the remaining microseconds, both exact.
-- An existing row is updated first, and a new one inserted only when there
-- was none: an upsert evaluates the insert's column defaults before it
-- finds the row, so every overwrite would draw a mod_revision it throws
-- away. A row inserted meanwhile by someone else is still met by ON
-- CONFLICT.
-- name: EntryPut :exec
WITH updated AS (
    UPDATE state_entries AS e
    SET value = @value,
        metadata = sqlc.narg(metadata),
        expires_at = now()
            + (sqlc.narg(ttl_micros)::bigint / 1000000) * interval '1 second'
            + (sqlc.narg(ttl_micros)::bigint % 1000000) * interval '1 microsecond',
        updated_at = now(),
        created_at = CASE WHEN e.expires_at <= now() THEN now() ELSE e.created_at END,
        mod_revision = nextval('state_entries_revision_seq'),
        create_revision = CASE
            WHEN e.expires_at <= now() THEN NULL
            ELSE coalesce(e.create_revision, e.mod_revision)
        END,
        version = e.version + 1
    WHERE e.key = @key
    RETURNING 1
)
INSERT INTO state_entries (key, value, metadata, expires_at)
SELECT
    @key,
    @value,
    sqlc.narg(metadata),
    now()
        + (sqlc.narg(ttl_micros)::bigint / 1000000) * interval '1 second'
        + (sqlc.narg(ttl_micros)::bigint % 1000000) * interval '1 microsecond'
WHERE NOT EXISTS (SELECT FROM updated)
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

-- name: EntryDelete :execrows
DELETE FROM state_entries
WHERE key = @key;

-- name: EntriesCount :one
SELECT count(*)
FROM state_entries
WHERE expires_at IS NULL OR expires_at > now();

-- EntriesCountEstimate reads the planner's row estimate, maintained by
-- VACUUM and ANALYZE: constant time, for dashboards. -1 until the table has
-- been analyzed once.
-- name: EntriesCountEstimate :one
SELECT c.reltuples::bigint AS estimate
FROM pg_catalog.pg_class AS c
WHERE c.oid = 'state_entries'::regclass;

-- name: EntriesDeleteAll :execrows
DELETE FROM state_entries;
