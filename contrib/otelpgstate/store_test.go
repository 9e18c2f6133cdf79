package otelpgstate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgstate/pgstate/contrib/otelpgstate"
	"github.com/pgstate/pgstate/state"
)

// telemetry is what one test collects.
type telemetry struct {
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	opts   []otelpgstate.Option
}

func newTelemetry() telemetry {
	spans := tracetest.NewInMemoryExporter()
	reader := sdkmetric.NewManualReader()
	return telemetry{spans: spans, reader: reader, opts: []otelpgstate.Option{
		otelpgstate.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))),
		otelpgstate.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))),
	}}
}

// openStore opens a store in a schema of its own (dropped with the test),
// with the Tracer, and forgets the migrations' spans.
func openStore(t *testing.T, tel telemetry) *state.Postgres {
	t.Helper()
	tracer, err := otelpgstate.NewTracer(tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schemaName := "otel_test_" + hex.EncodeToString(b)
	cfg := state.DefaultConfig(databaseURL())
	cfg.Schema, cfg.MinConns, cfg.MaxConns = schemaName, 0, 3
	cfg.Tracer = tracer
	pg, err := state.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pg.Close()
		conn, err := pgx.Connect(context.Background(), databaseURL())
		if err == nil {
			conn.Exec(context.Background(), "DROP SCHEMA "+schemaName+" CASCADE")
			conn.Close(context.Background())
		}
	})
	tel.spans.Reset() // the migrations' statements
	return pg
}

// openWrapped is openStore, wrapped.
func openWrapped(t *testing.T, tel telemetry) *otelpgstate.Store {
	t.Helper()
	store, err := otelpgstate.Wrap(openStore(t, tel), tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

func isOperation(s tracetest.SpanStub) bool {
	return s.SpanKind == trace.SpanKindInternal && strings.HasPrefix(s.Name, "pgstate.")
}

func TestOperationSpans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tel := newTelemetry()
	store := openWrapped(t, tel)

	// Keys and values that must appear nowhere in the telemetry.
	const secretKey, secretValue, secretPrefix = "secret-key-4711", "secret-value-0815", "secret-"
	key := []byte(secretKey)
	if err := store.Put(ctx, key, []byte(secretValue)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	batch := []state.Entry{
		{Key: []byte(secretPrefix + "a"), Value: []byte(secretValue)},
		{Key: []byte(secretPrefix + "b"), Value: []byte(secretValue)},
		{Key: []byte(secretPrefix + "c"), Value: []byte(secretValue)},
	}
	if err := store.BatchPut(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetMany(ctx, [][]byte{key, batch[0].Key}); err != nil {
		t.Fatal(err)
	}
	var scanned int
	for _, err := range store.Scan(ctx, []byte(secretPrefix)) {
		if err != nil {
			t.Fatal(err)
		}
		scanned++
	}
	err := store.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
		if _, _, err := tx.Get(ctx, key); err != nil {
			return err
		}
		if err := tx.Put(ctx, batch[0].Key, []byte(secretValue)); err != nil {
			return err
		}
		// The application's own statement, in the same transaction.
		pgtx, ok := state.PgxTx(tx)
		if !ok {
			return errors.New("PgxTx found no transaction under the wrapped handle")
		}
		_, err := pgtx.Exec(ctx, "SELECT 1")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.PutEntry(ctx, key, []byte(secretValue), state.IfVersion(99))
	if !errors.Is(err, state.ErrVersionMismatch) {
		t.Fatalf("PutEntry(IfVersion(99)) = %v, want ErrVersionMismatch", err)
	}
	rev, err := store.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, batch[1].Key, []byte(secretValue)); err != nil {
		t.Fatal(err)
	}
	for _, err := range store.Watch(ctx, []byte(secretPrefix), state.FromRevision(rev+1), state.WithValues()) {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	store.Close()
	if _, _, err := store.Get(ctx, key); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}

	all := tel.spans.GetSpans()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range all {
		byID[s.SpanContext.SpanID()] = s
	}
	// statementsUnder returns the query names of the statement spans that
	// descend from op, in any depth.
	statementsUnder := func(op tracetest.SpanStub) []string {
		var names []string
		for _, s := range all {
			if s.SpanKind != trace.SpanKindClient {
				continue
			}
			for p := s.Parent; p.IsValid(); p = byID[p.SpanID()].Parent {
				if p.SpanID() == op.SpanContext.SpanID() {
					if !slices.Contains(names, s.Name) {
						names = append(names, s.Name)
					}
					break
				}
				if _, ok := byID[p.SpanID()]; !ok {
					break
				}
			}
		}
		slices.Sort(names)
		return names
	}

	ops := map[string][]tracetest.SpanStub{}
	for _, s := range all {
		for _, a := range s.Attributes {
			if v := a.Value.String(); strings.Contains(v, secretKey) || strings.Contains(v, secretValue) || strings.Contains(v, secretPrefix) {
				t.Errorf("span %s attribute %s holds a key or value: %q", s.Name, a.Key, v)
			}
		}
		if d := s.Status.Description; strings.Contains(d, secretKey) || strings.Contains(d, secretPrefix) {
			t.Errorf("span %s status holds a key: %q", s.Name, d)
		}
		for _, ev := range s.Events {
			for _, a := range ev.Attributes {
				if v := a.Value.String(); strings.Contains(v, secretKey) || strings.Contains(v, secretPrefix) {
					t.Errorf("span %s event %s holds a key: %q", s.Name, ev.Name, v)
				}
			}
		}
		if !isOperation(s) {
			continue
		}
		ops[s.Name] = append(ops[s.Name], s)
		ro := s.Snapshot()
		if v, _ := attr(ro, "db.system"); v.AsString() != "postgresql" {
			t.Errorf("span %s: db.system = %q, want postgresql", s.Name, v.AsString())
		}
		if v, _ := attr(ro, "db.operation"); "pgstate."+v.AsString() != s.Name {
			t.Errorf("span %s: db.operation = %q", s.Name, v.AsString())
		}
		// pgstate.queries lists exactly the statements nested under it.
		v, ok := attr(ro, "pgstate.queries")
		if !ok {
			t.Errorf("span %s has no pgstate.queries", s.Name)
			continue
		}
		queries := slices.Sorted(slices.Values(v.AsStringSlice()))
		if under := statementsUnder(s); !slices.Equal(queries, under) {
			t.Errorf("span %s: pgstate.queries = %v, statement spans under it: %v", s.Name, queries, under)
		}
	}
	for _, name := range []string{"pgstate.put", "pgstate.get", "pgstate.batch_put", "pgstate.get_many",
		"pgstate.scan", "pgstate.transact", "pgstate.put_entry", "pgstate.revision", "pgstate.watch"} {
		if len(ops[name]) == 0 {
			t.Errorf("no span %s; operation spans: %v", name, slices.Collect(maps.Keys(ops)))
		}
	}
	if t.Failed() {
		return
	}

	queriesOf := func(s tracetest.SpanStub) []string {
		v, _ := attr(s.Snapshot(), "pgstate.queries")
		return v.AsStringSlice()
	}
	if q := queriesOf(ops["pgstate.put"][0]); !slices.Equal(q, []string{"EntryPut"}) {
		t.Errorf("pgstate.put queries = %v, want [EntryPut]", q)
	}
	if q := queriesOf(ops["pgstate.get"][0]); !slices.Equal(q, []string{"EntryGet"}) {
		t.Errorf("pgstate.get queries = %v, want [EntryGet]", q)
	}
	if v, _ := attr(ops["pgstate.batch_put"][0].Snapshot(), "db.operation.batch.size"); v.AsInt64() != 3 {
		t.Errorf("pgstate.batch_put batch size = %d, want 3", v.AsInt64())
	}
	if v, _ := attr(ops["pgstate.scan"][0].Snapshot(), "db.response.returned_rows"); v.AsInt64() != int64(scanned) {
		t.Errorf("pgstate.scan returned rows = %d, want %d", v.AsInt64(), scanned)
	}
	if v, _ := attr(ops["pgstate.watch"][0].Snapshot(), "pgstate.events"); v.AsInt64() != 1 {
		t.Errorf("pgstate.watch events = %d, want 1", v.AsInt64())
	}

	// The transaction's operations nest under its span, their statements
	// under theirs; the application's statement and COMMIT under the
	// transaction's.
	transact := ops["pgstate.transact"][0]
	if v, _ := attr(transact.Snapshot(), "pgstate.attempts"); v.AsInt64() != 1 {
		t.Errorf("pgstate.transact attempts = %d, want 1", v.AsInt64())
	}
	var inTx []string
	for _, s := range all {
		if isOperation(s) && s.Parent.SpanID() == transact.SpanContext.SpanID() {
			inTx = append(inTx, s.Name)
		}
	}
	if !slices.Equal(inTx, []string{"pgstate.get", "pgstate.put"}) {
		t.Errorf("operations under pgstate.transact = %v, want [pgstate.get pgstate.put]", inTx)
	}
	if q := queriesOf(transact); !slices.Contains(q, "EntryGet") || !slices.Contains(q, "EntryPut") || !slices.Contains(q, "SELECT 1") {
		t.Errorf("pgstate.transact queries = %v, want EntryGet, EntryPut and SELECT 1 among them", q)
	}
	for _, s := range all {
		if s.SpanKind == trace.SpanKindClient && s.Name == "EntryPut" {
			if p := byID[s.Parent.SpanID()]; p.Name != "pgstate.put" {
				t.Errorf("statement EntryPut's parent is %q, want pgstate.put", p.Name)
			}
		}
	}

	// Errors: the sentinel, not the message (which names the key).
	for _, c := range []struct {
		span, kind string
		statements int64
	}{
		{"pgstate.put_entry", "version_mismatch", 1},
		{"pgstate.get", "closed", 0},
	} {
		s := ops[c.span][len(ops[c.span])-1]
		if s.Status.Code != codes.Error || s.Status.Description != c.kind {
			t.Errorf("span %s status = %v %q, want Error %q", c.span, s.Status.Code, s.Status.Description, c.kind)
		}
		if v, _ := attr(s.Snapshot(), "error.type"); v.AsString() != c.kind {
			t.Errorf("span %s error.type = %q, want %q", c.span, v.AsString(), c.kind)
		}
		if v, _ := attr(s.Snapshot(), "pgstate.statements"); v.AsInt64() != c.statements {
			t.Errorf("span %s sent %d statements, want %d", c.span, v.AsInt64(), c.statements)
		}
	}
	for _, s := range ops["pgstate.put"] {
		if s.Status.Code == codes.Error {
			t.Errorf("span pgstate.put failed: %q", s.Status.Description)
		}
	}

	// Metrics.
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	histograms := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					counts[m.Name+"/"+labels(p.Attributes)] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					histograms[m.Name+"/"+labels(p.Attributes)] = p
				}
			}
		}
	}
	for name, want := range map[string]int64{
		"pgstate.operations/put":                              3, // one in the transaction
		"pgstate.operations/get":                              3, // one in the transaction, one after Close
		"pgstate.operations/batch_put":                        1,
		"pgstate.operations/transact":                         1,
		"pgstate.operations/watch":                            1,
		"pgstate.operation.errors/put_entry/version_mismatch": 1,
		"pgstate.operation.errors/get/closed":                 1,
		"pgstate.operation.errors/put":                        0,
	} {
		if counts[name] != want {
			t.Errorf("metric %s = %d, want %d", name, counts[name], want)
		}
	}
	for name, want := range map[string]uint64{
		"pgstate.operation.duration/put":                        3,
		"pgstate.operation.duration/get":                        2,
		"pgstate.operation.duration/get/closed":                 1,
		"pgstate.operation.duration/put_entry/version_mismatch": 1,
	} {
		p, ok := histograms[name]
		if !ok || p.Count != want {
			t.Errorf("histogram %s has %d points, want %d (all: %v)", name, p.Count, want, slices.Collect(maps.Keys(histograms)))
			continue
		}
		// Bounds fit for seconds: a local statement takes well under one.
		if !slices.Contains(p.Bounds, 0.001) {
			t.Errorf("histogram %s bounds %v do not suit seconds", name, p.Bounds)
		}
	}
	if p := histograms["pgstate.statement.duration/EntryGet"]; !slices.Contains(p.Bounds, 0.001) {
		t.Errorf("statement histogram bounds %v do not suit seconds", p.Bounds)
	}
}

// labels renders a metric point's db.operation (or db.operation.name) and
// error.type as "op/kind".
func labels(set attribute.Set) string {
	var out []string
	for _, k := range []attribute.Key{"db.operation", "db.operation.name", "error.type"} {
		if v, ok := set.Value(k); ok {
			out = append(out, v.AsString())
		}
	}
	return strings.Join(out, "/")
}

// A transaction that conflicts runs again: the span counts the attempts,
// and fn's own error ends it with "other".
func TestTransactAttemptsAndOwnError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tel := newTelemetry()
	store := openWrapped(t, tel)

	errOwn := errors.New("application says no")
	calls := 0
	err := store.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
		calls++
		if _, _, err := tx.Get(ctx, []byte("k")); err != nil {
			return err
		}
		if calls == 1 {
			// A serialization failure, as a concurrent writer would cause.
			pgtx, _ := state.PgxTx(tx)
			_, err := pgtx.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION SQLSTATE '40001'; END $$")
			return err
		}
		return errOwn
	})
	if !errors.Is(err, errOwn) {
		t.Fatalf("Transact = %v, want the function's error", err)
	}
	var transact *tracetest.SpanStub
	for _, s := range tel.spans.GetSpans() {
		if s.Name == "pgstate.transact" {
			transact = &s
		}
	}
	if transact == nil {
		t.Fatal("no pgstate.transact span")
	}
	ro := transact.Snapshot()
	if v, _ := attr(ro, "pgstate.attempts"); v.AsInt64() != 2 {
		t.Errorf("attempts = %d, want 2", v.AsInt64())
	}
	if v, _ := attr(ro, "error.type"); v.AsString() != "other" || transact.Status.Code != codes.Error {
		t.Errorf("error.type = %q, status %v, want other and Error", v.AsString(), transact.Status.Code)
	}
}

// Every method of *state.Postgres that talks to the database is reported by
// Store, and every method of state.Ops by Tx: one that they only inherit (a
// method added to state since) would run without a span, so this test names
// it.
func TestStoreReportsEveryOperation(t *testing.T) {
	fset := token.NewFileSet()
	declared := map[string]bool{}
	for _, file := range []string{"store.go", "ops.go", "checkpoint.go"} {
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || len(fn.Recv.List) != 1 {
				continue
			}
			recv := fn.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			if id, ok := recv.(*ast.Ident); ok && (id.Name == "Store" || id.Name == "ops") {
				declared[fn.Name.Name] = true
				declared[id.Name+"."+fn.Name.Name] = true
			}
		}
	}
	// ops is what a transaction's handle reports: every method of Ops.
	for m := range reflect.TypeFor[state.Ops]().Methods() {
		if !declared["ops."+m.Name] {
			t.Errorf("Tx does not report (state.Ops).%s", m.Name)
		}
	}
	ctxType := reflect.TypeFor[context.Context]()
	pg := reflect.TypeFor[*state.Postgres]()
	for i := range pg.NumMethod() {
		m := pg.Method(i)
		if m.Type.NumIn() > 1 && m.Type.In(1) == ctxType && !declared[m.Name] {
			t.Errorf("Store does not report (*state.Postgres).%s", m.Name)
		}
	}
}

// ErrorKind names every sentinel of the state package: a new one would
// otherwise be reported as "other".
func TestErrorKindNamesEverySentinel(t *testing.T) {
	fset := token.NewFileSet()
	named := map[string]bool{}
	f, err := parser.ParseFile(fset, "otelpgstate.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "state" {
				named[sel.Sel.Name] = true
			}
		}
		return true
	})
	files, err := filepath.Glob("../../state/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, name := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(name.Name, "Err") && !named[name.Name] && !notOperationErrors[name.Name] {
						t.Errorf("ErrorKind does not name state.%s", name.Name)
					}
				}
			}
		}
	}
}

// notOperationErrors are sentinels only Open returns: no operation fails
// with them.
var notOperationErrors = map[string]bool{"ErrInvalidSchemaName": true}
