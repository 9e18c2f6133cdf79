package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/gen"
	"github.com/pgstate/pgstate/schema"
)

// Postgres is a Store kept in PostgreSQL tables, in the schema named by
// Config.Schema. It is safe for concurrent use; create it with Open and
// release it with Close.
type Postgres struct {
	cfg  Config
	pool *pgxpool.Pool
	q    *gen.Queries

	closed    atomic.Bool
	closeOnce sync.Once
	lastReset atomic.Int64 // UnixNano of the last pool reset
	watchdogs sync.Map     // *pgx.Conn → *watchdog
	acquireBy atomic.Pointer[sharedDeadline]
	cleaner   *periodic
	borrowed  bool            // the pool is the application's (OpenPool): Close leaves it open
	settings  sessionSettings // behind a transaction pooler, see pooler.go
	replicas  *replicaSet     // nil without Config.Replicas
	feed      feedState       // the change feed's readers (feed_hub.go)

	// copySkips counts down the large batches that go straight to the
	// upsert because a recent COPY met existing keys (batch.go).
	copySkips atomic.Int32

	stats counters
}

// Open connects to the database, applies pending migrations (unless
// cfg.SkipMigrations) and checks the schema version. It fails with
// ErrInvalidConfig before connecting if a setting is invalid.
func Open(ctx context.Context, cfg Config) (*Postgres, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pgstate: open: %w", err)
	}
	pc, err := cfg.poolConfig()
	if err != nil {
		return nil, fmt.Errorf("pgstate: open: %w", err)
	}
	p := &Postgres{cfg: cfg, q: gen.New(), settings: newSessionSettings(cfg)}
	pc.AfterConnect = p.attachWatchdog
	pc.BeforeClose = p.detachWatchdog
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("pgstate: open: %w", interpretError(err))
	}
	p.pool = pool
	if err := p.prepareSchema(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstate: open: %w", interpretError(err))
	}
	if err := p.startBackground(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstate: open: %w", err)
	}
	return p, nil
}

// startBackground opens the replicas' pools and starts the cleaner (or,
// without one, the change log's retention): the last step of every way to open a store (Open, OpenPool, OpenPoolConfig).
func (p *Postgres) startBackground(ctx context.Context) error {
	var err error
	if p.replicas, err = openReplicas(ctx, p); err != nil {
		return err
	}
	switch {
	case p.cfg.CleanupInterval > 0:
		p.cleaner = startCleaner(p, p.cfg.CleanupInterval)
	case p.cfg.ChangeRetention > 0:
		// Without the cleaner the change log is still kept to
		// ChangeRetention, so that it stays bounded with DefaultConfig.
		p.cleaner = startPeriodic(compactionInterval(p.cfg.ChangeRetention), p.compactChangesRound)
	}
	return nil
}

// compactionInterval is how often a store without the cleaner applies
// ChangeRetention: a tenth of it, from a second to ten minutes, so the log
// holds at most about 1.1 times the retention.
func compactionInterval(retention time.Duration) time.Duration {
	return min(max(retention/10, time.Second), 10*time.Minute)
}

// prepareSchema migrates (or, with SkipMigrations, only checks) the store's
// schema on one connection. Its errors are the driver's; Open maps them.
func (p *Postgres) prepareSchema(ctx context.Context) error {
	if p.cfg.TransactionPooler && p.cfg.DirectDSN != "" && !p.cfg.SkipMigrations {
		if err := p.migrateDirect(ctx); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout+p.cfg.QueryTimeout)
	defer cancel()
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if !p.cfg.SkipMigrations && !p.cfg.TransactionPooler {
		if err := schema.Migrate(ctx, conn.Conn(), p.cfg.Schema, p.cfg.Migrations...); err != nil {
			return err
		}
	}
	if err := checkSchemaVersion(ctx, conn.Conn(), p.cfg.Schema); err != nil {
		return err
	}
	return checkSetVersions(ctx, conn.Conn(), p.cfg.Schema, p.cfg.Migrations)
}

func checkSchemaVersion(ctx context.Context, conn *pgx.Conn, schemaName string) error {
	current, err := schema.Version(ctx, conn, schemaName)
	if err != nil {
		return err
	}
	latest, err := schema.Latest()
	if err != nil {
		return err
	}
	switch {
	case current > latest:
		return fmt.Errorf("%w: schema %q is at version %d, this release knows %d", ErrSchemaTooNew, schemaName, current, latest)
	case current < latest:
		return fmt.Errorf("%w: schema %q is at version %d, this release needs %d (run the migrations, e.g. statectl migrate up)", ErrSchemaOutdated, schemaName, current, latest)
	}
	return nil
}

// Close stops the background cleaner and closes every connection. It waits
// for operations in flight to end, but at most QueryTimeout plus the cancel
// grace (by then every operation has ended, see query): a connection that
// is never given back, such as one taken from Pool() and leaked, is closed
// in the background when it is released. Calls after the first do nothing;
// operations after Close fail with ErrClosed.
func (p *Postgres) Close() {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if p.cleaner != nil {
				p.cleaner.stop()
			}
			p.replicas.close()
			p.closeFeed()
			if !p.borrowed {
				p.pool.Close()
			}
		}()
		t := time.NewTimer(p.cfg.QueryTimeout + cancelGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
	})
}

// Pool returns the underlying connection pool, for running queries of your
// own in the same database (see the README's "Extending the schema").
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

// Config returns the configuration the store was opened with.
func (p *Postgres) Config() Config { return p.cfg }

func noCancel() {}

// withTimeout applies QueryTimeout unless ctx already ends earlier.
func (p *Postgres) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= p.cfg.QueryTimeout {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, p.cfg.QueryTimeout)
}

// fail counts a failed operation and gives its error the package's shape:
// "pgstate: <op>: <cause>", with the cause mapped to a sentinel: this and
// Open are the only places that map, so no error is mapped twice. When the
// operation's context ended, the error also matches ctx.Err(): the server's
// "canceling statement" reply to the cancel request is then the context's
// doing.
func (p *Postgres) fail(ctx context.Context, op string, err error) error {
	p.stats.errors.Add(1)
	if p.closed.Load() && !errors.Is(err, ErrClosed) {
		// Whatever broke, it broke because the store was closed.
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	} else {
		err = interpretError(err)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w: %w", ctxErr, err)
	}
	return fmt.Errorf("pgstate: %s: %w", op, err)
}

// usable rejects calls on a closed store.
func (p *Postgres) usable() error {
	if p.closed.Load() {
		return ErrClosed
	}
	return nil
}

func (p *Postgres) checkKey(key []byte) error {
	if err := p.usable(); err != nil {
		return err
	}
	return checkKey(key)
}

func (p *Postgres) checkWrite(key, value []byte) error {
	if err := p.checkKey(key); err != nil {
		return err
	}
	return checkValue(value, p.cfg.MaxValueSize)
}

// Get implements Backend.
func (p *Postgres) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	if err := p.checkKey(key); err != nil {
		return nil, false, p.fail(ctx, "get", err)
	}
	value, err := readQuery(ctx, p, func(ctx context.Context, db gen.DBTX) ([]byte, error) {
		return p.q.EntryGet(ctx, db, key)
	})
	if isNoRows(err) {
		p.stats.gets.Add(1)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, p.fail(ctx, "get", err)
	}
	p.stats.gets.Add(1)
	p.stats.bytesRead.Add(int64(len(value)))
	return nonNil(value), true, nil
}

// Put implements Backend.
func (p *Postgres) Put(ctx context.Context, key, value []byte) error {
	return p.put(ctx, "put", gen.EntryPutParams{Key: key, Value: nonNil(value)})
}

// put runs one EntryPut; Put, PutWithTTL and PutWithMetadata share it.
func (p *Postgres) put(ctx context.Context, op string, arg gen.EntryPutParams) error {
	if err := p.checkWrite(arg.Key, arg.Value); err != nil {
		return p.fail(ctx, op, err)
	}
	err := exec(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) error {
		return p.q.EntryPut(ctx, db, arg)
	})
	if err != nil {
		return p.fail(ctx, op, err)
	}
	p.stats.puts.Add(1)
	p.stats.bytesWritten.Add(int64(len(arg.Key) + len(arg.Value)))
	return nil
}

// Delete implements Backend.
func (p *Postgres) Delete(ctx context.Context, key []byte) error {
	if err := p.checkKey(key); err != nil {
		return p.fail(ctx, "delete", err)
	}
	_, err := query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return p.q.EntryDelete(ctx, db, key)
	})
	if err != nil {
		return p.fail(ctx, "delete", err)
	}
	p.stats.deletes.Add(1)
	return nil
}

// Contains implements Backend.
func (p *Postgres) Contains(ctx context.Context, key []byte) (bool, error) {
	if err := p.checkKey(key); err != nil {
		return false, p.fail(ctx, "contains", err)
	}
	found, err := readQuery(ctx, p, func(ctx context.Context, db gen.DBTX) (bool, error) {
		return p.q.EntryExists(ctx, db, key)
	})
	if err != nil {
		return false, p.fail(ctx, "contains", err)
	}
	p.stats.gets.Add(1)
	return found, nil
}

// Count implements Backend. It scans every live entry, so it grows linearly
// with the store; CountEstimate is the constant-time alternative.
func (p *Postgres) Count(ctx context.Context) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "count", err)
	}
	n, err := readQuery(ctx, p, p.q.EntriesCount)
	if err != nil {
		return 0, p.fail(ctx, "count", err)
	}
	return n, nil
}

// CountEstimate returns PostgreSQL's estimate of the number of rows (expired
// ones not yet cleaned up included), as of the last VACUUM or ANALYZE. It
// costs the same on any size of store, which makes it the number for
// dashboards; it is -1 before the table was first analyzed.
func (p *Postgres) CountEstimate(ctx context.Context) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "count estimate", err)
	}
	n, err := readQuery(ctx, p, p.q.EntriesCountEstimate)
	if err != nil {
		return 0, p.fail(ctx, "count estimate", err)
	}
	return n, nil
}

// Clear implements Backend. It deletes row by row (not TRUNCATE), so readers
// in other transactions keep seeing the old entries until it commits and the
// application role needs no TRUNCATE privilege.
func (p *Postgres) Clear(ctx context.Context) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "clear", err)
	}
	if _, err := query(ctx, p, onceOnly, p.q.EntriesDeleteAll); err != nil {
		return p.fail(ctx, "clear", err)
	}
	p.stats.deletes.Add(1)
	return nil
}

// ListKeys implements Backend. The prefix becomes a key range on the primary
// key, [prefix, PrefixEnd(prefix)).
func (p *Postgres) ListKeys(ctx context.Context, prefix []byte) ([][]byte, error) {
	if err := p.usable(); err != nil {
		return nil, p.fail(ctx, "list keys", err)
	}
	if len(prefix) > MaxKeySize {
		// No key can start with it.
		return [][]byte{}, nil
	}
	lower, upper := nonNil(prefix), PrefixEnd(prefix)
	keys, err := readQuery(ctx, p, func(ctx context.Context, db gen.DBTX) ([][]byte, error) {
		if upper == nil {
			return p.q.EntryKeysListFrom(ctx, db, lower)
		}
		return p.q.EntryKeysListRange(ctx, db, gen.EntryKeysListRangeParams{Lower: lower, Upper: upper})
	})
	if err != nil {
		return nil, p.fail(ctx, "list keys", err)
	}
	return keys, nil
}
