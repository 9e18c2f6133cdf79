package state

import (
	"bytes"
	"context"
	"iter"
	"sort"
	"sync"
	"time"
)

// memFeed is the change log of a Memory store, with the semantics of the
// Postgres one: one event per changed key and write, revisions in commit
// order (the memory store commits one write at a time, so it has no holes),
// everything kept until CompactChanges. Writers record while holding the
// store's lock; watchers take only the feed's.
type memFeed struct {
	mu        sync.Mutex
	changes   []Event // in revision order; puts carry their value
	revision  int64
	compacted int64
	wake      chan struct{} // closed and replaced by every append
	closed    bool
	// buffered marks the feed of a transaction: its changes are appended
	// to parent's when the transaction commits (commit).
	buffered bool
	parent   *memFeed
}

func newMemFeed() *memFeed { return &memFeed{wake: make(chan struct{})} }

// txFeed returns the feed a transaction records into.
// Its revisions are drawn from f at once, as Postgres draws them inside the
// transaction: a rolled-back transaction leaves them unused.
func (f *memFeed) txFeed() *memFeed { return &memFeed{buffered: true, parent: f} }

// record logs a change and returns its revision.
func (f *memFeed) record(kind EventKind, key string, version, modRevision int64, value []byte, expiresAt time.Time, now time.Time) int64 {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := Event{Kind: kind, Key: []byte(key), Version: version, ModRevision: modRevision, Time: now}
	if kind == EventPut {
		ev.Value = bytes.Clone(nonNil(value))
		ev.ExpiresAt = expiresAt
	}
	if f.buffered {
		ev.Revision = f.parent.draw()
		f.changes = append(f.changes, ev)
		return ev.Revision
	}
	f.revision++
	ev.Revision = f.revision
	f.appendLocked(ev)
	return ev.Revision
}

// draw hands out the next revision.
func (f *memFeed) draw() int64 {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revision++
	return f.revision
}

func (f *memFeed) appendLocked(ev Event) {
	f.changes = append(f.changes, ev)
	close(f.wake)
	f.wake = make(chan struct{})
}

// commit appends the changes a transaction recorded, in its order.
func (f *memFeed) commit(tx *memFeed) {
	if f == nil || tx == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range tx.changes {
		f.appendLocked(ev)
	}
}

func (f *memFeed) close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.wake)
	}
}

// logPut stores e under k, with the revision of its write, and records the
// write; callers hold the write lock.
func (m *Memory) logPut(k string, e memEntry, now time.Time) {
	e.modRevision = m.revisions.Add(1) // under the write lock: in write order
	m.entries[k] = e
	m.feed.record(EventPut, k, e.version, e.modRevision, e.value, e.expiresAt, now)
}

// logRemove records the removal of k's row, if there is one, as Postgres's
// trigger does: an expired row's removal is an expiry. Callers hold the
// write lock and call it before removing the row.
func (m *Memory) logRemove(k string, now time.Time) {
	e, ok := m.entries[k]
	if !ok {
		return
	}
	kind := EventDelete
	if !e.live(now) {
		kind = EventExpire
	}
	m.feed.record(kind, k, e.version, 0, nil, time.Time{}, now)
}

// Revision implements Watcher.
func (m *Memory) Revision(ctx context.Context) (int64, error) {
	m.mu.RLock()
	err := m.ready(ctx)
	m.mu.RUnlock()
	if err != nil {
		return 0, memFail("revision", err)
	}
	m.feed.mu.Lock()
	defer m.feed.mu.Unlock()
	return m.feed.revision, nil
}

// CompactChanges implements Watcher.
func (m *Memory) CompactChanges(ctx context.Context, revision int64) (int64, error) {
	m.mu.RLock()
	err := m.ready(ctx)
	m.mu.RUnlock()
	if err != nil {
		return 0, memFail("compact changes", err)
	}
	f := m.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	upto := min(revision, f.revision)
	if upto <= f.compacted {
		return 0, nil
	}
	n := sort.Search(len(f.changes), func(i int) bool { return f.changes[i].Revision > upto })
	f.changes = append([]Event(nil), f.changes[n:]...)
	f.compacted = upto
	return int64(n), nil
}

// Watch implements Watcher. Each write wakes the watchers; Close ends them
// with ErrClosed, the end of ctx without an error.
func (m *Memory) Watch(ctx context.Context, prefix []byte, opts ...WatchOption) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		o, err := collectWatchOptions(opts)
		if err != nil {
			yield(Event{}, memFail("watch", err))
			return
		}
		m.mu.RLock()
		closed := m.closed
		m.mu.RUnlock()
		if closed {
			yield(Event{}, memFail("watch", ErrClosed))
			return
		}
		f := m.feed
		f.mu.Lock()
		cursor := f.revision
		if o.from > 0 {
			if o.from-1 > cursor {
				f.mu.Unlock()
				yield(Event{}, memFail("watch", &CompactedError{Requested: o.from, Compacted: cursor, ahead: true}))
				return
			}
			cursor = o.from - 1
		}
		f.mu.Unlock()
		for ctx.Err() == nil {
			f.mu.Lock()
			if f.closed {
				f.mu.Unlock()
				yield(Event{}, memFail("watch", ErrClosed))
				return
			}
			if cursor < f.compacted {
				err := &CompactedError{Requested: cursor + 1, Compacted: f.compacted}
				f.mu.Unlock()
				yield(Event{}, memFail("watch", err))
				return
			}
			i := sort.Search(len(f.changes), func(i int) bool { return f.changes[i].Revision > cursor })
			batch := f.changes[i:min(len(f.changes), i+watchPageSize)]
			wake := f.wake
			f.mu.Unlock()
			// Events are never modified once appended, and compaction
			// copies rather than shifts, so batch stays valid unlocked.
			for _, ev := range batch {
				cursor = ev.Revision
				if !bytes.HasPrefix(ev.Key, prefix) {
					continue
				}
				ev.Key = bytes.Clone(ev.Key)
				if o.values && ev.Kind == EventPut {
					ev.Value = bytes.Clone(ev.Value)
				} else {
					ev.Value = nil
				}
				if !yield(ev, nil) {
					return
				}
			}
			if len(batch) > 0 {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
		}
	}
}
