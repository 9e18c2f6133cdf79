package state

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func TestSSLSettingsReachThePool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		dsn     string
		mode    string
		wantTLS bool
		wantSNI string
	}{
		{"URLDisable", "postgres://u@db.example:5432/d", "disable", false, ""},
		{"URLRequire", "postgres://u@db.example:5432/d?sslmode=disable", "require", true, "db.example"},
		{"KeywordVerifyFull", "host=db.example user=u dbname=d", "verify-full", true, "db.example"},
		{"KeywordOverridesDSN", "host=db.example sslmode=require", "disable", false, ""},
		{"EmptyKeepsDSN", "postgres://u@db.example/d?sslmode=require", "", true, "db.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig(tc.dsn)
			cfg.SSLMode = tc.mode
			pc, err := cfg.poolConfig()
			if err != nil {
				t.Fatalf("poolConfig: %v", err)
			}
			assertTLS(t, pc, tc.wantTLS, tc.wantSNI)
		})
	}
}

func assertTLS(t *testing.T, pc *pgxpool.Config, want bool, serverName string) {
	t.Helper()
	tlsCfg := pc.ConnConfig.TLSConfig
	if (tlsCfg != nil) != want {
		t.Fatalf("TLS configured = %v, want %v", tlsCfg != nil, want)
	}
	// Without fallbacks, "require" and stricter modes never retry in plain text.
	if want && len(pc.ConnConfig.Fallbacks) != 0 {
		t.Fatalf("%d plain-text fallbacks", len(pc.ConnConfig.Fallbacks))
	}
	if want && tlsCfg.ServerName != serverName {
		t.Fatalf("ServerName = %q, want %q", tlsCfg.ServerName, serverName)
	}
}

func TestSSLRootCertMustExist(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig("postgres://u@db.example/d")
	cfg.SSLMode = "verify-full"
	cfg.SSLRootCert = "/nonexistent/ca.pem"
	if _, err := cfg.poolConfig(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("poolConfig with a missing root certificate = %v, want ErrInvalidConfig", err)
	}
}

func TestPoolSettings(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig("postgres://u@db.example/d?application_name=mine")
	cfg.MinConns, cfg.MaxConns = 3, 7
	cfg.Schema = "tenant_x"
	pc, err := cfg.poolConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.MinConns != 3 || pc.MaxConns != 7 || pc.ConnConfig.ConnectTimeout != cfg.ConnectTimeout {
		t.Fatalf("pool: min %d max %d connect timeout %v", pc.MinConns, pc.MaxConns, pc.ConnConfig.ConnectTimeout)
	}
	if got := pc.ConnConfig.RuntimeParams["search_path"]; got != `"tenant_x"` {
		t.Fatalf("search_path = %s", got)
	}
	if got := pc.ConnConfig.RuntimeParams["application_name"]; got != "mine" {
		t.Fatalf("application_name = %s, want the DSN's", got)
	}
}

// TestConfigRanges checks every numeric setting at and just past the limits
// of the types it reaches SQL as: past them Open must refuse the setting,
// never truncate it.
func TestConfigRanges(t *testing.T) {
	t.Parallel()
	maxQueryTimeout := math.MaxInt32*time.Millisecond - cancelGrace
	tests := []struct {
		name   string
		mutate func(c *Config)
		field  string // empty when the setting is valid
	}{
		{"CleanupBatchSizeMaxInt32", func(c *Config) { c.CleanupBatchSize = math.MaxInt32 }, ""},
		{"CleanupBatchSize1Shl32", func(c *Config) { c.CleanupBatchSize = 1 << 32 }, "CleanupBatchSize"},
		{"CleanupBatchSizeAboveInt32", func(c *Config) { c.CleanupBatchSize = math.MaxInt32 + 1 }, "CleanupBatchSize"},
		{"CleanupBatchSizeMaxInt", func(c *Config) { c.CleanupBatchSize = math.MaxInt }, "CleanupBatchSize"},
		{"CleanupBatchSizeZero", func(c *Config) { c.CleanupBatchSize = 0 }, "CleanupBatchSize"},
		{"CheckpointRetentionMaxInt32", func(c *Config) { c.CheckpointRetention = math.MaxInt32 }, ""},
		{"CheckpointRetention1Shl32", func(c *Config) { c.CheckpointRetention = 1 << 32 }, "CheckpointRetention"},
		{"CheckpointRetentionAboveInt32", func(c *Config) { c.CheckpointRetention = math.MaxInt32 + 1 }, "CheckpointRetention"},
		{"CheckpointRetentionMaxInt", func(c *Config) { c.CheckpointRetention = math.MaxInt }, "CheckpointRetention"},
		{"CheckpointRetentionNegative", func(c *Config) { c.CheckpointRetention = -1 }, "CheckpointRetention"},
		// statement_timeout is QueryTimeout plus a grace period, in
		// milliseconds, and PostgreSQL holds it in an int.
		{"QueryTimeoutLongest", func(c *Config) { c.QueryTimeout = maxQueryTimeout }, ""},
		{"QueryTimeoutTooLong", func(c *Config) { c.QueryTimeout = maxQueryTimeout + time.Millisecond }, "QueryTimeout"},
		{"QueryTimeoutMaxInt64", func(c *Config) { c.QueryTimeout = math.MaxInt64 }, "QueryTimeout"},
		{"ConnectTimeoutLongest", func(c *Config) { c.ConnectTimeout = math.MaxInt64 - c.QueryTimeout }, ""},
		{"ConnectTimeoutOverflowsWithQueryTimeout", func(c *Config) { c.ConnectTimeout = math.MaxInt64 - c.QueryTimeout + 1 }, "ConnectTimeout"},
		{"MaxValueSizeTooLarge", func(c *Config) { c.MaxValueSize = math.MaxInt }, "MaxValueSize"},
		// These are only compared and shifted in Go, where the largest
		// value is well defined: retry until QueryTimeout ends, back off
		// at most maxRetryDelay, clean up practically never.
		{"MaxRetriesMaxInt", func(c *Config) { c.MaxRetries = math.MaxInt }, ""},
		{"RetryBackoffMaxInt64", func(c *Config) { c.RetryBackoff = math.MaxInt64 }, ""},
		{"CleanupIntervalMaxInt64", func(c *Config) { c.CleanupInterval = math.MaxInt64 }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultConfig("postgres://u@db.example/d")
			tc.mutate(&cfg)
			err := cfg.validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("validate = %v, want ErrInvalidConfig naming %s", err, tc.field)
			}
		})
	}
}
