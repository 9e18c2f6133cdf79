package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgstate/pgstate/gen"
)

// query runs one generated statement the way every single-statement
// operation does: bounded by QueryTimeout from start to finish (see
// opContext and acquire; the backoff between retries included), counted,
// and retried as mode allows. When the bound ends the operation, the error
// matches context.DeadlineExceeded. run is only called, never kept, so the
// closure a caller passes stays on its stack.
func query[T any](ctx context.Context, p *Postgres, mode retryMode, run func(context.Context, gen.DBTX) (T, error)) (T, error) {
	if tx := boundTx(ctx); tx != nil {
		// Inside Transact: the transaction's connection, deadline and retry
		// rules apply, and no statement is retried on its own.
		p.stats.queries.Add(1)
		return run(ctx, tx)
	}
	start := time.Now()
	ctx, cancel := p.opContext(ctx)
	defer cancel()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = start.Add(p.cfg.QueryTimeout)
	}
	var out T
	var err, stmtErr error
	for attempt := 0; ; attempt++ {
		p.stats.queries.Add(1)
		var db gen.DBTX
		var l lease
		stmtErr = nil
		if db, l, err = p.acquire(ctx, deadline); err == nil {
			out, err = run(ctx, p.sessionless(db))
			stmtErr = err
			err = l.release(err)
		}
		if !p.shouldRetryBefore(ctx, deadline, mode, err, attempt) {
			break
		}
	}
	if mode == onceOnly && outcomeUnknown(stmtErr) {
		// The write was sent and no answer says it failed.
		err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return out, err
}

// exec is query for statements that return only an error.
func exec(ctx context.Context, p *Postgres, mode retryMode, run func(context.Context, gen.DBTX) error) error {
	_, err := query(ctx, p, mode, func(ctx context.Context, db gen.DBTX) (struct{}, error) {
		return struct{}{}, run(ctx, db)
	})
	return err
}
