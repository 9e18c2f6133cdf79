package tests

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

func latest(t *testing.T) int32 {
	t.Helper()
	v, err := schema.Latest()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func version(t *testing.T, conn *pgx.Conn, schemaName string) int32 {
	t.Helper()
	v, err := schema.Version(bg, conn, schemaName)
	if err != nil {
		t.Fatalf("schema.Version: %v", err)
	}
	return v
}

// storeTables counts the store's tables and routines in a schema.
func storeTables(t *testing.T, conn *pgx.Conn, schemaName string) int64 {
	t.Helper()
	return queryInt(t, conn, `
		SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename LIKE 'state%')
		     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		        WHERE n.nspname = $1 AND p.proname LIKE 'state%')`, schemaName)
}

func TestMigrateDownToZeroAndUpAgain(t *testing.T) {
	t.Parallel()
	conn := testdb.Conn(t, testdb.EmptyDSN(t))
	const s = "roundtrip"
	if err := schema.Migrate(bg, conn, s); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if v := version(t, conn, s); v != latest(t) {
		t.Fatalf("version %d after Migrate, want %d", v, latest(t))
	}
	full := storeTables(t, conn, s)
	if full < 4 {
		t.Fatalf("only %d store objects after Migrate", full)
	}
	// Step down one migration at a time: every down part runs and works.
	for target := latest(t) - 1; target >= 0; target-- {
		if err := schema.MigrateTo(bg, conn, s, target); err != nil {
			t.Fatalf("MigrateTo(%d): %v", target, err)
		}
		if v := version(t, conn, s); v != target {
			t.Fatalf("version %d, want %d", v, target)
		}
	}
	if n := storeTables(t, conn, s); n != 0 {
		t.Fatalf("%d store tables and routines left at version 0", n)
	}
	if err := schema.Migrate(bg, conn, s); err != nil {
		t.Fatalf("Migrate after full down: %v", err)
	}
	if n := storeTables(t, conn, s); n != full {
		t.Fatalf("%d objects after migrating up again, want %d", n, full)
	}
	cfg := state.DefaultConfig(conn.Config().ConnString())
	cfg.Schema = s
	cfg.SkipMigrations = true
	p := testdb.OpenConfig(t, cfg)
	if err := p.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatalf("Put after down and up: %v", err)
	}
}

func TestMigrateTwiceIsANoop(t *testing.T) {
	t.Parallel()
	dsn := testdb.EmptyDSN(t)
	conn := testdb.Conn(t, dsn)
	if err := schema.Migrate(bg, conn, "public"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(bg, `INSERT INTO state_entries (key, value) VALUES ('\x01', '\x02')`); err != nil {
		t.Fatal(err)
	}
	if err := schema.Migrate(bg, conn, "public"); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if v := version(t, conn, "public"); v != latest(t) {
		t.Fatalf("version %d", v)
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM state_entries`); n != 1 {
		t.Fatalf("second Migrate changed the data: %d rows", n)
	}
	// Open migrates too, and finds nothing to do.
	cfg := state.DefaultConfig(dsn)
	p := testdb.OpenConfig(t, cfg)
	if v, ok, err := p.Get(bg, []byte{1}); err != nil || !ok || string(v) != "\x02" {
		t.Fatalf("Get after Open = %x, %v, %v", v, ok, err)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	dsn := testdb.EmptyDSN(t)
	const workers = 6
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		// Each worker is its own session, as separate processes would be.
		conn := testdb.Conn(t, dsn)
		wg.Go(func() { errs[i] = schema.Migrate(context.Background(), conn, "shared") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	conn := testdb.Conn(t, dsn)
	if v := version(t, conn, "shared"); v != latest(t) {
		t.Fatalf("version %d after concurrent migrations", v)
	}
}

func TestSchemasAreIsolatedStores(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	open := func(s string) *state.Postgres {
		cfg := state.DefaultConfig(dsn)
		cfg.Schema = s
		cfg.MaxConns = 2
		return testdb.OpenConfig(t, cfg)
	}
	a, b := open("tenant_a"), open("tenant_b")
	if err := a.Put(bg, []byte("shared-key"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(bg, []byte("shared-key"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(bg, []byte("only-a"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		store *state.Postgres
		value string
		count int64
	}{{"A", a, "a", 2}, {"B", b, "b", 1}} {
		if v, _, _ := tc.store.Get(bg, []byte("shared-key")); string(v) != tc.value {
			t.Fatalf("%s: shared-key = %q, want %q", tc.name, v, tc.value)
		}
		if n, _ := tc.store.Count(bg); n != tc.count {
			t.Fatalf("%s: Count = %d, want %d", tc.name, n, tc.count)
		}
	}
	if ok, _ := b.Contains(bg, []byte("only-a")); ok {
		t.Fatal("tenant_b sees tenant_a's key")
	}
	if _, err := a.CreateCheckpoint(bg); err != nil {
		t.Fatal(err)
	}
	if cps, _ := b.ListCheckpoints(bg); len(cps) != 0 {
		t.Fatalf("tenant_b lists tenant_a's checkpoints: %v", cps)
	}
	if err := a.Clear(bg); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Count(bg); n != 1 {
		t.Fatalf("Clear on tenant_a changed tenant_b: Count = %d", n)
	}
	// The public schema of the same database is a third, untouched store.
	pub := open("public")
	if n, _ := pub.Count(bg); n != 0 {
		t.Fatalf("public store has %d entries", n)
	}
}

func TestHostileSchemaNamesAreRejected(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	conn := testdb.Conn(t, dsn)
	if _, err := conn.Exec(bg, `CREATE TABLE y (id int)`); err != nil {
		t.Fatal(err)
	}
	before := queryInt(t, conn, `SELECT count(*) FROM pg_namespace`)
	for _, name := range []string{
		`x"; DROP TABLE y; --`, `x; DROP TABLE y`, `public"`, `"public"`, `a b`, ``, `1abc`,
		`tenant-a`, `ünïcode`, `x'y`, string(make([]byte, 64)), "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234",
	} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			cfg := state.DefaultConfig(dsn)
			cfg.Schema = name
			p, err := state.Open(bg, cfg)
			if err == nil {
				p.Close()
				t.Fatalf("Open accepted schema %q", name)
			}
			if !errors.Is(err, state.ErrInvalidSchemaName) || !errors.Is(err, state.ErrInvalidConfig) {
				t.Fatalf("Open(%q) = %v, want ErrInvalidSchemaName", name, err)
			}
			if err := schema.Migrate(bg, conn, name); !errors.Is(err, schema.ErrInvalidSchemaName) {
				t.Fatalf("schema.Migrate(%q) = %v", name, err)
			}
		})
	}
	if n := queryInt(t, conn, `SELECT count(*) FROM y`); n != 0 {
		t.Fatalf("table y changed")
	}
	if after := queryInt(t, conn, `SELECT count(*) FROM pg_namespace`); after != before {
		t.Fatalf("%d schemas before, %d after", before, after)
	}
}

func TestSkipMigrationsRequiresAMigratedSchema(t *testing.T) {
	t.Parallel()
	dsn := testdb.EmptyDSN(t)
	cfg := state.DefaultConfig(dsn)
	cfg.SkipMigrations = true
	if p, err := state.Open(bg, cfg); !errors.Is(err, state.ErrSchemaOutdated) {
		if p != nil {
			p.Close()
		}
		t.Fatalf("Open with SkipMigrations on an empty database = %v, want ErrSchemaOutdated", err)
	}
	conn := testdb.Conn(t, dsn)
	if n := storeTables(t, conn, "public"); n != 0 {
		t.Fatalf("SkipMigrations created %d objects", n)
	}
	if err := schema.MigrateTo(bg, conn, "public", latest(t)-1); err != nil {
		t.Fatal(err)
	}
	if _, err := state.Open(bg, cfg); !errors.Is(err, state.ErrSchemaOutdated) {
		t.Fatalf("Open with SkipMigrations one version behind = %v", err)
	}
	if err := schema.Migrate(bg, conn, "public"); err != nil {
		t.Fatal(err)
	}
	p := testdb.OpenConfig(t, cfg)
	if err := p.HealthCheck(bg); err != nil {
		t.Fatalf("HealthCheck: %v", err)
	}
}
