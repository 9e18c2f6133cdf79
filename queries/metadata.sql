-- EntriesFindByMetadata returns the live entries whose metadata contains the
-- filter document. The @> operator is strict, so the planner can use the
-- partial GIN index on metadata (jsonb_path_ops).
-- name: EntriesFindByMetadata :many
SELECT key, value, created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE metadata @> @filter::jsonb
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key;
