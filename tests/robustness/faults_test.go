package robustness

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/pgcluster"
)

// killEvery terminates every client backend of the store's database at
// each tick.
func killEvery(every time.Duration) func(context.Context, *testing.T, *pgcluster.Cluster, *pgx.Conn) int {
	return func(ctx context.Context, t *testing.T, _ *pgcluster.Cluster, admin *pgx.Conn) int {
		tick := time.NewTicker(every)
		defer tick.Stop()
		strikes := 0
		for {
			select {
			case <-ctx.Done():
				return strikes
			case <-tick.C:
			}
			var n int
			err := admin.QueryRow(context.Background(), `
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM pg_stat_activity
WHERE datname = 'robustness' AND backend_type = 'client backend' AND pid <> pg_backend_pid()`).Scan(&n)
			if err != nil {
				t.Errorf("terminate backends: %v", err)
				return strikes
			}
			strikes++
		}
	}
}

// restartTwice restarts the server (fast shutdown: sessions are ended,
// open transactions rolled back) 0.2 s into the run and 0.5 s after the first restart.
func restartTwice(ctx context.Context, t *testing.T, c *pgcluster.Cluster, _ *pgx.Conn) int {
	strikes := 0
	for _, wait := range []time.Duration{200 * time.Millisecond, 500 * time.Millisecond} {
		select {
		case <-ctx.Done():
			return strikes
		case <-time.After(wait):
		}
		if err := c.Restart(); err != nil {
			t.Errorf("restart: %v", err)
			return strikes
		}
		strikes++
	}
	return strikes
}

// withSyncStandby gives primary a streaming standby and makes it
// synchronous, so that no acknowledged commit can be lost by a failover.
func withSyncStandby(t *testing.T, primary *pgcluster.Cluster, admin *pgx.Conn) *pgcluster.Cluster {
	t.Helper()
	standby := pgcluster.NewStandby(t, primary, pgcluster.Options{})
	ctx := context.Background()
	if _, err := admin.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = '*'"); err != nil {
		t.Fatal(err)
	}
	if err := primary.Reload(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return standby
		}
		if time.Now().After(deadline) {
			t.Fatal("the standby never became synchronous")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failOver kills the primary (immediate stop, as in a crash) 0.3 s into
// the run and promotes the standby.
func failOver(standby *pgcluster.Cluster) func(context.Context, *testing.T, *pgcluster.Cluster, *pgx.Conn) int {
	return func(ctx context.Context, t *testing.T, primary *pgcluster.Cluster, _ *pgx.Conn) int {
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(300 * time.Millisecond):
		}
		if err := primary.Kill(); err != nil {
			t.Errorf("kill the primary: %v", err)
			return 0
		}
		if err := standby.Promote(); err != nil {
			t.Errorf("promote the standby: %v", err)
			return 0
		}
		return 1
	}
}
