package tests

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// silentListener accepts TCP connections and never answers on them: a
// server that is up at the network level and hung above it.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}

// TestConnectTimeoutIsUnavailable: a connect timeout is the database being
// unavailable, not the caller's deadline (issue 12, defect 1).
func TestConnectTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	addr := silentListener(t)
	cfg := state.DefaultConfig("postgres://postgres@" + addr + "/none?sslmode=disable")
	cfg.ConnectTimeout = time.Second
	cfg.MinConns = 0
	start := time.Now()
	s, err := state.Open(context.Background(), cfg)
	if err == nil {
		s.Close()
		t.Fatal("Open of a silent server succeeded")
	}
	if !errors.Is(err, state.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open = %v; want ErrUnavailable and not context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v with ConnectTimeout 1s", d)
	}
}

// TestErrorsSayThingsOnce: no error repeats its cause (issue 12, defect 3).
func TestErrorsSayThingsOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		caller time.Duration // the caller's deadline; 0: none
		query  time.Duration // QueryTimeout
		fresh  bool          // the pool's connections are dropped first
	}{
		{"CallerDeadline", 300 * time.Millisecond, 30 * time.Second, false},
		{"QueryTimeout", 0, 300 * time.Millisecond, false},
		{"CallerDeadlineWhileConnecting", 300 * time.Millisecond, 30 * time.Second, true},
		{"QueryTimeoutWhileConnecting", 0, 300 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			proxy, dsn := proxiedDSN(t, testdb.DSN(t))
			cfg := testdb.Config(t)
			cfg.DSN = dsn
			cfg.SkipMigrations = true
			cfg.QueryTimeout = tc.query
			s := testdb.OpenConfig(t, cfg)
			if tc.fresh {
				s.Pool().Reset()
				proxy.closeAll()
			}
			proxy.silent.Store(true)
			ctx := context.Background()
			if tc.caller > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.caller)
				defer cancel()
			}
			_, _, err := s.Get(ctx, []byte("k"))
			proxy.silent.Store(false)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Get past its deadline = %v, want context.DeadlineExceeded", err)
			}
			if n := strings.Count(err.Error(), "context deadline exceeded"); n != 1 {
				t.Errorf("error %q says \"context deadline exceeded\" %d times", err, n)
			}
		})
	}
	t.Run("UnknownCheckpoint", func(t *testing.T) {
		t.Parallel()
		id := uuid.Must(uuid.NewV7())
		for name, s := range map[string]state.Store{"Postgres": testdb.Open(t, nil), "Memory": state.NewMemory()} {
			err := s.RestoreCheckpoint(context.Background(), id)
			if !errors.Is(err, state.ErrCheckpointNotFound) {
				t.Fatalf("%s: restore of an unknown checkpoint = %v", name, err)
			}
			if n := strings.Count(err.Error(), id.String()); n != 1 {
				t.Errorf("%s: error %q names the id %d times", name, err, n)
			}
		}
	})
}
