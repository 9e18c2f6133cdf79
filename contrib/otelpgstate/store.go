package otelpgstate

import (
	"context"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgstate/pgstate/state"
)

// Store is a *state.Postgres that reports every operation: a span named
// "pgstate.<operation>" ("pgstate.get", "pgstate.batch_put",
// "pgstate.transact"…) whose context goes down to the store, so the
// statement spans of a Tracer nest under it, and the metrics
// pgstate.operations, pgstate.operation.duration and
// pgstate.operation.errors. Create it with Wrap; it is safe for concurrent
// use, as the store is.
//
// A span carries db.system, db.operation (the operation's name), the query
// names of its statements (pgstate.queries, with the number of statements
// sent, retries included, in pgstate.statements) and, when the operation
// fails, error.type (see ErrorKind) and an error status. Neither spans nor
// metrics ever hold a key, a value, metadata or an error message (messages
// name keys). The query names come from the Tracer: install it as the
// store's (Config.Tracer) for them and for the statement spans.
type Store struct {
	ops
	postgres
	p *state.Postgres
}

// postgres gives Store the methods of *state.Postgres that it does not
// report itself (Pool, Config, Stats, Close…): embedded one level deeper
// than ops, it loses to ops' methods and Store's own wherever both have one.
type postgres struct{ *state.Postgres }

var (
	_ state.Store   = (*Store)(nil)
	_ state.Watcher = (*Store)(nil)
)

// Wrap returns store reporting to the configured providers. The store stays
// usable on its own; what is called on it directly is not reported.
func Wrap(store *state.Postgres, opts ...Option) (*Store, error) {
	in, err := newInstruments(build(opts), "operation",
		"store operations, by db.operation",
		"store operation latency, by db.operation (and error.type when it failed)",
		"failed store operations, by db.operation and error.type")
	if err != nil {
		return nil, err
	}
	return &Store{ops: ops{o: store, in: in}, postgres: postgres{store}, p: store}, nil
}

// Postgres returns the wrapped store.
func (s *Store) Postgres() *state.Postgres { return s.p }

// Tx is the transaction handle Store.Transact passes to its function: the
// store's handle, with a span for each operation, nested under the
// transaction's.
type Tx struct {
	ops
	handle
}

// handle gives Tx, as postgres gives Store, what ops does not report.
type handle struct{ state.Ops }

var _ state.Ops = (*Tx)(nil)

// Tx returns the underlying transaction (state.PgxTx finds it too), for the
// application's own queries; their statement spans nest under the
// transaction's span and their query names join its pgstate.queries.
func (t *Tx) Tx() pgx.Tx {
	tx, _ := state.PgxTx(t.o)
	return tx
}

// latencyBuckets are the histograms' bounds in seconds: from a cached read
// on a local server to a QueryTimeout. The SDK's default bounds (0 to
// 10000) suit milliseconds and would put every operation in one bucket.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

type instruments struct {
	tracer   trace.Tracer
	count    metric.Int64Counter
	duration metric.Float64Histogram
	errs     metric.Int64Counter
}

// newInstruments creates the spans' tracer and the metrics of one kind of
// call: pgstate.<kind>s, pgstate.<kind>.duration and pgstate.<kind>.errors
// ("operation" for Store's, "statement" for Tracer's), with their
// descriptions.
func newInstruments(o options, kind, countDesc, durationDesc, errsDesc string) (*instruments, error) {
	m := o.mp.Meter(scope)
	in := &instruments{tracer: o.tp.Tracer(scope)}
	var err error
	if in.count, err = m.Int64Counter("pgstate."+kind+"s", metric.WithDescription(countDesc)); err != nil {
		return nil, err
	}
	if in.duration, err = m.Float64Histogram("pgstate."+kind+".duration", metric.WithUnit("s"),
		metric.WithDescription(durationDesc),
		metric.WithExplicitBucketBoundaries(latencyBuckets...)); err != nil {
		return nil, err
	}
	if in.errs, err = m.Int64Counter("pgstate."+kind+".errors", metric.WithDescription(errsDesc)); err != nil {
		return nil, err
	}
	return in, nil
}

// maxQueryNames bounds pgstate.queries: a long watch or transaction sends
// many statements, but few distinct ones.
const maxQueryNames = 32

// recorder collects the query names of one operation's statements. The
// Tracer finds it in the statement's context; it passes each name on to the
// enclosing operation's (an operation in a transaction to the transaction's).
type recorder struct {
	parent *recorder
	mu     sync.Mutex
	names  []string
	count  int
}

type recorderKey struct{}

// record adds a statement's query name to the operation of ctx, if any.
func record(ctx context.Context, name string) {
	r, _ := ctx.Value(recorderKey{}).(*recorder)
	for ; r != nil; r = r.parent {
		r.mu.Lock()
		r.count++
		if len(r.names) < maxQueryNames && !slices.Contains(r.names, name) {
			r.names = append(r.names, name)
		}
		r.mu.Unlock()
	}
}

// operation is one reported call.
type operation struct {
	in    *instruments
	ctx   context.Context
	name  string
	span  trace.Span
	rec   *recorder
	start time.Time
}

func (in *instruments) start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, *operation) {
	parent, _ := ctx.Value(recorderKey{}).(*recorder)
	rec := &recorder{parent: parent}
	attrs = append(attrs, attribute.String("db.system", "postgresql"), attribute.String("db.operation", name))
	ctx, span := in.tracer.Start(ctx, "pgstate."+name, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	ctx = context.WithValue(ctx, recorderKey{}, rec)
	return ctx, &operation{in: in, ctx: ctx, name: name, span: span, rec: rec, start: time.Now()}
}

// end reports the operation's outcome. attrs are added to the span only:
// the metrics keep to a bounded set of attributes.
func (o *operation) end(err error, attrs ...attribute.KeyValue) {
	elapsed := time.Since(o.start).Seconds()
	o.rec.mu.Lock()
	names, count := slices.Clone(o.rec.names), o.rec.count
	o.rec.mu.Unlock()
	if names == nil {
		names = []string{}
	}
	o.span.SetAttributes(append(attrs, attribute.StringSlice("pgstate.queries", names), attribute.Int("pgstate.statements", count))...)
	op := attribute.String("db.operation", o.name)
	o.in.count.Add(o.ctx, 1, metric.WithAttributes(op))
	if err != nil {
		kind := attribute.String("error.type", ErrorKind(err))
		o.span.SetAttributes(kind)
		// The status says which sentinel, not the message: messages name keys.
		o.span.SetStatus(codes.Error, kind.Value.AsString())
		o.in.errs.Add(o.ctx, 1, metric.WithAttributes(op, kind))
		o.in.duration.Record(o.ctx, elapsed, metric.WithAttributes(op, kind))
	} else {
		o.in.duration.Record(o.ctx, elapsed, metric.WithAttributes(op))
	}
	o.span.End()
}

func returned(n int) attribute.KeyValue { return attribute.Int("db.response.returned_rows", n) }

func batchSize(n int) attribute.KeyValue { return attribute.Int("db.operation.batch.size", n) }

// Transact runs fn in a transaction (see state.Postgres.Transact) under a
// "pgstate.transact" span that counts its attempts (pgstate.attempts); fn
// gets a *Tx, whose operations are reported under that span.
func (s *Store) Transact(ctx context.Context, fn state.TxFunc) (err error) {
	ctx, op := s.in.start(ctx, "transact")
	attempts := 0
	defer func() { op.end(err, attribute.Int("pgstate.attempts", attempts)) }()
	return s.p.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
		attempts++
		return fn(ctx, &Tx{ops: ops{o: tx, in: s.in}, handle: handle{tx}})
	})
}

// Clear implements state.Backend.
func (s *Store) Clear(ctx context.Context) (err error) {
	ctx, op := s.in.start(ctx, "clear")
	defer func() { op.end(err) }()
	return s.p.Clear(ctx)
}

// CleanupExpired implements state.Store.
func (s *Store) CleanupExpired(ctx context.Context) (n int64, err error) {
	ctx, op := s.in.start(ctx, "cleanup_expired")
	defer func() { op.end(err) }()
	return s.p.CleanupExpired(ctx)
}

// CountEstimate is state.Postgres.CountEstimate.
func (s *Store) CountEstimate(ctx context.Context) (n int64, err error) {
	ctx, op := s.in.start(ctx, "count_estimate")
	defer func() { op.end(err) }()
	return s.p.CountEstimate(ctx)
}

// CreateCheckpoint implements state.Store.
func (s *Store) CreateCheckpoint(ctx context.Context) (id uuid.UUID, err error) {
	ctx, op := s.in.start(ctx, "create_checkpoint")
	defer func() { op.end(err) }()
	return s.p.CreateCheckpoint(ctx)
}

// CreateCheckpointWithMetadata is state.Postgres.CreateCheckpointWithMetadata.
func (s *Store) CreateCheckpointWithMetadata(ctx context.Context, metadata any) (id uuid.UUID, err error) {
	ctx, op := s.in.start(ctx, "create_checkpoint")
	defer func() { op.end(err) }()
	return s.p.CreateCheckpointWithMetadata(ctx, metadata)
}

// RestoreCheckpoint implements state.Store.
func (s *Store) RestoreCheckpoint(ctx context.Context, id uuid.UUID) (err error) {
	ctx, op := s.in.start(ctx, "restore_checkpoint")
	defer func() { op.end(err) }()
	return s.p.RestoreCheckpoint(ctx, id)
}

// ListCheckpoints implements state.Store.
func (s *Store) ListCheckpoints(ctx context.Context) (cps []state.CheckpointInfo, err error) {
	ctx, op := s.in.start(ctx, "list_checkpoints")
	defer func() { op.end(err, returned(len(cps))) }()
	return s.p.ListCheckpoints(ctx)
}

// DeleteCheckpoint implements state.Store.
func (s *Store) DeleteCheckpoint(ctx context.Context, id uuid.UUID) (err error) {
	ctx, op := s.in.start(ctx, "delete_checkpoint")
	defer func() { op.end(err) }()
	return s.p.DeleteCheckpoint(ctx, id)
}

// Revision implements state.Watcher.
func (s *Store) Revision(ctx context.Context) (rev int64, err error) {
	ctx, op := s.in.start(ctx, "revision")
	defer func() { op.end(err) }()
	return s.p.Revision(ctx)
}

// Watch implements state.Watcher. Its "pgstate.watch" span starts when the
// iteration does and ends with it, holding the number of events delivered
// (pgstate.events); the statements that poll the change log nest under it.
// A watch that stops because ctx ended is not a failure.
func (s *Store) Watch(ctx context.Context, prefix []byte, opts ...state.WatchOption) iter.Seq2[state.Event, error] {
	return func(yield func(state.Event, error) bool) {
		ctx, op := s.in.start(ctx, "watch")
		events := 0
		var err error
		defer func() { op.end(err, attribute.Int("pgstate.events", events)) }()
		for ev, evErr := range s.p.Watch(ctx, prefix, opts...) {
			if evErr != nil {
				err = evErr
			} else {
				events++
			}
			if !yield(ev, evErr) {
				return
			}
		}
	}
}

// CompactChanges implements state.Watcher.
func (s *Store) CompactChanges(ctx context.Context, revision int64) (n int64, err error) {
	ctx, op := s.in.start(ctx, "compact_changes")
	defer func() { op.end(err) }()
	return s.p.CompactChanges(ctx, revision)
}

// ChangeFeed is state.Postgres.ChangeFeed.
func (s *Store) ChangeFeed(ctx context.Context) (st state.ChangeFeedStatus, err error) {
	ctx, op := s.in.start(ctx, "change_feed")
	defer func() { op.end(err) }()
	return s.p.ChangeFeed(ctx)
}

// SetChangeFeed is state.Postgres.SetChangeFeed.
func (s *Store) SetChangeFeed(ctx context.Context, enabled bool) (err error) {
	ctx, op := s.in.start(ctx, "set_change_feed")
	defer func() { op.end(err) }()
	return s.p.SetChangeFeed(ctx, enabled)
}

// Read is state.Postgres.Read; the statements fn sends nest under its span.
func (s *Store) Read(ctx context.Context, fn func(ctx context.Context, conn *pgx.Conn) error) (err error) {
	ctx, op := s.in.start(ctx, "read")
	defer func() { op.end(err) }()
	return s.p.Read(ctx, fn)
}

// WALPosition is state.Postgres.WALPosition.
func (s *Store) WALPosition(ctx context.Context) (pos state.WALPosition, err error) {
	ctx, op := s.in.start(ctx, "wal_position")
	defer func() { op.end(err) }()
	return s.p.WALPosition(ctx)
}

// HealthCheck is state.Postgres.HealthCheck.
func (s *Store) HealthCheck(ctx context.Context) (err error) {
	ctx, op := s.in.start(ctx, "health_check")
	defer func() { op.end(err) }()
	return s.p.HealthCheck(ctx)
}

// Vacuum is state.Postgres.Vacuum.
func (s *Store) Vacuum(ctx context.Context) (err error) {
	ctx, op := s.in.start(ctx, "vacuum")
	defer func() { op.end(err) }()
	return s.p.Vacuum(ctx)
}

// TableStats is state.Postgres.TableStats.
func (s *Store) TableStats(ctx context.Context) (ts state.TableStats, err error) {
	ctx, op := s.in.start(ctx, "table_stats")
	defer func() { op.end(err) }()
	return s.p.TableStats(ctx)
}
