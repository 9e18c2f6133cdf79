-- EntryKeysListRange lists the live keys in [lower, upper). With upper the
-- successor of a prefix this is a prefix listing, and both bounds are index
-- conditions on the primary key even under a generic plan (unlike LIKE,
-- which needs a constant pattern and text semantics).
-- name: EntryKeysListRange :many
SELECT key
FROM state_entries
WHERE key >= @lower
    AND key < @upper
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key;

-- EntryKeysListFrom lists the live keys at or after lower, for prefixes
-- without a successor (empty, or only 0xFF bytes).
-- name: EntryKeysListFrom :many
SELECT key
FROM state_entries
WHERE key >= @lower
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key;

-- EntriesScanRange reads one page of a keyset scan over [lower, upper). The
-- next page starts at the last key of this one followed by a zero byte, its
-- immediate successor, so no OFFSET is ever needed.
-- name: EntriesScanRange :many
SELECT key, value, created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE key >= @lower
    AND key < @upper
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key
LIMIT @page_size;

-- name: EntriesScanFrom :many
SELECT key, value, created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE key >= @lower
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key
LIMIT @page_size;

-- EntriesListAsc and EntriesListDesc read one page of a listing over
-- [lower, upper) in either direction. Both bounds are always given (an open
-- end is a key longer than any key can be), so both stay index conditions
-- on the primary key, which also yields the order: LIMIT stops the scan.
-- start-after is folded into the bounds by the caller. Values are read only
-- when asked for: a keys-only listing never detoasts a large value.
-- name: EntriesListAsc :many
SELECT key,
    CASE WHEN @with_values::boolean THEN value ELSE ''::bytea END AS value,
    created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE key >= @lower
    AND key < @upper
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key
LIMIT sqlc.narg(row_limit)::bigint;

-- name: EntriesListDesc :many
SELECT key,
    CASE WHEN @with_values::boolean THEN value ELSE ''::bytea END AS value,
    created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE key >= @lower
    AND key < @upper
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key DESC
LIMIT sqlc.narg(row_limit)::bigint;
