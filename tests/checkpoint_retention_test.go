package tests

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// checkpointIDs lists the ids of s's checkpoints, newest first.
func checkpointIDs(t *testing.T, s *state.Postgres) []uuid.UUID {
	t.Helper()
	list, err := s.ListCheckpoints(bg)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uuid.UUID, len(list))
	for i, c := range list {
		ids[i] = c.ID
	}
	return ids
}

// waitForLockWait polls until a backend whose application_name is app waits
// on a heavyweight lock while running a statement that matches pattern.
func waitForLockWait(t *testing.T, conn *pgx.Conn, app, pattern string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := queryInt(t, conn, `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1
				AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE $2`, app, pattern)
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s backend waited on a lock running %q within 60s", app, pattern)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Retention keeps the checkpoint just created even when another checkpoint
// looks newer: created_at is the transaction's start, not its commit.
func TestCheckpointRetentionKeepsNewCheckpoint(t *testing.T) {
	t.Parallel()

	// Process A starts first; B starts later and commits while A's copy is
	// held back by a trigger; A's retention step then runs with B's
	// checkpoint, stamped later than A's, already committed.
	t.Run("LaterStartedCommitsFirst", func(t *testing.T) {
		t.Parallel()
		dsn := testdb.DSN(t)
		admin := testdb.Conn(t, dsn)
		if _, err := admin.Exec(bg, `
CREATE FUNCTION hold_slow_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('application_name') = 'pgstate_slow' THEN
        PERFORM pg_advisory_xact_lock_shared(4242);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER hold_slow_checkpoint BEFORE INSERT ON state_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION hold_slow_checkpoint();`); err != nil {
			t.Fatal(err)
		}
		open := func(app string) *state.Postgres {
			cfg := state.DefaultConfig(dsn + "&application_name=" + app)
			cfg.MinConns = 0
			cfg.MaxConns = 2
			cfg.CheckpointRetention = 1
			return testdb.OpenConfig(t, cfg)
		}
		slow, fast := open("pgstate_slow"), open("pgstate_fast")
		if err := fast.Put(bg, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(bg, `SELECT pg_advisory_lock(4242)`); err != nil {
			t.Fatal(err)
		}
		type result struct {
			id  uuid.UUID
			err error
		}
		done := make(chan result, 1)
		go func() {
			id, err := slow.CreateCheckpoint(context.Background())
			done <- result{id, err}
		}()
		waitForLockWait(t, admin, "pgstate_slow", "%state_checkpoints%")
		idB, err := fast.CreateCheckpoint(bg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Exec(bg, `SELECT pg_advisory_unlock(4242)`); err != nil {
			t.Fatal(err)
		}
		a := <-done
		if a.err != nil {
			t.Fatalf("CreateCheckpoint of A: %v", a.err)
		}
		ids := checkpointIDs(t, fast)
		if len(ids) != 1 || ids[0] != a.id {
			t.Fatalf("checkpoints after A (%s) committed after B (%s) with retention 1: %v, want only A's", a.id, idB, ids)
		}
		if err := fast.RestoreCheckpoint(bg, a.id); err != nil {
			t.Fatalf("RestoreCheckpoint of the id CreateCheckpoint returned: %v", err)
		}
	})

	// A clock stepped back makes the new checkpoint look older than the
	// existing ones; set the existing ones in the future to the same effect.
	t.Run("ClockStepsBack", func(t *testing.T) {
		t.Parallel()
		for _, retention := range []int{1, 2} {
			s := testdb.Open(t, func(c *state.Config) { c.CheckpointRetention = retention })
			if err := s.Put(bg, []byte("k"), []byte("v")); err != nil {
				t.Fatal(err)
			}
			var older []uuid.UUID
			for range 3 {
				id, err := s.CreateCheckpoint(bg)
				if err != nil {
					t.Fatal(err)
				}
				older = append(older, id)
			}
			if _, err := s.Pool().Exec(bg, `UPDATE state_checkpoints SET created_at = created_at + interval '1 hour'`); err != nil {
				t.Fatal(err)
			}
			id, err := s.CreateCheckpoint(bg)
			if err != nil {
				t.Fatal(err)
			}
			ids := checkpointIDs(t, s)
			if len(ids) != retention {
				t.Fatalf("retention %d: %d checkpoints left: %v", retention, len(ids), ids)
			}
			found := false
			for _, got := range ids {
				found = found || got == id
			}
			if !found {
				t.Fatalf("retention %d: the new checkpoint %s was deleted; left: %v", retention, id, ids)
			}
			// The others kept are the newest of the rest.
			if retention == 2 && ids[0] != older[2] {
				t.Fatalf("retention 2: kept %v, want the new one and %s", ids, older[2])
			}
		}
	})
}
