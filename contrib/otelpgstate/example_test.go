package otelpgstate_test

import (
	"context"
	"log"
	"os"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgstate/pgstate/contrib/otelpgstate"
	"github.com/pgstate/pgstate/state"
)

// The tracer gives the statement spans, Wrap the operation spans they nest
// under, RegisterStats the store's counters and pool.
func ExampleWrap() {
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider() // with your exporter
	mp := sdkmetric.NewMeterProvider() // with your reader (Prometheus, OTLP…)
	telemetry := []otelpgstate.Option{otelpgstate.WithTracerProvider(tp), otelpgstate.WithMeterProvider(mp)}

	tracer, err := otelpgstate.NewTracer(telemetry...)
	if err != nil {
		log.Fatal(err)
	}
	cfg := state.DefaultConfig(os.Getenv("DATABASE_URL"))
	cfg.Tracer = tracer
	pg, err := state.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pg.Close()
	reg, err := otelpgstate.RegisterStats(pg, telemetry...)
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Unregister()
	store, err := otelpgstate.Wrap(pg, telemetry...)
	if err != nil {
		log.Fatal(err)
	}

	// A span pgstate.transact, and under it pgstate.increment and its
	// statement's span.
	err = store.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
		_, err := tx.Increment(ctx, []byte("visits"), 1)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
}
