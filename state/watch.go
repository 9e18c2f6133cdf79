package state

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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
	// Time is when the writing transaction started, by the database's
	// clock (Postgres), or the write's time (Memory).
	Time time.Time
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
	// at Compacted+1, after reading the current state afresh.
	Compacted int64
}

func (e *CompactedError) Error() string {
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
	changeGap    = 0
	changePut    = 1
	changeDelete = 2
	changeExpire = 3
)

const (
	// watchPageSize is how many revisions one read of the log returns.
	watchPageSize = 1000
	// watchGapGrace is how long a hole in the log may last before the
	// watcher resolves it with a gap row. Holes left by writers that have
	// not committed yet close by themselves within milliseconds; waiting
	// first keeps gap rows (and their writes) for rollbacks and long
	// transactions.
	watchGapGrace = 100 * time.Millisecond
	// watchGapWait bounds one attempt to fill a hole, which waits for the
	// transaction holding the revision: a transaction that stays open
	// longer is waited for again after the next read.
	watchGapWait = 2 * time.Second
	// watchMaxBackoff caps the delay between reads while the database is
	// unreachable.
	watchMaxBackoff = time.Second
	// compactBatch is the most revisions one compaction statement removes.
	compactBatch = 10000
)

// Revision implements Watcher.
func (p *Postgres) Revision(ctx context.Context) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "revision", err)
	}
	rev, err := query(ctx, p, idempotent, p.q.ChangesRevision)
	if err != nil {
		return 0, p.fail(ctx, "revision", err)
	}
	return rev, nil
}

// Watch implements Watcher. It reads the change log (migration 007) in
// revision order and delivers the unbroken run of changes after its cursor.
// A revision that is missing from the log (taken by a transaction that has
// not committed yet, or lost to a rollback or a crash) holds the watch back:
// after 100 ms the watch inserts a gap row there, which waits for a
// transaction still holding the revision and then either finds its change
// (committed) or leaves the gap row (rolled back). So no event is skipped
// because a later revision committed first, and none is delivered twice.
//
// The cursor lives in the watch, not in a connection: a killed connection
// or a restarting server only delays the watch, which retries (backing off
// up to a second) until ctx ends. The watch reads through the store's pool,
// one page of up to 1000 revisions at a time, and sleeps PollInterval when
// it has caught up; it does not use LISTEN/NOTIFY, whose commit-time lock
// would serialize every writer of the database.
//
// Without FromRevision it starts after the current revision; a write that
// took an older revision and commits after the watch started is then not
// delivered. To see every change after a point, start from a revision
// (Revision()+1 read before the point, or an event's Revision+1).
func (p *Postgres) Watch(ctx context.Context, prefix []byte, opts ...WatchOption) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		o, err := collectWatchOptions(opts)
		if err == nil {
			err = p.usable()
		}
		if err != nil {
			yield(Event{}, p.fail(ctx, "watch", err))
			return
		}
		w := &pgWatch{p: p, o: o, lower: nonNil(prefix), upper: PrefixEnd(prefix)}
		if o.from > 0 {
			w.cursor = o.from - 1
		} else if w.cursor, err = retryRead(ctx, w, func() (int64, error) { return query(ctx, p, idempotent, p.q.ChangesRevision) }); err != nil {
			if ctx.Err() == nil {
				yield(Event{}, p.fail(ctx, "watch", err))
			}
			return
		}
		err = w.run(ctx, yield)
		if err != nil && !errors.Is(err, errStopped) && ctx.Err() == nil {
			yield(Event{}, p.fail(ctx, "watch", err))
		}
	}
}

// pgWatch is the state of one Postgres watch.
type pgWatch struct {
	p            *Postgres
	o            watchOptions
	lower, upper []byte
	cursor       int64 // every revision up to here is delivered or skipped

	holeAt    int64 // first revision of the hole being waited for, 0 if none
	holeSince time.Time
	failures  int // consecutive failed reads
}

// errStopped ends run when the consumer breaks out of the loop.
var errStopped = errors.New("watch stopped")

// run delivers events until ctx ends, the consumer stops, or a failure that
// waiting cannot cure.
func (w *pgWatch) run(ctx context.Context, yield func(Event, error) bool) error {
	for {
		page, err := retryRead(ctx, w, func() (gen.ChangesReadRow, error) {
			return query(ctx, w.p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.ChangesReadRow, error) {
				return w.p.q.ChangesRead(ctx, db, gen.ChangesReadParams{
					WithValues: w.o.values,
					Lower:      w.lower,
					Upper:      w.upper,
					After:      w.cursor,
					PageSize:   watchPageSize,
				})
			})
		})
		if err != nil {
			return err
		}
		if !page.Enabled {
			return ErrChangeFeedOff
		}
		if w.cursor < page.CompactedRevision {
			return &CompactedError{Requested: w.cursor + 1, Compacted: page.CompactedRevision}
		}
		hole, err := w.deliver(page, yield)
		if err != nil {
			return err
		}
		wait := w.o.poll
		switch {
		case hole > 0:
			wait, err = w.resolve(ctx, hole)
			if err != nil {
				return err
			}
		case len(page.Revisions) == watchPageSize:
			wait = 0
		}
		if wait > 0 {
			if !sleepCtx(ctx, wait) {
				return nil
			}
		} else if ctx.Err() != nil {
			return nil
		}
	}
}

// deliver yields the unbroken run of changes after the cursor and returns
// the revision that follows the first hole, 0 if there is none.
func (w *pgWatch) deliver(page gen.ChangesReadRow, yield func(Event, error) bool) (int64, error) {
	for i, rev := range page.Revisions {
		if rev != w.cursor+1 {
			return rev, nil
		}
		w.cursor = rev
		w.holeAt = 0
		kind := page.Kinds[i]
		if kind == changeGap || page.Keys[i] == nil {
			continue
		}
		ev := Event{
			Kind:     EventKind(kind),
			Key:      page.Keys[i],
			Revision: rev,
			Version:  page.Versions[i],
			Time:     page.ChangedAt[i],
		}
		if w.o.values && kind == changePut {
			ev.Value = nonNil(page.Vals[i])
		}
		if !yield(ev, nil) {
			return 0, errStopped
		}
	}
	return 0, nil
}

// resolve deals with a hole from the cursor up to next: it waits for the
// hole to close by itself for watchGapGrace, then fills it. It returns how
// long to wait before the next read.
func (w *pgWatch) resolve(ctx context.Context, next int64) (time.Duration, error) {
	first := w.cursor + 1
	if w.holeAt != first {
		w.holeAt, w.holeSince = first, time.Now()
	}
	if left := watchGapGrace - time.Since(w.holeSince); left > 0 {
		// The writer holding the revision usually commits within
		// milliseconds: look again soon.
		return min(w.o.poll, left), nil
	}
	fillCtx, cancel := context.WithTimeout(ctx, watchGapWait)
	defer cancel()
	_, err := query(fillCtx, w.p, idempotent, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return w.p.q.ChangesFillGaps(ctx, db, gen.ChangesFillGapsParams{First: first, Last: next - 1})
	})
	switch {
	case err == nil, ctx.Err() != nil:
		return 0, nil
	case errors.Is(err, context.DeadlineExceeded):
		// Still held by an open transaction: read again and wait again.
		return 0, nil
	case w.transient(err):
		return w.backoff(), nil
	}
	return 0, err
}

// retryRead runs read until it succeeds, ctx ends, or it fails in a way that
// waiting cannot cure: the database being unreachable, the connection
// killed or the server restarting only delay a watch.
func retryRead[T any](ctx context.Context, w *pgWatch, read func() (T, error)) (T, error) {
	for {
		v, err := read()
		if err == nil {
			w.failures = 0
			return v, nil
		}
		if ctx.Err() != nil || !w.transient(err) {
			return v, err
		}
		if !sleepCtx(ctx, w.backoff()) {
			return v, ctx.Err()
		}
	}
}

// transient reports a failed read that the watch waits out: besides what
// every idempotent statement retries, a statement cancelled although the
// watch's own context has not ended (by the server's statement_timeout, or a
// cancel request meant for someone else's statement): the watch resumes by
// itself from its cursor. The callers return first when ctx has ended.
func (w *pgWatch) transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "57014" { // query_canceled
		return true
	}
	return lostConnection(err) || transient(err, idempotent) || errors.Is(err, ErrUnavailable)
}

// backoff returns the next delay after a failure: doubling from
// RetryBackoff (or the poll interval) up to watchMaxBackoff.
func (w *pgWatch) backoff() time.Duration {
	base := max(w.p.cfg.RetryBackoff, w.o.poll)
	d := base << min(w.failures, 16)
	w.failures++
	return min(d, watchMaxBackoff)
}

// CompactChanges implements Watcher.
func (p *Postgres) CompactChanges(ctx context.Context, revision int64) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "compact changes", err)
	}
	var total int64
	for prev := int64(-1); ; {
		r, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.ChangesCompactToRow, error) {
			return p.q.ChangesCompactTo(ctx, db, gen.ChangesCompactToParams{Revision: revision, BatchSize: compactBatch})
		})
		if err != nil {
			return total, p.fail(ctx, "compact changes", err)
		}
		total += r.Deleted
		// Done at the target, or where the log ends (the marker stops
		// moving).
		if r.Compacted >= revision || r.Compacted == prev {
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
	for {
		r, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.ChangesCompactBeforeRow, error) {
			return p.q.ChangesCompactBefore(ctx, db, gen.ChangesCompactBeforeParams{RetentionMicros: micros, BatchSize: compactBatch})
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
