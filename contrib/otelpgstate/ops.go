package otelpgstate

import (
	"context"
	"iter"
	"time"

	"github.com/pgstate/pgstate/state"
)

// ops reports the calls of state.Ops, made on the store or on a
// transaction's handle: Store and Tx share it.
type ops struct {
	o  state.Ops
	in *instruments
}

// Get implements state.Ops.
func (s ops) Get(ctx context.Context, key []byte) (value []byte, found bool, err error) {
	ctx, op := s.in.start(ctx, "get")
	defer func() { op.end(err) }()
	return s.o.Get(ctx, key)
}

// GetEntry implements state.Ops.
func (s ops) GetEntry(ctx context.Context, key []byte) (e state.Entry, found bool, err error) {
	ctx, op := s.in.start(ctx, "get_entry")
	defer func() { op.end(err) }()
	return s.o.GetEntry(ctx, key)
}

// Contains implements state.Ops.
func (s ops) Contains(ctx context.Context, key []byte) (found bool, err error) {
	ctx, op := s.in.start(ctx, "contains")
	defer func() { op.end(err) }()
	return s.o.Contains(ctx, key)
}

// GetMany implements state.Ops.
func (s ops) GetMany(ctx context.Context, keys [][]byte) (values map[string][]byte, err error) {
	ctx, op := s.in.start(ctx, "get_many", batchSize(len(keys)))
	defer func() { op.end(err, returned(len(values))) }()
	return s.o.GetMany(ctx, keys)
}

// ListKeys implements state.Ops.
func (s ops) ListKeys(ctx context.Context, prefix []byte) (keys [][]byte, err error) {
	ctx, op := s.in.start(ctx, "list_keys")
	defer func() { op.end(err, returned(len(keys))) }()
	return s.o.ListKeys(ctx, prefix)
}

// Scan implements state.Ops. Its "pgstate.scan" span starts when the
// iteration does and ends with it; the pages' statements nest under it.
func (s ops) Scan(ctx context.Context, prefix []byte, opts ...state.ListOption) iter.Seq2[state.Entry, error] {
	return func(yield func(state.Entry, error) bool) {
		ctx, op := s.in.start(ctx, "scan")
		n := 0
		var err error
		defer func() { op.end(err, returned(n)) }()
		for e, eErr := range s.o.Scan(ctx, prefix, opts...) {
			if eErr != nil {
				err = eErr
			} else {
				n++
			}
			if !yield(e, eErr) {
				return
			}
		}
	}
}

// List implements state.Ops.
func (s ops) List(ctx context.Context, prefix []byte, opts ...state.ListOption) (page state.Page, err error) {
	ctx, op := s.in.start(ctx, "list")
	defer func() { op.end(err, returned(len(page.Entries))) }()
	return s.o.List(ctx, prefix, opts...)
}

// FindByMetadata implements state.Ops.
func (s ops) FindByMetadata(ctx context.Context, filter any) (entries []state.Entry, err error) {
	ctx, op := s.in.start(ctx, "find_by_metadata")
	defer func() { op.end(err, returned(len(entries))) }()
	return s.o.FindByMetadata(ctx, filter)
}

// FindByMetadataPage implements state.Ops.
func (s ops) FindByMetadataPage(ctx context.Context, prefix []byte, filter any, opts ...state.ListOption) (page state.Page, err error) {
	ctx, op := s.in.start(ctx, "find_by_metadata_page")
	defer func() { op.end(err, returned(len(page.Entries))) }()
	return s.o.FindByMetadataPage(ctx, prefix, filter, opts...)
}

// Count implements state.Ops.
func (s ops) Count(ctx context.Context) (n int64, err error) {
	ctx, op := s.in.start(ctx, "count")
	defer func() { op.end(err) }()
	return s.o.Count(ctx)
}

// CountPrefix implements state.Ops.
func (s ops) CountPrefix(ctx context.Context, prefix []byte) (n int64, err error) {
	ctx, op := s.in.start(ctx, "count_prefix")
	defer func() { op.end(err) }()
	return s.o.CountPrefix(ctx, prefix)
}

// Put implements state.Ops.
func (s ops) Put(ctx context.Context, key, value []byte) (err error) {
	ctx, op := s.in.start(ctx, "put")
	defer func() { op.end(err) }()
	return s.o.Put(ctx, key, value)
}

// PutWithTTL implements state.Ops.
func (s ops) PutWithTTL(ctx context.Context, key, value []byte, ttl time.Duration) (err error) {
	ctx, op := s.in.start(ctx, "put_with_ttl")
	defer func() { op.end(err) }()
	return s.o.PutWithTTL(ctx, key, value, ttl)
}

// PutWithMetadata implements state.Ops.
func (s ops) PutWithMetadata(ctx context.Context, key, value []byte, metadata any) (err error) {
	ctx, op := s.in.start(ctx, "put_with_metadata")
	defer func() { op.end(err) }()
	return s.o.PutWithMetadata(ctx, key, value, metadata)
}

// PutEntry implements state.Ops.
func (s ops) PutEntry(ctx context.Context, key, value []byte, opts ...state.WriteOption) (res state.WriteResult, err error) {
	ctx, op := s.in.start(ctx, "put_entry")
	defer func() { op.end(err) }()
	return s.o.PutEntry(ctx, key, value, opts...)
}

// Delete implements state.Ops.
func (s ops) Delete(ctx context.Context, key []byte) (err error) {
	ctx, op := s.in.start(ctx, "delete")
	defer func() { op.end(err) }()
	return s.o.Delete(ctx, key)
}

// DeleteEntry implements state.Ops.
func (s ops) DeleteEntry(ctx context.Context, key []byte, opts ...state.WriteOption) (res state.WriteResult, err error) {
	ctx, op := s.in.start(ctx, "delete_entry")
	defer func() { op.end(err) }()
	return s.o.DeleteEntry(ctx, key, opts...)
}

// BatchPut implements state.Ops.
func (s ops) BatchPut(ctx context.Context, entries []state.Entry) (err error) {
	ctx, op := s.in.start(ctx, "batch_put", batchSize(len(entries)))
	defer func() { op.end(err) }()
	return s.o.BatchPut(ctx, entries)
}

// DeleteMany implements state.Ops.
func (s ops) DeleteMany(ctx context.Context, keys [][]byte) (n int64, err error) {
	ctx, op := s.in.start(ctx, "delete_many", batchSize(len(keys)))
	defer func() { op.end(err) }()
	return s.o.DeleteMany(ctx, keys)
}

// DeletePrefix implements state.Ops.
func (s ops) DeletePrefix(ctx context.Context, prefix []byte) (n int64, err error) {
	ctx, op := s.in.start(ctx, "delete_prefix")
	defer func() { op.end(err) }()
	return s.o.DeletePrefix(ctx, prefix)
}

// Expire implements state.Ops.
func (s ops) Expire(ctx context.Context, key []byte, ttl time.Duration) (found bool, err error) {
	ctx, op := s.in.start(ctx, "expire")
	defer func() { op.end(err) }()
	return s.o.Expire(ctx, key, ttl)
}

// Persist implements state.Ops.
func (s ops) Persist(ctx context.Context, key []byte) (removed bool, err error) {
	ctx, op := s.in.start(ctx, "persist")
	defer func() { op.end(err) }()
	return s.o.Persist(ctx, key)
}

// TTL implements state.Ops.
func (s ops) TTL(ctx context.Context, key []byte) (remaining time.Duration, found bool, err error) {
	ctx, op := s.in.start(ctx, "ttl")
	defer func() { op.end(err) }()
	return s.o.TTL(ctx, key)
}

// Increment implements state.Ops.
func (s ops) Increment(ctx context.Context, key []byte, delta int64) (n int64, err error) {
	ctx, op := s.in.start(ctx, "increment")
	defer func() { op.end(err) }()
	return s.o.Increment(ctx, key, delta)
}
