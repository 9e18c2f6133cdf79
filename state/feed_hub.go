package state

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/gen"
)

const (
	// subQueueEvents and subQueueBytes bound what the hub queues for one
	// watch whose consumer is slower than the log: past either, the watch
	// leaves the hub and reads the log itself until it has caught up.
	subQueueEvents = 4096
	subQueueBytes  = 32 << 20
)

// feedHub reads the log for every watch of one kind (with values or
// without) of one store in this process, and hands each watch the changes
// of its prefix. It runs while it has watches.
type feedHub struct {
	p      *Postgres
	values bool

	mu      sync.Mutex
	subs    map[*feedSub]struct{}
	running bool
	// base is where the hub started reading; every revision in
	// (base, cursor] is settled and has been handed to the watches.
	base, cursor int64
	// poll is the shortest poll interval of the watches, recomputed only
	// after one that had it leaves (stale).
	poll  time.Duration
	stale bool
}

// feedSub is one watch.
type feedSub struct {
	prefix   []byte
	poll     time.Duration
	attached bool // in its hub's subs (only the watch's goroutine reads it)

	mu    sync.Mutex
	queue []Event
	bytes int
	// pos: every change of the watch's prefix up to pos is in queue or
	// has been delivered.
	pos      int64
	err      error
	detached bool          // the hub dropped it: read the log from pos
	wake     chan struct{} // capacity 1: something to take
}

func newFeedSub(prefix []byte, pos int64, poll time.Duration) *feedSub {
	return &feedSub{prefix: prefix, pos: pos, poll: poll, wake: make(chan struct{}, 1)}
}

func (s *feedSub) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push queues the changes of evs after pos that are in the watch's prefix,
// and moves pos to cursor. When the queue would exceed its bounds
// (subQueueEvents, subQueueBytes) it keeps what it has queued, with pos at
// the last of it, and reports false: the watch then reads the rest from the
// log itself. A change larger than the bounds is queued alone.
func (s *feedSub) push(evs []Event, cursor int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.detached || s.err != nil {
		return false
	}
	queued := len(s.queue)
	defer func() {
		if len(s.queue) > queued || s.detached {
			s.signal()
		}
	}()
	for _, ev := range evs {
		if ev.Revision <= s.pos || !bytes.HasPrefix(ev.Key, s.prefix) {
			continue
		}
		size := len(ev.Key) + len(ev.Value)
		if len(s.queue) > 0 && (len(s.queue) >= subQueueEvents || s.bytes+size > subQueueBytes) {
			s.detached = true
			return false
		}
		s.queue = append(s.queue, ev)
		s.bytes += size
		s.pos = ev.Revision
	}
	s.pos = max(s.pos, cursor)
	return true
}

// fail ends the watch with err once it has taken what is queued.
func (s *feedSub) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.signal()
}

// take returns what is queued, the error that ends the watch, and whether
// the hub dropped it.
func (s *feedSub) take() ([]Event, error, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs, detached := s.queue, s.detached
	s.queue, s.bytes, s.detached = nil, 0, false
	return evs, s.err, detached
}

// hub returns the store's hub for watches with or without values.
func (p *Postgres) hub(values bool) *feedHub {
	p.feed.mu.Lock()
	defer p.feed.mu.Unlock()
	i := 0
	if values {
		i = 1
	}
	if p.feed.hubs[i] == nil {
		p.feed.hubs[i] = &feedHub{p: p, values: values, subs: map[*feedSub]struct{}{}}
	}
	return p.feed.hubs[i]
}

// feedState is what a store keeps for its change feed readers.
type feedState struct {
	mu     sync.Mutex
	hubs   [2]*feedHub
	pool   *pgxpool.Pool // the readers' own connections, opened on first use
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // running hubs
	closed bool
}

// feedDB returns what the change feed reads through: a pool of its own,
// feedConns connections at most, made like the store's, so that watches
// never hold the application's connections.
func (p *Postgres) feedDB() (gen.DBTX, context.Context, error) {
	p.feed.mu.Lock()
	defer p.feed.mu.Unlock()
	if p.feed.closed {
		return nil, nil, ErrClosed
	}
	if p.feed.pool == nil {
		pc := p.pool.Config()
		pc.MinConns = 0
		pc.MaxConns = feedConns
		pool, err := pgxpool.NewWithConfig(context.Background(), pc)
		if err != nil {
			return nil, nil, fmt.Errorf("change feed pool: %w", err)
		}
		p.feed.pool = pool
		p.feed.ctx, p.feed.cancel = context.WithCancel(context.Background())
	}
	return p.sessionless(p.feed.pool), p.feed.ctx, nil
}

// closeFeed stops the hubs (their watches end with ErrClosed) and closes
// the feed's pool.
func (p *Postgres) closeFeed() {
	p.feed.mu.Lock()
	p.feed.closed = true
	pool, cancel := p.feed.pool, p.feed.cancel
	p.feed.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	p.feed.wg.Wait()
	pool.Close()
}

// join adds s to the hub if s has caught up with it (or starts the hub at
// s's position when it is not running) and reports whether it did; if not,
// it returns the hub's cursor, and whether everything up to it is known to
// be settled from s's position on.
func (h *feedHub) join(s *feedSub, db gen.DBTX, ctx context.Context) (joined bool, cursor int64, settled bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		h.running, h.base, h.cursor = true, s.pos, s.pos
		h.add(s)
		h.p.feed.wg.Add(1)
		r := &logReader{p: h.p, db: db, values: h.values, cursor: s.pos}
		go h.run(ctx, r)
		return true, 0, false
	}
	if s.pos >= h.cursor {
		h.add(s)
		return true, 0, false
	}
	return false, h.cursor, s.pos >= h.base
}

// add adds s to the hub; callers hold h.mu.
func (h *feedHub) add(s *feedSub) {
	if len(h.subs) == 0 || s.poll < h.poll {
		h.poll = s.poll
	}
	h.subs[s] = struct{}{}
}

// remove takes s out of the hub; callers hold h.mu.
func (h *feedHub) remove(s *feedSub) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		h.stale = h.stale || s.poll == h.poll
	}
}

// leave removes s from the hub.
func (h *feedHub) leave(s *feedSub) {
	h.mu.Lock()
	h.remove(s)
	h.mu.Unlock()
}

// run reads the log and hands its changes to the watches until it has
// none, the store closes, or a failure that waiting cannot cure, which ends
// every watch.
func (h *feedHub) run(ctx context.Context, r *logReader) {
	defer h.p.feed.wg.Done()
	// Closing the store ends the hub between statements, not inside one:
	// a statement cancelled on close would send a cancel request, which
	// some poolers handle badly (pgbouncer 1.18 can crash on them).
	stmtCtx := context.WithoutCancel(ctx)
	for {
		if ctx.Err() != nil {
			h.stop(ErrClosed)
			return
		}
		poll, ok := h.pollOrStop()
		if !ok {
			return
		}
		started := time.Now()
		evs, more, err := r.read(stmtCtx)
		if err == nil {
			r.failures = 0
			h.dispatch(evs, r.cursor)
			if more {
				continue
			}
			if !r.blocked() {
				// One read per poll interval, however long the read
				// and the dispatch took.
				if wait := poll - time.Since(started); wait > 0 {
					sleepCtx(ctx, wait)
				}
				continue
			}
			if err = r.settleOrWait(ctx); err == nil {
				continue
			}
		}
		if r.waitOut(ctx, err) {
			h.p.stats.errors.Add(1)
			continue
		}
		if ctx.Err() != nil {
			err = ErrClosed
		}
		h.stop(err)
		return
	}
}

// pollOrStop returns how long the hub waits when it has caught up (the
// shortest poll interval of its watches), or stops it when it has none.
func (h *feedHub) pollOrStop() (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) == 0 {
		h.running = false
		return 0, false
	}
	if h.stale {
		h.poll, h.stale = 0, false
		for s := range h.subs {
			if h.poll == 0 || s.poll < h.poll {
				h.poll = s.poll
			}
		}
	}
	return h.poll, true
}

// dispatch hands evs to the watches and moves the hub's cursor. A page
// without changes touches no watch: their positions stay behind the cursor
// only by revisions that have no change, which a watch reading the log
// itself would skip anyway.
func (h *feedHub) dispatch(evs []Event, cursor int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cursor = cursor
	if len(evs) == 0 {
		return
	}
	for s := range h.subs {
		if !s.push(evs, cursor) {
			h.remove(s)
		}
	}
}

// stop ends every watch of the hub with err.
func (h *feedHub) stop(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.fail(err)
		h.remove(s)
	}
	h.running = false
}

// run delivers the watch's changes until ctx ends, the consumer stops, or
// the watch fails: from the hub while it keeps up, from the log itself
// while it is behind.
func (s *feedSub) run(ctx context.Context, h *feedHub, yield func(Event, error) bool) error {
	db, feedCtx, err := h.p.feedDB()
	if err != nil {
		return err
	}
	defer h.leave(s)
	for {
		if !s.attached {
			if err := s.catchUp(ctx, h, db, feedCtx, yield); err != nil || ctx.Err() != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		}
		evs, err, detached := s.take()
		for _, ev := range evs {
			if !yield(ev, nil) {
				return errStopped
			}
		}
		if err != nil {
			return err
		}
		if detached {
			s.attached = false
		}
	}
}

// catchUp reads the log from the watch's position, delivering what it
// reads, until the watch has caught up with the hub and joined it.
func (s *feedSub) catchUp(ctx context.Context, h *feedHub, db gen.DBTX, feedCtx context.Context, yield func(Event, error) bool) error {
	r := &logReader{p: h.p, db: db, values: h.values, cursor: s.pos}
	for {
		joined, target, settled := h.join(s, db, feedCtx)
		if joined {
			s.attached = true
			return nil
		}
		if settled {
			r.settled = max(r.settled, target)
		}
		evs, more, err := r.read(ctx)
		if err == nil {
			r.failures = 0
			for _, ev := range evs {
				if bytes.HasPrefix(ev.Key, s.prefix) && !yield(ev, nil) {
					return errStopped
				}
			}
			s.pos = r.cursor
			if more || s.pos >= target {
				continue
			}
			if !r.blocked() {
				// Nothing after the position, yet the hub is further:
				// the revisions in between are missing, so settle them.
				r.hole, r.seen = s.pos+1, 2
			}
			if err = r.settleOrWait(ctx); err == nil {
				continue
			}
		}
		if r.waitOut(ctx, err) {
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}
