package tests

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/state"
)

// A store opened on the application's pool honours Config.Replicas as Open
// does (they used to be accepted and silently ignored), and refuses
// TransactionPooler, whose per-transaction settings need a pool the store
// builds, instead of ignoring it.
func TestOpenPoolDeploymentSettings(t *testing.T) {
	t.Parallel()
	env := newReplicaEnv(t)
	ctx := context.Background()
	cfg := env.config("app")
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DSN = ""
	cfg.Replicas = []string{env.standby.URL("postgres", "app") + "?sslmode=disable"}
	cfg.ReplicaCheckInterval = 100 * time.Millisecond

	s, err := state.OpenPoolConfig(ctx, pc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := len(s.ReplicaStats()); got != 1 {
		t.Fatalf("OpenPoolConfig with one replica reports %d replicas", got)
	}
	if err := s.Put(ctx, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a read opted into the replica served by the standby", func() bool {
		v, ok, err := s.Get(state.ReadFromReplica(ctx), []byte("k"))
		return err == nil && ok && string(v) == "v" && servedFromStandby(t, s, state.ReadFromReplica(ctx))
	})

	pooled := cfg
	pooled.Replicas = nil
	pooled.TransactionPooler = true
	pooled.QueryExecMode = pgx.QueryExecModeExec
	if _, err := state.OpenPoolConfig(ctx, pc, pooled); !errors.Is(err, state.ErrInvalidConfig) {
		t.Fatalf("OpenPoolConfig with TransactionPooler = %v, want ErrInvalidConfig", err)
	}
}
