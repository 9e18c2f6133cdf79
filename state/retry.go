package state

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// maxRetryDelay caps the exponential backoff.
const maxRetryDelay = 5 * time.Second

// retryMode says how safe an operation is to run twice.
type retryMode int

const (
	// idempotent operations can be repeated after an unknown outcome (a
	// connection lost after the statement was sent) without anyone being
	// able to tell: reads, and maintenance such as cleanup and VACUUM.
	idempotent retryMode = iota
	// onceOnly operations are the writes. They are retried only when the
	// failed attempt certainly changed nothing: it was never sent, the
	// server rolled it back (serialization failure, deadlock) or said that
	// it ended the session (57P01-57P03, class 08, which abort the
	// statement). A write whose reply was lost is not repeated, even an
	// "idempotent" Put: the first attempt may have committed and been seen
	// by others, and a second one would apply the write again after writes
	// made in between, which no order of the calls explains. The caller
	// gets ErrOutcomeUnknown instead.
	onceOnly
)

// shouldRetry is shouldRetryBefore for an operation bounded by ctx's
// deadline (every caller gives it one with withTimeout).
func (p *Postgres) shouldRetry(ctx context.Context, mode retryMode, err error, attempt int) bool {
	deadline, _ := ctx.Deadline()
	return p.shouldRetryBefore(ctx, deadline, mode, err, attempt)
}

// shouldRetryBefore reports whether attempt (0-based) of an operation that
// must end by deadline (zero: no bound) failed with err in a way that
// warrants another attempt, and if so sleeps the backoff first. It never
// retries once ctx is done, nor when the backoff would outlast the deadline:
// the operation then fails at once with its real error rather than sleeping
// into a timeout.
func (p *Postgres) shouldRetryBefore(ctx context.Context, deadline time.Time, mode retryMode, err error, attempt int) bool {
	if err == nil {
		return false
	}
	if lostConnection(err) {
		p.resetPool()
	}
	if attempt >= p.cfg.MaxRetries || ctx.Err() != nil || !transient(err, mode) {
		return false
	}
	delay := p.cfg.RetryBackoff << attempt
	if delay > maxRetryDelay || delay <= 0 {
		delay = maxRetryDelay
	}
	// Full jitter: spreads the retries of many clients hit by one outage.
	delay = time.Duration(rand.Int64N(int64(delay)) + 1)
	if !deadline.IsZero() && delay >= time.Until(deadline) {
		return false
	}
	if !sleepCtx(ctx, delay) {
		return false
	}
	p.stats.retries.Add(1)
	return true
}

// sleepCtx sleeps d and reports whether ctx is still live afterwards.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// outcomeUnknown reports whether a failed statement that is not safe to
// repeat may nevertheless have committed: no reply from the server says it
// failed (a single statement the server answers with an error is rolled
// back). It does not trust pgconn.SafeToRetry: after a reply is lost pgx
// can report a closed connection, which claims that nothing was sent.
func outcomeUnknown(err error) bool {
	if err == nil {
		// Before the errors.As below, whose target escapes: the common
		// case allocates nothing.
		return false
	}
	var pgErr *pgconn.PgError
	return !errors.As(err, &pgErr)
}

// rolledBack reports a serialization failure or deadlock: the server rolled
// the whole transaction back, so running it again is safe.
func rolledBack(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// poolResetInterval limits how often a lost connection empties the pool.
const poolResetInterval = 100 * time.Millisecond

// resetPool closes every pooled connection (those in use when they are
// released). A server that terminated one of our sessions has usually
// terminated all of them (a restart, a failover, an operator's
// pg_terminate_backend), and the pool only notices a dead idle connection
// when it is next used: without the reset each retry could draw another dead
// one and a healthy server would look down.
func (p *Postgres) resetPool() {
	now := time.Now().UnixNano()
	last := p.lastReset.Load()
	if now-last < int64(poolResetInterval) || !p.lastReset.CompareAndSwap(last, now) {
		return
	}
	p.stats.poolResets.Add(1)
	p.pool.Reset()
}

// lostConnection reports errors that mean the session is gone: the server
// ended it (57P01..57P03, class 08) or the connection itself broke. A call
// that timed out or was cancelled is not one, even when pgx closed its
// connection to stop it: resetting the pool for it would close healthy
// connections and, under a load of short deadlines, feed itself (reset,
// redial, time out again).
func lostConnection(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return isConnectionClass(pgErr.Code)
	}
	return isConnectionError(err) && !isCertificateError(err)
}

// abortedTx is a transaction that lost its connection before COMMIT was
// sent: the server rolled it back, so it can run again even if it writes.
type abortedTx struct{ err error }

func (e *abortedTx) Error() string { return e.err.Error() }
func (e *abortedTx) Unwrap() error { return e.err }

// transient reports failures that another attempt may not meet.
func transient(err error, mode retryMode) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrOutcomeUnknown) {
		return false
	}
	var aborted *abortedTx
	if errors.As(err, &aborted) {
		return true
	}
	if rolledBack(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server ended the session and said so: the statement it was
		// running, if any, was aborted with it.
		return isConnectionClass(pgErr.Code)
	}
	if isCertificateError(err) {
		// A certificate that fails verification fails the same way again.
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	return mode == idempotent && isConnectionError(err)
}
