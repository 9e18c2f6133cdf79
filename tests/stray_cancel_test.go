package tests

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// TestCancelRequestNeverHitsTheNextStatement: a caller's deadline ends while
// its Put waits for a lock, so pgx sends a cancel request, but the Put
// completes before the request reaches the server (here the network holds
// it for 600 ms; on a loaded machine the postmaster can be as late). The
// next caller, with no deadline at all, must not be cancelled by it: its Put
// waits for a lock until after the request has arrived, and succeeds.
func TestCancelRequestNeverHitsTheNextStatement(t *testing.T) {
	t.Parallel()
	const hold = 600 * time.Millisecond
	dsn := testdb.DSN(t)
	proxy, proxied := proxiedDSN(t, dsn)
	cfg := state.DefaultConfig(proxied)
	cfg.MinConns = 0
	cfg.MaxConns = 1 // the next statement runs on the same connection if the store allows it
	cfg.QueryTimeout = 20 * time.Second
	p := testdb.OpenConfig(t, cfg)
	for _, k := range []string{"a", "b"} {
		if err := p.Put(bg, []byte(k), []byte("v1")); err != nil {
			t.Fatal(err)
		}
	}
	lockKey := func(key string) pgx.Tx {
		tx, err := testdb.Conn(t, dsn).Begin(bg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(bg, "SELECT 1 FROM state_entries WHERE key = $1 FOR UPDATE", []byte(key)); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	lockA, lockB := lockKey("a"), lockKey("b")
	proxy.holdNew.Store(int64(hold))

	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	committed := make(chan error, 1)
	go func() {
		<-ctx.Done() // the cancel request is on its way: let the Put finish first
		time.Sleep(50 * time.Millisecond)
		committed <- lockA.Commit(bg)
	}()
	err := p.Put(ctx, []byte("a"), []byte("v2"))
	t.Logf("Put whose deadline ended while it waited for a lock: %v", err)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- p.Put(bg, []byte("b"), []byte("v2")) }()
	time.Sleep(hold + 500*time.Millisecond) // the late cancel request has arrived by now
	proxy.holdNew.Store(0)
	if err := lockB.Commit(bg); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Put with no deadline, after another caller's cancelled call on the same pool: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Put did not return")
	}
	if v, _, err := p.Get(bg, []byte("b")); err != nil || string(v) != "v2" {
		t.Fatalf("Get b = %q, %v; want v2", v, err)
	}
}
