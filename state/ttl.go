package state

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/gen"
)

// TTL semantics, the same on every write path and backend: an entry written
// with a positive TTL expires exactly that long after the write, rounded up
// to a whole microsecond (PostgreSQL's resolution). Every time.Duration fits:
// the longest, math.MaxInt64 nanoseconds, is about 292 years, far inside the
// range of both time.Time and timestamptz, so no TTL is clamped, none wraps
// into the past and none becomes "never".

// ttlMicros converts a TTL for the database, rounding up so that a positive
// TTL never becomes zero. It cannot overflow: the result is at most
// math.MaxInt64/1000 + 1.
func ttlMicros(ttl time.Duration) (int64, error) {
	if ttl <= 0 {
		return 0, fmt.Errorf("%w: %v, want a positive duration", ErrInvalidTTL, ttl)
	}
	micros := int64(ttl / time.Microsecond)
	if ttl%time.Microsecond != 0 {
		micros++
	}
	return micros, nil
}

// expiryAfter returns when an entry written at now with a positive ttl
// expires.
func expiryAfter(now time.Time, ttl time.Duration) time.Time {
	micros, _ := ttlMicros(ttl)
	return addMicros(now, micros)
}

// addMicros adds whole seconds and the remaining microseconds separately,
// as the SQL does, because a rounded-up TTL may not fit a time.Duration.
func addMicros(t time.Time, micros int64) time.Time {
	return t.Add(time.Duration(micros/1e6) * time.Second).Add(time.Duration(micros%1e6) * time.Microsecond)
}

// PutWithTTL implements Store. The expiry is now() + ttl on the database
// server, so clients with skewed clocks agree on it; ttl is rounded up to a
// whole microsecond, and every positive time.Duration, math.MaxInt64
// included, is honoured exactly.
func (p *Postgres) PutWithTTL(ctx context.Context, key, value []byte, ttl time.Duration) error {
	micros, err := ttlMicros(ttl)
	if err != nil {
		return p.fail(ctx, "put with ttl", err)
	}
	return p.put(ctx, "put with ttl", gen.EntryPutParams{Key: key, Value: nonNil(value), TtlMicros: &micros})
}

// CleanupExpired implements Store. It deletes in batches of
// Config.CleanupBatchSize rows, each its own statement and transaction, so
// no single huge DELETE holds locks or undo; concurrent calls are safe.
func (p *Postgres) CleanupExpired(ctx context.Context) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "cleanup expired", err)
	}
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	n, err := p.cleanupOn(ctx, p.sessionless(p.pool))
	if err != nil {
		return n, p.fail(ctx, "cleanup expired", err)
	}
	return n, nil
}

func (p *Postgres) cleanupOn(ctx context.Context, db gen.DBTX) (int64, error) {
	batch := int32(p.cfg.CleanupBatchSize)
	var total int64
	for {
		var n int64
		var err error
		for attempt := 0; ; attempt++ {
			p.stats.queries.Add(1)
			n, err = p.q.EntriesDeleteExpiredBatch(ctx, db, batch)
			if !p.shouldRetry(ctx, idempotent, err, attempt) {
				break
			}
		}
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// startCleaner runs cleanup rounds (and the change log's compaction) in
// the background until stopped.
func startCleaner(p *Postgres, interval time.Duration) *periodic {
	return startPeriodic(interval, func(ctx context.Context) {
		p.cleanupRound(ctx)
		p.compactChangesRound(ctx)
	})
}

// cleanupRound cleans if this process wins the store's cleanup lock. Each
// batch is one transaction that first tries the transaction-level lock and
// deletes only if it got it, so the lock is held exactly as long as one
// batch's transaction: a cancelled or failed batch rolls back and releases
// it with the transaction, and a connection whose transaction could not be
// ended is closed rather than returned to the pool. Between batches the lock
// is free; when another process takes it there, this round stops and that
// process goes on.
func (p *Postgres) cleanupRound(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.QueryTimeout)
	defer cancel()
	batch := int32(p.cfg.CleanupBatchSize)
	for first := true; ; first = false {
		var acquired bool
		var n int64
		err := p.inTx(ctx, idempotent, func(tx pgx.Tx) error {
			p.stats.queries.Add(1)
			var err error
			if acquired, err = p.q.CleanupLockTryXact(ctx, tx); err != nil || !acquired {
				return err
			}
			if first {
				// Counted while the lock is held: whoever takes it after
				// this batch commits sees the round counted.
				p.stats.cleanupRuns.Add(1)
			}
			p.stats.queries.Add(1)
			n, err = p.q.EntriesDeleteExpiredBatch(ctx, tx, batch)
			return err
		})
		if err != nil {
			p.stats.errors.Add(1)
			return
		}
		if !acquired {
			if first {
				p.stats.cleanupSkips.Add(1)
			}
			return
		}
		p.stats.cleanedUp.Add(n)
		if n < int64(batch) {
			return
		}
	}
}
