package tests

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// TestConfigOutOfRangeRejectedAtOpen opens a second store on a database
// that already has checkpoints, with settings that do not fit the int32
// they reach SQL as. Open must refuse them: truncated, a retention of 1<<32
// became 0 and deleted every checkpoint, the new one included, and a
// cleanup batch of 1<<32 became LIMIT 0 and looped forever.
func TestConfigOutOfRangeRejectedAtOpen(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	base := testdb.Config(t)
	base.DSN = dsn
	first := testdb.OpenConfig(t, base)
	if err := first.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := first.CreateCheckpoint(bg); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		mutate func(c *state.Config)
		use    func(ctx context.Context, p *state.Postgres) string
	}{
		{"CheckpointRetention1Shl32", func(c *state.Config) { c.CheckpointRetention = 1 << 32 },
			func(ctx context.Context, p *state.Postgres) string {
				id, err := p.CreateCheckpoint(ctx)
				list, _ := p.ListCheckpoints(ctx)
				return "CreateCheckpoint returned " + id.String() + ", " + errString(err) + ", and left " + itoa(len(list)) + " of 3 checkpoints"
			}},
		{"CheckpointRetentionMaxInt", func(c *state.Config) { c.CheckpointRetention = math.MaxInt },
			func(ctx context.Context, p *state.Postgres) string {
				_, err := p.CreateCheckpoint(ctx)
				return "CreateCheckpoint: " + errString(err)
			}},
		{"CleanupBatchSize1Shl32", func(c *state.Config) { c.CleanupBatchSize = 1 << 32 },
			func(ctx context.Context, p *state.Postgres) string {
				n, err := p.CleanupExpired(ctx)
				return "CleanupExpired deleted " + itoa(int(n)) + ": " + errString(err)
			}},
		{"CleanupBatchSizeMaxInt", func(c *state.Config) { c.CleanupBatchSize = math.MaxInt },
			func(ctx context.Context, p *state.Postgres) string {
				n, err := p.CleanupExpired(ctx)
				return "CleanupExpired deleted " + itoa(int(n)) + ": " + errString(err)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mutate(&cfg)
			cfg.QueryTimeout = 5 * time.Second
			p, err := state.Open(bg, cfg)
			if err == nil {
				defer p.Close()
				t.Fatalf("Open accepted the setting; then %s", tc.use(bg, p))
			}
			if !errors.Is(err, state.ErrInvalidConfig) {
				t.Fatalf("Open = %v, want ErrInvalidConfig", err)
			}
			list, err := first.ListCheckpoints(bg)
			if err != nil || len(list) != 2 {
				t.Fatalf("checkpoints after the refused Open: %d, %v; want the 2 there were", len(list), err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
