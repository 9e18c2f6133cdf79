package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

// sqlSnapshot renders everything a store keeps, and every schema and table
// of the database, as one string: equal snapshots mean nothing changed.
const sqlSnapshot = `
SELECT concat_ws(E'\n',
    (SELECT string_agg(concat_ws(':', encode(key, 'hex'), encode(value, 'hex'), metadata::text, version, expires_at, created_at, updated_at), ',' ORDER BY key) FROM state_entries),
    (SELECT string_agg(concat_ws(':', id, row_count, data_bytes, metadata::text), ',' ORDER BY id) FROM state_checkpoints),
    (SELECT string_agg(concat_ws(':', checkpoint_id, encode(key, 'hex'), encode(value, 'hex')), ',' ORDER BY checkpoint_id, key) FROM state_checkpoint_entries),
    (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace),
    (SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY schemaname, tablename) FROM pg_tables),
    (SELECT version FROM pgstate_schema_version)::text)`

func snapshot(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	return scalar[string](t, conn, sqlSnapshot)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	cfg := testdb.Config(t)
	cfg.MaxValueSize = 1024
	s := testdb.OpenConfig(t, cfg)
	conn := testdb.Conn(t, cfg.DSN)
	ctx := context.Background()

	if err := s.PutWithMetadata(ctx, []byte("keep"), []byte("original"), map[string]string{"owner": "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutWithTTL(ctx, []byte("ttl"), []byte("expires"), time.Hour); err != nil {
		t.Fatal(err)
	}
	cp, err := s.CreateCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, []byte("after-checkpoint"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	closed := testdb.OpenConfig(t, cfg)
	closed.Close()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	key := []byte("keep")
	tooLong := bytes.Repeat([]byte("k"), state.MaxKeySize+1)
	tooBig := make([]byte, cfg.MaxValueSize+1)
	valid := state.Entry{Key: []byte("keep"), Value: []byte("overwritten")}
	unknown := uuid.Must(uuid.NewV7())
	openWith := func(mutate func(*state.Config)) func() error {
		return func() error {
			c := cfg
			mutate(&c)
			p, err := state.Open(ctx, c)
			if err == nil {
				p.Close()
			}
			return err
		}
	}
	hostileSchema := func(name string) func() error {
		return openWith(func(c *state.Config) { c.Schema = name })
	}

	tests := []struct {
		name string
		op   func() error
		want []error
	}{
		{"EmptyKeyPut", func() error { return s.Put(ctx, nil, []byte("v")) }, []error{state.ErrEmptyKey}},
		{"EmptyKeyGet", func() error { _, _, err := s.Get(ctx, []byte{}); return err }, []error{state.ErrEmptyKey}},
		{"EmptyKeyBatch", func() error { return s.BatchPut(ctx, []state.Entry{valid, {Key: nil, Value: []byte("v")}}) }, []error{state.ErrEmptyKey}},
		{"EmptyKeyGetMany", func() error { _, err := s.GetMany(ctx, [][]byte{key, {}}); return err }, []error{state.ErrEmptyKey}},
		{"EmptyKeyDeleteMany", func() error { _, err := s.DeleteMany(ctx, [][]byte{key, nil}); return err }, []error{state.ErrEmptyKey}},
		{"OversizedKeyPut", func() error { return s.Put(ctx, tooLong, []byte("v")) }, []error{state.ErrKeyTooLarge}},
		{"OversizedKeyBatch", func() error { return s.BatchPut(ctx, []state.Entry{valid, {Key: tooLong}}) }, []error{state.ErrKeyTooLarge}},
		{"OversizedKeyDeleteMany", func() error { _, err := s.DeleteMany(ctx, [][]byte{key, tooLong}); return err }, []error{state.ErrKeyTooLarge}},
		{"OversizedValuePut", func() error { return s.Put(ctx, key, tooBig) }, []error{state.ErrValueTooLarge}},
		{"OversizedValueBatch", func() error { return s.BatchPut(ctx, []state.Entry{valid, {Key: []byte("big"), Value: tooBig}}) }, []error{state.ErrValueTooLarge}},
		{"InvalidMetadataRaw", func() error { return s.PutWithMetadata(ctx, key, []byte("v"), json.RawMessage(`{"a":`)) }, []error{state.ErrInvalidMetadata}},
		{"InvalidMetadataBytes", func() error { return s.PutWithMetadata(ctx, key, []byte("v"), []byte("not json")) }, []error{state.ErrInvalidMetadata}},
		{"InvalidMetadataUnmarshalable", func() error { return s.PutWithMetadata(ctx, key, []byte("v"), make(chan int)) }, []error{state.ErrInvalidMetadata}},
		{"InvalidMetadataBatch", func() error {
			return s.BatchPut(ctx, []state.Entry{valid, {Key: []byte("m"), Metadata: json.RawMessage(`{'single': 'quotes'}`)}})
		}, []error{state.ErrInvalidMetadata}},
		{"InvalidMetadataCheckpoint", func() error { _, err := s.CreateCheckpointWithMetadata(ctx, json.RawMessage(`[1,`)); return err }, []error{state.ErrInvalidMetadata}},
		{"InvalidMetadataFilter", func() error { _, err := s.FindByMetadata(ctx, json.RawMessage(`{`)); return err }, []error{state.ErrInvalidMetadata}},
		{"ZeroTTL", func() error { return s.PutWithTTL(ctx, key, []byte("v"), 0) }, []error{state.ErrInvalidTTL}},
		{"NegativeTTL", func() error { return s.PutWithTTL(ctx, key, []byte("v"), -time.Second) }, []error{state.ErrInvalidTTL}},
		{"NegativeTTLBatch", func() error { return s.BatchPut(ctx, []state.Entry{valid, {Key: []byte("t"), TTL: -time.Nanosecond}}) }, []error{state.ErrInvalidTTL}},
		{"UnknownCheckpointRestore", func() error { return s.RestoreCheckpoint(ctx, unknown) }, []error{state.ErrCheckpointNotFound}},
		{"UnknownCheckpointDelete", func() error { return s.DeleteCheckpoint(ctx, unknown) }, []error{state.ErrCheckpointNotFound}},
		{"NilCheckpointRestore", func() error { return s.RestoreCheckpoint(ctx, uuid.Nil) }, []error{state.ErrCheckpointNotFound}},
		{"NilCheckpointDelete", func() error { return s.DeleteCheckpoint(ctx, uuid.Nil) }, []error{state.ErrCheckpointNotFound}},
		{"CancelledPut", func() error { return s.Put(cancelled, key, []byte("v")) }, []error{context.Canceled}},
		{"CancelledBatchPut", func() error { return s.BatchPut(cancelled, []state.Entry{valid}) }, []error{context.Canceled}},
		{"CancelledClear", func() error { return s.Clear(cancelled) }, []error{context.Canceled}},
		{"CancelledCreateCheckpoint", func() error { _, err := s.CreateCheckpoint(cancelled); return err }, []error{context.Canceled}},
		{"CancelledRestoreCheckpoint", func() error { return s.RestoreCheckpoint(cancelled, cp) }, []error{context.Canceled}},
		{"CancelledDeleteMany", func() error { _, err := s.DeleteMany(cancelled, [][]byte{key}); return err }, []error{context.Canceled}},
		{"ClosedPut", func() error { return closed.Put(ctx, key, []byte("v")) }, []error{state.ErrClosed}},
		{"ClosedGet", func() error { _, _, err := closed.Get(ctx, key); return err }, []error{state.ErrClosed}},
		{"ClosedBatchPut", func() error { return closed.BatchPut(ctx, []state.Entry{valid}) }, []error{state.ErrClosed}},
		{"ClosedClear", func() error { return closed.Clear(ctx) }, []error{state.ErrClosed}},
		{"ClosedRestoreCheckpoint", func() error { return closed.RestoreCheckpoint(ctx, cp) }, []error{state.ErrClosed}},
		{"ClosedHealthCheck", func() error { return closed.HealthCheck(ctx) }, []error{state.ErrClosed}},
		{"ClosedScan", func() error {
			for _, err := range closed.Scan(ctx, nil) {
				return err
			}
			return nil
		}, []error{state.ErrClosed}},
		{"SchemaInjection", hostileSchema(`x"; DROP TABLE y; --`), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaDropStateEntries", hostileSchema(`public; DROP TABLE state_entries`), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaWithSpaces", hostileSchema("my schema"), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaEmpty", hostileSchema(""), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaTooLong", hostileSchema(strings.Repeat("s", 64)), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		// System schemas, which a default pg_dump leaves out (issue 21).
		{"SchemaInformationSchema", hostileSchema("information_schema"), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaPgCatalog", hostileSchema("pg_catalog"), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaPgToast", hostileSchema("pg_toast"), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaPgPrefixUpper", hostileSchema("PG_mine"), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaLeadingDigit", hostileSchema("1tenant"), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaQuoted", hostileSchema(`"public"`), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SchemaNonASCII", hostileSchema("tënant"), []error{state.ErrInvalidConfig, state.ErrInvalidSchemaName}},
		{"SSLModeInvalid", openWith(func(c *state.Config) { c.SSLMode = "verify-everything" }), []error{state.ErrInvalidConfig}},
		{"SSLModeInjection", openWith(func(c *state.Config) { c.SSLMode = "disable' host='evil" }), []error{state.ErrInvalidConfig}},
		{"DSNEmpty", openWith(func(c *state.Config) { c.DSN = "" }), []error{state.ErrInvalidConfig}},
		{"DSNBadPort", openWith(func(c *state.Config) { c.DSN = "postgres://postgres@127.0.0.1:notaport/postgres" }), []error{state.ErrInvalidConfig}},
		{"DSNBadKeyword", openWith(func(c *state.Config) { c.DSN = "host=127.0.0.1 port=5432 sslmode=bogus" }), []error{state.ErrInvalidConfig}},
		{"DSNGarbage", openWith(func(c *state.Config) { c.DSN = "%%%not a dsn" }), []error{state.ErrInvalidConfig}},
		{"DSNBadURLEscape", openWith(func(c *state.Config) { c.DSN = "postgres://user:p%zz@127.0.0.1/db" }), []error{state.ErrInvalidConfig}},
	}
	before := snapshot(t, conn)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.op()
			if err == nil {
				t.Fatalf("no error, want %v", tc.want)
			}
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Fatalf("got %v, want an error wrapping %v", err, want)
				}
			}
			if after := snapshot(t, conn); after != before {
				t.Fatalf("the store changed after a rejected call:\nbefore: %s\nafter:  %s", before, after)
			}
		})
	}
	// The store that saw all of that still works.
	if v, ok, err := s.Get(ctx, key); err != nil || !ok || string(v) != "original" {
		t.Fatalf("Get(keep) = %q, %v, %v after the bad input", v, ok, err)
	}
}

// TestBadInputSchemaVersions opens a database whose schema was migrated by a
// newer release, and one whose migrations were rolled back.
func TestBadInputSchemaVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change string
		skip   bool
		want   error
	}{
		{"TooNew", "UPDATE pgstate_schema_version SET version = version + 1", false, state.ErrSchemaTooNew},
		{"TooNewSkipMigrations", "UPDATE pgstate_schema_version SET version = version + 1", true, state.ErrSchemaTooNew},
		{"FarTooNew", "UPDATE pgstate_schema_version SET version = 9999", false, state.ErrSchemaTooNew},
		{"OutdatedSkipMigrations", "", true, state.ErrSchemaOutdated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testdb.Config(t)
			s := testdb.OpenConfig(t, cfg)
			ctx := context.Background()
			if err := s.BatchPut(ctx, []state.Entry{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: []byte("2")}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateCheckpoint(ctx); err != nil {
				t.Fatal(err)
			}
			conn := testdb.Conn(t, cfg.DSN)
			if tc.change != "" {
				if _, err := conn.Exec(ctx, tc.change); err != nil {
					t.Fatal(err)
				}
			} else {
				// Roll back only the cleanup procedure (migration 5): the data
				// tables stay.
				latest, _ := schema.Latest()
				if err := schema.MigrateTo(ctx, conn, "public", latest-1); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, conn)

			// A store already running notices on its next health check.
			if err := s.HealthCheck(ctx); !errors.Is(err, tc.want) {
				t.Fatalf("HealthCheck = %v, want %v", err, tc.want)
			}
			c := cfg
			c.SkipMigrations = tc.skip
			p, err := state.Open(ctx, c)
			if err == nil {
				p.Close()
				t.Fatalf("Open succeeded, want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			if after := snapshot(t, conn); after != before {
				t.Fatalf("Open changed the database:\nbefore: %s\nafter:  %s", before, after)
			}
			if n := scalar[int64](t, conn, "SELECT count(*) FROM state_entries"); n != 2 {
				t.Fatalf("%d entries left, want 2", n)
			}
		})
	}
}
