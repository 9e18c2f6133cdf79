package tests

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// timeoutMargin is what the README allows an operation on top of
// QueryTimeout: the grace a timed-out statement's connection gets for the
// server to acknowledge the cancel request (state's cancelGrace).
const timeoutMargin = 2 * time.Second

// slack absorbs a loaded test machine; bounds are asserted with it, never
// exact timings.
const slack = time.Second

// contexts are the two kinds of context a bound must hold for: one that
// never ends (the connection's watchdog path) and one that could end but
// has no deadline (the context-deadline path).
func contexts(t *testing.T) []struct {
	name string
	ctx  context.Context
} {
	cancellable, cancel := context.WithCancel(bg)
	t.Cleanup(cancel)
	return []struct {
		name string
		ctx  context.Context
	}{{"Background", bg}, {"Cancellable", cancellable}}
}

// boundedCall runs op and returns its duration and error. If op has not
// returned after limit, it fails the test, calls unblock (which must end
// whatever holds op) and waits for op.
func boundedCall(t *testing.T, limit time.Duration, unblock func(), op func() error) (time.Duration, error) {
	t.Helper()
	type result struct {
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		err := op()
		done <- result{err, time.Since(start)}
	}()
	select {
	case r := <-done:
		return r.took, r.err
	case <-time.After(limit):
		t.Errorf("still blocked after %v", limit)
		unblock()
		r := <-done
		return r.took, r.err
	}
}

// TestQueryTimeoutBoundsPoolWait: with every pooled connection busy for 3 s,
// an operation gives up after QueryTimeout, whatever its context.
func TestQueryTimeoutBoundsPoolWait(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	p := testdb.Open(t, func(c *state.Config) {
		c.QueryTimeout = timeout
		c.MaxConns = 1
	})
	if err := p.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		op   func(context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, _, err := p.Get(ctx, []byte("k")); return err }},
		{"Put", func(ctx context.Context) error { return p.Put(ctx, []byte("k"), []byte("w")) }},
	}
	for _, op := range ops {
		for _, c := range contexts(t) {
			t.Run(op.name+"/"+c.name, func(t *testing.T) {
				held, err := p.Pool().Acquire(bg)
				if err != nil {
					t.Fatal(err)
				}
				var once sync.Once
				release := func() { once.Do(held.Release) }
				timer := time.AfterFunc(3*time.Second, release) // the pool is busy for 3 s
				defer func() { timer.Stop(); release() }()
				took, err := boundedCall(t, 10*time.Second, release, func() error { return op.op(c.ctx) })
				t.Logf("%s with the pool busy: returned after %v: %v", op.name, took.Round(time.Millisecond), err)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("got %v, want context.DeadlineExceeded", err)
				}
				if took > timeout+slack {
					t.Errorf("waited %v for a busy pool, QueryTimeout is %v", took, timeout)
				}
			})
		}
	}
}

// TestQueryTimeoutBoundsSilentNetwork: the network goes silent but keeps the
// sockets open (a proxy stops forwarding). Neither pgxpool's health check of
// an idle connection nor a statement on a busy one may outlive QueryTimeout
// plus the documented margin; once the network is back, the same store
// works.
func TestQueryTimeoutBoundsSilentNetwork(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	proxy, dsn := proxiedDSN(t, testdb.DSN(t))
	cfg := state.DefaultConfig(dsn)
	cfg.MinConns = 0
	cfg.MaxConns = 2
	cfg.ConnectTimeout = 2 * time.Second
	cfg.QueryTimeout = timeout
	cfg.RetryBackoff = 5 * time.Millisecond
	p := testdb.OpenConfig(t, cfg)
	ctxs := contexts(t)
	get := func(ctx context.Context) error { _, _, err := p.Get(ctx, []byte("k")); return err }
	put := func(ctx context.Context) error { return p.Put(ctx, []byte("k"), []byte("v")) }
	cases := []struct {
		name string
		// idle leaves the connection unused long enough that pgxpool pings
		// it before handing it out (it does after 1 s idle).
		idle bool
		ctx  context.Context
		op   func(context.Context) error
	}{
		{"IdleConnection/Get/Background", true, ctxs[0].ctx, get},
		{"IdleConnection/Put/Background", true, ctxs[0].ctx, put},
		{"IdleConnection/Get/Cancellable", true, ctxs[1].ctx, get},
		{"BusyConnection/Get/Background", false, ctxs[0].ctx, get},
		{"BusyConnection/Put/Cancellable", false, ctxs[1].ctx, put},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			proxy.setSilent(false)
			waitFor(t, 15*time.Second, "the store to work through the proxy", func() bool { return put(bg) == nil })
			if tc.idle {
				time.Sleep(1200 * time.Millisecond)
			}
			proxy.setSilent(true)
			defer proxy.setSilent(false)
			took, err := boundedCall(t, 10*time.Second, func() { proxy.setSilent(false) }, func() error { return tc.op(tc.ctx) })
			t.Logf("silent network: returned after %v: %v", took.Round(time.Millisecond), err)
			if err == nil {
				t.Errorf("succeeded on a silent network")
			}
			if took > timeout+timeoutMargin+slack {
				t.Errorf("took %v on a silent network, QueryTimeout is %v (+%v margin)", took, timeout, timeoutMargin)
			}
		})
	}
	proxy.setSilent(false)
	waitFor(t, 15*time.Second, "the same store to work after the network came back", func() bool { return get(bg) == nil })
}

// TestQueryTimeoutBoundsRetryBackoff: with a backoff far longer than
// QueryTimeout, the retries of a failing operation stop when the time is
// spent; the sleep is never longer than what is left.
func TestQueryTimeoutBoundsRetryBackoff(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	proxy, dsn := proxiedDSN(t, testdb.DSN(t))
	cfg := state.DefaultConfig(dsn)
	cfg.MinConns = 0
	cfg.MaxConns = 2
	cfg.ConnectTimeout = 2 * time.Second
	cfg.QueryTimeout = timeout
	cfg.MaxRetries = 3
	cfg.RetryBackoff = 10 * time.Second
	p := testdb.OpenConfig(t, cfg)
	if err := p.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	proxy.setDown(true)
	for _, c := range contexts(t) {
		t.Run(c.name, func(t *testing.T) {
			took, err := boundedCall(t, 30*time.Second, func() {}, func() error { return p.Put(c.ctx, []byte("k"), []byte("w")) })
			t.Logf("Put with the network down: returned after %v (%d retries so far): %v", took.Round(time.Millisecond), p.Stats().Retries, err)
			if !errors.Is(err, state.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v, want ErrUnavailable or context.DeadlineExceeded", err)
			}
			if took > timeout+slack {
				t.Errorf("took %v with RetryBackoff %v, QueryTimeout is %v", took, cfg.RetryBackoff, timeout)
			}
		})
	}
	proxy.setDown(false)
	waitFor(t, 15*time.Second, "the store to work after the network came back", func() bool {
		return p.Put(bg, []byte("k"), []byte("x")) == nil
	})
}

// TestCloseIsBounded: Close returns within QueryTimeout plus the margin even
// when a connection is never given back (here one taken from Pool() and
// leaked), and the store is closed afterwards.
func TestCloseIsBounded(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	p := testdb.Open(t, func(c *state.Config) { c.QueryTimeout = timeout })
	if err := p.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	leaked, err := p.Pool().Acquire(bg)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(leaked.Release) }
	t.Cleanup(release)
	took, _ := boundedCall(t, 10*time.Second, release, func() error { p.Close(); return nil })
	t.Logf("Close with a leaked connection returned after %v", took.Round(time.Millisecond))
	if took > timeout+timeoutMargin+slack {
		t.Errorf("Close took %v, QueryTimeout is %v (+%v margin)", took, timeout, timeoutMargin)
	}
	if _, _, err := p.Get(bg, []byte("k")); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
}

// TestTimeoutKeepsThePool: calls that time out waiting for a busy pool are
// not lost connections: the pool is not reset, and the busy connection's
// backend survives and serves the next call.
func TestTimeoutKeepsThePool(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, func(c *state.Config) {
		c.QueryTimeout = 300 * time.Millisecond
		c.MaxConns = 1
	})
	if err := p.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	held, err := p.Pool().Acquire(bg)
	if err != nil {
		t.Fatal(err)
	}
	pid := held.Conn().PgConn().PID()
	// A steady load of short deadlines against the busy pool.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 4 {
		wg.Go(func() {
			for range 10 {
				ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
				_, _, err := p.Get(ctx, []byte("k"))
				cancel()
				errs <- err
			}
		})
	}
	wg.Wait()
	held.Release()
	close(errs)
	for err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get with a 20ms deadline on a busy pool = %v, want context.DeadlineExceeded", err)
			break
		}
	}
	if resets := p.Stats().PoolResets; resets != 0 {
		t.Errorf("PoolResets = %d after calls that only timed out, want 0", resets)
	}
	c, err := p.Pool().Acquire(bg)
	if err != nil {
		t.Fatal(err)
	}
	after := c.Conn().PgConn().PID()
	c.Release()
	if after != pid {
		t.Errorf("the busy connection (backend %d) was closed; the pool now serves backend %d", pid, after)
	}
	if v, _, err := p.Get(bg, []byte("k")); err != nil || string(v) != "v" {
		t.Errorf("Get after the timeouts = %q, %v", v, err)
	}
}
