package state

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/gen"
	"github.com/pgstate/pgstate/schema"
)

// Behind a transaction-mode pooler (Config.TransactionPooler) a server
// session belongs to the client only for one transaction, so nothing the
// store needs may live in the session: the search_path that makes the
// generated queries' unqualified names the store's tables, and the
// statement_timeout that backs QueryTimeout up on the server. Both are set
// with set_config(…, true), local to the transaction that runs the store's
// statement:
//
//   - a single statement is sent as a pgx batch, [sqlSessionSettings,
//     statement], in one round trip: the extended protocol runs everything
//     up to its Sync as one implicit transaction (the simple protocol runs a
//     multi-statement string as one), and the pooler hands out a server
//     session only at a transaction boundary;
//   - an explicit transaction starts with sqlBeginWithSettings, BEGIN and
//     the settings as one simple-protocol string, again one round trip.
//
// The change feed needs nothing else: it polls the change log, it does not
// LISTEN. The background cleaner's lock is transaction-scoped. Migrations
// are the exception (tern takes a session-level advisory lock): Open runs
// them over Config.DirectDSN.

// sqlSessionSettings is written here rather than in queries/ because it is
// queued in a pgx.Batch in front of a generated statement, whose SQL gen
// does not export.
const sqlSessionSettings = `SELECT set_config('search_path', $1, true), set_config('statement_timeout', $2, true)`

// sqlBeginWithSettings is BEGIN followed by sqlSessionSettings with the
// values written in, as one simple-protocol string (pgx sends a statement
// without arguments that way), so that a transaction costs no extra round
// trip. %[1]s is the isolation level, %[2]s the quoted schema and %[3]s the
// timeout in milliseconds; neither can hold a quote: the schema name is
// validated as a plain identifier.
const sqlBeginWithSettings = `BEGIN ISOLATION LEVEL %[1]s; SELECT set_config('search_path', '%[2]s', true), set_config('statement_timeout', '%[3]s', true)`

// execMode is QueryExecMode with the zero value read as pgx's default.
func (c Config) execMode() pgx.QueryExecMode {
	if c.QueryExecMode == 0 {
		return pgx.QueryExecModeCacheStatement
	}
	return c.QueryExecMode
}

// validateDeployment checks the pooler and replica settings.
func (c Config) validateDeployment() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	mode := c.execMode()
	switch mode {
	case pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec,
		pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol:
	default:
		return bad("QueryExecMode %d is not one of pgx's modes", mode)
	}
	switch {
	case c.TransactionPooler && mode != pgx.QueryExecModeExec && mode != pgx.QueryExecModeSimpleProtocol:
		// CacheStatement and DescribeExec rely on a prepared statement
		// surviving into a later round trip; CacheDescribe and DescribeExec
		// describe a statement in a round trip of its own, before the
		// transaction that sets search_path, on whatever session.
		return bad("QueryExecMode %v does not work through a transaction-mode pooler; with TransactionPooler use QueryExecModeExec or QueryExecModeSimpleProtocol", mode)
	case c.DirectDSN != "" && !c.TransactionPooler:
		return bad("DirectDSN is only used with TransactionPooler")
	case len(c.Replicas) > 0 && c.ReplicaMaxLag <= 0:
		return bad("ReplicaMaxLag is %v, want a positive duration", c.ReplicaMaxLag)
	case len(c.Replicas) > 0 && c.ReplicaCheckInterval <= 0:
		return bad("ReplicaCheckInterval is %v, want a positive duration", c.ReplicaCheckInterval)
	case len(c.Replicas) > 0 && c.ReplicaWaitTimeout < 0:
		return bad("ReplicaWaitTimeout is %v, want 0 or a positive duration", c.ReplicaWaitTimeout)
	case c.ReplicaReads && len(c.Replicas) == 0:
		return bad("ReplicaReads is set but Replicas is empty")
	}
	for i, dsn := range c.Replicas {
		if dsn == "" {
			return bad("Replicas[%d] is empty", i)
		}
	}
	return nil
}

// sessionSettings holds the values of sqlSessionSettings for a store
// behind a transaction pooler; the zero value means the connections carry
// them already.
type sessionSettings struct {
	searchPath, statementTimeout string
}

func newSessionSettings(c Config) sessionSettings {
	if !c.TransactionPooler {
		return sessionSettings{}
	}
	quoted, _ := schema.QuoteName(c.Schema) // validated by Open
	return sessionSettings{
		searchPath:       quoted,
		statementTimeout: c.statementTimeout(),
	}
}

func (s sessionSettings) needed() bool { return s.searchPath != "" }

// sessionless returns db as the statement must see it: db itself, or behind
// a transaction pooler a DBTX that sends the settings with each statement.
func (p *Postgres) sessionless(db gen.DBTX) gen.DBTX {
	if !p.settings.needed() {
		return db
	}
	if b, ok := db.(batchSender); ok {
		return settingsDB{p: p, s: p.settings, db: b}
	}
	return db // a pgx.Tx: begun by beginTx, it carries the settings
}

// beginTx begins a transaction on the primary's pool, with the settings
// behind a transaction pooler.
func (p *Postgres) beginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	return beginOn(ctx, p.pool, p.settings, opts)
}

type beginner interface {
	BeginTx(context.Context, pgx.TxOptions) (pgx.Tx, error)
}

func beginOn(ctx context.Context, db beginner, s sessionSettings, opts pgx.TxOptions) (pgx.Tx, error) {
	if s.needed() && opts.BeginQuery == "" {
		level := opts.IsoLevel
		if level == "" {
			level = pgx.ReadCommitted
		}
		opts.BeginQuery = fmt.Sprintf(sqlBeginWithSettings, level, s.searchPath, s.statementTimeout)
	}
	return db.BeginTx(ctx, opts)
}

// batchSender is what both *pgxpool.Pool and *pgxpool.Conn offer.
type batchSender interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	beginner
}

// qualifyVacuum turns "VACUUM (options) a, b" into "VACUUM (options)
// schema.a, schema.b".
func qualifyVacuum(sql, quotedSchema string) string {
	i := strings.LastIndex(sql, ") ")
	if i < 0 {
		return sql
	}
	tables := strings.Split(sql[i+2:], ", ")
	for j, t := range tables {
		tables[j] = quotedSchema + "." + t
	}
	return sql[:i+2] + strings.Join(tables, ", ")
}

var (
	_ batchSender = (*pgxpool.Pool)(nil)
	_ batchSender = (*pgxpool.Conn)(nil)
)

// settingsDB runs each statement in a batch behind sqlSessionSettings.
type settingsDB struct {
	p  *Postgres
	s  sessionSettings
	db batchSender
}

var _ gen.DBTX = settingsDB{}

func (d settingsDB) send(ctx context.Context, sql string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	b.Queue(sqlSessionSettings, d.s.searchPath, d.s.statementTimeout)
	b.Queue(sql, args...)
	br := d.db.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return nil, err
	}
	return br, nil
}

func (d settingsDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if sql == sqlVacuum {
		// VACUUM cannot run in a transaction, so it cannot carry the
		// settings: it runs over DirectDSN, or through the pooler with the
		// tables named with their schema (and whatever statement_timeout
		// the server session has).
		if d.p.cfg.DirectDSN != "" {
			conn, err := d.p.directConn(ctx)
			if err != nil {
				return pgconn.CommandTag{}, err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			return conn.Exec(ctx, sql, args...)
		}
		return d.db.Exec(ctx, qualifyVacuum(sql, d.s.searchPath), args...)
	}
	br, err := d.send(ctx, sql, args)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (d settingsDB) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	br, err := d.send(ctx, sql, args)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (d settingsDB) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := d.Query(ctx, sql, args...)
	return batchRow{rows: rows, err: err}
}

// CopyFrom runs COPY in a transaction of its own that carries the settings.
// (The store copies only inside transactions, which never come here.)
func (d settingsDB) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := beginOn(ctx, d.db, d.s, pgx.TxOptions{})
	if err != nil {
		return 0, err
	}
	n, err := tx.CopyFrom(ctx, table, columns, src)
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return 0, err
	}
	return n, tx.Commit(ctx)
}

// batchRows ends the batch with the rows: the implicit transaction commits
// at the batch's Sync, so an error there (a deferred constraint, say) is
// the statement's error, reported by Err as pgx's own rows would.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	if err := r.br.Close(); err != nil && r.Rows.Err() == nil {
		r.err = err
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow is pgx's single-row Scan over batchRows.
type batchRow struct {
	rows pgx.Rows
	err  error
}

func (r batchRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// migrateDirect applies pending migrations over Config.DirectDSN, for a
// store behind a transaction pooler.
func (p *Postgres) migrateDirect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout+p.cfg.QueryTimeout)
	defer cancel()
	conn, err := p.directConn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return schema.Migrate(ctx, conn, p.cfg.Schema, p.cfg.Migrations...)
}

// directConn opens a connection over DirectDSN with the store's settings
// (search_path, statement_timeout) in the session, as without a pooler.
func (p *Postgres) directConn(ctx context.Context) (*pgx.Conn, error) {
	direct := p.cfg
	direct.DSN, direct.TransactionPooler, direct.DirectDSN = p.cfg.DirectDSN, false, ""
	direct.QueryExecMode = pgx.QueryExecModeCacheStatement
	pc, err := direct.poolConfig()
	if err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, pc.ConnConfig)
}
