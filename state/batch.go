package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/gen"
)

// copyThreshold is the batch size from which BatchPut tries COPY first:
// below it the upsert over arrays is as fast and never has to fall back.
const copyThreshold = 1000

// BatchPut implements Store. Every entry is validated before anything is
// sent, and the batch is written atomically. A batch of fewer than 1000
// entries is one upsert statement over parallel arrays (one
// round trip). A larger batch is first attempted with COPY, which is how
// PostgreSQL loads rows fastest; if any key already exists, the COPY fails
// as a whole, having written nothing, and the same upsert runs instead.
// Both paths write the rows in key order, so concurrent overlapping batches
// never deadlock.
//
// Without TTLs the COPY is a statement of its own, atomic as any statement,
// and the upsert after a conflict another: one round trip when the keys are
// new. An entry with a TTL needs the transaction's clock (expires_at is
// computed from the now() the upsert would use), and inside Transact the
// COPY must not abort the caller's transaction: those batches copy inside a
// transaction or savepoint, read now() there and roll the savepoint back on
// a conflict.
func (p *Postgres) BatchPut(ctx context.Context, entries []Entry) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "batch put", err)
	}
	b, err := p.newBatch(entries)
	if err != nil {
		return p.fail(ctx, "batch put", err)
	}
	switch {
	case len(b.rows) == 0:
		return nil
	case len(b.rows) < copyThreshold || p.skipCopy():
		err = p.upsert(ctx, b)
	case b.ttls == nil && boundTx(ctx) == nil:
		err = p.copyThenUpsert(ctx, b)
	default:
		tctx, cancel := p.withTimeout(ctx)
		err = p.inTx(tctx, onceOnly, func(tx pgx.Tx) error { return p.copyOrUpsert(tctx, tx, b) })
		cancel()
	}
	if err != nil {
		return p.fail(ctx, "batch put", err)
	}
	p.stats.puts.Add(int64(len(b.rows)))
	p.stats.bytesWritten.Add(b.bytes)
	return nil
}

// copyThenUpsert copies a batch without TTLs as one statement and, if a key
// already exists, upserts it as another. The failed COPY wrote nothing, so
// the upsert is the batch's only write.
func (p *Postgres) copyThenUpsert(ctx context.Context, b batch) error {
	_, err := query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return p.q.EntriesInsertManyCopyFrom(ctx, db, b.rows)
	})
	if !isUniqueViolation(err) {
		return err
	}
	p.copySkips.Store(copySkipBatches)
	return p.upsert(ctx, b)
}

// upsert writes a batch as one upsert statement over parallel arrays.
func (p *Postgres) upsert(ctx context.Context, b batch) error {
	_, err := query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return p.q.EntriesUpsertMany(ctx, db, b.upsertParams())
	})
	return err
}

// copyOrUpsert copies a batch inside tx, behind a savepoint, with expiries
// computed from the transaction's now(), and falls back to the upsert in
// the same transaction on a conflict.
func (p *Postgres) copyOrUpsert(ctx context.Context, tx pgx.Tx, b batch) error {
	if b.ttls != nil {
		p.stats.queries.Add(1)
		now, err := p.q.TransactionNow(ctx, tx)
		if err != nil {
			return err
		}
		for i, micros := range b.ttls {
			b.rows[i].ExpiresAt = nil
			if micros > 0 {
				expires := addMicros(now, micros)
				b.rows[i].ExpiresAt = &expires
			}
		}
	}
	savepoint, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	p.stats.queries.Add(1)
	if _, err = p.q.EntriesInsertManyCopyFrom(ctx, savepoint, b.rows); err == nil {
		return savepoint.Commit(ctx)
	}
	if !isUniqueViolation(err) {
		return err
	}
	p.copySkips.Store(copySkipBatches)
	if err := savepoint.Rollback(ctx); err != nil {
		return err
	}
	p.stats.queries.Add(1)
	_, err = p.q.EntriesUpsertMany(ctx, tx, b.upsertParams())
	return err
}

// copySkipBatches is how many large batches go straight to the upsert after
// a COPY met an existing key. A store that overwrites its keys batch after
// batch then pays for a wasted COPY once in copySkipBatches+1 batches
// instead of every time (at 1,000 entries the wasted COPY cost 30%); one
// that loads new keys keeps COPY.
const copySkipBatches = 16

// skipCopy reports whether this large batch should skip COPY, counting
// down the skips a conflict set.
func (p *Postgres) skipCopy() bool {
	for {
		n := p.copySkips.Load()
		if n <= 0 {
			return false
		}
		if p.copySkips.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// pgerrUniqueViolation is SQLSTATE unique_violation.
const pgerrUniqueViolation = "23505"

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == pgerrUniqueViolation
}

// batch is a validated BatchPut: one row per distinct key, the last
// occurrence of each, in ascending key order.
type batch struct {
	// rows is what COPY sends; ExpiresAt is filled in only once the
	// transaction's clock is known.
	rows []gen.EntriesInsertManyCopyFromParams
	// ttls holds each row's TTL in microseconds (0: none), or is nil when no
	// row has one.
	ttls  []int64
	bytes int64
}

// newBatch validates every entry, superseded duplicates included (as
// Memory does), and keeps only the last occurrence of each key (one
// statement cannot write a row twice), sorted by key. The order is what
// makes concurrent batches safe: every BatchPut, on the upsert and the COPY
// path alike, locks its rows in ascending key order, so two overlapping
// batches can wait for each other but never in a cycle, and no BatchPut
// fails with a deadlock. Sorting positions by (key, position) finds the
// duplicates next to each other without a map, and costs a single pass
// when the entries come sorted already.
func (p *Postgres) newBatch(entries []Entry) (batch, error) {
	var b batch
	order := make([]int32, len(entries))
	metadata := make([]json.RawMessage, len(entries))
	anyTTL := false
	for i, e := range entries {
		if err := checkKey(e.Key); err != nil {
			return b, fmt.Errorf("entry %d: %w", i, err)
		}
		if err := checkValue(e.Value, p.cfg.MaxValueSize); err != nil {
			return b, fmt.Errorf("entry %d: %w", i, err)
		}
		if e.TTL < 0 {
			return b, fmt.Errorf("entry %d: %w: %v, want 0 (none) or a positive duration", i, ErrInvalidTTL, e.TTL)
		}
		if e.Metadata != nil {
			md, err := encodeMetadata(e.Metadata)
			if err != nil {
				return b, fmt.Errorf("entry %d: %w", i, err)
			}
			metadata[i] = md
		}
		anyTTL = anyTTL || e.TTL > 0
		order[i] = int32(i)
	}
	// bytes.Compare orders keys as PostgreSQL orders bytea.
	byKey := func(a, c int32) int {
		if d := bytes.Compare(entries[a].Key, entries[c].Key); d != 0 {
			return d
		}
		return int(a - c)
	}
	if !slices.IsSortedFunc(order, byKey) {
		slices.SortFunc(order, byKey)
	}
	b.rows = make([]gen.EntriesInsertManyCopyFromParams, 0, len(order))
	if anyTTL {
		b.ttls = make([]int64, 0, len(order))
	}
	for j, i := range order {
		e := entries[i]
		if j+1 < len(order) && bytes.Equal(e.Key, entries[order[j+1]].Key) {
			continue // a later entry writes this key
		}
		b.rows = append(b.rows, gen.EntriesInsertManyCopyFromParams{Key: e.Key, Value: nonNil(e.Value), Metadata: metadata[i]})
		if anyTTL {
			var micros int64
			if e.TTL > 0 {
				micros, _ = ttlMicros(e.TTL)
			}
			b.ttls = append(b.ttls, micros)
		}
		b.bytes += int64(len(e.Key) + len(e.Value))
	}
	return b, nil
}

// upsertParams lays the batch out as the upsert's parallel arrays.
func (b batch) upsertParams() gen.EntriesUpsertManyParams {
	n := len(b.rows)
	arg := gen.EntriesUpsertManyParams{
		Keys:      make([][]byte, n),
		Values:    make([][]byte, n),
		Metadata:  make([]json.RawMessage, n),
		TtlMicros: make([]int64, n),
	}
	for i, r := range b.rows {
		arg.Keys[i], arg.Values[i], arg.Metadata[i] = r.Key, r.Value, r.Metadata
	}
	copy(arg.TtlMicros, b.ttls)
	return arg
}

// GetMany implements Store, in one round trip.
func (p *Postgres) GetMany(ctx context.Context, keys [][]byte) (map[string][]byte, error) {
	if err := p.usable(); err != nil {
		return nil, p.fail(ctx, "get many", err)
	}
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, p.fail(ctx, "get many", fmt.Errorf("key %d: %w", i, err))
		}
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) ([]gen.EntriesGetManyRow, error) {
		return p.q.EntriesGetMany(ctx, db, keys)
	})
	if err != nil {
		return nil, p.fail(ctx, "get many", err)
	}
	var read int64
	for _, r := range rows {
		out[string(r.Key)] = nonNil(r.Value)
		read += int64(len(r.Value))
	}
	p.stats.gets.Add(int64(len(keys)))
	p.stats.bytesRead.Add(read)
	return out, nil
}

// DeleteMany implements Store. It is retried only when the failed attempt
// certainly deleted nothing, so the count it returns is exact.
func (p *Postgres) DeleteMany(ctx context.Context, keys [][]byte) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "delete many", err)
	}
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return 0, p.fail(ctx, "delete many", fmt.Errorf("key %d: %w", i, err))
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	n, err := query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return p.q.EntriesDeleteMany(ctx, db, keys)
	})
	if err != nil {
		return 0, p.fail(ctx, "delete many", err)
	}
	p.stats.deletes.Add(1)
	return n, nil
}
