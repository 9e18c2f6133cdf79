package state

import (
	"errors"
	"testing"

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
