package tests

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// RestoreCheckpoint must not depend on default_transaction_isolation: a row
// committed while the restore waits for its table lock is still replaced.
func TestRestoreCheckpointWhateverTheDefaultIsolation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, level string }{
		{"RepeatableRead", "repeatable read"},
		{"Serializable", "serializable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn := testdb.DSN(t)
			admin := testdb.Conn(t, dsn)
			db := admin.Config().Database
			if _, err := admin.Exec(bg, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+
				" SET default_transaction_isolation = '"+tc.level+"'"); err != nil {
				t.Fatal(err)
			}
			s := testdb.Open(t, func(c *state.Config) {
				c.DSN = dsn
				c.MaxRetries = 0
			})
			var level string
			if err := s.Pool().QueryRow(bg, "SHOW default_transaction_isolation").Scan(&level); err != nil {
				t.Fatal(err)
			}
			if level != tc.level {
				t.Fatalf("default_transaction_isolation = %q, want %q", level, tc.level)
			}
			if err := s.Put(bg, []byte("k1"), []byte("old")); err != nil {
				t.Fatal(err)
			}
			id, err := s.CreateCheckpoint(bg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(bg, []byte("k1")); err != nil {
				t.Fatal(err)
			}
			// A writer inserts the checkpoint's key and commits only once the
			// restore waits for its lock on the table.
			writer := testdb.Conn(t, dsn)
			tx, err := writer.Begin(bg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(bg, `INSERT INTO state_entries (key, value) VALUES ('k1', 'new'), ('k2', 'new')`); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.RestoreCheckpoint(context.Background(), id) }()
			waitForLockWait(t, admin, "pgstate", "%LOCK TABLE state_entries%")
			if err := tx.Commit(bg); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("RestoreCheckpoint under %s: %v", tc.level, err)
			}
			v, ok, err := s.Get(bg, []byte("k1"))
			if err != nil || !ok || string(v) != "old" {
				t.Fatalf("Get(k1) after restore = %q, %v, %v; want the checkpoint's value", v, ok, err)
			}
			if n, err := s.Count(bg); err != nil || n != 1 {
				t.Fatalf("Count after restore = %d, %v; want 1", n, err)
			}
		})
	}
}
