package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/gen"
)

// A watchdog enforces QueryTimeout on one pooled connection. Giving every
// call its own context.WithTimeout costs a timer, a context and, inside pgx,
// a goroutine-free but allocating context watch per statement: eleven
// allocations and about 1.4 kB for a single-key Get, more than the query
// itself. A connection runs one statement at a time, so one timer per
// connection, re-armed for each statement, bounds it just as well and
// allocates nothing.
type watchdog struct {
	conn  *pgconn.PgConn
	timer *time.Timer
}

func newWatchdog(conn *pgconn.PgConn) *watchdog {
	w := &watchdog{conn: conn}
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	return w
}

// fire runs when a statement outlives its time: it asks the server to cancel
// it, as pgx does when a context ends, and makes the connection's reads fail
// soon after in case the server cannot be reached at all.
func (w *watchdog) fire() {
	_ = w.conn.Conn().SetDeadline(time.Now().Add(cancelGrace))
	ctx, cancel := context.WithTimeout(context.Background(), cancelGrace)
	defer cancel()
	_ = w.conn.CancelRequest(ctx)
}

func (p *Postgres) attachWatchdog(_ context.Context, conn *pgx.Conn) error {
	p.watchdogs.Store(conn, newWatchdog(conn.PgConn()))
	return nil
}

func (p *Postgres) detachWatchdog(conn *pgx.Conn) {
	if w, ok := p.watchdogs.LoadAndDelete(conn); ok {
		w.(*watchdog).timer.Stop()
	}
}

// opContext prepares ctx for a single-statement operation run through
// acquire: a context that can end keeps pgx's own cancellation, bounded by
// QueryTimeout; one that never ends (context.Background and its values) is
// left alone: acquire bounds the wait for a connection and the connection's
// watchdog bounds the statement instead. A pool the store did not build
// (OpenPool) has no watchdogs: there every operation gets a deadline.
func (p *Postgres) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx.Done() == nil && !p.borrowed {
		return ctx, noCancel
	}
	return p.withTimeout(ctx)
}

// lease is the connection one attempt runs on.
type lease struct {
	conn *pgxpool.Conn
	dog  *watchdog
}

// acquire returns what one attempt of an operation that must end by
// deadline runs on: a pooled connection, bounded by ctx when ctx can end
// (pgx cancels on it), otherwise with its watchdog armed for the time left.
// Getting that connection is bounded by deadline too: the pool may have to
// wait for a busy connection to be released, dial a new one, or ping an idle
// one (pgxpool does after a second of idleness, and its ping has no deadline
// of its own), and on a silent network any of these could wait forever.
func (p *Postgres) acquire(ctx context.Context, deadline time.Time) (gen.DBTX, lease, error) {
	if ctx.Done() != nil {
		// Taken here rather than by the pool inside the statement, so that
		// failing to get a connection in time (say, dialing a new one) is
		// not mistaken for a statement sent and unanswered.
		c, err := p.pool.Acquire(ctx)
		if err != nil {
			return nil, lease{}, err
		}
		return c, lease{conn: c}, nil
	}
	if time.Until(deadline) <= 0 {
		return nil, lease{}, p.spent()
	}
	actx, cancel := p.acquireContext(ctx, deadline)
	c, err := p.pool.Acquire(actx)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, lease{}, fmt.Errorf("%w: waiting for a connection", p.spent())
		}
		return nil, lease{}, err
	}
	w, ok := p.watchdogs.Load(c.Conn())
	if !ok {
		// Every connection gets a watchdog when it is opened; without one
		// the statement could not be bounded, so do not run it.
		c.Release()
		return nil, lease{}, fmt.Errorf("%w: connection has no watchdog", ErrUnavailable)
	}
	left := time.Until(deadline)
	if left <= 0 {
		c.Release()
		return nil, lease{}, p.spent()
	}
	dog := w.(*watchdog)
	dog.timer.Reset(left)
	return c, lease{conn: c, dog: dog}, nil
}

// A sharedDeadline is a context that ends at deadline, shared by the
// acquires of every operation whose own deadline is at most
// acquireDeadlineSlack later.
type sharedDeadline struct {
	ctx      context.Context
	cancel   context.CancelFunc // never called: the context ends at deadline by itself
	deadline time.Time
}

// acquireDeadlineSlack is how much earlier than its own deadline an
// operation may give up waiting for a connection, as a fraction of
// QueryTimeout. It bounds how many shared deadlines are alive at once.
const acquireDeadlineSlack = 64

// acquireContext returns a context for waiting for a pooled connection that
// ends no later than deadline. A context of its own per call would cost five
// allocations and 380 bytes on the path the watchdog keeps free of them; so
// operations on context.Background() share one that ends at most
// QueryTimeout/64 before their own deadline, and a new one is made only when
// the current one ends too early. A context carrying values (which pgx's
// tracers and hooks may read) gets one of its own.
func (p *Postgres) acquireContext(ctx context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if ctx != context.Background() {
		return context.WithDeadline(ctx, deadline)
	}
	if d := p.acquireBy.Load(); d != nil && !d.deadline.After(deadline) &&
		deadline.Sub(d.deadline) <= p.cfg.QueryTimeout/acquireDeadlineSlack {
		return d.ctx, noCancel
	}
	c, cancel := context.WithDeadline(context.Background(), deadline)
	p.acquireBy.Store(&sharedDeadline{ctx: c, cancel: cancel, deadline: deadline})
	return c, noCancel
}

// spent is the error of an operation whose QueryTimeout is used up.
func (p *Postgres) spent() error {
	return fmt.Errorf("%w: QueryTimeout (%v) spent", context.DeadlineExceeded, p.cfg.QueryTimeout)
}

// release ends an attempt begun by acquire and returns its error, marked as
// a deadline if the watchdog fired.
func (l lease) release(err error) error {
	if l.conn == nil {
		return err
	}
	if l.dog != nil && !l.dog.timer.Stop() {
		// The watchdog fired: its cancel request may still reach this
		// session, so the connection must not serve another statement.
		_ = l.conn.Conn().Close(context.Background())
		if err != nil {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
	}
	l.conn.Release()
	return err
}
