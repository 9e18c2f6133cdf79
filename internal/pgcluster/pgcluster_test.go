package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestClusterLifecycle(t *testing.T) {
	t.Parallel()
	c := New(t, Options{Settings: map[string]string{"application_name": "'pgcluster_test'"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, c.DSN()+"?sslmode=disable")
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE TABLE survives (n int); INSERT INTO survives VALUES (42)"); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	var n int
	conn, err := pgx.Connect(ctx, c.DSN()+"?sslmode=disable")
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	if err := conn.QueryRow(ctx, "SELECT n FROM survives").Scan(&n); err != nil || n != 42 {
		t.Fatalf("after restart: n = %d, %v; want 42", n, err)
	}
	var setting string
	if err := conn.QueryRow(ctx, "SHOW application_name").Scan(&setting); err != nil || setting != "pgcluster_test" {
		t.Fatalf("extra setting: application_name = %q, %v", setting, err)
	}
	conn.Close(ctx)

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := exec("SELECT 1"); err == nil {
		t.Fatal("a stopped cluster accepted a connection")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := exec("SELECT n FROM survives"); err != nil {
		t.Fatalf("after stop and start: %v", err)
	}

	// The socket DSN works whatever pg_hba says about TCP.
	sc, err := pgx.Connect(ctx, c.SocketDSN("postgres"))
	if err != nil {
		t.Fatalf("socket connection: %v", err)
	}
	sc.Close(ctx)
}

func TestClusterHBAAndFiles(t *testing.T) {
	t.Parallel()
	c := New(t, Options{
		HBA:   []string{"host all all 127.0.0.1/32 reject"},
		Files: map[string][]byte{"marker.txt": []byte("hello")},
	})
	ctx := context.Background()
	if conn, err := pgx.Connect(ctx, c.DSN()+"?sslmode=disable"); err == nil {
		conn.Close(ctx)
		t.Fatal("TCP connection accepted although pg_hba rejects it")
	}
	conn, err := pgx.Connect(ctx, c.SocketDSN("postgres"))
	if err != nil {
		t.Fatalf("socket connection: %v", err)
	}
	defer conn.Close(ctx)
	var body string
	if err := conn.QueryRow(ctx, "SELECT pg_read_file('marker.txt')").Scan(&body); err != nil || body != "hello" {
		t.Fatalf("marker.txt = %q, %v", body, err)
	}
}

func TestRemovedOnCleanup(t *testing.T) {
	t.Parallel()
	var dir string
	t.Run("Inner", func(t *testing.T) {
		dir = New(t, Options{}).Dir()
		if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err != nil {
			t.Fatalf("running cluster has no postmaster.pid: %v", err)
		}
	})
	if dir == "" {
		t.Skip("inner test was skipped")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cluster directory %s still exists after cleanup (stat: %v)", dir, err)
	}
}

// recorder stands in for a test to observe skipOrFail's decision.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = true
	r.msg = fmt.Sprint(args...)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}

func TestMissingBinariesFailUnderCI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ci       string
		wantFail bool
	}{
		{"", false},
		{"false", false},
		{"0", false},
		{"true", true},
		{"1", true},
		{"TRUE", true},
	}
	for _, tc := range tests {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			r := &recorder{}
			skipOrFail(r, tc.ci, "no binaries")
			if r.failed != tc.wantFail || r.skipped == tc.wantFail {
				t.Fatalf("CI=%q: failed=%v skipped=%v, want failed=%v", tc.ci, r.failed, r.skipped, tc.wantFail)
			}
		})
	}
}

func TestFindBinDirHonoursPGBINDIR(t *testing.T) {
	// Not parallel: it sets an environment variable.
	t.Setenv("PG_BINDIR", t.TempDir())
	if dir, err := FindBinDir(); err == nil {
		t.Fatalf("FindBinDir with an empty PG_BINDIR = %q, want an error", dir)
	}
}
