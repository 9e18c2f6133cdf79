package testdb

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestFailedTestLeavesNoDatabase runs a test that fails, in a child
// process, and checks that its database is gone afterwards, unless
// KeepFailedEnv asks to keep it. Issue 12, defect 8: failed tests used to
// leave their template-instance databases behind.
func TestFailedTestLeavesNoDatabase(t *testing.T) {
	if os.Getenv("TESTDB_FAILING_CHILD") == "1" {
		pc, err := pgconn.ParseConfig(DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("database=%s", pc.Database)
		t.Error("failing on purpose")
		return
	}
	t.Parallel()
	for _, tc := range []struct {
		name string
		keep bool
	}{{"Dropped", false}, {"KeptOnRequest", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestFailedTestLeavesNoDatabase$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "TESTDB_FAILING_CHILD=1")
			if tc.keep {
				cmd.Env = append(cmd.Env, KeepFailedEnv+"=1")
			}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the child test passed:\n%s", out)
			}
			m := regexp.MustCompile(`database=(\S+)`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("the child named no database:\n%s", out)
			}
			name := string(m[1])
			ctx := context.Background()
			admin, err := pgx.Connect(ctx, BaseURL())
			if err != nil {
				t.Fatal(err)
			}
			defer admin.Close(ctx)
			var exists bool
			if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
				t.Fatal(err)
			}
			if exists != tc.keep {
				t.Errorf("database %s exists: %v, want %v\n%s", name, exists, tc.keep, out)
			}
			if exists {
				admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
			}
		})
	}
}
