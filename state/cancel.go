package state

import (
	"context"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A cancel request is a separate connection to the server, which signals the
// backend some time later: pgx waits 100 ms after sending it, but on a loaded
// machine the signal can arrive later than that, when the connection is
// already back in the pool and running another caller's statement, which
// then fails with "canceling statement due to user request" (57014) although
// nobody cancelled it. So a connection on which a cancel request was sent
// never serves another statement: it is destroyed when it would next be
// acquired. (The watchdog's cancel request closes its connection at once,
// see lease.release.)

// cancelSentKey is the PgConn.CustomData key of a connection's cancelWatcher.
const cancelSentKey = "pgstate.cancelWatcher"

// cancelWatcher is the context watcher of the store's connections: a context
// that ends sends a cancel request (the connection is closed only when the
// server does not answer it within cancelGrace), and marks the connection.
type cancelWatcher struct {
	pgconn.CancelRequestContextWatcherHandler
	sent atomic.Bool
}

func (h *cancelWatcher) HandleCancel(ctx context.Context) {
	h.sent.Store(true)
	h.CancelRequestContextWatcherHandler.HandleCancel(ctx)
}

func cancelRequestWatcher(conn *pgconn.PgConn) ctxwatch.Handler {
	h := &cancelWatcher{CancelRequestContextWatcherHandler: pgconn.CancelRequestContextWatcherHandler{Conn: conn, DeadlineDelay: cancelGrace}}
	conn.CustomData()[cancelSentKey] = h
	return h
}

// cancelSent reports whether a cancel request was ever sent on conn.
func cancelSent(conn *pgconn.PgConn) bool {
	h, ok := conn.CustomData()[cancelSentKey].(*cancelWatcher)
	return ok && h.sent.Load()
}

// guardCancels makes pc's connections send a cancel request when a context
// ends and never be handed out again once they have (pc's own PrepareConn or
// BeforeAcquire still runs for the others).
func guardCancels(pc *pgxpool.Config) {
	pc.ConnConfig.BuildContextWatcherHandler = cancelRequestWatcher
	prepare := pc.PrepareConn
	// An application's pool configured with the deprecated BeforeAcquire
	// keeps it: pgxpool ignores it once PrepareConn is set.
	//lint:ignore SA1019 read only to keep the application's hook working
	if before := pc.BeforeAcquire; prepare == nil && before != nil {
		prepare = func(ctx context.Context, c *pgx.Conn) (bool, error) { return before(ctx, c), nil }
	}
	pc.PrepareConn = func(ctx context.Context, c *pgx.Conn) (bool, error) {
		if cancelSent(c.PgConn()) {
			return false, nil
		}
		if prepare != nil {
			return prepare(ctx, c)
		}
		return true, nil
	}
}
