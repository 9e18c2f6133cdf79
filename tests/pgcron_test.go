package tests

import (
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/state"
)

// The README's recipe, run by a real pg_cron: one CALL of the procedure the
// migrations install, schema-qualified, with pg_cron's default search_path.
// The backlog is larger than one batch, so the procedure must be able to
// commit between batches, which it cannot inside a multi-statement string.
func TestPgCronRunsCleanupProcedure(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a throwaway cluster and waits for pg_cron's next minute")
	}
	ok, err := pgcluster.ExtensionAvailable("pg_cron")
	if err != nil {
		pgcluster.SkipOrFail(t, err.Error())
	}
	if !ok {
		pgcluster.SkipOrFail(t, "pg_cron is not installed (Debian: apt-get install postgresql-15-cron; .ci/run installs it)")
	}
	e := newFaultEnv(t, pgcluster.Options{Settings: map[string]string{
		"shared_preload_libraries": "'pg_cron'",
		"cron.database_name":       "'postgres'",
		// Jobs connect over TCP; the cluster listens on 127.0.0.1 only.
		"cron.host": "'127.0.0.1'",
	}})
	const schemaName = "cron_store"
	e.open(t, "postgres", func(c *state.Config) { c.Schema = schemaName })
	const expired, live = 12000, 10
	if _, err := e.admin.Exec(bg, `
		INSERT INTO cron_store.state_entries (key, value, expires_at)
		SELECT convert_to('expired-' || g, 'UTF8'), 'v', now() - interval '1 minute'
		FROM generate_series(1, $1::int) AS g`, expired); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Exec(bg, `
		INSERT INTO cron_store.state_entries (key, value, expires_at)
		SELECT convert_to('live-' || g, 'UTF8'), 'v', CASE WHEN g % 2 = 0 THEN now() + interval '1 day' END
		FROM generate_series(1, $1::int) AS g`, live); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Exec(bg, `CREATE EXTENSION pg_cron`); err != nil {
		t.Fatal(err)
	}
	// The recipe, as the README gives it, every minute.
	if _, err := e.admin.Exec(bg, `SELECT cron.schedule('* * * * *', 'CALL cron_store.state_cleanup_expired()')`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(180 * time.Second)
	for {
		var failed *string
		if err := e.admin.QueryRow(bg, `
			SELECT string_agg(return_message, '; ') FROM cron.job_run_details
			WHERE status = 'failed'`).Scan(&failed); err != nil {
			t.Fatal(err)
		}
		if failed != nil {
			t.Fatalf("pg_cron job failed: %s", *failed)
		}
		left := queryInt(t, e.admin, `SELECT count(*) FROM cron_store.state_entries WHERE expires_at <= now()`)
		runs := queryInt(t, e.admin, `SELECT count(*) FROM cron.job_run_details WHERE status = 'succeeded'`)
		if left == 0 && runs > 0 {
			t.Logf("pg_cron cleaned %d expired entries in %v", expired, time.Since(start).Round(time.Second))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d expired entries left, %d successful runs", time.Since(start).Round(time.Second), left, runs)
		}
		time.Sleep(time.Second)
	}
	if n := queryInt(t, e.admin, `SELECT count(*) FROM cron_store.state_entries`); n != live {
		t.Fatalf("%d entries left, want the %d live ones", n, live)
	}
}
