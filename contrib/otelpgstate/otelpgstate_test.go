package otelpgstate_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pgstate/pgstate/contrib/otelpgstate"
	"github.com/pgstate/pgstate/state"
)

func databaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func TestSpansAndMetrics(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry()
	spans, reader := tel.spans, tel.reader
	store := openStore(t, tel)
	reg, err := otelpgstate.RegisterStats(store, tel.opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()

	const secretKey, secretValue = "secret-key-4711", "secret-value-0815"
	if err := store.Put(ctx, []byte(secretKey), []byte(secretValue)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Get(ctx, []byte(secretKey)); err != nil {
		t.Fatal(err)
	}
	// An application query in a transaction that fails: its span and the
	// error metric say so.
	_ = store.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
		pgtx, _ := state.PgxTx(tx)
		_, err := pgtx.Exec(ctx, "SELECT 1/0")
		return err
	})

	names := map[string]bool{}
	for _, s := range spans.GetSpans() {
		names[s.Name] = true
		var system bool
		for _, a := range s.Attributes {
			if a.Key == "db.system" && a.Value.AsString() == "postgresql" {
				system = true
			}
			if v := a.Value.String(); strings.Contains(v, secretKey) || strings.Contains(v, secretValue) {
				t.Errorf("span %s attribute %s holds a key or value: %q", s.Name, a.Key, v)
			}
		}
		if !system {
			t.Errorf("span %s has no db.system=postgresql", s.Name)
		}
	}
	for _, want := range []string{"EntryPut", "EntryGet", "SELECT 1/0"} {
		if !names[want] {
			t.Errorf("no span %q among %v", want, names)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var histograms int
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					key := m.Name
					if v, ok := p.Attributes.Value("db.operation.name"); ok {
						key += "/" + v.AsString()
					}
					if v, ok := p.Attributes.Value("error.type"); ok {
						key += "/" + v.AsString()
					}
					got[key] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] = p.Value
				}
			case metricdata.Histogram[float64]:
				histograms += len(d.DataPoints)
			}
		}
	}
	for name, min := range map[string]int64{
		"pgstate.statements/EntryPut":               1,
		"pgstate.statements/EntryGet":               1,
		"pgstate.statement.errors/SELECT 1/0/other": 1,
		"pgstate.puts":                              1,
		"pgstate.gets":                              1,
		"pgstate.transactions":                      1,
		"pgstate.pool.max":                          3,
	} {
		if got[name] < min {
			t.Errorf("metric %s = %d, want at least %d (all: %v)", name, got[name], min, got)
		}
	}
	for _, name := range []string{"pgstate.retries", "pgstate.pool.resets", "pgstate.cleanup.runs", "pgstate.cleanup.deleted", "pgstate.errors"} {
		if _, ok := got[name]; !ok {
			t.Errorf("metric %s not reported", name)
		}
	}
	if histograms == 0 {
		t.Error("no latency histogram points")
	}
}

// An application that uses pgstate without this module compiles no
// OpenTelemetry: the state package's dependencies have none.
func TestStateHasNoOpenTelemetryDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-C", "../..", "-deps", "./state", "./schema").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "go.opentelemetry.io") {
		t.Errorf("state depends on OpenTelemetry:\n%s", out)
	}
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mod), "go.opentelemetry.io") {
		t.Error("the root go.mod requires OpenTelemetry")
	}
}
