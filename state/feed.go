package state

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/gen"
)

// How a Postgres store reads its change log (migrations 007 and 010; the
// design and its measurements are in docs/change-feed.md).
//
// Revisions are drawn from a sequence while the writer holds its rows'
// locks, and commit in another order, so the log has holes: revisions drawn
// by writers still open, and revisions lost to rollbacks and crashes. A
// logReader delivers the unbroken run of changes after its cursor and
// settles a hole without writing anything: every writer holds a shared
// advisory lock from before it draws a revision until it ends, so once the
// transactions that held the lock when the sequence stood at L have ended,
// a revision up to L that is not in the log never will be (settle).
//
// One feedHub per store, process and kind of watch (with values or
// without) reads the log for all of that process's watches, on the feed's
// own small pool (feedConns connections), never on the application's. A
// watch that starts behind the hub, or falls too far behind it, reads the
// log itself until it has caught up, then joins the hub again.

const (
	// watchPageSize is the most changes one read of the log returns.
	watchPageSize = 1000
	// watchPageBytes bounds the values one read returns (at least one
	// change is always returned, whatever its size).
	watchPageBytes = 16 << 20
	// settlePoll is how soon a reader looks again at a hole it is settling.
	settlePoll = 2 * time.Millisecond
	// watchMaxBackoff caps the delay between reads while the database is
	// unreachable.
	watchMaxBackoff = time.Second
	// feedConns is the size of the pool the change feed reads through.
	feedConns = 2
)

// logReader reads the log in revision order from a cursor.
type logReader struct {
	p      *Postgres
	db     gen.DBTX
	values bool

	cursor int64 // every revision up to here is delivered or skipped
	// settled: every revision up to here is in the log or never will be.
	settled int64
	// hole is the first missing revision the last read stopped at, 0 if
	// it stopped at none; seen counts the reads in a row that stopped there.
	hole  int64
	seen  int
	epoch *settleEpoch

	failures int // consecutive failed reads
}

// A settleEpoch waits for the transactions that held the writers' lock
// when the sequence stood at upto.
type settleEpoch struct {
	upto    int64
	holders []string
}

// read reads one page after the cursor and returns the changes in it that
// can be delivered, in revision order, moving the cursor past them and past
// settled holes. more reports a page that was cut (by count or by bytes):
// read again at once.
func (r *logReader) read(ctx context.Context) (events []Event, more bool, err error) {
	rows, err := r.page(ctx)
	if err != nil {
		return nil, false, err
	}
	head := rows[0]
	if !head.Enabled {
		return nil, false, ErrChangeFeedOff
	}
	if r.cursor < head.CompactedRevision {
		return nil, false, &CompactedError{Requested: r.cursor + 1, Compacted: head.CompactedRevision}
	}
	if head.Revision == 0 {
		rows = nil // an empty page
	}
	hole := int64(0)
	for _, row := range rows {
		if row.Revision > r.cursor+1 {
			if r.settled < row.Revision-1 {
				hole = r.cursor + 1
				break
			}
			r.cursor = row.Revision - 1 // lost revisions
		}
		r.cursor = row.Revision
		if row.Kind == changeGap {
			continue
		}
		ev := Event{
			Kind:     EventKind(row.Kind),
			Key:      row.Key,
			Revision: row.Revision,
			Version:  row.Version,
			Time:     row.ChangedAt,
		}
		if row.ExpiresAt != nil {
			ev.ExpiresAt = *row.ExpiresAt
		}
		if row.ModRevision != nil {
			ev.ModRevision = *row.ModRevision
		}
		if r.values && row.Kind == changePut {
			ev.Value = nonNil(row.Value)
		}
		events = append(events, ev)
	}
	more = len(rows) > 0 && (head.Fetched == watchPageSize || head.Fetched > int64(len(rows)))
	if hole == 0 && !more && r.settled > r.cursor {
		r.cursor = r.settled // nothing else up to settled will ever be logged
	}
	if hole != 0 && hole == r.hole {
		r.seen++
	} else {
		r.hole, r.seen = hole, 1 // an epoch under way still settles it
	}
	if hole == 0 {
		r.seen = 0
	}
	return events, more && hole == 0, nil
}

func (r *logReader) page(ctx context.Context) ([]gen.ChangesPageRow, error) {
	ctx, cancel := context.WithTimeout(ctx, r.p.cfg.QueryTimeout)
	defer cancel()
	r.p.stats.queries.Add(1)
	return r.p.q.ChangesPage(ctx, r.db, gen.ChangesPageParams{
		WithValues: r.values,
		After:      r.cursor,
		PageSize:   watchPageSize,
		MaxBytes:   watchPageBytes,
	})
}

// blocked reports a read that stopped at a hole.
func (r *logReader) blocked() bool { return r.hole != 0 }

// settle works on the hole the last read stopped at and reports whether
// the next read may get further. A hole is first looked at once more, since
// the writer holding it usually commits within a millisecond; then the
// reader notes the sequence's position and the writers that may hold
// revisions up to it, and waits for those to end.
func (r *logReader) settle(ctx context.Context) (bool, error) {
	if r.seen < 2 {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.p.cfg.QueryTimeout)
	defer cancel()
	r.p.stats.queries.Add(1)
	if r.epoch == nil {
		h, err := r.p.q.ChangesHorizon(ctx, r.db)
		if err != nil {
			return false, err
		}
		if len(h.Holders) > 0 {
			r.epoch = &settleEpoch{upto: h.LastTaken, holders: h.Holders}
			return false, nil
		}
		r.settled = max(r.settled, h.LastTaken)
		return true, nil
	}
	left, err := r.p.q.ChangesHoldersLeft(ctx, r.db, r.epoch.holders)
	if err != nil || left > 0 {
		return false, err
	}
	r.settled = max(r.settled, r.epoch.upto)
	r.epoch = nil
	return true, nil
}

// settleOrWait settles the hole the last read stopped at, and sleeps a
// little when that is not done yet.
func (r *logReader) settleOrWait(ctx context.Context) error {
	settled, err := r.settle(ctx)
	if err == nil && !settled {
		sleepCtx(ctx, settlePoll)
	}
	return err
}

// waitOut handles a failed read or settle: for a failure the reader waits
// out (transient) it sleeps the backoff and reports true, read again;
// false when ctx has ended or waiting cannot cure the failure.
func (r *logReader) waitOut(ctx context.Context, err error) bool {
	if ctx.Err() != nil || !r.transient(err) {
		return false
	}
	sleepCtx(ctx, r.backoff())
	return true
}

// transient reports a failed read that a reader waits out: besides what
// every idempotent statement retries, a statement cancelled although the
// reader's own context has not ended (by the server's statement_timeout,
// or by a cancel request meant for someone else's statement): the reader
// resumes by itself from its cursor. Callers check their context first.
func (r *logReader) transient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "57014" { // query_canceled
		return true
	}
	return lostConnection(err) || transient(err, idempotent) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, context.DeadlineExceeded)
}

// backoff returns the next delay after a failure: doubling from
// RetryBackoff (at least settlePoll) up to watchMaxBackoff.
func (r *logReader) backoff() time.Duration {
	base := max(r.p.cfg.RetryBackoff, settlePoll)
	d := base << min(r.failures, 16)
	r.failures++
	return min(d, watchMaxBackoff)
}
