-- EntryExpire sets a live entry's expiry to ttl_micros from now without
-- rewriting its value (redis EXPIRE). It is a write: version and updated_at
-- move. No row: the key has no live entry. The TTL is added in two exact
-- parts, as in EntryPut.
-- name: EntryExpire :one
UPDATE state_entries
SET expires_at = now()
        + (sqlc.arg(ttl_micros)::bigint / 1000000) * interval '1 second'
        + (sqlc.arg(ttl_micros)::bigint % 1000000) * interval '1 microsecond',
    updated_at = now(),
    mod_revision = nextval('state_entries_revision_seq'),
    create_revision = coalesce(create_revision, mod_revision),
    version = version + 1
WHERE key = @key
    AND (expires_at IS NULL OR expires_at > now())
RETURNING version;

-- EntryPersist removes a live entry's expiry (redis PERSIST). No row: the
-- key has no live entry or it had no expiry.
-- name: EntryPersist :one
UPDATE state_entries
SET expires_at = NULL,
    updated_at = now(),
    mod_revision = nextval('state_entries_revision_seq'),
    create_revision = coalesce(create_revision, mod_revision),
    version = version + 1
WHERE key = @key
    AND expires_at > now()
RETURNING version;

-- EntryTTLGet reads a live entry's expiry together with the database's
-- clock, so the remaining time is measured on one clock (redis TTL).
-- name: EntryTTLGet :one
SELECT expires_at, now()::timestamptz AS now
FROM state_entries
WHERE key = @key
    AND (expires_at IS NULL OR expires_at > now());
