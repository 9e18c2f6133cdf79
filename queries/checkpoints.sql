-- CheckpointCreate copies every live entry into the checkpoint tables in one
-- statement, hence from one snapshot: a consistent point-in-time copy that
-- never leaves the server. The header and its entries are written by the
-- same statement, so they commit together or not at all (there is no
-- foreign key; see migration 008). The totals are read by a second scan of
-- the same rows in the same snapshot, with the same now(), rather than
-- aggregated from the copy's RETURNING: a sequential pass over the source
-- costs a fraction of materialising every copied row again.
-- name: CheckpointCreate :one
WITH copied AS (
    INSERT INTO state_checkpoint_entries (
        checkpoint_id, key, value, created_at, updated_at, expires_at, metadata, version
    )
    SELECT @id::uuid, e.key, e.value, e.created_at, e.updated_at, e.expires_at, e.metadata, e.version
    FROM state_entries AS e
    WHERE e.expires_at IS NULL OR e.expires_at > now()
), totals AS (
    SELECT
        count(*) AS row_count,
        coalesce(sum(octet_length(e.key)::bigint + octet_length(e.value)::bigint), 0)::bigint AS data_bytes
    FROM state_entries AS e
    WHERE e.expires_at IS NULL OR e.expires_at > now()
)
INSERT INTO state_checkpoints (id, row_count, data_bytes, metadata, name)
SELECT @id::uuid, t.row_count, t.data_bytes, sqlc.narg(metadata)::jsonb, @name::text
FROM totals AS t
RETURNING id, created_at, row_count, data_bytes, metadata, name;

-- name: CheckpointsList :many
SELECT id, created_at, row_count, data_bytes, metadata, name
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

-- CheckpointDelete deletes a header and its entries in one statement. The
-- entries go only if this statement deleted the header: a restore holding
-- the header FOR SHARE makes it wait, and of two concurrent deletes the
-- second finds no header and deletes nothing.
-- name: CheckpointDelete :one
WITH header AS (
    DELETE FROM state_checkpoints
    WHERE id = @id
    RETURNING id
), entries AS (
    DELETE FROM state_checkpoint_entries
    WHERE checkpoint_id = ANY(ARRAY(SELECT h.id FROM header AS h))
)
SELECT count(*) AS deleted
FROM header;

-- CheckpointsDeleteBeyond enforces retention right after checkpoint `id` was
-- created: it keeps that one and the newest `keep` - 1 others, and deletes
-- the rest, headers and entries in one statement as CheckpointDelete does.
-- The new checkpoint is excluded by id, not found by its place in the
-- order, because created_at is its transaction's start: a checkpoint
-- started later but committed earlier, or a clock stepped back, would
-- otherwise rank above it and have it deleted.
-- name: CheckpointsDeleteBeyond :one
WITH doomed AS (
    DELETE FROM state_checkpoints
    WHERE id IN (
        SELECT c.id
        FROM state_checkpoints AS c
        WHERE c.id <> @id::uuid
        ORDER BY c.created_at DESC, c.id DESC
        OFFSET sqlc.arg(keep)::integer - 1
    )
    RETURNING id
), entries AS (
    DELETE FROM state_checkpoint_entries
    WHERE checkpoint_id = ANY(ARRAY(SELECT d.id FROM doomed AS d))
)
SELECT count(*) AS deleted
FROM doomed;
