package state

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/pgstate/pgstate/gen"
)

// EventKind says what happened to a key.
type EventKind int8

const (
	// EventPut: the key was written (created or replaced); Event.Version is
	// the version written.
	EventPut EventKind = 1
	// EventDelete: the key was removed while live (Delete, DeleteMany,
	// DeletePrefix, Clear, RestoreCheckpoint); Event.Version is the version
	// removed.
	EventDelete EventKind = 2
	// EventExpire: a key whose TTL had passed was removed, by cleanup or by
	// any delete. It is late by design: an entry stops being visible at its
	// expiry, but its event is written when its row is removed, so how late
	// depends on CleanupInterval. An expired entry that is written again
	// before cleanup removes it gets only the EventPut of the new write
	// (with the next version).
	EventExpire EventKind = 3
)

// String returns "put", "delete" or "expire".
func (k EventKind) String() string {
	switch k {
	case EventPut:
		return "put"
	case EventDelete:
		return "delete"
	case EventExpire:
		return "expire"
	}
	return fmt.Sprintf("EventKind(%d)", int8(k))
}

// Event is one change of one key, as delivered by Watch.
type Event struct {
	Kind EventKind
	Key  []byte
	// Value is the value a put wrote, only when the watch asked for values
	// (WithValues); nil otherwise.
	Value []byte
	// Revision orders every change of the store: unique, and increasing in
	// the order in which changes were delivered. Revisions have holes
	// (rolled-back writes, changes outside the watched prefix).
	Revision int64
	// Version is the entry's version that the put wrote, or that the
	// delete or expiry removed.
	Version int64
	// ModRevision is the entry's ModRevision after a put (what
	// IfModRevision compares, and PutEntry returned as
	// WriteResult.Revision), 0 for other kinds. It is not the event's
	// Revision: entries and the log number their revisions apart.
	ModRevision int64
	// Time is when the writing transaction started, by the database's
	// clock (Postgres), or the write's time (Memory).
	Time time.Time
	// ExpiresAt is the expiry a put gave the entry, zero when it has none
	// (and for deletes and expiries), as in Entry: a copy of the store
	// built from the feed knows when each of its entries expires.
	ExpiresAt time.Time
}

// Watcher is a store with a change feed: both Postgres and Memory
// implement it.
type Watcher interface {
	// Revision returns the store's current revision: the newest change
	// recorded.
	Revision(ctx context.Context) (int64, error)
	// Watch delivers the changes of the keys that start with prefix, in
	// revision order: every change exactly once, the changes of one key in
	// the order they were made. It runs until ctx ends (then it stops
	// without an error) or the loop breaks, or fails with ErrCompacted or
	// ErrChangeFeedOff.
	Watch(ctx context.Context, prefix []byte, opts ...WatchOption) iter.Seq2[Event, error]
	// CompactChanges deletes the log up to and including revision (at most
	// up to the current revision) and returns how many changes it deleted.
	// A watch can then no longer start at or below that revision.
	CompactChanges(ctx context.Context, revision int64) (int64, error)
}

var (
	_ Watcher = (*Postgres)(nil)
	_ Watcher = (*Memory)(nil)
)

// CompactedError is the error of a watch that would need changes the log no
// longer holds. It matches ErrCompacted.
type CompactedError struct {
	// Requested is the first revision the watch needed.
	Requested int64
	// Compacted is the newest revision that is gone: a new watch can start
	// at Compacted+1, after reading the current state afresh. For a
	// Requested beyond every revision the store has handed out (a cursor
	// from another history), it is the store's newest revision.
	Compacted int64
	ahead     bool
}

func (e *CompactedError) Error() string {
	if e.ahead {
		return fmt.Sprintf("%v: revision %d is needed, but the store has handed out revisions only up to %d: the cursor belongs to another history (a restored backup or a failover that lost writes)", ErrCompacted, e.Requested, e.Compacted)
	}
	return fmt.Sprintf("%v: revision %d is needed, the log is compacted up to %d", ErrCompacted, e.Requested, e.Compacted)
}

// Is makes errors.Is(err, ErrCompacted) true.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// WatchOption configures one Watch call.
type WatchOption func(*watchOptions)

type watchOptions struct {
	from       int64
	values     bool
	poll       time.Duration
	invalidErr error
}

// DefaultWatchPollInterval is how often a Postgres watch that has caught up
// looks for new changes.
const DefaultWatchPollInterval = 10 * time.Millisecond

// FromRevision starts the watch at revision rev (inclusive): to resume after
// the last event handled, pass its Revision+1. Without it the watch starts
// after the current revision. rev must be at least 1.
func FromRevision(rev int64) WatchOption {
	return func(o *watchOptions) {
		if rev < 1 {
			o.invalidErr = fmt.Errorf("%w: FromRevision(%d), want 1 or more", ErrInvalidOption, rev)
			return
		}
		o.from = rev
	}
}

// WithValues makes put events carry the value written.
func WithValues() WatchOption { return func(o *watchOptions) { o.values = true } }

// WithPollInterval sets how often a caught-up Postgres watch reads the log
// (DefaultWatchPollInterval): the typical delay from commit to event is
// half of it. Memory watches are woken by each write and ignore it.
func WithPollInterval(d time.Duration) WatchOption {
	return func(o *watchOptions) {
		if d <= 0 {
			o.invalidErr = fmt.Errorf("%w: WithPollInterval(%v), want a positive duration", ErrInvalidOption, d)
			return
		}
		o.poll = d
	}
}

func collectWatchOptions(opts []WatchOption) (watchOptions, error) {
	o := watchOptions{poll: DefaultWatchPollInterval}
	for _, opt := range opts {
		opt(&o)
	}
	return o, o.invalidErr
}

// Event kinds as stored in state_changes.kind.
const (
	changeGap    = 0 // written by releases before migration 010
	changePut    = 1
	changeDelete = 2
	changeExpire = 3
)

// compactBatch is the most revisions one compaction statement removes.
const compactBatch = 10000

// Revision implements Watcher. It is a safe point to resume from: every
// change with a revision up to it has committed or never will, so a watch
// from Revision()+1 delivers every change committed after the call,
// including those of writes in flight during it. To be sure of that,
// Revision waits for the transactions writing the store when it is called
// (not for those that start later, nor for anyone else's), within
// QueryTimeout; inside Transact it does not wait for the transaction
// itself.
func (p *Postgres) Revision(ctx context.Context) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "revision", err)
	}
	rev, err := p.settledRevision(ctx)
	if err != nil {
		return 0, p.fail(ctx, "revision", err)
	}
	return rev, nil
}

// settledRevision returns the newest revision up to which every revision
// is in the log or never will be: the sequence's position once the
// writers that held the feed's lock at that moment have ended.
func (p *Postgres) settledRevision(ctx context.Context) (int64, error) {
	h, err := query(ctx, p, idempotent, p.q.ChangesHorizon)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(p.cfg.QueryTimeout)
	for holders := h.Holders; len(holders) > 0; {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w: waiting for %d transactions writing the store to end", p.spent(), len(holders))
		}
		if !sleepCtx(ctx, settlePoll) {
			return 0, ctx.Err()
		}
		left, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (int64, error) {
			return p.q.ChangesHoldersLeft(ctx, db, holders)
		})
		if err != nil {
			return 0, err
		}
		if left == 0 {
			break
		}
	}
	return max(h.LastTaken, h.CompactedRevision), nil
}

// Watch implements Watcher: the change log (migrations 007 and 010) read in
// revision order by the store's shared reader, feed.go. A revision missing
// from the log (taken by a writer that has not committed yet, or lost to a
// rollback or a crash) holds the watch back until the writers that may hold
// it have ended; so no change is skipped because a later revision committed
// first, none is delivered twice, and nothing is written to find out.
//
// All the watches of a store in one process share one reader (one for the
// watches with values, one for those without), which reads through the
// feed's own two connections, not the store's pool, one page of up to 1000
// changes and 16 MiB of values at a time, and sleeps PollInterval when it
// has caught up; it does not use LISTEN/NOTIFY, whose commit-time lock would
// serialize every writer of the database. A watch whose consumer falls far
// behind reads the log itself until it has caught up. The cursor lives in
// the watch, not in a connection: a killed connection or a restarting
// server only delays a watch, which retries (backing off up to a second)
// until ctx ends.
//
// Without FromRevision it starts after the current revision (Revision). A
// FromRevision beyond the newest revision the store has handed out is a
// cursor from another history (a restored backup, a failover that lost
// writes): the watch fails with ErrCompacted. Events of one store are
// shared by its watches: do not modify their Key or Value.
func (p *Postgres) Watch(ctx context.Context, prefix []byte, opts ...WatchOption) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		o, err := collectWatchOptions(opts)
		if err == nil {
			err = p.usable()
		}
		if err == nil {
			o.from, err = p.watchStart(ctx, o.from)
		}
		if err == nil {
			err = newFeedSub(prefix, o.from-1, o.poll).run(ctx, p.hub(o.values), yield)
		}
		if err != nil && !errors.Is(err, errStopped) && ctx.Err() == nil {
			yield(Event{}, p.fail(ctx, "watch", err))
		}
	}
}

// watchStart returns the first revision a watch delivers: from, or after
// the current revision when from is 0. A from beyond every revision handed
// out is refused.
func (p *Postgres) watchStart(ctx context.Context, from int64) (int64, error) {
	if from == 0 {
		rev, err := p.settledRevision(ctx)
		return rev + 1, err
	}
	last, err := query(ctx, p, idempotent, p.q.ChangesLastTaken)
	if err != nil {
		return 0, err
	}
	if from-1 > last {
		return 0, &CompactedError{Requested: from, Compacted: last, ahead: true}
	}
	return from, nil
}

// errStopped ends a watch when the consumer breaks out of the loop.
var errStopped = errors.New("watch stopped")

// CompactChanges implements Watcher.
func (p *Postgres) CompactChanges(ctx context.Context, revision int64) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "compact changes", err)
	}
	// Never past the settled revision: the marker must stay a safe point
	// to resume from (CompactedError.Compacted).
	upto, err := p.settledRevision(ctx)
	if err != nil {
		return 0, p.fail(ctx, "compact changes", err)
	}
	var total int64
	for prev := int64(-1); ; {
		r, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.ChangesCompactToRow, error) {
			return p.q.ChangesCompactTo(ctx, db, gen.ChangesCompactToParams{Revision: revision, Upto: upto, BatchSize: compactBatch})
		})
		if err != nil {
			return total, p.fail(ctx, "compact changes", err)
		}
		total += r.Deleted
		// Done at the target, or where the log ends (the marker stops
		// moving).
		if r.Compacted >= min(revision, upto) || r.Compacted == prev {
			return total, nil
		}
		prev = r.Compacted
	}
}

// ChangeFeedStatus describes a store's change feed.
type ChangeFeedStatus struct {
	Enabled   bool  // false while the feed is switched off
	Revision  int64 // the current revision
	Compacted int64 // every revision up to this one is gone from the log
	LogBytes  int64 // size of the log on disk, indexes included
}

// ChangeFeed reports the state of the store's change feed.
func (p *Postgres) ChangeFeed(ctx context.Context) (ChangeFeedStatus, error) {
	if err := p.usable(); err != nil {
		return ChangeFeedStatus{}, p.fail(ctx, "change feed", err)
	}
	r, err := query(ctx, p, idempotent, p.q.ChangesStatus)
	if err != nil {
		return ChangeFeedStatus{}, p.fail(ctx, "change feed", err)
	}
	return ChangeFeedStatus{Enabled: r.Enabled, Revision: r.Revision, Compacted: r.CompactedRevision, LogBytes: r.LogBytes}, nil
}

// SetChangeFeed switches the store's change feed on or off, for every
// process using the store (it disables the triggers that fill the log; the
// role must own the store's tables). Off, writes cost what they cost
// without a feed, and watches fail with ErrChangeFeedOff. Switching it back
// on compacts the log up to a new revision, because the writes made while
// it was off are missing: a watch cannot resume from before that point
// (ErrCompacted).
func (p *Postgres) SetChangeFeed(ctx context.Context, enabled bool) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "set change feed", err)
	}
	if _, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (bool, error) {
		return p.q.ChangesSetEnabled(ctx, db, enabled)
	}); err != nil {
		return p.fail(ctx, "set change feed", err)
	}
	return nil
}

// compactChangesRound applies ChangeRetention; the background cleaner runs
// it after each cleanup round. Every process may run it at once: the
// deletes are idempotent and the marker only moves forward.
func (p *Postgres) compactChangesRound(ctx context.Context) {
	if p.cfg.ChangeRetention <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.QueryTimeout)
	defer cancel()
	micros := int64(p.cfg.ChangeRetention / time.Microsecond)
	upto, err := p.settledRevision(ctx)
	if err != nil {
		p.stats.errors.Add(1)
		return
	}
	for {
		r, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.ChangesCompactBeforeRow, error) {
			return p.q.ChangesCompactBefore(ctx, db, gen.ChangesCompactBeforeParams{RetentionMicros: micros, Upto: upto, BatchSize: compactBatch})
		})
		if err != nil {
			p.stats.errors.Add(1)
			return
		}
		if r.Deleted < compactBatch {
			return
		}
	}
}
