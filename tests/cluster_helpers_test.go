package tests

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// faultEnv is a throwaway cluster with one database per store, and a
// superuser connection (to the "postgres" database) that the test uses to
// break things.
type faultEnv struct {
	cluster *pgcluster.Cluster
	admin   *pgx.Conn
}

func newFaultEnv(t *testing.T, opts pgcluster.Options) *faultEnv {
	t.Helper()
	c := pgcluster.New(t, opts)
	return &faultEnv{cluster: c, admin: testdb.Conn(t, c.SocketDSN("postgres"))}
}

// database creates an empty database and returns its name.
func (e *faultEnv) database(t *testing.T, name string) string {
	t.Helper()
	if _, err := e.admin.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return name
}

// config is a store configuration for database, sized for fault tests: a
// short QueryTimeout so that a hang shows up as a failure quickly.
func (e *faultEnv) config(database string) state.Config {
	cfg := state.DefaultConfig(e.cluster.URL("postgres", database) + "?sslmode=disable")
	cfg.MinConns = 0
	cfg.MaxConns = 8
	cfg.ConnectTimeout = 2 * time.Second
	cfg.QueryTimeout = 5 * time.Second
	cfg.MaxRetries = 3
	cfg.RetryBackoff = 10 * time.Millisecond
	return cfg
}

func (e *faultEnv) open(t *testing.T, database string, mutate func(*state.Config)) *state.Postgres {
	t.Helper()
	cfg := e.config(database)
	if mutate != nil {
		mutate(&cfg)
	}
	return testdb.OpenConfig(t, cfg)
}

// conn opens a superuser connection to database, closed with the test.
func (e *faultEnv) conn(t *testing.T, database string) *pgx.Conn {
	t.Helper()
	return testdb.Conn(t, e.cluster.SocketDSN(database))
}

// sqlTerminate ends the client backends of one database, optionally only
// those running a statement that matches a LIKE pattern (and, optionally,
// waiting on a lock). It never ends the caller's own session.
const sqlTerminate = `
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM pg_stat_activity
WHERE datname = $1
    AND backend_type = 'client backend'
    AND pid <> pg_backend_pid()
    AND application_name = 'pgstate'
    AND ($2::text IS NULL OR (state = 'active' AND query LIKE $2))
    AND (NOT $3::bool OR wait_event_type = 'Lock')`

// terminate runs sqlTerminate on conn and returns how many backends ended.
func terminate(ctx context.Context, conn *pgx.Conn, database string, pattern *string, waitingOnLock bool) (int64, error) {
	var n int64
	err := conn.QueryRow(ctx, sqlTerminate, database, pattern, waitingOnLock).Scan(&n)
	return n, err
}

// killer terminates every client backend of database each interval until
// stop is called, which returns how many it ended in how many rounds.
func (e *faultEnv) killer(t *testing.T, database string, interval time.Duration) (stop func() (kills, rounds int64)) {
	t.Helper()
	conn := e.conn(t, "postgres")
	ctx, cancel := context.WithCancel(context.Background())
	var kills, rounds atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n, err := terminate(ctx, conn, database, nil, false)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("killer: %v", err)
				}
				return
			}
			kills.Add(n)
			rounds.Add(1)
		}
	}()
	return func() (int64, int64) {
		cancel()
		<-done
		return kills.Load(), rounds.Load()
	}
}

// killWhen polls every 2 ms until a backend of database runs a statement
// matching pattern (and, with waitingOnLock, waits on a lock), terminates it
// and reports how long it waited; it gives up when ctx ends.
func (e *faultEnv) killWhen(ctx context.Context, conn *pgx.Conn, database, pattern string, waitingOnLock bool) (time.Duration, error) {
	start := time.Now()
	for {
		n, err := terminate(ctx, conn, database, &pattern, waitingOnLock)
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no statement matching %q appeared: %w", pattern, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// fill writes n entries key-%07d → value (padded to size bytes) in batches.
func fill(t *testing.T, s state.Store, prefix string, n, size int, value string) {
	t.Helper()
	const chunk = 5000
	for start := 0; start < n; start += chunk {
		batch := make([]state.Entry, 0, chunk)
		for i := start; i < min(n, start+chunk); i++ {
			batch = append(batch, state.Entry{Key: fmt.Appendf(nil, "%s%07d", prefix, i), Value: padded(value, size)})
		}
		if err := s.BatchPut(context.Background(), batch); err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
}

// padded returns value followed by dots up to size bytes.
func padded(value string, size int) []byte {
	b := make([]byte, max(size, len(value)))
	copy(b, value)
	for i := len(value); i < len(b); i++ {
		b[i] = '.'
	}
	return b
}

// scalar runs a one-value query on conn.
func scalar[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}
