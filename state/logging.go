package state

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// statementLogger is a pgx tracer that logs every statement with its query
// name (the "-- name: X" line every generated query starts with), its
// duration and its outcome. Arguments are never logged: they are user keys
// and values.
type statementLogger struct {
	logger *slog.Logger
	level  slog.Level
}

var _ pgx.QueryTracer = (*statementLogger)(nil)

type traceKey struct{}

type traceStart struct {
	name  string
	start time.Time
}

func (l *statementLogger) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{name: queryName(data.SQL), start: time.Now()})
}

func (l *statementLogger) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	ts, _ := ctx.Value(traceKey{}).(traceStart)
	attrs := []slog.Attr{
		slog.String("query", ts.name),
		slog.Duration("duration", time.Since(ts.start)),
	}
	if data.Err != nil {
		attrs = append(attrs, errorAttrs(data.Err)...)
		l.logger.LogAttrs(ctx, slog.LevelWarn, "pgstate statement failed", attrs...)
		return
	}
	attrs = append(attrs, slog.Int64("rows", data.CommandTag.RowsAffected()))
	l.logger.LogAttrs(ctx, l.level, "pgstate statement", attrs...)
}

// queryName extracts X from a leading "-- name: X :kind" line, or returns the
// statement's first line for SQL that is not generated.
func queryName(sql string) string {
	line := sql
	if i := strings.IndexByte(sql, '\n'); i >= 0 {
		line = sql[:i]
	}
	if rest, ok := strings.CutPrefix(line, "-- name: "); ok {
		if i := strings.IndexByte(rest, ' '); i >= 0 {
			return rest[:i]
		}
		return rest
	}
	return strings.TrimSpace(line)
}

// errorAttrs describes a failed statement without the server's text, whose
// message and detail may quote a key or a value ("value "…" is out of range
// for type bigint"): the SQLSTATE, and the constraint, table and column the
// server names. Errors that are not the server's (a broken connection, a
// deadline) carry no data and are logged as they are.
func errorAttrs(err error) []slog.Attr {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return []slog.Attr{slog.String("error", err.Error())}
	}
	attrs := []slog.Attr{slog.String("sqlstate", pgErr.Code)}
	for _, kv := range [][2]string{{"constraint", pgErr.ConstraintName}, {"table", pgErr.TableName}, {"column", pgErr.ColumnName}} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], kv[1]))
		}
	}
	return attrs
}
