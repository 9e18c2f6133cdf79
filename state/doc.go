// Package state is pgstate's key/value store: binary keys and values with
// optional JSON metadata, expiry, atomic batches, prefix listing and
// streaming scans, and checkpoints that snapshot and restore the whole
// store. Postgres keeps it in PostgreSQL; Memory keeps it in process memory
// with the same behaviour, for tests and examples.
//
// # Usage
//
//	cfg := state.DefaultConfig("postgres://app@db.internal:5432/app")
//	cfg.Schema = "orders_state"
//	store, err := state.Open(ctx, cfg) // connects and applies migrations
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//
//	if err := store.PutWithTTL(ctx, []byte("session/42"), token, 30*time.Minute); err != nil {
//		return err
//	}
//	value, found, err := store.Get(ctx, []byte("session/42"))
//
// Every method takes a context; an operation with no earlier deadline is
// bounded by Config.QueryTimeout, and transient failures (serialization
// failures, deadlocks, lost connections) are retried as Config.MaxRetries
// allows.
//
// # Interfaces
//
// Backend is the small contract (Get, Put, Delete, ListKeys, Clear, Count,
// Contains) that code needing only a key/value map should accept. Store
// extends it with metadata (PutWithMetadata, FindByMetadata), expiry
// (PutWithTTL, CleanupExpired), batches (BatchPut, GetMany, DeleteMany),
// Scan and checkpoints. Both *Postgres and *Memory implement Store, and the
// statetest package checks that they behave the same, so code tested
// against NewMemory runs unchanged on Open. *Postgres adds what only a
// database has: Stats, TableStats, CountEstimate, Vacuum and HealthCheck.
//
// # Errors
//
// Errors carry the operation and detail in their message and a sentinel in
// their chain; test them with errors.Is. Invalid input is reported as
// ErrEmptyKey, ErrKeyTooLarge, ErrValueTooLarge, ErrInvalidTTL or
// ErrInvalidMetadata, before anything is sent. A missing key is not an
// error (Get reports found == false), but a missing checkpoint is
// ErrCheckpointNotFound. Open rejects a bad Config with ErrInvalidConfig and
// a database at the wrong version with ErrSchemaOutdated or ErrSchemaTooNew.
// At run time, ErrUnavailable means the database could not be reached,
// ErrPermissionDenied that the role lacks a privilege, and ErrClosed that
// the store was used after Close. The driver's *pgconn.PgError stays in the
// chain for errors.As.
//
// # Schemas as namespaces
//
// A store lives in one PostgreSQL schema, Config.Schema ("public" by
// default), which holds its tables and its migration version. Stores in
// different schemas of one database are fully independent: keys, expiry,
// checkpoints and cleanup never cross from one to another. Give each
// service or tenant its own schema rather than a key prefix when they must
// not see or restore each other's data. Open creates the schema and migrates
// it unless Config.SkipMigrations is set, in which case it only checks the
// version (and statectl migrate up, or schema.Migrate, applies the
// migrations separately).
package state
