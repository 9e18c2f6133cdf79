// Package testdb gives every test its own PostgreSQL database, cloned by
// pgtestdb from a template that the project's migrations built once (the
// template is keyed by a hash of the migration files, so editing a migration
// builds a new one).
package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver pgtestdb uses
	"github.com/peterldowns/pgtestdb"

	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

// DefaultURL is used when TEST_DATABASE_URL is not set: the local server.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// BaseURL returns the server tests run against: TEST_DATABASE_URL, or the
// local server. The role must be allowed to create roles and databases.
func BaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Migrator builds pgtestdb templates with the project's tern migrations,
// applied to the public schema.
type Migrator struct{}

var _ pgtestdb.Migrator = Migrator{}

// Hash identifies the migrated state: a digest of every migration file.
func (Migrator) Hash() (string, error) {
	h, err := schema.Hash()
	if err != nil {
		return "", err
	}
	return "pgstate-" + h[:16], nil
}

// Migrate applies the migrations to a new, empty template database.
func (Migrator) Migrate(ctx context.Context, _ *sql.DB, conf pgtestdb.Config) error {
	conn, err := pgx.Connect(ctx, conf.URL())
	if err != nil {
		return fmt.Errorf("connect to template: %w", err)
	}
	defer conn.Close(ctx)
	return schema.Migrate(ctx, conn, "public")
}

func config(tb testing.TB) pgtestdb.Config {
	tb.Helper()
	pc, err := pgconn.ParseConfig(BaseURL())
	if err != nil {
		tb.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	return pgtestdb.Config{
		DriverName:                "pgx",
		Host:                      pc.Host,
		Port:                      fmt.Sprint(pc.Port),
		User:                      pc.User,
		Password:                  pc.Password,
		Database:                  pc.Database,
		Options:                   "sslmode=disable",
		ForceTerminateConnections: true,
	}
}

// DSN returns the connection string of a fresh, migrated database that is
// dropped when the test ends, passed or failed (see KeepFailedEnv). It
// connects as pgtestdb's unprivileged role, which owns the database.
func DSN(tb testing.TB) string {
	tb.Helper()
	return dropWhenDone(tb, pgtestdb.Custom(tb, config(tb), Migrator{}))
}

// EmptyDSN returns a fresh database with no migrations applied.
func EmptyDSN(tb testing.TB) string {
	tb.Helper()
	return dropWhenDone(tb, pgtestdb.Custom(tb, config(tb), pgtestdb.NoopMigrator{}))
}

// KeepFailedEnv names the environment variable that, set to 1, keeps the
// database of a failed test for inspection, as pgtestdb does by default;
// otherwise a failed run would leave one database per failed test behind.
const KeepFailedEnv = "PGSTATE_KEEP_FAILED_DB"

// dropWhenDone drops the database of a failed test (pgtestdb drops those
// of passed tests itself). Cleanups run last-registered first, so this one
// runs after the test's stores and connections were closed, and before
// pgtestdb's.
func dropWhenDone(tb testing.TB, conf *pgtestdb.Config) string {
	tb.Helper()
	tb.Cleanup(func() {
		if !tb.Failed() {
			return
		}
		if os.Getenv(KeepFailedEnv) == "1" {
			tb.Logf("kept the failed test's database %s (%s=1)", conf.Database, KeepFailedEnv)
			return
		}
		ctx := context.Background()
		admin, err := pgx.Connect(ctx, BaseURL())
		if err != nil {
			tb.Logf("drop the failed test's database %s: %v", conf.Database, err)
			return
		}
		defer admin.Close(ctx)
		// Database names cannot be parameters.
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{conf.Database}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Logf("drop the failed test's database %s: %v", conf.Database, err)
			return
		}
		tb.Logf("dropped the failed test's database %s (set %s=1 to keep it)", conf.Database, KeepFailedEnv)
	})
	return conf.URL()
}

// Config returns a store configuration for a fresh database, sized for
// tests (small pool, short timeouts).
func Config(tb testing.TB) state.Config {
	tb.Helper()
	cfg := state.DefaultConfig(DSN(tb))
	cfg.MinConns = 0
	cfg.MaxConns = 4
	cfg.QueryTimeout = 30e9
	cfg.RetryBackoff = 5e6
	return cfg
}

// Open opens a store on a fresh database, applying mutate to its
// configuration first, and closes it when the test ends.
func Open(tb testing.TB, mutate func(*state.Config)) *state.Postgres {
	tb.Helper()
	cfg := Config(tb)
	if mutate != nil {
		mutate(&cfg)
	}
	return OpenConfig(tb, cfg)
}

// OpenConfig opens a store with cfg and closes it when the test ends.
func OpenConfig(tb testing.TB, cfg state.Config) *state.Postgres {
	tb.Helper()
	p, err := state.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

// Conn opens a plain connection to dsn, closed when the test ends.
func Conn(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
