package state

import (
	"context"
	"fmt"
	"time"

	"github.com/pgstate/pgstate/gen"
)

// query runs one generated statement the way every single-statement
// operation does: bounded by QueryTimeout (see opContext and acquire),
// counted, and retried as mode allows. When the bound ends the operation,
// the error matches context.DeadlineExceeded. run is only called, never
// kept, so the closure a caller passes stays on its stack.
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
	var out T
	var err error
	for attempt := 0; ; attempt++ {
		p.stats.queries.Add(1)
		var db gen.DBTX
		var l lease
		if db, l, err = p.acquire(ctx, start); err == nil {
			out, err = run(ctx, db)
			err = l.release(err)
		}
		if !p.shouldRetry(ctx, mode, err, attempt) {
			break
		}
	}
	if err != nil && ctx.Err() != nil {
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
