package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/gen"
	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

// connectTimeout is shorter than the library's default: an operator at a
// terminal wants a wrong host reported quickly.
const connectTimeout = 10 * time.Second

// target checks the DSN and schema before anything connects.
func (a *app) target() (dsn, schemaName string, err error) {
	if a.g.dsn == "" {
		return "", "", usagef("no DSN: pass --dsn or set DATABASE_URL")
	}
	if err := schema.ValidateName(a.g.schema); err != nil {
		return "", "", usagef("--schema: %v", err)
	}
	return a.g.dsn, a.g.schema, nil
}

// open opens the store without migrating it: only the migrate commands may
// change the schema, so that a typo in --schema cannot create a new store.
func (a *app) open(ctx context.Context) (*state.Postgres, error) {
	dsn, schemaName, err := a.target()
	if err != nil {
		return nil, err
	}
	cfg := state.DefaultConfig(dsn)
	cfg.Schema = schemaName
	cfg.SkipMigrations = true
	// One command at a time needs no idle connections kept open.
	cfg.MinConns = 0
	cfg.MaxConns = 2
	cfg.ConnectTimeout = connectTimeout
	if cc, err := pgconn.ParseConfig(dsn); err == nil && cc.ConnectTimeout > 0 && cc.ConnectTimeout < connectTimeout {
		// A connect_timeout in the DSN shorter than ours is the operator's
		// choice; Config.ConnectTimeout would otherwise replace it.
		cfg.ConnectTimeout = cc.ConnectTimeout
	}
	if a.maxValueSize > 0 {
		cfg.MaxValueSize = a.maxValueSize
	}
	s, err := state.Open(ctx, cfg)
	if errors.Is(err, state.ErrSchemaOutdated) && a.schemaMissing(ctx) {
		return nil, fmt.Errorf("schema %q does not exist in this database: check --schema (a new store is created with 'statectl --schema %s migrate up')", schemaName, schemaName)
	}
	return s, err
}

// schemaMissing reports whether the --schema names no schema at all, which
// is more often a typo than a store waiting for its migrations.
func (a *app) schemaMissing(ctx context.Context) bool {
	conn, schemaName, err := a.connect(ctx)
	if err != nil {
		return false
	}
	defer closeConn(conn)
	found, err := gen.New().SchemaExists(ctx, conn, schemaName)
	return err == nil && !found
}

// connect opens a plain connection for the migration machinery, which works
// on a *pgx.Conn rather than on a store.
func (a *app) connect(ctx context.Context) (*pgx.Conn, string, error) {
	cc, schemaName, err := a.connConfig()
	if err != nil {
		return nil, "", err
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		var netErr net.Error
		if errors.As(err, &netErr) {
			// Nothing answered: the same condition the store reports as
			// unavailable, so it gets the same advice.
			return nil, "", &connectError{err: fmt.Errorf("%w: %w", state.ErrUnavailable, err)}
		}
		return nil, "", &connectError{err: err}
	}
	return conn, schemaName, nil
}

// connConfig is the configuration of a plain connection to --dsn, with a
// connect timeout no longer than ours.
func (a *app) connConfig() (*pgx.ConnConfig, string, error) {
	dsn, schemaName, err := a.target()
	if err != nil {
		return nil, "", err
	}
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, "", usagef("cannot parse the DSN: %v", err)
	}
	if cc.ConnectTimeout == 0 || cc.ConnectTimeout > connectTimeout {
		cc.ConnectTimeout = connectTimeout
	}
	return cc, schemaName, nil
}

// withStore runs fn on an open store and closes it.
func (a *app) withStore(ctx context.Context, fn func(*state.Postgres) error) error {
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

func closeConn(conn *pgx.Conn) {
	// The command's outcome is already decided; a failed goodbye changes
	// nothing.
	_ = conn.Close(context.Background())
}

func describeVersion(schemaName string, v int32) string {
	return fmt.Sprintf("schema %s is at version %d", schemaName, v)
}
