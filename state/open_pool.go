package state

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/gen"
	"github.com/pgstate/pgstate/schema"
)

// OpenPoolConfig opens a store on a pool built from the application's own
// pgxpool.Config (its TLS, limits, tracer, exec mode, hooks), for an
// application that configures pgx itself. The connection settings of cfg
// (DSN, MinConns, MaxConns, ConnectTimeout, SSL*) are pc's instead: a DSN or
// an SSL setting in cfg is refused with ErrInvalidConfig rather than
// ignored. The store owns the pool it builds (a copy of pc) and closes it.
//
// What the store adds to its copy of pc: search_path = Schema and
// statement_timeout = QueryTimeout + 2s when pc sets none (a search_path
// pc sets must make Schema the current schema, which Open checks),
// application_name "pgstate" when unset, a cancel request when a context
// ends (so a timed-out write cannot commit later), the Logger's and
// Config.Tracer's tracers next to pc's own, and its AfterConnect and
// BeforeClose after pc's.
func OpenPoolConfig(ctx context.Context, pc *pgxpool.Config, cfg Config) (*Postgres, error) {
	if pc == nil {
		return nil, fmt.Errorf("pgstate: open: %w: nil pgxpool.Config", ErrInvalidConfig)
	}
	if err := cfg.validateForPool(); err != nil {
		return nil, fmt.Errorf("pgstate: open: %w", err)
	}
	pc = pc.Copy()
	params := pc.ConnConfig.RuntimeParams
	if params["search_path"] == "" {
		quoted, _ := schema.QuoteName(cfg.Schema) // validated above
		params["search_path"] = quoted
	}
	if params["statement_timeout"] == "" {
		params["statement_timeout"] = cfg.statementTimeout()
	}
	if params["application_name"] == "" {
		params["application_name"] = "pgstate"
	}
	guardCancels(pc)
	pc.ConnConfig.Tracer = cfg.tracer(pc.ConnConfig.Tracer)
	p := &Postgres{cfg: cfg, q: gen.New()}
	afterConnect, beforeClose := pc.AfterConnect, pc.BeforeClose
	pc.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if afterConnect != nil {
			if err := afterConnect(ctx, conn); err != nil {
				return err
			}
		}
		return p.attachWatchdog(ctx, conn)
	}
	pc.BeforeClose = func(conn *pgx.Conn) {
		p.detachWatchdog(conn)
		if beforeClose != nil {
			beforeClose(conn)
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgstate: open: %w", interpretError(err))
	}
	return p.start(ctx, pool)
}

// OpenPool opens a store on a pool the application already has and keeps
// using for its own queries. The pool stays the application's: Close leaves
// it open, Stats reports all of its connections, and a lost connection
// empties (resets) it as it would the store's own.
//
// The pool must make Schema the current schema (search_path, in its
// RuntimeParams or AfterConnect): the store's statements name its tables
// unqualified, and Open checks current_schema() on one connection. Any of
// pgx's exec modes works on a direct connection; behind a transaction-mode
// pooler use QueryExecModeExec or QueryExecModeSimpleProtocol. Because the
// store cannot attach its per-connection timers to a pool it did not build,
// every operation gets a context deadline of QueryTimeout instead (a little
// more allocation per call than Open's). Give the pool the cancel-request
// context watcher (pgconn.CancelRequestContextWatcherHandler) and a
// statement_timeout, as OpenPoolConfig does, so that a statement whose
// caller gave up stops on the server too. Logger and Tracer need a pool the
// store builds: add their tracers to your pool's yourself, or use
// OpenPoolConfig. As with OpenPoolConfig, cfg's connection settings are the
// pool's, and a DSN or an SSL setting in cfg is refused.
func OpenPool(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Postgres, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgstate: open: %w: nil pool", ErrInvalidConfig)
	}
	if err := cfg.validateForPool(); err != nil {
		return nil, fmt.Errorf("pgstate: open: %w", err)
	}
	if cfg.Logger != nil || cfg.Tracer != nil {
		return nil, fmt.Errorf("pgstate: open: %w: Logger and Tracer need a pool the store builds (use OpenPoolConfig, or add state tracers to your pool's own)", ErrInvalidConfig)
	}
	p := &Postgres{cfg: cfg, q: gen.New(), borrowed: true}
	return p.start(ctx, pool)
}

// validateForPool validates cfg for OpenPool and OpenPoolConfig, where the
// connection settings come from the pool.
func (c Config) validateForPool() error {
	for _, s := range [][2]string{{"DSN", c.DSN}, {"SSLMode", c.SSLMode}, {"SSLCert", c.SSLCert}, {"SSLKey", c.SSLKey}, {"SSLRootCert", c.SSLRootCert}} {
		if s[1] != "" {
			return fmt.Errorf("%w: %s is set, but the pool's own connection settings apply", ErrInvalidConfig, s[0])
		}
	}
	if c.TransactionPooler {
		// Its per-transaction settings and direct connection come with the
		// pool Open builds.
		return fmt.Errorf("%w: TransactionPooler needs the pool Open builds; open the store with Open", ErrInvalidConfig)
	}
	c.DSN = "pool" // the pool's; every other field is checked as Open does
	return c.validate()
}

// sqlCurrentSchema is how Open checks that a pool it did not configure
// resolves the store's unqualified table names in its schema.
const sqlCurrentSchema = `SELECT coalesce(current_schema(), '')`

// start finishes opening a store on pool: it checks the pool's current
// schema, migrates or checks the schema, and opens the replicas and starts
// the cleaner as Open does. On failure it closes a pool the store built.
func (p *Postgres) start(ctx context.Context, pool *pgxpool.Pool) (*Postgres, error) {
	p.pool = pool
	fail := func(err error) (*Postgres, error) {
		if !p.borrowed {
			pool.Close()
		}
		return nil, fmt.Errorf("pgstate: open: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout+p.cfg.QueryTimeout)
	defer cancel()
	var current string
	if err := pool.QueryRow(ctx, sqlCurrentSchema).Scan(&current); err != nil {
		return fail(interpretError(err))
	}
	if current != p.cfg.Schema {
		return fail(fmt.Errorf("%w: the pool's current schema is %q, not the store's %q: set search_path to %s", ErrInvalidConfig, current, p.cfg.Schema, p.cfg.Schema))
	}
	if err := p.prepareSchema(ctx); err != nil {
		return fail(interpretError(err))
	}
	if err := p.startBackground(ctx); err != nil {
		return fail(err)
	}
	return p, nil
}

// checkSetVersions checks that each application set is at its latest
// version, as checkSchemaVersion does for pgstate's own.
func checkSetVersions(ctx context.Context, conn *pgx.Conn, schemaName string, sets []schema.Set) error {
	for _, set := range sets {
		current, err := schema.SetVersion(ctx, conn, schemaName, set)
		if err != nil {
			return err
		}
		latest, err := set.Latest()
		if err != nil {
			return err
		}
		switch {
		case current > latest:
			return fmt.Errorf("%w: schema %q has %s migrations at version %d, this build knows %d", ErrSchemaTooNew, schemaName, set.Name, current, latest)
		case current < latest:
			return fmt.Errorf("%w: schema %q has %s migrations at version %d, this build needs %d (run the migrations, e.g. statectl migrate up --app %s=DIR)", ErrSchemaOutdated, schemaName, set.Name, current, latest, set.Name)
		}
	}
	return nil
}

// MapError maps an error of the application's own statements (typically
// run in Transact, on PostgresTx.Tx) to the store's sentinels, as the
// store's operations do: a key over MaxKeySize rejected by the table's
// check to ErrKeyTooLarge, 42501 to ErrPermissionDenied, a lost connection
// to ErrUnavailable, and so on. The driver's error stays in the chain, so
// errors.As still finds the *pgconn.PgError and Transact still sees a
// serialization failure it should retry. nil stays nil.
func MapError(err error) error { return interpretError(err) }

// PgxTx returns the pgx.Tx under a transaction handle that Transact passed
// (a *PostgresTx, or a wrapper of one with a Tx() pgx.Tx method, such as
// otelpgstate's), for the application's own generated queries; false for a
// handle that has none (the Memory backend's).
func PgxTx(tx Ops) (pgx.Tx, bool) {
	if t, ok := tx.(interface{ Tx() pgx.Tx }); ok && t.Tx() != nil {
		return t.Tx(), true
	}
	return nil, false
}
