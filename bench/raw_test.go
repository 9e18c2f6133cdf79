package bench

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The baselines send exactly the text the generated code sends, header
// comment included, so the server parses and plans the same statement.
// TestRawSQLMatchesGenerated fails when a query in queries/ changes and these
// copies do not.
const rawEntryGet = `-- name: EntryGet :one
SELECT value
FROM state_entries
WHERE key = $1
    AND (expires_at IS NULL OR expires_at > now())
`

const rawEntryPut = `-- name: EntryPut :exec
WITH updated AS (
    UPDATE state_entries AS e
    SET value = $2,
        metadata = $3,
        expires_at = now()
            + ($4::bigint / 1000000) * interval '1 second'
            + ($4::bigint % 1000000) * interval '1 microsecond',
        updated_at = now(),
        created_at = CASE WHEN e.expires_at <= now() THEN now() ELSE e.created_at END,
        mod_revision = nextval('state_entries_revision_seq'),
        create_revision = CASE
            WHEN e.expires_at <= now() THEN NULL
            ELSE coalesce(e.create_revision, e.mod_revision)
        END,
        version = e.version + 1
    WHERE e.key = $1
    RETURNING 1
)
INSERT INTO state_entries (key, value, metadata, expires_at)
SELECT
    $1,
    $2,
    $3,
    now()
        + ($4::bigint / 1000000) * interval '1 second'
        + ($4::bigint % 1000000) * interval '1 microsecond'
WHERE NOT EXISTS (SELECT FROM updated)
ON CONFLICT (key) DO UPDATE
SET value = excluded.value,
    metadata = excluded.metadata,
    expires_at = excluded.expires_at,
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
`

const rawEntryDelete = `-- name: EntryDelete :execrows
DELETE FROM state_entries
WHERE key = $1
`

const rawEntryExists = `-- name: EntryExists :one
SELECT EXISTS (
    SELECT 1
    FROM state_entries
    WHERE key = $1
        AND (expires_at IS NULL OR expires_at > now())
)
`

const rawEntriesCount = `-- name: EntriesCount :one
SELECT count(*)
FROM state_entries
WHERE expires_at IS NULL OR expires_at > now()
`

const rawEntriesGetMany = `-- name: EntriesGetMany :many
SELECT key, value
FROM state_entries
WHERE key = ANY($1::bytea[])
    AND (expires_at IS NULL OR expires_at > now())
`

const rawEntriesUpsertMany = `-- name: EntriesUpsertMany :execrows
INSERT INTO state_entries (key, value, metadata, expires_at)
SELECT
    b.key,
    b.value,
    b.metadata,
    CASE
        WHEN b.ttl_micros > 0 THEN now()
            + (b.ttl_micros / 1000000) * interval '1 second'
            + (b.ttl_micros % 1000000) * interval '1 microsecond'
    END
FROM (
    -- Set-returning functions in one select list advance in lockstep.
    SELECT
        unnest($1::bytea[]) AS key,
        unnest($2::bytea[]) AS value,
        unnest($3::jsonb[]) AS metadata,
        unnest($4::bigint[]) AS ttl_micros
) AS b
ON CONFLICT (key) DO UPDATE
SET value = excluded.value,
    metadata = excluded.metadata,
    expires_at = excluded.expires_at,
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
`

const rawEntryKeysListRange = `-- name: EntryKeysListRange :many
SELECT key
FROM state_entries
WHERE key >= $1
    AND key < $2
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key
`

const rawEntriesFindByMetadata = `-- name: EntriesFindByMetadata :many
SELECT key, value, created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE metadata @> $1::jsonb
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key
`

const rawCheckpointCreate = `-- name: CheckpointCreate :one
WITH copied AS (
    INSERT INTO state_checkpoint_entries (
        checkpoint_id, key, value, created_at, updated_at, expires_at, metadata, version
    )
    SELECT $1::uuid, e.key, e.value, e.created_at, e.updated_at, e.expires_at, e.metadata, e.version
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
SELECT $1::uuid, t.row_count, t.data_bytes, $2::jsonb, $3::text
FROM totals AS t
RETURNING id, created_at, row_count, data_bytes, metadata, name
`

const rawCheckpointLockShared = `-- name: CheckpointLockShared :one
SELECT id, created_at, row_count, data_bytes, metadata
FROM state_checkpoints
WHERE id = $1
FOR SHARE
`

const rawEntriesLockForRestore = `-- name: EntriesLockForRestore :exec
LOCK TABLE state_entries IN EXCLUSIVE MODE
`

const rawEntriesDeleteAll = `-- name: EntriesDeleteAll :execrows
DELETE FROM state_entries
`

const rawEntriesRestoreFromCheckpoint = `-- name: EntriesRestoreFromCheckpoint :execrows
INSERT INTO state_entries (key, value, created_at, updated_at, expires_at, metadata, version)
SELECT c.key, c.value, c.created_at, c.updated_at, c.expires_at, c.metadata, c.version
FROM state_checkpoint_entries AS c
WHERE c.checkpoint_id = $1
`

const rawCheckpointDelete = `-- name: CheckpointDelete :one
WITH header AS (
    DELETE FROM state_checkpoints
    WHERE id = $1
    RETURNING id
), entries AS (
    DELETE FROM state_checkpoint_entries
    WHERE checkpoint_id = ANY(ARRAY(SELECT h.id FROM header AS h))
)
SELECT count(*) AS deleted
FROM header
`

const rawEntriesDeleteExpiredBatch = `-- name: EntriesDeleteExpiredBatch :execrows
DELETE FROM state_entries
WHERE ctid = ANY(ARRAY(
        SELECT e.ctid
        FROM state_entries AS e
        WHERE e.expires_at <= now()
        ORDER BY e.expires_at
        LIMIT $1
    ))
    AND (expires_at <= now()) IS TRUE
`

const rawEntriesScanFrom = `-- name: EntriesScanFrom :many
SELECT key, value, created_at, updated_at, expires_at, metadata, version, mod_revision, create_revision
FROM state_entries
WHERE key >= $1
    AND (expires_at IS NULL OR expires_at > now())
ORDER BY key
LIMIT $2
`

// The raw helpers below are what a careful hand-written pgx program does with
// the same statements: no timeouts, no retries, no validation, no counters.

func rawGet(ctx context.Context, pool *pgxpool.Pool, key []byte) ([]byte, bool, error) {
	var value []byte
	err := pool.QueryRow(ctx, rawEntryGet, key).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return value, err == nil, err
}

func rawPut(ctx context.Context, pool *pgxpool.Pool, key, value []byte, metadata json.RawMessage, ttlMicros *int64) error {
	_, err := pool.Exec(ctx, rawEntryPut, key, value, metadata, ttlMicros)
	return err
}

func rawDelete(ctx context.Context, pool *pgxpool.Pool, key []byte) error {
	_, err := pool.Exec(ctx, rawEntryDelete, key)
	return err
}

func rawContains(ctx context.Context, pool *pgxpool.Pool, key []byte) (bool, error) {
	var found bool
	err := pool.QueryRow(ctx, rawEntryExists, key).Scan(&found)
	return found, err
}

func rawCount(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, rawEntriesCount).Scan(&n)
	return n, err
}

func rawGetMany(ctx context.Context, pool *pgxpool.Pool, keys [][]byte) (map[string][]byte, error) {
	rows, err := pool.Query(ctx, rawEntriesGetMany, keys)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string][]byte, len(keys))
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[string(k)] = v
	}
	return out, rows.Err()
}

func rawUpsertMany(ctx context.Context, pool *pgxpool.Pool, keys, values [][]byte, metadata []json.RawMessage, ttlMicros []int64) error {
	_, err := pool.Exec(ctx, rawEntriesUpsertMany, keys, values, metadata, ttlMicros)
	return err
}

// rawCopy is the floor for BatchPut of new keys: COPY of new rows, no
// conflict handling at all.
func rawCopy(ctx context.Context, pool *pgxpool.Pool, keys, values [][]byte) error {
	rows := make([][]any, len(keys))
	for i := range keys {
		rows[i] = []any{keys[i], values[i]}
	}
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"state_entries"}, []string{"key", "value"}, pgx.CopyFromRows(rows))
	return err
}

func rawListKeys(ctx context.Context, pool *pgxpool.Pool, lower, upper []byte) ([][]byte, error) {
	rows, err := pool.Query(ctx, rawEntryKeysListRange, lower, upper)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys [][]byte
	for rows.Next() {
		var k []byte
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// rawEntry holds one full row, as a hand-written program would scan it.
type rawEntry struct {
	Key, Value           []byte
	CreatedAt, UpdatedAt time.Time
	ExpiresAt            *time.Time
	Metadata             json.RawMessage
	Version              int64
	ModRevision          int64
	CreateRevision       *int64
}

func scanRawEntries(rows pgx.Rows, into []rawEntry) ([]rawEntry, error) {
	defer rows.Close()
	for rows.Next() {
		var e rawEntry
		if err := rows.Scan(&e.Key, &e.Value, &e.CreatedAt, &e.UpdatedAt, &e.ExpiresAt, &e.Metadata, &e.Version, &e.ModRevision, &e.CreateRevision); err != nil {
			return nil, err
		}
		into = append(into, e)
	}
	return into, rows.Err()
}

func rawFindByMetadata(ctx context.Context, pool *pgxpool.Pool, filter json.RawMessage) ([]rawEntry, error) {
	rows, err := pool.Query(ctx, rawEntriesFindByMetadata, filter)
	if err != nil {
		return nil, err
	}
	return scanRawEntries(rows, nil)
}

// rawScan pages through the whole store the way Scan does, handing each row
// to fn; it keeps one page in memory.
func rawScan(ctx context.Context, pool *pgxpool.Pool, pageSize int32, fn func(rawEntry)) error {
	lower := []byte{}
	page := make([]rawEntry, 0, pageSize)
	for {
		rows, err := pool.Query(ctx, rawEntriesScanFrom, lower, pageSize)
		if err != nil {
			return err
		}
		page, err = scanRawEntries(rows, page[:0])
		if err != nil {
			return err
		}
		for _, e := range page {
			fn(e)
		}
		if len(page) < int(pageSize) {
			return nil
		}
		last := page[len(page)-1].Key
		lower = append(last[:len(last):len(last)], 0)
	}
}

func rawCreateCheckpoint(ctx context.Context, pool *pgxpool.Pool) (uuid.UUID, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var (
			gotID     uuid.UUID
			createdAt time.Time
			rowCount  int64
			dataBytes int64
			metadata  json.RawMessage
			name      string
		)
		return tx.QueryRow(ctx, rawCheckpointCreate, id, json.RawMessage(nil), "").Scan(&gotID, &createdAt, &rowCount, &dataBytes, &metadata, &name)
	})
	return id, err
}

func rawRestoreCheckpoint(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var (
			gotID     uuid.UUID
			createdAt time.Time
			rowCount  int64
			dataBytes int64
			metadata  json.RawMessage
		)
		if err := tx.QueryRow(ctx, rawCheckpointLockShared, id).Scan(&gotID, &createdAt, &rowCount, &dataBytes, &metadata); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, rawEntriesLockForRestore); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, rawEntriesDeleteAll); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, rawEntriesRestoreFromCheckpoint, id)
		return err
	})
}

// rawCleanupExpired runs the library's batch statement until a batch comes
// back short, as CleanupExpired does.
func rawCleanupExpired(ctx context.Context, pool *pgxpool.Pool, batch int32) (int64, error) {
	var total int64
	for {
		tag, err := pool.Exec(ctx, rawEntriesDeleteExpiredBatch, batch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}

func rawDeleteCheckpoint(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, rawCheckpointDelete, id).Scan(&n)
	return n, err
}
