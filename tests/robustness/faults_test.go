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
