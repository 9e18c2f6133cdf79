package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/state"
)

// BenchmarkPooler measures Get and Put (1,000 keys, 100-byte values) on one
// throwaway cluster of its own, reached four ways:
//
//	direct/cache        the default: direct connection, statement cache
//	direct/exec         direct, QueryExecModeExec (no prepared statements)
//	direct/exec+local   direct, Exec, TransactionPooler: the per-statement
//	                    set_config batch without a pooler, i.e. its own cost
//	pgbouncer/exec      through pgbouncer 1.18, pool_mode=transaction
//	pgbouncer/simple    the same with QueryExecModeSimpleProtocol
//
// Run: go test ./bench -run '^$' -bench '^BenchmarkPooler$' -benchtime 2000x -count 5
func BenchmarkPooler(b *testing.B) {
	ctx := context.Background()
	value := make([]byte, 100)
	for _, v := range poolerVariants(b) {
		b.Run(v.name+"/Get", func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, ok, err := v.store.Get(ctx, fmt.Appendf(nil, "k%04d", i%1000)); err != nil || !ok {
					b.Fatal(ok, err)
				}
				i += 7
			}
		})
		b.Run(v.name+"/Put", func(b *testing.B) {
			i := 0
			for b.Loop() {
				if err := v.store.Put(ctx, fmt.Appendf(nil, "k%04d", i%1000), value); err != nil {
					b.Fatal(err)
				}
				i += 7
			}
		})
	}
}

type poolerVariant struct {
	name  string
	store *state.Postgres
}

// poolerVariants starts the cluster and pgbouncer (stopped when the
// benchmark ends) and opens one store, of one connection, per variant.
func poolerVariants(b *testing.B) []poolerVariant {
	ctx := context.Background()
	c := pgcluster.New(b, pgcluster.Options{Settings: map[string]string{"fsync": "off"}})
	bouncer := pgcluster.StartPgBouncer(b, c, pgcluster.PgBouncerOptions{PoolSize: 4})
	direct := c.URL("postgres", "postgres") + "?sslmode=disable"
	specs := []struct {
		name   string
		dsn    string
		mode   pgx.QueryExecMode
		pooler bool
	}{
		{"direct/cache", direct, pgx.QueryExecModeCacheStatement, false},
		{"direct/exec", direct, pgx.QueryExecModeExec, false},
		{"direct/exec+local", direct, pgx.QueryExecModeExec, true},
		{"pgbouncer/exec", bouncer.URL("postgres", "postgres"), pgx.QueryExecModeExec, true},
		{"pgbouncer/simple", bouncer.URL("postgres", "postgres"), pgx.QueryExecModeSimpleProtocol, true},
	}
	var out []poolerVariant
	for i, v := range specs {
		cfg := state.DefaultConfig(v.dsn)
		cfg.Schema = fmt.Sprintf("pooler_%d", i)
		cfg.QueryExecMode = v.mode
		cfg.TransactionPooler = v.pooler
		if v.pooler && v.dsn != direct {
			cfg.DirectDSN = direct
		}
		cfg.MinConns, cfg.MaxConns = 1, 1
		if v.pooler && v.dsn == direct {
			// Migrate first: without DirectDSN a pooled store only checks.
			m := state.DefaultConfig(direct)
			m.Schema = cfg.Schema
			st, err := state.Open(ctx, m)
			if err != nil {
				b.Fatalf("%s: migrate: %v", v.name, err)
			}
			st.Close()
		}
		st, err := state.Open(ctx, cfg)
		if err != nil {
			b.Fatalf("%s: %v", v.name, err)
		}
		b.Cleanup(st.Close)
		entries := make([]state.Entry, 1000)
		for k := range entries {
			entries[k] = state.Entry{Key: fmt.Appendf(nil, "k%04d", k), Value: make([]byte, 100)}
		}
		if err := st.BatchPut(ctx, entries); err != nil {
			b.Fatalf("%s: seed: %v", v.name, err)
		}
		out = append(out, poolerVariant{name: v.name, store: st})
	}
	return out
}
