package state

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Memory is a Store held in process memory, with the same behaviour as
// Postgres (validation, expiry, prefix order, checkpoints) and no
// durability. Use it in tests and examples. The zero value is not usable;
// call NewMemory.
type Memory struct {
	mu          sync.RWMutex
	entries     map[string]memEntry
	checkpoints map[uuid.UUID]memCheckpoint
	feed        *memFeed // the change log, memory_watch.go
	// revisions numbers the entries' writes (memEntry.modRevision),
	// shared with the store's transactions.
	revisions *atomic.Int64
	closed    bool
	// MaxValueSize is the largest value accepted; NewMemory sets
	// DefaultMaxValueSize.
	MaxValueSize int
	// Now is the clock used for expiry; NewMemory sets time.Now.
	Now func() time.Time
}

type memEntry struct {
	value     []byte
	metadata  json.RawMessage
	createdAt time.Time
	updatedAt time.Time
	expiresAt time.Time
	version   int64
	// modRevision is the revision of the last write; createRevision that
	// of the write that created the entry, 0 while it is modRevision (as
	// Postgres keeps NULL).
	modRevision    int64
	createRevision int64
}

type memCheckpoint struct {
	info    CheckpointInfo
	entries map[string]memEntry
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		entries:      make(map[string]memEntry),
		checkpoints:  make(map[uuid.UUID]memCheckpoint),
		feed:         newMemFeed(),
		revisions:    new(atomic.Int64),
		MaxValueSize: DefaultMaxValueSize,
		Now:          time.Now,
	}
}

// Close makes every later call fail with ErrClosed.
func (m *Memory) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.feed.close()
}

func (e memEntry) live(now time.Time) bool {
	return e.expiresAt.IsZero() || e.expiresAt.After(now)
}

func (e memEntry) toEntry(key string) Entry {
	return Entry{
		Key:       []byte(key),
		Value:     bytes.Clone(nonNil(e.value)),
		Metadata:  bytes.Clone(e.metadata),
		CreatedAt: e.createdAt,
		UpdatedAt: e.updatedAt,
		ExpiresAt: e.expiresAt,
		Version:   e.version,

		ModRevision:    e.modRevision,
		CreateRevision: cmp.Or(e.createRevision, e.modRevision),
	}
}

func memFail(op string, err error) error { return fmt.Errorf("pgstate: %s: %w", op, err) }

// ready checks ctx and Close; callers hold m.mu.
func (m *Memory) ready(ctx context.Context) error {
	if m.closed {
		return ErrClosed
	}
	return ctx.Err()
}

// Get implements Backend.
func (m *Memory) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	e, ok, err := m.GetEntry(ctx, key)
	if err != nil {
		return nil, false, memFail("get", unwrapOp(err))
	}
	return e.Value, ok, nil
}

// GetEntry implements Store.
func (m *Memory) GetEntry(ctx context.Context, key []byte) (Entry, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return Entry{}, false, memFail("get entry", err)
	}
	if err := checkKey(key); err != nil {
		return Entry{}, false, memFail("get entry", err)
	}
	e, ok := m.entries[string(key)]
	if !ok || !e.live(m.Now()) {
		return Entry{}, false, nil
	}
	return e.toEntry(string(key)), true, nil
}

// Contains implements Backend.
func (m *Memory) Contains(ctx context.Context, key []byte) (bool, error) {
	_, ok, err := m.GetEntry(ctx, key)
	if err != nil {
		return false, memFail("contains", unwrapOp(err))
	}
	return ok, nil
}

// Put implements Backend.
func (m *Memory) Put(ctx context.Context, key, value []byte) error {
	return m.write(ctx, "put", Entry{Key: key, Value: value})
}

// PutWithTTL implements Store.
func (m *Memory) PutWithTTL(ctx context.Context, key, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return memFail("put with ttl", fmt.Errorf("%w: %v, want a positive duration", ErrInvalidTTL, ttl))
	}
	return m.write(ctx, "put with ttl", Entry{Key: key, Value: value, TTL: ttl})
}

// PutWithMetadata implements Store.
func (m *Memory) PutWithMetadata(ctx context.Context, key, value []byte, metadata any) error {
	md, err := encodeMetadata(metadata)
	if err != nil {
		return memFail("put with metadata", err)
	}
	return m.write(ctx, "put with metadata", Entry{Key: key, Value: value, Metadata: md})
}

func (m *Memory) write(ctx context.Context, op string, e Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return memFail(op, err)
	}
	if err := m.check(e); err != nil {
		return memFail(op, err)
	}
	m.store(e, m.Now())
	return nil
}

func (m *Memory) check(e Entry) error {
	if err := checkKey(e.Key); err != nil {
		return err
	}
	if err := checkValue(e.Value, m.MaxValueSize); err != nil {
		return err
	}
	if e.TTL < 0 {
		return fmt.Errorf("%w: %v, want 0 (none) or a positive duration", ErrInvalidTTL, e.TTL)
	}
	_, err := encodeMetadata(e.Metadata)
	return err
}

// store writes a validated entry; callers hold the write lock.
func (m *Memory) store(e Entry, now time.Time) {
	m.logPut(string(e.Key), m.next(e, now), now)
}

// next is the entry a put of e makes, from the one it replaces.
func (m *Memory) next(e Entry, now time.Time) memEntry {
	md, _ := encodeMetadata(e.Metadata)
	next := memEntry{
		value:     bytes.Clone(nonNil(e.Value)),
		metadata:  bytes.Clone(md),
		createdAt: now,
		updatedAt: now,
		version:   1,
	}
	if e.TTL > 0 {
		next.expiresAt = expiryAfter(now, e.TTL)
	}
	if old, ok := m.entries[string(e.Key)]; ok {
		next.version = old.version + 1
		if old.live(now) {
			next.createdAt = old.createdAt
			next.createRevision = cmp.Or(old.createRevision, old.modRevision)
		}
	}
	return next
}

// Delete implements Backend.
func (m *Memory) Delete(ctx context.Context, key []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return memFail("delete", err)
	}
	if err := checkKey(key); err != nil {
		return memFail("delete", err)
	}
	m.logRemove(string(key), m.Now())
	delete(m.entries, string(key))
	return nil
}

// ListKeys implements Backend.
func (m *Memory) ListKeys(ctx context.Context, prefix []byte) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return nil, memFail("list keys", err)
	}
	now := m.Now()
	keys := [][]byte{}
	for k, e := range m.entries {
		if e.live(now) && bytes.HasPrefix([]byte(k), prefix) {
			keys = append(keys, []byte(k))
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys, nil
}

// Clear implements Backend.
func (m *Memory) Clear(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return memFail("clear", err)
	}
	now := m.Now()
	for k := range m.entries {
		m.logRemove(k, now)
	}
	clear(m.entries)
	return nil
}

// Count implements Backend.
func (m *Memory) Count(ctx context.Context) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return 0, memFail("count", err)
	}
	now := m.Now()
	var n int64
	for _, e := range m.entries {
		if e.live(now) {
			n++
		}
	}
	return n, nil
}

// FindByMetadata implements Store, with jsonb @> semantics.
func (m *Memory) FindByMetadata(ctx context.Context, filter any) ([]Entry, error) {
	match, err := metadataMatcher(filter)
	if err != nil {
		return nil, memFail("find by metadata", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return nil, memFail("find by metadata", err)
	}
	now := m.Now()
	out := []Entry{}
	for k, e := range m.entries {
		if e.live(now) && match(e) {
			out = append(out, e.toEntry(k))
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
	return out, nil
}

// jsonContains follows PostgreSQL's jsonb containment: objects contain the
// keys of the filter with contained values, arrays contain each element of
// the filter somewhere, scalars are equal (numbers as numeric values, so 1.0
// equals 1, without float64 rounding); at the top level an array also
// contains a scalar that is one of its elements. Documents come from
// decodeJSONB.
func jsonContains(have, want any, top bool) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok || !jsonContains(hv, wv, false) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok {
			return false
		}
		for _, wv := range w {
			if !slices.ContainsFunc(h, func(hv any) bool { return jsonContains(hv, wv, false) }) {
				return false
			}
		}
		return true
	default:
		if h, ok := have.([]any); ok && top {
			return slices.ContainsFunc(h, func(hv any) bool { return jsonContains(hv, want, false) })
		}
		if w, ok := want.(json.Number); ok {
			h, ok := have.(json.Number)
			return ok && numbersEqual(h, w)
		}
		return have == want
	}
}

// BatchPut implements Store.
func (m *Memory) BatchPut(ctx context.Context, entries []Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return memFail("batch put", err)
	}
	for i, e := range entries {
		if err := m.check(e); err != nil {
			return memFail("batch put", fmt.Errorf("entry %d: %w", i, err))
		}
	}
	now := m.Now()
	// Duplicates are resolved as in Postgres: only the last occurrence is
	// written, once.
	last := make(map[string]int, len(entries))
	for i, e := range entries {
		last[string(e.Key)] = i
	}
	for i, e := range entries {
		if last[string(e.Key)] == i {
			m.store(e, now)
		}
	}
	return nil
}

// GetMany implements Store.
func (m *Memory) GetMany(ctx context.Context, keys [][]byte) (map[string][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return nil, memFail("get many", err)
	}
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, memFail("get many", fmt.Errorf("key %d: %w", i, err))
		}
	}
	now := m.Now()
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		if e, ok := m.entries[string(k)]; ok && e.live(now) {
			out[string(k)] = bytes.Clone(nonNil(e.value))
		}
	}
	return out, nil
}

// DeleteMany implements Store. Like Postgres it counts expired entries that
// had not been cleaned up yet.
func (m *Memory) DeleteMany(ctx context.Context, keys [][]byte) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return 0, memFail("delete many", err)
	}
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return 0, memFail("delete many", fmt.Errorf("key %d: %w", i, err))
		}
	}
	var n int64
	for _, k := range keys {
		if _, ok := m.entries[string(k)]; ok {
			m.logRemove(string(k), m.Now())
			delete(m.entries, string(k))
			n++
		}
	}
	return n, nil
}

// CleanupExpired implements Store.
func (m *Memory) CleanupExpired(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return 0, memFail("cleanup expired", err)
	}
	now := m.Now()
	var n int64
	for k, e := range m.entries {
		if !e.live(now) {
			m.logRemove(k, now)
			delete(m.entries, k)
			n++
		}
	}
	return n, nil
}

// Scan implements Store. It reads a sorted snapshot of the matching keys and
// then each entry as it goes.
func (m *Memory) Scan(ctx context.Context, prefix []byte, opts ...ListOption) iter.Seq2[Entry, error] {
	if len(opts) > 0 {
		o, err := collectListOptions(opts)
		if err != nil {
			return func(yield func(Entry, error) bool) { yield(Entry{}, memFail("scan", err)) }
		}
		return scanPages(ctx, o, func(ctx context.Context, o listOptions) (Page, error) {
			return m.List(ctx, prefix, func(lo *listOptions) { *lo = o })
		})
	}
	return func(yield func(Entry, error) bool) {
		keys, err := m.ListKeys(ctx, prefix)
		if err != nil {
			yield(Entry{}, memFail("scan", unwrapOp(err)))
			return
		}
		for _, k := range keys {
			e, ok, err := m.GetEntry(ctx, k)
			if err != nil {
				yield(Entry{}, memFail("scan", unwrapOp(err)))
				return
			}
			if ok && !yield(e, nil) {
				return
			}
		}
	}
}

// CreateCheckpoint implements Store.
func (m *Memory) CreateCheckpoint(ctx context.Context) (uuid.UUID, error) {
	return m.CreateCheckpointWithMetadata(ctx, nil)
}

// CreateCheckpointWithMetadata snapshots every live entry with a metadata
// document.
func (m *Memory) CreateCheckpointWithMetadata(ctx context.Context, metadata any) (uuid.UUID, error) {
	info, err := m.createCheckpoint(ctx, metadata, "")
	return info.ID, err
}

func (m *Memory) createCheckpoint(ctx context.Context, metadata any, name string) (CheckpointInfo, error) {
	md, err := encodeMetadata(metadata)
	if err != nil {
		return CheckpointInfo{}, memFail("create checkpoint", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return CheckpointInfo{}, memFail("create checkpoint", err)
	}
	if name != "" {
		for _, cp := range m.checkpoints {
			if cp.info.Name == name {
				return CheckpointInfo{}, memFail(createOp(name), ErrCheckpointNameTaken)
			}
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return CheckpointInfo{}, memFail("create checkpoint", err)
	}
	now := m.Now()
	cp := memCheckpoint{
		info:    CheckpointInfo{ID: id, CreatedAt: now, Metadata: md, Name: name},
		entries: make(map[string]memEntry, len(m.entries)),
	}
	for k, e := range m.entries {
		if e.live(now) {
			e.modRevision, e.createRevision = 0, 0 // as Postgres's checkpoint rows
			cp.entries[k] = e
			cp.info.Rows++
			cp.info.Bytes += int64(len(k) + len(e.value))
		}
	}
	m.checkpoints[id] = cp
	return cp.info, nil
}

// RestoreCheckpoint implements Store.
func (m *Memory) RestoreCheckpoint(ctx context.Context, id uuid.UUID) error {
	_, err := m.RestoreCheckpointCount(ctx, id)
	return err
}

// RestoreCheckpointCount implements Store.
func (m *Memory) RestoreCheckpointCount(ctx context.Context, id uuid.UUID) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return 0, memFail("restore checkpoint", err)
	}
	cp, ok := m.checkpoints[id]
	if !ok {
		return 0, memFail(fmt.Sprintf("restore checkpoint %s", id), ErrCheckpointNotFound)
	}
	now := m.Now()
	for k := range m.entries {
		m.logRemove(k, now)
	}
	m.entries = make(map[string]memEntry, len(cp.entries))
	for k, e := range cp.entries {
		m.logPut(k, e, now) // a new revision: a restore is a new write
	}
	return int64(len(cp.entries)), nil
}

// ListCheckpoints implements Store.
func (m *Memory) ListCheckpoints(ctx context.Context) ([]CheckpointInfo, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return nil, memFail("list checkpoints", err)
	}
	out := make([]CheckpointInfo, 0, len(m.checkpoints))
	for _, cp := range m.checkpoints {
		out = append(out, cp.info)
	}
	// Newest first, ties broken by id, as Postgres orders them.
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return bytes.Compare(out[i].ID[:], out[j].ID[:]) > 0
	})
	return out, nil
}

// DeleteCheckpoint implements Store.
func (m *Memory) DeleteCheckpoint(ctx context.Context, id uuid.UUID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return memFail("delete checkpoint", err)
	}
	if _, ok := m.checkpoints[id]; !ok {
		return memFail(fmt.Sprintf("delete checkpoint %s", id), ErrCheckpointNotFound)
	}
	delete(m.checkpoints, id)
	return nil
}

// unwrapOp drops one "pgstate: op:" layer so that a method built on another
// reports its own name.
func unwrapOp(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		if inner := u.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
