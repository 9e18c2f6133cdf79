-- Finding a checkpoint and reading its entries without restoring it.

-- name: CheckpointGet :one
SELECT id, created_at, row_count, data_bytes, metadata, name
FROM state_checkpoints
WHERE id = @id;

-- CheckpointGetByName finds a named checkpoint. The condition name <> ''
-- repeats the unique index's predicate, so that a generic plan can use it.
-- name: CheckpointGetByName :one
SELECT id, created_at, row_count, data_bytes, metadata, name
FROM state_checkpoints
WHERE name = @name::text
    AND name <> '';

-- CheckpointsFindByIDRange returns the checkpoints whose ids lie in
-- [lower, upper]: those whose id starts with a hex prefix, as git and docker
-- accept short ids. The caller asks for one row more than it will show, to
-- tell a unique prefix from an ambiguous one.
-- name: CheckpointsFindByIDRange :many
SELECT id, created_at, row_count, data_bytes, metadata, name
FROM state_checkpoints
WHERE id BETWEEN @lower::uuid AND @upper::uuid
ORDER BY id
LIMIT @row_limit::integer;

-- CheckpointEntryGet reads one entry of a checkpoint, whatever its expiry:
-- every entry was live when the checkpoint was taken.
-- name: CheckpointEntryGet :one
SELECT key, value, created_at, updated_at, expires_at, metadata, version,
    0::bigint AS mod_revision, NULL::bigint AS create_revision
FROM state_checkpoint_entries
WHERE checkpoint_id = @checkpoint_id
    AND key = @key;

-- CheckpointEntriesListAsc and CheckpointEntriesListDesc read one page of a
-- checkpoint's entries over [lower, upper), as EntriesListAsc and
-- EntriesListDesc do for the live entries, on the checkpoint's primary key.
-- name: CheckpointEntriesListAsc :many
SELECT key,
    CASE WHEN @with_values::boolean THEN value ELSE ''::bytea END AS value,
    created_at, updated_at, expires_at, metadata, version,
    0::bigint AS mod_revision, NULL::bigint AS create_revision
FROM state_checkpoint_entries
WHERE checkpoint_id = @checkpoint_id
    AND key >= @lower
    AND key < @upper
ORDER BY key
LIMIT sqlc.narg(row_limit)::bigint;

-- name: CheckpointEntriesListDesc :many
SELECT key,
    CASE WHEN @with_values::boolean THEN value ELSE ''::bytea END AS value,
    created_at, updated_at, expires_at, metadata, version,
    0::bigint AS mod_revision, NULL::bigint AS create_revision
FROM state_checkpoint_entries
WHERE checkpoint_id = @checkpoint_id
    AND key >= @lower
    AND key < @upper
ORDER BY key DESC
LIMIT sqlc.narg(row_limit)::bigint;
