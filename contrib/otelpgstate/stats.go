package otelpgstate

import (
	"context"

	"go.opentelemetry.io/otel/metric"

	"github.com/pgstate/pgstate/state"
)

// Registration is the metrics callback RegisterStats installed.
type Registration struct{ reg metric.Registration }

// Unregister stops reporting the store's figures.
func (r *Registration) Unregister() error { return r.reg.Unregister() }

// RegisterStats reports the store's Stats as observable instruments, read at
// each collection (Stats costs nothing): operation counters (gets, puts,
// deletes, transactions, errors), retries, pool resets, the background
// cleaner's rounds and deletions, and the pool's gauges.
func RegisterStats(store *state.Postgres, opts ...Option) (*Registration, error) {
	m := build(opts).mp.Meter(scope)
	type counter struct {
		name, desc string
		get        func(state.Stats) int64
		inst       metric.Int64ObservableCounter
	}
	counters := []*counter{
		{name: "pgstate.gets", desc: "reads (Get, GetEntry, Contains, keys of GetMany)", get: func(s state.Stats) int64 { return s.Gets }},
		{name: "pgstate.puts", desc: "entries written", get: func(s state.Stats) int64 { return s.Puts }},
		{name: "pgstate.deletes", desc: "Delete, DeleteMany and Clear calls", get: func(s state.Stats) int64 { return s.Deletes }},
		{name: "pgstate.queries", desc: "statements sent, retries included", get: func(s state.Stats) int64 { return s.Queries }},
		{name: "pgstate.transactions", desc: "explicit transactions", get: func(s state.Stats) int64 { return s.Transactions }},
		{name: "pgstate.errors", desc: "operations that returned an error", get: func(s state.Stats) int64 { return s.Errors }},
		{name: "pgstate.retries", desc: "attempts repeated after a transient failure", get: func(s state.Stats) int64 { return s.Retries }},
		{name: "pgstate.pool.resets", desc: "times a lost connection emptied the pool", get: func(s state.Stats) int64 { return s.PoolResets }},
		{name: "pgstate.cleanup.runs", desc: "background cleanup rounds run", get: func(s state.Stats) int64 { return s.CleanupRuns }},
		{name: "pgstate.cleanup.skips", desc: "rounds left to another process", get: func(s state.Stats) int64 { return s.CleanupSkips }},
		{name: "pgstate.cleanup.deleted", desc: "expired entries the cleaner deleted", get: func(s state.Stats) int64 { return s.CleanedUp }},
	}
	type gauge struct {
		name, desc string
		get        func(state.Stats) int64
		inst       metric.Int64ObservableGauge
	}
	gauges := []*gauge{
		{name: "pgstate.pool.acquired", desc: "connections in use", get: func(s state.Stats) int64 { return int64(s.AcquiredConns) }},
		{name: "pgstate.pool.idle", desc: "idle connections", get: func(s state.Stats) int64 { return int64(s.IdleConns) }},
		{name: "pgstate.pool.total", desc: "open connections", get: func(s state.Stats) int64 { return int64(s.TotalConns) }},
		{name: "pgstate.pool.max", desc: "the pool's limit", get: func(s state.Stats) int64 { return int64(s.MaxConns) }},
	}
	var insts []metric.Observable
	var err error
	for _, c := range counters {
		if c.inst, err = m.Int64ObservableCounter(c.name, metric.WithDescription(c.desc)); err != nil {
			return nil, err
		}
		insts = append(insts, c.inst)
	}
	for _, g := range gauges {
		if g.inst, err = m.Int64ObservableGauge(g.name, metric.WithDescription(g.desc)); err != nil {
			return nil, err
		}
		insts = append(insts, g.inst)
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := store.Stats()
		for _, c := range counters {
			o.ObserveInt64(c.inst, c.get(s))
		}
		for _, g := range gauges {
			o.ObserveInt64(g.inst, g.get(s))
		}
		return nil
	}, insts...)
	if err != nil {
		return nil, err
	}
	return &Registration{reg: reg}, nil
}
