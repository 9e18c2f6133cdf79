package state

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Ops are the reads and writes a store offers both on its own and inside a
// transaction: code written against Ops runs unchanged either way.
type Ops interface {
	Get(ctx context.Context, key []byte) ([]byte, bool, error)
	GetEntry(ctx context.Context, key []byte) (Entry, bool, error)
	Contains(ctx context.Context, key []byte) (bool, error)
	GetMany(ctx context.Context, keys [][]byte) (map[string][]byte, error)
	ListKeys(ctx context.Context, prefix []byte) ([][]byte, error)
	Scan(ctx context.Context, prefix []byte, opts ...ListOption) iter.Seq2[Entry, error]
	// List returns one page of the entries under prefix, shaped by
	// WithLimit, StartAfter, Reverse, Range and KeysOnly.
	List(ctx context.Context, prefix []byte, opts ...ListOption) (Page, error)
	FindByMetadata(ctx context.Context, filter any) ([]Entry, error)
	// FindByMetadataPage is FindByMetadata under prefix, one page at a
	// time, with the options of List.
	FindByMetadataPage(ctx context.Context, prefix []byte, filter any, opts ...ListOption) (Page, error)
	Count(ctx context.Context) (int64, error)
	// CountPrefix counts the live entries whose key starts with prefix.
	CountPrefix(ctx context.Context, prefix []byte) (int64, error)

	Put(ctx context.Context, key, value []byte) error
	PutWithTTL(ctx context.Context, key, value []byte, ttl time.Duration) error
	PutWithMetadata(ctx context.Context, key, value []byte, metadata any) error
	// PutEntry writes with options (TTL and metadata together, IfVersion,
	// IfAbsent, KeepTTL, KeepMetadata, WithPrevEntry) in one statement.
	PutEntry(ctx context.Context, key, value []byte, opts ...WriteOption) (WriteResult, error)
	Delete(ctx context.Context, key []byte) error
	// DeleteEntry deletes with options (IfVersion, WithPrevEntry) and says
	// whether the key existed.
	DeleteEntry(ctx context.Context, key []byte, opts ...WriteOption) (WriteResult, error)
	BatchPut(ctx context.Context, entries []Entry) error
	DeleteMany(ctx context.Context, keys [][]byte) (int64, error)
	// DeletePrefix deletes every entry under prefix in one statement and
	// returns how many live ones it removed.
	DeletePrefix(ctx context.Context, prefix []byte) (int64, error)

	// Expire sets a live entry's expiry without rewriting its value;
	// Persist removes it; TTL reads what is left (NoTTL: none). One
	// statement each.
	Expire(ctx context.Context, key []byte, ttl time.Duration) (bool, error)
	Persist(ctx context.Context, key []byte) (bool, error)
	TTL(ctx context.Context, key []byte) (time.Duration, bool, error)
	// Increment adds delta to an integer value and returns the new value,
	// in one statement.
	Increment(ctx context.Context, key []byte, delta int64) (int64, error)
}

// TxFunc is the body of a transaction. It must do its reads and writes
// through tx (the store itself runs outside the transaction), and may run
// more than once: keep side effects outside the database out of it.
type TxFunc func(ctx context.Context, tx Ops) error

// txKey marks a context whose statements belong to a transaction.
type txKey struct{}

// boundTx returns the transaction a PostgresTx method bound to ctx, if any:
// query and inTx run on it instead of the pool.
func boundTx(ctx context.Context) pgx.Tx {
	tx, _ := ctx.Value(txKey{}).(pgx.Tx)
	return tx
}

// Transact runs fn in one SERIALIZABLE transaction: it commits when fn
// returns nil and rolls back when fn returns an error or panics (the panic
// goes on). Because the isolation is serializable, a read-modify-write
// inside fn cannot lose an update: a conflicting transaction makes one of
// them fail with a serialization failure, and Transact then runs fn again;
// and so does a plain write outside any transaction (Put, Delete...) that
// changes a key fn read before fn writes it: the store's writes update a
// row in place, which under serializable isolation fails on a row changed
// or deleted since the transaction's snapshot, and a new row meets one
// inserted since (BatchPut, whose upserts insert past a deleted row, and
// range reads, Scan, ListKeys and FindByMetadata, are not covered: a plain
// write can still slip into what they read). Each run is a new
// transaction, until one commits or QueryTimeout (which bounds the whole
// call, every attempt included) runs out. A connection lost before COMMIT
// was sent is retried too, up to MaxRetries times; one lost after COMMIT
// was sent is never retried: the error matches ErrOutcomeUnknown.
// fn's own error is returned as it is.
//
// The handle fn receives is a *PostgresTx; its Tx method gives the pgx.Tx,
// so the application's own generated queries run in the same transaction.
func (p *Postgres) Transact(ctx context.Context, fn TxFunc) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "transact", err)
	}
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	lost := 0
	for attempt := 0; ; attempt++ {
		fromFn, err := p.transactOnce(ctx, fn)
		if err == nil {
			return nil
		}
		again := !errors.Is(err, ErrOutcomeUnknown) &&
			(rolledBack(err) || lostConnection(err) && lost < p.cfg.MaxRetries)
		if again && sleepCtx(ctx, txBackoff(p.cfg.RetryBackoff, attempt)) {
			if !rolledBack(err) {
				lost++
			}
			p.stats.retries.Add(1)
			continue
		}
		if !fromFn {
			return p.fail(ctx, "transact", err)
		}
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			// The bound ended the retries: say so, as every operation does.
			return fmt.Errorf("%w: %w", ctxErr, err)
		}
		return err
	}
}

// transactOnce runs one attempt. fromFn reports that the error is fn's
// own, returned as fn returned it.
func (p *Postgres) transactOnce(ctx context.Context, fn TxFunc) (fromFn bool, err error) {
	p.stats.transactions.Add(1)
	var fnErr error
	err = p.runTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
		fnErr = fn(ctx, &PostgresTx{p: p, tx: tx})
		if fnErr == nil {
			p.stats.queries.Add(1) // the COMMIT
		}
		return fnErr
	})
	if fnErr != nil {
		return true, fnErr
	}
	return false, err
}

// runTx runs fn in one transaction begun with opts, the one way both
// Transact and the store's own transactions (inTx) do. It rolls back when
// fn fails or panics (the panic goes on), with ctx, so that a broken or
// silent connection is closed rather than waited on. fn failing on a lost
// connection is an *abortedTx: COMMIT was never sent, the server rolled it
// all back. A failed COMMIT whose outcome is unknown is marked so by
// commitError.
func (p *Postgres) runTx(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	tx, err := p.beginTx(ctx, opts)
	if err != nil {
		return err
	}
	committing := false
	defer func() {
		if !committing {
			_ = tx.Rollback(ctx)
		}
	}()
	if err := fn(tx); err != nil {
		if lostConnection(err) {
			return &abortedTx{err}
		}
		return err
	}
	committing = true
	if err := tx.Commit(ctx); err != nil {
		return commitError(err)
	}
	return nil
}

// commitError marks a failed COMMIT whose outcome is unknown (see
// outcomeUnknown): only a reply from the server settles it, an error (a
// serialization failure at commit) or ROLLBACK for a transaction that had
// failed.
func commitError(err error) error {
	if outcomeUnknown(err) && !errors.Is(err, pgx.ErrTxCommitRollback) {
		return fmt.Errorf("%w: commit: %w", ErrOutcomeUnknown, err)
	}
	return fmt.Errorf("commit: %w", err)
}

// txBackoff is the pause before running a transaction again: short, since
// a serialization failure means the competitor has just committed, and
// jittered so that competitors do not meet again.
func txBackoff(base time.Duration, attempt int) time.Duration {
	base = min(base, 5*time.Millisecond)
	if base <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(base<<min(attempt, 6))) + 1)
}

// PostgresTx is the handle Postgres.Transact passes to its function. Its
// methods are the store's, with the store's validation and errors, run in
// the transaction. It must not be used after the function returns.
type PostgresTx struct {
	p  *Postgres
	tx pgx.Tx
}

var _ Ops = (*PostgresTx)(nil)

// Tx returns the underlying transaction, for running the application's own
// queries (e.g. sqlc-generated ones taking a DBTX) in it.
func (t *PostgresTx) Tx() pgx.Tx { return t.tx }

func (t *PostgresTx) bind(ctx context.Context) context.Context {
	return context.WithValue(ctx, txKey{}, t.tx)
}

// Get implements Ops.
func (t *PostgresTx) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	return t.p.Get(t.bind(ctx), key)
}

// GetEntry implements Ops.
func (t *PostgresTx) GetEntry(ctx context.Context, key []byte) (Entry, bool, error) {
	return t.p.GetEntry(t.bind(ctx), key)
}

// Contains implements Ops.
func (t *PostgresTx) Contains(ctx context.Context, key []byte) (bool, error) {
	return t.p.Contains(t.bind(ctx), key)
}

// GetMany implements Ops.
func (t *PostgresTx) GetMany(ctx context.Context, keys [][]byte) (map[string][]byte, error) {
	return t.p.GetMany(t.bind(ctx), keys)
}

// ListKeys implements Ops.
func (t *PostgresTx) ListKeys(ctx context.Context, prefix []byte) ([][]byte, error) {
	return t.p.ListKeys(t.bind(ctx), prefix)
}

// Scan implements Ops. The iteration must end before the transaction does.
func (t *PostgresTx) Scan(ctx context.Context, prefix []byte, opts ...ListOption) iter.Seq2[Entry, error] {
	return t.p.Scan(t.bind(ctx), prefix, opts...)
}

// FindByMetadata implements Ops.
func (t *PostgresTx) FindByMetadata(ctx context.Context, filter any) ([]Entry, error) {
	return t.p.FindByMetadata(t.bind(ctx), filter)
}

// Count implements Ops.
func (t *PostgresTx) Count(ctx context.Context) (int64, error) {
	return t.p.Count(t.bind(ctx))
}

// CountPrefix implements Ops.
func (t *PostgresTx) CountPrefix(ctx context.Context, prefix []byte) (int64, error) {
	return t.p.CountPrefix(t.bind(ctx), prefix)
}

// Put implements Ops.
func (t *PostgresTx) Put(ctx context.Context, key, value []byte) error {
	return t.p.Put(t.bind(ctx), key, value)
}

// PutWithTTL implements Ops.
func (t *PostgresTx) PutWithTTL(ctx context.Context, key, value []byte, ttl time.Duration) error {
	return t.p.PutWithTTL(t.bind(ctx), key, value, ttl)
}

// PutWithMetadata implements Ops.
func (t *PostgresTx) PutWithMetadata(ctx context.Context, key, value []byte, metadata any) error {
	return t.p.PutWithMetadata(t.bind(ctx), key, value, metadata)
}

// PutEntry implements Ops.
func (t *PostgresTx) PutEntry(ctx context.Context, key, value []byte, opts ...WriteOption) (WriteResult, error) {
	return t.p.PutEntry(t.bind(ctx), key, value, opts...)
}

// Delete implements Ops.
func (t *PostgresTx) Delete(ctx context.Context, key []byte) error {
	return t.p.Delete(t.bind(ctx), key)
}

// DeleteEntry implements Ops.
func (t *PostgresTx) DeleteEntry(ctx context.Context, key []byte, opts ...WriteOption) (WriteResult, error) {
	return t.p.DeleteEntry(t.bind(ctx), key, opts...)
}

// BatchPut implements Ops.
func (t *PostgresTx) BatchPut(ctx context.Context, entries []Entry) error {
	return t.p.BatchPut(t.bind(ctx), entries)
}

// DeleteMany implements Ops.
func (t *PostgresTx) DeleteMany(ctx context.Context, keys [][]byte) (int64, error) {
	return t.p.DeleteMany(t.bind(ctx), keys)
}

// DeletePrefix implements Ops.
func (t *PostgresTx) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	return t.p.DeletePrefix(t.bind(ctx), prefix)
}
