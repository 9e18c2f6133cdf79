-- EntriesFindByMetadataAsc and EntriesFindByMetadataDesc page through
-- FindByMetadata's matches within [lower, upper): the GIN index finds the
-- matches, the key bounds resume after the previous page.
-- name: EntriesFindByMetadataAsc :many
SELECT key, value, created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE metadata @> @filter::jsonb
    AND key >= @lower
    AND key < @upper
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key
LIMIT sqlc.narg(row_limit)::bigint;

-- name: EntriesFindByMetadataDesc :many
SELECT key, value, created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE metadata @> @filter::jsonb
    AND key >= @lower
    AND key < @upper
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key DESC
LIMIT sqlc.narg(row_limit)::bigint;
