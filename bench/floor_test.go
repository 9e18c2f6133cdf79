package bench

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The floors are what an expert would hand-write for the same job on the
// same table shapes, without the library's SQL: where raw measures the Go
// layer (same statement, library/raw ≈ 1 means the layer costs nothing),
// floor measures the design (how much more the library's statements make
// the server do than the job needs). They run through the fixture's floor
// pool, on a schema (floorSchema) whose state_entries has the store's
// columns, primary key, CHECKs, indexes and touch trigger but not the
// change feed's triggers, with the same rows seeded: an expert's table
// logs no writes, so what the feed costs the library's writes shows in
// lib/floor.

// floorGet is a point lookup that still honours expiry, as any TTL store
// must.
const floorGet = `SELECT value FROM state_entries WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())`

// floorContains asks for a row, not for EXISTS(…).
const floorContains = `SELECT 1 FROM state_entries WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())`

// floorPut is the smallest upsert that keeps a version: no metadata, no
// expiry, no created_at rule.
const floorPut = `INSERT INTO state_entries (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = state_entries.version + 1, updated_at = now()`

// floorPutWithTTL is floorPut with an expiry from an interval.
const floorPutWithTTL = `INSERT INTO state_entries (key, value, expires_at) VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond')
ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, version = state_entries.version + 1, updated_at = now()`

const floorDelete = `DELETE FROM state_entries WHERE key = $1`

const floorCount = `SELECT count(*) FROM state_entries WHERE expires_at IS NULL OR expires_at > now()`

const floorGetMany = `SELECT key, value FROM state_entries WHERE key = ANY($1) AND (expires_at IS NULL OR expires_at > now())`

const floorListKeys = `SELECT key FROM state_entries WHERE key >= $1 AND key < $2 AND (expires_at IS NULL OR expires_at > now()) ORDER BY key`

const floorFindByMetadata = `SELECT key, value, created_at, updated_at, expires_at, metadata, version FROM state_entries
WHERE metadata @> $1 AND (expires_at IS NULL OR expires_at > now())`

// floorScan reads the whole store in one streamed query: no pages, no
// bounded memory on the server side, the fastest way out.
const floorScan = `SELECT key, value, created_at, updated_at, expires_at, metadata, version FROM state_entries
WHERE expires_at IS NULL OR expires_at > now() ORDER BY key`

// floorCheckpointTable has the shape of state_checkpoint_entries (primary
// key on (checkpoint_id, key)) and nothing else: no foreign key, no header.
const floorCheckpointTable = `CREATE TABLE IF NOT EXISTS floor_checkpoint_entries (
    checkpoint_id UUID NOT NULL, key BYTEA NOT NULL, value BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NULL,
    metadata JSONB NULL, version BIGINT NOT NULL,
    PRIMARY KEY (checkpoint_id, key))`

const floorCheckpointCopy = `INSERT INTO floor_checkpoint_entries
SELECT $1, key, value, created_at, updated_at, expires_at, metadata, version
FROM state_entries WHERE expires_at IS NULL OR expires_at > now()`

const floorCheckpointDelete = `DELETE FROM floor_checkpoint_entries WHERE checkpoint_id = $1`

const floorRestore = `INSERT INTO state_entries (key, value, created_at, updated_at, expires_at, metadata, version)
SELECT key, value, created_at, updated_at, expires_at, metadata, version
FROM state_checkpoint_entries WHERE checkpoint_id = $1`

// floorDeleteExpired is one unbatched DELETE, as someone without the
// library would write it.
const floorDeleteExpired = `DELETE FROM state_entries WHERE expires_at <= now()`

func floorGetOne(ctx context.Context, pool *pgxpool.Pool, sql string, key []byte) (bool, error) {
	var v []byte
	err := pool.QueryRow(ctx, sql, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func floorContainsOne(ctx context.Context, pool *pgxpool.Pool, key []byte) (bool, error) {
	var one int32
	err := pool.QueryRow(ctx, floorContains, key).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// floorCreateCheckpoint is the copy in one transaction.
func floorCreateCheckpoint(ctx context.Context, pool *pgxpool.Pool) (uuid.UUID, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, floorCheckpointCopy, id)
		return err
	})
	return id, err
}

// floorRestoreCheckpoint replaces every entry in one transaction, writers
// locked out as the library does.
func floorRestoreCheckpoint(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, rawEntriesLockForRestore); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, rawEntriesDeleteAll); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, floorRestore, id)
		return err
	})
}

// floorRows runs a query and reads every row's columns as raw bytes, the
// least a client can do with them, and returns how many rows came back.
func floorRows(ctx context.Context, f *fixture, sql string, args ...any) (int, error) {
	rows, err := f.floor.Query(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		_ = rows.RawValues()
		n++
	}
	return n, rows.Err()
}
