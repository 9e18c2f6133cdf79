-- CheckpointCreate copies every live entry into the checkpoint tables in one
-- statement, hence from one snapshot: a consistent point-in-time copy that
-- never leaves the server. The header's foreign key is checked at the end of
-- the statement, after both inserts.
-- name: CheckpointCreate :one
WITH copied AS (
    INSERT INTO state_checkpoint_entries (
        checkpoint_id, key, value, created_at, updated_at, expires_at, metadata, version
    )
    SELECT @id::uuid, e.key, e.value, e.created_at, e.updated_at, e.expires_at, e.metadata, e.version
    FROM state_entries AS e
    WHERE e.expires_at IS NULL OR e.expires_at > now()
    RETURNING octet_length(key)::bigint + octet_length(value)::bigint AS bytes
)
INSERT INTO state_checkpoints (id, row_count, data_bytes, metadata)
SELECT @id::uuid, count(*), coalesce(sum(copied.bytes), 0)::bigint, sqlc.narg(metadata)::jsonb
FROM copied
RETURNING id, created_at, row_count, data_bytes, metadata;

-- name: CheckpointsList :many
SELECT id, created_at, row_count, data_bytes, metadata
FROM state_checkpoints
ORDER BY created_at DESC, id DESC;

-- CheckpointLockShared finds a checkpoint and keeps it from being deleted
-- until the surrounding transaction ends.
-- name: CheckpointLockShared :one
SELECT id, created_at, row_count, data_bytes, metadata
FROM state_checkpoints
WHERE id = @id
FOR SHARE;

-- EntriesLockForRestore blocks writers (not readers) until the restore
-- commits, so no write can land between the delete and the copy back.
-- name: EntriesLockForRestore :exec
LOCK TABLE state_entries IN EXCLUSIVE MODE;

-- name: EntriesRestoreFromCheckpoint :execrows
INSERT INTO state_entries (key, value, created_at, updated_at, expires_at, metadata, version)
SELECT c.key, c.value, c.created_at, c.updated_at, c.expires_at, c.metadata, c.version
FROM state_checkpoint_entries AS c
WHERE c.checkpoint_id = @id;

-- The entries go with the header (ON DELETE CASCADE).
-- name: CheckpointDelete :execrows
DELETE FROM state_checkpoints
WHERE id = @id;

-- CheckpointsDeleteBeyond enforces retention right after checkpoint `id` was
-- created: it keeps that one and the newest `keep` - 1 others, and deletes
-- the rest. The new checkpoint is excluded by id, not found by its place in
-- the order, because created_at is its transaction's start: a checkpoint
-- started later but committed earlier, or a clock stepped back, would
-- otherwise rank above it and have it deleted.
-- name: CheckpointsDeleteBeyond :execrows
DELETE FROM state_checkpoints
WHERE id IN (
    SELECT c.id
    FROM state_checkpoints AS c
    WHERE c.id <> @id::uuid
    ORDER BY c.created_at DESC, c.id DESC
    OFFSET sqlc.arg(keep)::integer - 1
);
