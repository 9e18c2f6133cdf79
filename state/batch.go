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
// below it the extra round trips of the transaction cost more than COPY
// saves.
const copyThreshold = 1000

// BatchPut implements Store. Every entry is validated before anything is
// sent, and the batch is written atomically. A batch of fewer than
// copyThreshold entries is one upsert statement over parallel arrays (one
// round trip). A larger batch is first attempted with COPY inside a
// savepoint, which is how PostgreSQL loads rows fastest; if any key already
// exists, the savepoint is rolled back and the same upsert runs instead, in
// the same transaction. Both paths write the rows in key order, so
// concurrent overlapping batches never deadlock.
func (p *Postgres) BatchPut(ctx context.Context, entries []Entry) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "batch put", err)
	}
	arg, size, err := p.batchParams(entries)
	if err != nil {
		return p.fail(ctx, "batch put", err)
	}
	if len(arg.Keys) == 0 {
		return nil
	}
	if len(arg.Keys) >= copyThreshold {
		tctx, cancel := p.withTimeout(ctx)
		err = p.inTx(tctx, onceOnly, func(tx pgx.Tx) error { return p.copyOrUpsert(tctx, tx, arg) })
		cancel()
	} else {
		_, err = query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (int64, error) {
			return p.q.EntriesUpsertMany(ctx, db, arg)
		})
	}
	if err != nil {
		return p.fail(ctx, "batch put", err)
	}
	p.stats.puts.Add(int64(len(arg.Keys)))
	p.stats.bytesWritten.Add(size)
	return nil
}

func (p *Postgres) copyOrUpsert(ctx context.Context, tx pgx.Tx, arg gen.EntriesUpsertManyParams) error {
	p.stats.queries.Add(1)
	now, err := p.q.TransactionNow(ctx, tx)
	if err != nil {
		return err
	}
	rows := make([]gen.EntriesInsertManyCopyFromParams, len(arg.Keys))
	for i := range rows {
		rows[i] = gen.EntriesInsertManyCopyFromParams{Key: arg.Keys[i], Value: arg.Values[i], Metadata: arg.Metadata[i]}
		if micros := arg.TtlMicros[i]; micros > 0 {
			expires := addMicros(now, micros)
			rows[i].ExpiresAt = &expires
		}
	}
	savepoint, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	p.stats.queries.Add(1)
	if _, err = p.q.EntriesInsertManyCopyFrom(ctx, savepoint, rows); err == nil {
		return savepoint.Commit(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != pgerrUniqueViolation {
		return err
	}
	if err := savepoint.Rollback(ctx); err != nil {
		return err
	}
	p.stats.queries.Add(1)
	_, err = p.q.EntriesUpsertMany(ctx, tx, arg)
	return err
}

// pgerrUniqueViolation is SQLSTATE unique_violation.
const pgerrUniqueViolation = "23505"

// batchParams validates every entry, superseded duplicates included (as
// Memory does), and lays the batch out as parallel arrays, keeping only the
// last occurrence of each key (one statement cannot write a row twice),
// sorted by key. The order is what makes concurrent batches safe: every
// BatchPut, on the upsert and the COPY path alike, locks its rows in
// ascending key order, so two overlapping batches can wait for each other
// but never in a cycle, and no BatchPut fails with a deadlock.
func (p *Postgres) batchParams(entries []Entry) (gen.EntriesUpsertManyParams, int64, error) {
	last := make(map[string]int, len(entries))
	metadata := make([]json.RawMessage, len(entries))
	for i, e := range entries {
		if err := checkKey(e.Key); err != nil {
			return gen.EntriesUpsertManyParams{}, 0, fmt.Errorf("entry %d: %w", i, err)
		}
		if err := checkValue(e.Value, p.cfg.MaxValueSize); err != nil {
			return gen.EntriesUpsertManyParams{}, 0, fmt.Errorf("entry %d: %w", i, err)
		}
		if e.TTL < 0 {
			return gen.EntriesUpsertManyParams{}, 0, fmt.Errorf("entry %d: %w: %v, want 0 (none) or a positive duration", i, ErrInvalidTTL, e.TTL)
		}
		md, err := encodeMetadata(e.Metadata)
		if err != nil {
			return gen.EntriesUpsertManyParams{}, 0, fmt.Errorf("entry %d: %w", i, err)
		}
		metadata[i] = md
		last[string(e.Key)] = i
	}
	kept := make([]int, 0, len(last))
	for i, e := range entries {
		if last[string(e.Key)] == i {
			kept = append(kept, i)
		}
	}
	// bytes.Compare orders keys as PostgreSQL orders bytea.
	slices.SortFunc(kept, func(a, b int) int { return bytes.Compare(entries[a].Key, entries[b].Key) })
	n := len(kept)
	arg := gen.EntriesUpsertManyParams{
		Keys:      make([][]byte, 0, n),
		Values:    make([][]byte, 0, n),
		Metadata:  make([]json.RawMessage, 0, n),
		TtlMicros: make([]int64, 0, n),
	}
	var size int64
	for _, i := range kept {
		e := entries[i]
		var micros int64
		if e.TTL > 0 {
			micros, _ = ttlMicros(e.TTL)
		}
		arg.Keys = append(arg.Keys, e.Key)
		arg.Values = append(arg.Values, nonNil(e.Value))
		arg.Metadata = append(arg.Metadata, metadata[i])
		arg.TtlMicros = append(arg.TtlMicros, micros)
		size += int64(len(e.Key) + len(e.Value))
	}
	return arg, size, nil
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
