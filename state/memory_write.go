package state

import (
	"bytes"
	"context"
	"time"
)

// PutEntry implements Store with the semantics of Postgres.PutEntry.
func (m *Memory) PutEntry(ctx context.Context, key, value []byte, opts ...WriteOption) (WriteResult, error) {
	o, err := collectWriteOptions(opts, false)
	if err != nil {
		return WriteResult{}, memFail("put entry", err)
	}
	e := Entry{Key: key, Value: value, TTL: o.ttl, Metadata: o.metadata}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return WriteResult{}, memFail("put entry", err)
	}
	if err := m.check(e); err != nil {
		return WriteResult{}, memFail("put entry", err)
	}
	now := m.Now()
	old, existed := m.liveEntry(key, now)
	if o.conditional && o.current(old.version, old.modRevision) != o.expected {
		return WriteResult{}, memFail("put entry", o.mismatchOf(key, old.version, old.modRevision))
	}
	next := m.next(e, now)
	// What next does not know of: an exact expiry, and what to keep.
	if !o.expiresAt.IsZero() {
		next.expiresAt = o.expiresAt.Truncate(time.Microsecond) // as pgx sends it
	}
	if existed && o.keepTTL {
		next.expiresAt = old.expiresAt
	}
	if existed && o.keepMetadata {
		next.metadata = bytes.Clone(old.metadata)
	}
	m.logPut(string(key), next, now)
	next = m.entries[string(key)]
	return WriteResult{
		Version:  next.version,
		Revision: next.modRevision,
		Existed:  existed,
		Prev:     memPrev(key, o.prev, existed, old),
	}, nil
}

// DeleteEntry implements Store with the semantics of Postgres.DeleteEntry.
func (m *Memory) DeleteEntry(ctx context.Context, key []byte, opts ...WriteOption) (WriteResult, error) {
	o, err := collectWriteOptions(opts, true)
	if err != nil {
		return WriteResult{}, memFail("delete entry", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return WriteResult{}, memFail("delete entry", err)
	}
	if err := checkKey(key); err != nil {
		return WriteResult{}, memFail("delete entry", err)
	}
	old, existed := m.liveEntry(key, m.Now())
	if o.conditional && o.current(old.version, old.modRevision) != o.expected {
		return WriteResult{}, memFail("delete entry", o.mismatchOf(key, old.version, old.modRevision))
	}
	m.deleteKeys([][]byte{key})
	return WriteResult{Existed: existed, Prev: memPrev(key, o.prev, existed, old)}, nil
}

// liveEntry returns the live entry under key; a missing or expired one is
// the zero memEntry, whose version 0 is what conditions compare with.
func (m *Memory) liveEntry(key []byte, now time.Time) (memEntry, bool) {
	e, ok := m.entries[string(key)]
	if !ok || !e.live(now) {
		return memEntry{}, false
	}
	return e, true
}

func memPrev(key []byte, want, existed bool, old memEntry) *Entry {
	if !want || !existed {
		return nil
	}
	e := old.toEntry(string(key))
	return &e
}

// DeletePrefix implements Store.
func (m *Memory) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return 0, memFail("delete prefix", err)
	}
	now := m.Now()
	var n int64
	var doomed [][]byte
	for k, e := range m.entries {
		if bytes.HasPrefix([]byte(k), prefix) {
			doomed = append(doomed, []byte(k))
			if e.live(now) {
				n++
			}
		}
	}
	m.deleteKeys(doomed)
	return n, nil
}

// CountPrefix implements Store.
func (m *Memory) CountPrefix(ctx context.Context, prefix []byte) (int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return 0, memFail("count prefix", err)
	}
	now := m.Now()
	var n int64
	for k, e := range m.entries {
		if e.live(now) && bytes.HasPrefix([]byte(k), prefix) {
			n++
		}
	}
	return n, nil
}

// deleteKeys removes keys; callers hold the write lock. Every delete of
// the memory store goes through here.
func (m *Memory) deleteKeys(keys [][]byte) {
	now := m.Now()
	for _, k := range keys {
		m.logRemove(string(k), now)
		delete(m.entries, string(k))
	}
}
