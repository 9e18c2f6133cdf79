package state

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pgstate/pgstate/gen"
)

// BatchPut implements Store. The whole batch is one statement (an upsert
// over parallel arrays), so it is atomic and costs one round trip. Every
// entry is validated before anything is sent.
func (p *Postgres) BatchPut(ctx context.Context, entries []Entry) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "batch put", err)
	}
	arg, bytes, err := p.batchParams(entries)
	if err != nil {
		return p.fail(ctx, "batch put", err)
	}
	if len(arg.Keys) == 0 {
		return nil
	}
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		p.stats.queries.Add(1)
		_, err = p.q.EntriesUpsertMany(ctx, p.pool, arg)
		if !p.shouldRetry(ctx, idempotent, err, attempt) {
			break
		}
	}
	if err != nil {
		return p.fail(ctx, "batch put", err)
	}
	p.stats.puts.Add(int64(len(arg.Keys)))
	p.stats.bytesWritten.Add(bytes)
	return nil
}

// batchParams validates the entries and lays them out as parallel arrays,
// keeping only the last occurrence of each key (one statement cannot write a
// row twice).
func (p *Postgres) batchParams(entries []Entry) (gen.EntriesUpsertManyParams, int64, error) {
	last := make(map[string]int, len(entries))
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
		last[string(e.Key)] = i
	}
	n := len(last)
	arg := gen.EntriesUpsertManyParams{
		Keys:      make([][]byte, 0, n),
		Values:    make([][]byte, 0, n),
		Metadata:  make([]json.RawMessage, 0, n),
		TtlMicros: make([]int64, 0, n),
	}
	var bytes int64
	for i, e := range entries {
		if last[string(e.Key)] != i {
			continue
		}
		md, err := encodeMetadata(e.Metadata)
		if err != nil {
			return gen.EntriesUpsertManyParams{}, 0, fmt.Errorf("entry %d: %w", i, err)
		}
		var micros int64
		if e.TTL > 0 {
			micros, _ = ttlMicros(e.TTL)
		}
		arg.Keys = append(arg.Keys, e.Key)
		arg.Values = append(arg.Values, nonNil(e.Value))
		arg.Metadata = append(arg.Metadata, md)
		arg.TtlMicros = append(arg.TtlMicros, micros)
		bytes += int64(len(e.Key) + len(e.Value))
	}
	return arg, bytes, nil
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
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	var rows []gen.EntriesGetManyRow
	var err error
	for attempt := 0; ; attempt++ {
		p.stats.queries.Add(1)
		rows, err = p.q.EntriesGetMany(ctx, p.pool, keys)
		if !p.shouldRetry(ctx, idempotent, err, attempt) {
			break
		}
	}
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
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	var n int64
	var err error
	for attempt := 0; ; attempt++ {
		p.stats.queries.Add(1)
		n, err = p.q.EntriesDeleteMany(ctx, p.pool, keys)
		if !p.shouldRetry(ctx, onceOnly, err, attempt) {
			break
		}
	}
	if err != nil {
		return 0, p.fail(ctx, "delete many", err)
	}
	p.stats.deletes.Add(1)
	return n, nil
}
