package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
)

// buildDemo compiles the demo so that the tests run it exactly as "make
// demo" does, environment and exit code included.
func buildDemo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "basic")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build the demo: %v\n%s", err, out)
	}
	return bin
}

func runDemo(t *testing.T, bin, databaseURL string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if databaseURL != "" {
		cmd.Env = append(cmd.Env, "DATABASE_URL="+databaseURL)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("run the demo: %v", err)
	}
	return out.String(), errOut.String(), code
}

func TestDemo(t *testing.T) {
	t.Parallel()
	bin := buildDemo(t)

	t.Run("WithoutDatabaseURL", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := runDemo(t, bin, "")
		if code != 2 || stdout != "" || !strings.Contains(stderr, "DATABASE_URL is not set") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 2 and a message naming DATABASE_URL", code, stdout, stderr)
		}
	})

	t.Run("TwiceOnOneDatabase", func(t *testing.T) {
		t.Parallel()
		dsn := testdb.EmptyDSN(t)
		// The second run proves that the first left nothing in its way.
		for run := 1; run <= 2; run++ {
			stdout, stderr, code := runDemo(t, bin, dsn)
			if code != 0 || stderr != "" {
				t.Fatalf("run %d: exit %d, stderr %q\n%s", run, code, stderr, stdout)
			}
			for _, want := range []string{
				"get user/1     -> {\"name\":\"Ada\"} (found true)",
				"worker-2: pgstate: put entry: version mismatch: key \"lock/report\" is at version 1, want 0 (mismatch true)",
				"transact       -> demo_orders has 1 row, order-status/7 = paid, one commit",
				"delete prefix  -> removed 1 + 1 entries",
				"team compilers -> user/2 user/4",
				"keys order/*   -> order/1 order/2 order/3 order/4 order/5",
				"after changes  -> order/1 = 999.00 EUR, order/2 = (missing)",
				"\"before-price-change\": 9 entries",
				": same checkpoint true",
				"in checkpoint  -> first keys order/1 order/2 (more true), order/1 = 10.00 EUR",
				"restored       -> 9 entries written",
				"after restore  -> order/1 = 10.00 EUR, order/2 = 20.00 EUR",
				"restoring again fails with ErrCheckpointNotFound: true",
				"after expiry   -> found false",
				"CleanupExpired deleted 1 expired row(s)",
				"entries        -> 9",
				"pages of 2     -> daily/item-1 daily/item-2 | daily/item-3 daily/item-4 | daily/item-5",
				"newest key     -> daily/item-5",
				"expire 1h      -> about 1h0m0s left",
				"persist        -> no expiry: true",
				"increment x3   -> 30",
				"increment text -> ErrNotInteger: true",
				"typed get      -> Ada knows go, sql (found true)",
				"typed list     -> 1 profile(s), first daily/profile/ada",
				"dropped schema pgstate_demo",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("run %d: output lacks %q:\n%s", run, want, stdout)
				}
			}
		}

		var exists bool
		conn := testdb.Conn(t, dsn)
		err := conn.QueryRow(context.Background(),
			"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", demoSchema).Scan(&exists)
		if err != nil || exists {
			t.Errorf("schema %s exists after the demo: %t (%v)", demoSchema, exists, err)
		}
	})
}
