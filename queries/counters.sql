-- EntryIncrement adds delta to an integer value (decimal text, as redis
-- INCRBY keeps it) in one statement and returns the new value. A missing or
-- expired key starts from 0; a live entry keeps its expiry and metadata. A
-- value that is not an integer is left alone and no row comes back, which
-- the caller reports as ErrNotInteger; a sum outside bigint fails with
-- SQLSTATE 22003.
-- name: EntryIncrement :one
INSERT INTO state_entries (key, value)
VALUES (@key, convert_to((@delta::bigint)::text, 'UTF8'))
ON CONFLICT (key) DO UPDATE
SET value = CASE
        WHEN state_entries.expires_at <= now() THEN excluded.value
        ELSE convert_to((encode(state_entries.value, 'escape')::bigint + @delta::bigint)::text, 'UTF8')
    END,
    metadata = CASE WHEN state_entries.expires_at <= now() THEN NULL ELSE state_entries.metadata END,
    expires_at = CASE WHEN state_entries.expires_at <= now() THEN NULL ELSE state_entries.expires_at END,
    created_at = CASE WHEN state_entries.expires_at <= now() THEN now() ELSE state_entries.created_at END,
    updated_at = now(),
    mod_revision = nextval('state_entries_revision_seq'),
    create_revision = CASE
        WHEN state_entries.expires_at <= now() THEN NULL
        ELSE coalesce(state_entries.create_revision, state_entries.mod_revision)
    END,
    version = state_entries.version + 1
WHERE state_entries.expires_at <= now()
    OR encode(state_entries.value, 'escape') ~ '^-?[0-9]{1,19}$'
RETURNING encode(value, 'escape')::bigint AS value, version;
