package state

import (
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
)

// tracer returns the pgx tracer of a pool whose configuration already has
// existing (nil, or the application's own from OpenPoolConfig): every one of
// existing, the Logger's and Config.Tracer, composed with pgx's multitracer
// when there is more than one, so that each sees every statement.
func (c Config) tracer(existing pgx.QueryTracer) pgx.QueryTracer {
	var tracers []pgx.QueryTracer
	if existing != nil {
		tracers = append(tracers, existing)
	}
	if c.Logger != nil {
		tracers = append(tracers, &statementLogger{logger: c.Logger, level: c.LogLevel})
	}
	if c.Tracer != nil {
		tracers = append(tracers, c.Tracer)
	}
	switch len(tracers) {
	case 0:
		return nil
	case 1:
		return tracers[0]
	}
	return multitracer.New(tracers...)
}

// QueryName returns the name of a statement sqlc generated ("EntryGet" for
// a statement starting "-- name: EntryGet :one"), or its first line for any
// other SQL. A tracer (Config.Tracer) uses it to name statements without
// looking at their arguments, which hold keys and values.
func QueryName(sql string) string { return queryName(sql) }
