// Package otelpgstate reports a pgstate store to OpenTelemetry: a span for
// every store operation (Wrap), a span for every statement the store (or the
// application, on the store's pool or in its transactions) sends, named by
// its sqlc query name and nested under its operation's (NewTracer), and
// metrics of both and of the store's counters and pool (RegisterStats). It
// lives in a module of its own, so an application that does not import it
// has no OpenTelemetry dependency.
//
//	tracer, err := otelpgstate.NewTracer(otelpgstate.WithTracerProvider(tp), otelpgstate.WithMeterProvider(mp))
//	cfg.Tracer = tracer                       // next to cfg.Logger's, if any
//	pg, err := state.Open(ctx, cfg)
//	store, err := otelpgstate.Wrap(pg, otelpgstate.WithTracerProvider(tp), otelpgstate.WithMeterProvider(mp))
//	reg, err := otelpgstate.RegisterStats(pg, otelpgstate.WithMeterProvider(mp))
//	defer reg.Unregister()
//
// Spans and metrics carry operation and query names, db.system,
// db.operation (operations) and db.operation.name (statements), never keys,
// values or any other argument.
package otelpgstate

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgstate/pgstate/state"
)

const scope = "github.com/pgstate/pgstate/contrib/otelpgstate"

// Option configures NewTracer and RegisterStats.
type Option func(*options)

type options struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider sets the provider of spans; default otel's global one.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// WithMeterProvider sets the provider of metrics; default otel's global one.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.mp = mp } }

func build(opts []Option) options {
	o := options{tp: otel.GetTracerProvider(), mp: otel.GetMeterProvider()}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Tracer is a pgx.QueryTracer: give it to state.Config.Tracer (or to the
// pgxpool.Config of state.OpenPoolConfig).
type Tracer struct{ *instruments }

var _ pgx.QueryTracer = (*Tracer)(nil)

// NewTracer returns a tracer reporting to the configured providers.
func NewTracer(opts ...Option) (*Tracer, error) {
	in, err := newInstruments(build(opts), "statement",
		"statements sent, by query name",
		"statement latency, by query name",
		"failed statements, by query name and pgstate error")
	if err != nil {
		return nil, err
	}
	return &Tracer{in}, nil
}

type startKey struct{}

type started struct {
	name string
	at   time.Time
}

// TraceQueryStart implements pgx.QueryTracer. A statement sent by an
// operation of a Store gets its span as parent and its name in the
// operation's pgstate.queries.
func (t *Tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	name := state.QueryName(data.SQL)
	record(ctx, name)
	ctx, _ = t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("db.system", "postgresql"),
		attribute.String("db.operation.name", name),
	))
	return context.WithValue(ctx, startKey{}, started{name: name, at: time.Now()})
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *Tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	s, _ := ctx.Value(startKey{}).(started)
	span := trace.SpanFromContext(ctx)
	attrs := metric.WithAttributes(attribute.String("db.operation.name", s.name))
	t.count.Add(ctx, 1, attrs)
	t.duration.Record(ctx, time.Since(s.at).Seconds(), attrs)
	if data.Err != nil {
		kind := ErrorKind(state.MapError(data.Err))
		t.errs.Add(ctx, 1, metric.WithAttributes(attribute.String("db.operation.name", s.name), attribute.String("error.type", kind)))
		span.SetAttributes(attribute.String("error.type", kind))
		span.SetStatus(codes.Error, kind)
	} else {
		span.SetAttributes(attribute.Int64("db.response.returned_rows", data.CommandTag.RowsAffected()))
	}
	span.End()
}

// sentinels are in the order ErrorKind tries them: an error can match more
// than one (a write to a closed store whose connection broke matches
// ErrClosed and ErrUnavailable), and the first names its cause.
var sentinels = []struct {
	err  error
	name string
}{
	{state.ErrClosed, "closed"},
	{state.ErrVersionMismatch, "version_mismatch"},
	{state.ErrOutcomeUnknown, "outcome_unknown"},
	{state.ErrEmptyKey, "empty_key"},
	{state.ErrKeyTooLarge, "key_too_large"},
	{state.ErrValueTooLarge, "value_too_large"},
	{state.ErrInvalidTTL, "invalid_ttl"},
	{state.ErrInvalidMetadata, "invalid_metadata"},
	{state.ErrInvalidOption, "invalid_option"},
	{state.ErrNotInteger, "not_integer"},
	{state.ErrCheckpointNotFound, "checkpoint_not_found"},
	{state.ErrCheckpointNameTaken, "checkpoint_name_taken"},
	{state.ErrAmbiguousCheckpoint, "ambiguous_checkpoint"},
	{state.ErrCodec, "codec"},
	{state.ErrCompacted, "compacted"},
	{state.ErrChangeFeedOff, "change_feed_off"},
	{state.ErrPermissionDenied, "permission_denied"},
	{state.ErrSchemaOutdated, "schema_outdated"},
	{state.ErrSchemaTooNew, "schema_too_new"},
	{state.ErrInvalidConfig, "invalid_config"},
	{state.ErrUnavailable, "unavailable"},
	{context.DeadlineExceeded, "deadline_exceeded"},
	{context.Canceled, "canceled"},
}

// ErrorKind names the pgstate sentinel err matches ("unavailable",
// "permission_denied"…), "other" for none: a bounded set, fit for a metric
// attribute.
func ErrorKind(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other"
}
