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
	// idempotent operations give the same result when repeated after an
	// unknown outcome (a connection lost after the statement was sent):
	// reads, Put, Delete, BatchPut, Clear, RestoreCheckpoint.
	idempotent retryMode = iota
	// onceOnly operations are retried only when the failed attempt certainly
	// changed nothing: it was never sent, or the server rolled it back
	// (serialization failure, deadlock).
	onceOnly
)

// shouldRetry reports whether attempt (0-based) failed with err in a way that
// warrants another attempt, and if so sleeps the backoff first. It never
// retries once ctx is done, and returns false if ctx ends while sleeping.
func (p *Postgres) shouldRetry(ctx context.Context, mode retryMode, err error, attempt int) bool {
	if err == nil || attempt >= p.cfg.MaxRetries || ctx.Err() != nil || !transient(err, mode) {
		return false
	}
	delay := p.cfg.RetryBackoff << attempt
	if delay > maxRetryDelay || delay <= 0 {
		delay = maxRetryDelay
	}
	// Full jitter: spreads the retries of many clients hit by one outage.
	delay = time.Duration(rand.Int64N(int64(delay)) + 1)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	p.stats.retries.Add(1)
	return true
}

// transient reports failures that another attempt may not meet.
func transient(err error, mode retryMode) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01": // serialization failure, deadlock: rolled back
			return true
		}
		return mode == idempotent && isConnectionClass(pgErr.Code)
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	return mode == idempotent && isConnectionError(err)
}
