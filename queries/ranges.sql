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
SELECT key, value, created_at, updated_at, expires_at, metadata, version
FROM state_entries
WHERE key >= @lower
    AND key < @upper
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key
LIMIT @page_size;

-- name: EntriesScanFrom :many
SELECT key, value, created_at, updated_at, expires_at, metadata, version
FROM state_entries
WHERE key >= @lower
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key
LIMIT @page_size;
