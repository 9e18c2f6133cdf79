package tests

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/state"
)

// TestFaultFirstCallAfterKills: once every backend of the store was
// terminated and the server is healthy again, the next call succeeds. The
// pool would hand out its dead idle connections one after another (pgxpool
// pings only connections idle for more than a second), more of them than a
// call has attempts; the first lost connection empties the pool instead.
func TestFaultFirstCallAfterKills(t *testing.T) {
	t.Parallel()
	env := newFaultEnv(t, pgcluster.Options{})
	db := env.database(t, "app")
	s := env.open(t, db, func(c *state.Config) { c.MaxConns = 8; c.MaxRetries = 3 })
	ctx := context.Background()
	if err := s.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	// Fill the pool with 8 idle connections.
	var held []*pgxpool.Conn
	for range 8 {
		c, err := s.Pool().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	for _, c := range held {
		c.Release()
	}
	released := time.Now()
	n, err := terminate(ctx, env.admin, db, nil, false)
	if err != nil || n != 8 {
		t.Fatalf("terminated %d backends (%v), want 8", n, err)
	}
	time.Sleep(100 * time.Millisecond)
	// pgxpool pings a connection idle for more than a second before handing
	// it out; only a call sooner than that meets the dead connections.
	metDead := time.Since(released) < time.Second
	if _, _, err := s.Get(ctx, []byte("k")); err != nil {
		t.Errorf("Get after the kills: %v", err)
	}
	if err := s.HealthCheck(ctx); err != nil {
		t.Errorf("HealthCheck after the kills: %v", err)
	}
	if resets := s.Stats().PoolResets; metDead && resets < 1 {
		t.Errorf("no pool reset after the kills")
	} else if !metDead {
		t.Logf("the kills took over a second; the pool's own ping may have dropped the dead connections (%d resets)", resets)
	}
	// HealthCheck alone recovers too.
	if _, err := terminate(ctx, env.admin, db, nil, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.HealthCheck(ctx); err != nil {
		t.Errorf("HealthCheck right after the second kills: %v", err)
	}
}
