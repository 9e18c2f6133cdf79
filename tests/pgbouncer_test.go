package tests

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
	"github.com/pgstate/pgstate/state/statetest"
)

// bouncerEnv is a throwaway cluster with one database, "app", and a real
// pgbouncer in transaction mode in front of it.
type bouncerEnv struct {
	*faultEnv
	bouncer *pgcluster.PgBouncer
	schemas atomic.Int64
}

func newBouncerEnv(t *testing.T, poolSize int) *bouncerEnv {
	t.Helper()
	env := newFaultEnv(t, pgcluster.Options{Settings: map[string]string{"fsync": "off", "max_connections": "100"}})
	env.database(t, "app")
	b := pgcluster.StartPgBouncer(t, env.cluster, pgcluster.PgBouncerOptions{PoolMode: "transaction", PoolSize: poolSize})
	return &bouncerEnv{faultEnv: env, bouncer: b}
}

// config is a store of its own schema, reached through pgbouncer, migrated
// over the direct DSN.
func (e *bouncerEnv) config(mode pgx.QueryExecMode) state.Config {
	cfg := e.faultEnv.config("app")
	cfg.DSN = e.bouncer.URL("postgres", "app")
	cfg.DirectDSN = e.cluster.URL("postgres", "app") + "?sslmode=disable"
	cfg.TransactionPooler = true
	cfg.QueryExecMode = mode
	cfg.QueryTimeout = 20 * time.Second
	cfg.Schema = fmt.Sprintf("bounced_%d", e.schemas.Add(1))
	return cfg
}

// The conformance suite runs through a real pgbouncer 1.18 in transaction
// mode with 3 server connections, so that the stores (each in a schema of
// its own, all in one database) share server sessions: a search_path or
// prepared statement left in a session would show up as one store reading
// another's tables or as "prepared statement does not exist". One test per
// execution mode, each with its own cluster and pooler, so that they run in
// parallel.
func runBouncerConformance(t *testing.T, mode pgx.QueryExecMode) {
	env := newBouncerEnv(t, 3)
	statetest.RunStore(t, func(t *testing.T) state.Store {
		return testdb.OpenConfig(t, env.config(mode))
	})
}

func TestPgBouncerConformanceExec(t *testing.T) {
	t.Parallel()
	runBouncerConformance(t, pgx.QueryExecModeExec)
}

func TestPgBouncerConformanceSimpleProtocol(t *testing.T) {
	t.Parallel()
	runBouncerConformance(t, pgx.QueryExecModeSimpleProtocol)
}

// TestPgBouncerSessionState: through one shared server session, two stores
// in different schemas stay apart even when another client of the pooler
// leaves a session-level search_path and statement_timeout behind; the TTL
// cleaner (transaction-level lock), checkpoints, Transact, the change feed
// and Vacuum work; and the default statement cache is refused.
func TestPgBouncerSessionState(t *testing.T) {
	t.Parallel()
	env := newBouncerEnv(t, 1)
	ctx := context.Background()

	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec} {
		if _, err := state.Open(ctx, env.config(mode)); !errors.Is(err, state.ErrInvalidConfig) {
			t.Fatalf("Open with TransactionPooler and %v: %v, want ErrInvalidConfig", mode, err)
		}
	}

	cfgA := env.config(pgx.QueryExecModeExec)
	cfgA.CleanupInterval = 50 * time.Millisecond
	a := testdb.OpenConfig(t, cfgA)
	b := testdb.OpenConfig(t, env.config(pgx.QueryExecModeExec))

	// Another client of the same pool leaves session state on the only
	// server session.
	rogue := testdb.Conn(t, env.bouncer.URL("postgres", "app")+"&default_query_exec_mode=exec")
	if _, err := rogue.Exec(ctx, "SET search_path TO "+b.Config().Schema+"; SET statement_timeout = 1"); err != nil {
		t.Fatalf("rogue SET: %v", err)
	}

	must(t, a.Put(ctx, []byte("k"), []byte("in a")))
	must(t, b.Put(ctx, []byte("k"), []byte("in b")))
	va, _, errA := a.Get(ctx, []byte("k"))
	vb, _, errB := b.Get(ctx, []byte("k"))
	if errA != nil || errB != nil || string(va) != "in a" || string(vb) != "in b" {
		t.Fatalf("schemas mixed through the pooler: a has %q (%v), b has %q (%v)", va, errA, vb, errB)
	}

	// Transact.
	must(t, a.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
		v, _, err := tx.Get(ctx, []byte("k"))
		if err != nil {
			return err
		}
		return tx.Put(ctx, []byte("k2"), append(v, '!'))
	}))
	if v, _, err := a.Get(ctx, []byte("k2")); err != nil || string(v) != "in a!" {
		t.Fatalf("after Transact: %q, %v", v, err)
	}

	// Checkpoints.
	id, err := a.CreateCheckpoint(ctx)
	must(t, err)
	must(t, a.Put(ctx, []byte("k"), []byte("changed")))
	must(t, a.RestoreCheckpoint(ctx, id))
	if v, _, err := a.Get(ctx, []byte("k")); err != nil || string(v) != "in a" {
		t.Fatalf("after RestoreCheckpoint: %q, %v", v, err)
	}
	must(t, a.DeleteCheckpoint(ctx, id))

	// The background cleaner (a transaction-level advisory lock per batch).
	must(t, a.PutWithTTL(ctx, []byte("ttl"), []byte("x"), 10*time.Millisecond))
	deadline := time.Now().Add(10 * time.Second)
	for a.Stats().CleanedUp == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("cleaner deleted nothing: %+v", a.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	direct := env.conn(t, "app")
	if n := scalar[int64](t, direct, "SELECT count(*) FROM "+a.Config().Schema+".state_entries WHERE key = 'ttl'"); n != 0 {
		t.Fatalf("expired row still stored: %d", n)
	}
	if n := scalar[int64](t, direct, "SELECT count(*) FROM "+b.Config().Schema+".state_entries"); n != 1 {
		t.Fatalf("schema b holds %d rows, want 1", n)
	}

	// The change feed polls through the pooler: no LISTEN.
	rev, err := a.Revision(ctx)
	must(t, err)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = a.Put(ctx, []byte("watched"), []byte("w"))
	}()
	for ev, err := range a.Watch(wctx, []byte("watched"), state.FromRevision(rev+1)) {
		must(t, err)
		if string(ev.Key) != "watched" {
			t.Fatalf("watch: %+v", ev)
		}
		break
	}

	must(t, a.HealthCheck(ctx))
	must(t, a.Vacuum(ctx))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
