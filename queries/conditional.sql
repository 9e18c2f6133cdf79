-- Writes with options: conditions on the key's version, keeping the TTL or
-- metadata, and returning the entry they replace. Each is one statement. The
-- key's row is locked first (cur), so the condition, the write and the
-- reported previous entry all see the same, latest committed row. A key with
-- no live entry has version 0: "put if absent" is "put if version 0". An
-- expired row that cleanup has not removed yet counts as absent.

-- EntryWrite writes value under key when conditional is false or the live
-- version is expected. The expiry is expires_at when given, else ttl_micros
-- from now, else none. version is the new version, 0 when the condition
-- failed; current_version is the live version before the write. The prev_*
-- columns describe the row it found (meaningful only when existed); its
-- value and metadata are sent only when want_prev. With by_revision the
-- condition compares the live mod_revision instead of the version;
-- revision is the revision of the write, 0 when it did not happen.
-- ON CONFLICT checks the condition again against the row it locks, which
-- matters when cur saw no row and another transaction inserted one since.
-- name: EntryWrite :one
WITH cur AS (
    SELECT s.value, s.metadata, s.created_at, s.updated_at, s.expires_at, s.version,
        s.mod_revision, coalesce(s.create_revision, s.mod_revision) AS create_revision,
        (s.expires_at IS NULL OR s.expires_at > now()) AS live
    FROM state_entries AS s
    WHERE s.key = @key
    FOR UPDATE
), updated AS (
    -- A row cur found (and locked) is updated in place; an upsert would
    -- draw a mod_revision for the insert it does not do (see EntryPut).
    UPDATE state_entries AS e
    SET value = @value,
        metadata = CASE
            WHEN @keep_metadata::boolean AND c.live THEN e.metadata
            ELSE sqlc.narg(metadata)
        END,
        expires_at = CASE
            WHEN @keep_ttl::boolean AND c.live THEN e.expires_at
            ELSE coalesce(
                sqlc.narg(expires_at)::timestamptz,
                now()
                    + (sqlc.narg(ttl_micros)::bigint / 1000000) * interval '1 second'
                    + (sqlc.narg(ttl_micros)::bigint % 1000000) * interval '1 microsecond'
            )
        END,
        updated_at = now(),
        created_at = CASE WHEN c.live THEN e.created_at ELSE now() END,
        mod_revision = nextval('state_entries_revision_seq'),
        create_revision = CASE WHEN c.live THEN coalesce(e.create_revision, e.mod_revision) END,
        version = e.version + 1
    FROM cur AS c
    WHERE e.key = @key
        AND (NOT @conditional::boolean
            OR (CASE WHEN c.live THEN (CASE WHEN @by_revision::boolean THEN c.mod_revision ELSE c.version END) ELSE 0 END) = @expected::bigint)
    RETURNING e.version, e.mod_revision, coalesce(e.create_revision, e.mod_revision) AS create_revision
), inserted AS (
    INSERT INTO state_entries (key, value, metadata, expires_at)
    SELECT
        @key,
        @value,
        sqlc.narg(metadata),
        coalesce(
            sqlc.narg(expires_at)::timestamptz,
            now()
                + (sqlc.narg(ttl_micros)::bigint / 1000000) * interval '1 second'
                + (sqlc.narg(ttl_micros)::bigint % 1000000) * interval '1 microsecond'
        )
    WHERE NOT EXISTS (SELECT FROM cur)
        AND (NOT @conditional::boolean OR @expected::bigint = 0)
    ON CONFLICT (key) DO UPDATE
    SET value = excluded.value,
        metadata = CASE
            WHEN @keep_metadata::boolean
                AND (state_entries.expires_at IS NULL OR state_entries.expires_at > now())
                THEN state_entries.metadata
            ELSE excluded.metadata
        END,
        expires_at = CASE
            WHEN @keep_ttl::boolean
                AND (state_entries.expires_at IS NULL OR state_entries.expires_at > now())
                THEN state_entries.expires_at
            ELSE excluded.expires_at
        END,
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
        version = state_entries.version + 1
    WHERE NOT @conditional::boolean
        OR (CASE
            WHEN state_entries.expires_at IS NULL OR state_entries.expires_at > now()
                THEN CASE WHEN @by_revision::boolean THEN state_entries.mod_revision ELSE state_entries.version END
            ELSE 0
        END) = @expected::bigint
    RETURNING version, mod_revision, coalesce(create_revision, mod_revision) AS create_revision
), written AS (
    SELECT * FROM updated
    UNION ALL
    SELECT * FROM inserted
)
SELECT
    coalesce(w.version, 0)::bigint AS version,
    coalesce(w.mod_revision, 0)::bigint AS revision,
    coalesce(w.create_revision, 0)::bigint AS create_revision,
    coalesce(c.live, false)::boolean AS existed,
    (CASE WHEN c.live THEN c.version ELSE 0 END)::bigint AS current_version,
    (CASE WHEN c.live THEN c.mod_revision ELSE 0 END)::bigint AS current_revision,
    (CASE WHEN c.live AND @want_prev::boolean THEN c.value END)::bytea AS prev_value,
    (CASE WHEN c.live AND @want_prev::boolean THEN c.metadata END)::jsonb AS prev_metadata,
    c.created_at AS prev_created_at,
    c.updated_at AS prev_updated_at,
    c.expires_at AS prev_expires_at,
    coalesce(c.create_revision, 0)::bigint AS prev_create_revision
FROM (SELECT 1) AS one
LEFT JOIN cur AS c ON true
LEFT JOIN written AS w ON true;

-- EntryDeleteIf deletes key when conditional is false or the live version is
-- expected. deleted is true when a live entry was removed; an expired row is
-- removed too but does not count.
-- name: EntryDeleteIf :one
WITH cur AS (
    SELECT s.value, s.metadata, s.created_at, s.updated_at, s.expires_at, s.version,
        s.mod_revision, coalesce(s.create_revision, s.mod_revision) AS create_revision,
        (s.expires_at IS NULL OR s.expires_at > now()) AS live
    FROM state_entries AS s
    WHERE s.key = @key
    FOR UPDATE
), removed AS (
    DELETE FROM state_entries AS e
    USING cur AS c
    WHERE e.key = @key
        AND (NOT @conditional::boolean
            OR (CASE WHEN c.live THEN (CASE WHEN @by_revision::boolean THEN c.mod_revision ELSE c.version END) ELSE 0 END) = @expected::bigint)
    RETURNING e.version
)
SELECT
    (coalesce(c.live, false) AND r.version IS NOT NULL)::boolean AS deleted,
    coalesce(c.live, false)::boolean AS existed,
    (CASE WHEN c.live THEN c.version ELSE 0 END)::bigint AS current_version,
    (CASE WHEN c.live THEN c.mod_revision ELSE 0 END)::bigint AS current_revision,
    (CASE WHEN c.live AND @want_prev::boolean THEN c.value END)::bytea AS prev_value,
    (CASE WHEN c.live AND @want_prev::boolean THEN c.metadata END)::jsonb AS prev_metadata,
    c.created_at AS prev_created_at,
    c.updated_at AS prev_updated_at,
    c.expires_at AS prev_expires_at,
    coalesce(c.create_revision, 0)::bigint AS prev_create_revision
FROM (SELECT 1) AS one
LEFT JOIN cur AS c ON true
LEFT JOIN removed AS r ON true;

-- EntriesDeleteRange deletes every row in [lower, upper) in one statement
-- (etcd's range delete) and counts the live ones among them; expired rows
-- go too, since nobody can see them any more.
-- name: EntriesDeleteRange :one
WITH d AS (
    DELETE FROM state_entries
    WHERE key >= @lower
        AND key < @upper
    RETURNING (expires_at IS NULL OR expires_at > now()) AS live
)
SELECT count(*) FILTER (WHERE live)
FROM d;

-- name: EntriesDeleteFrom :one
WITH d AS (
    DELETE FROM state_entries
    WHERE key >= @lower
    RETURNING (expires_at IS NULL OR expires_at > now()) AS live
)
SELECT count(*) FILTER (WHERE live)
FROM d;

-- EntriesCountRange counts the live entries in [lower, upper) without
-- returning them: an index range scan on the primary key.
-- name: EntriesCountRange :one
SELECT count(*)
FROM state_entries
WHERE key >= @lower
    AND key < @upper
    AND (expires_at IS NULL OR expires_at > now());

-- name: EntriesCountFrom :one
SELECT count(*)
FROM state_entries
WHERE key >= @lower
    AND (expires_at IS NULL OR expires_at > now());
