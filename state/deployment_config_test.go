package state

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestDeploymentConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"Default", func(*Config) {}, true},
		{"ZeroModeIsTheCache", func(c *Config) { c.QueryExecMode = 0 }, true},
		{"UnknownMode", func(c *Config) { c.QueryExecMode = 99 }, false},
		{"PoolerExec", func(c *Config) { c.TransactionPooler, c.QueryExecMode = true, pgx.QueryExecModeExec }, true},
		{"PoolerSimple", func(c *Config) { c.TransactionPooler, c.QueryExecMode = true, pgx.QueryExecModeSimpleProtocol }, true},
		{"PoolerCache", func(c *Config) { c.TransactionPooler = true }, false},
		{"PoolerCacheDescribe", func(c *Config) { c.TransactionPooler, c.QueryExecMode = true, pgx.QueryExecModeCacheDescribe }, false},
		{"PoolerDescribeExec", func(c *Config) { c.TransactionPooler, c.QueryExecMode = true, pgx.QueryExecModeDescribeExec }, false},
		{"DirectDSNWithoutPooler", func(c *Config) { c.DirectDSN = "postgres://db/x" }, false},
		{"Replicas", func(c *Config) { c.Replicas = []string{"postgres://r1/x"} }, true},
		{"EmptyReplica", func(c *Config) { c.Replicas = []string{""} }, false},
		{"ReplicaReadsWithoutReplicas", func(c *Config) { c.ReplicaReads = true }, false},
		{"ReplicaZeroLag", func(c *Config) { c.Replicas, c.ReplicaMaxLag = []string{"postgres://r1/x"}, 0 }, false},
		{"ReplicaZeroInterval", func(c *Config) { c.Replicas, c.ReplicaCheckInterval = []string{"postgres://r1/x"}, 0 }, false},
		{"ReplicaNegativeWait", func(c *Config) { c.Replicas, c.ReplicaWaitTimeout = []string{"postgres://r1/x"}, -time.Second }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig("postgres://u@db/d")
			tc.mutate(&cfg)
			err := cfg.validate()
			if tc.ok && err != nil {
				t.Fatalf("validate: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("validate = %v, want ErrInvalidConfig", err)
			}
		})
	}
}

// Behind a transaction pooler neither search_path nor statement_timeout
// may be a startup parameter: pgbouncer 1.18 refuses unknown ones, and the
// session they would set is not the store's.
func TestPoolerStartupParameters(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig("postgres://u@db/d")
	cfg.Schema = "tenant"
	cfg.TransactionPooler, cfg.QueryExecMode = true, pgx.QueryExecModeExec
	pc, err := cfg.poolConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"search_path", "statement_timeout"} {
		if v, ok := pc.ConnConfig.RuntimeParams[p]; ok {
			t.Errorf("startup parameter %s = %q behind a pooler", p, v)
		}
	}
	if pc.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeExec {
		t.Errorf("exec mode %v", pc.ConnConfig.DefaultQueryExecMode)
	}
	s := newSessionSettings(cfg)
	if s.searchPath != `"tenant"` || s.statementTimeout != "62000" {
		t.Errorf("settings %+v", s)
	}
}

func TestWALPositionText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		p, err := ParseWALPosition(s)
		if err != nil || p.String() != s {
			t.Errorf("%s: %v, %v", s, p, err)
		}
	}
	if _, err := ParseWALPosition("nope"); err == nil {
		t.Error("parsed nope")
	}
}

func TestQualifyVacuum(t *testing.T) {
	t.Parallel()
	got := qualifyVacuum(`VACUUM (ANALYZE) state_entries, state_checkpoints, state_checkpoint_entries`, `"s"`)
	want := `VACUUM (ANALYZE) "s".state_entries, "s".state_checkpoints, "s".state_checkpoint_entries`
	if got != want {
		t.Errorf("got %s", got)
	}
}
