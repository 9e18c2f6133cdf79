package tests

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// sqlCleanupLockHolders lists the backends holding the background cleaner's
// advisory lock of the current schema ("public"), with their state. A
// bigint key is split over classid (high half) and objid (low half).
const sqlCleanupLockHolders = `
SELECT a.pid, a.state, a.state_change
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('pgstate.cleanup.' || current_schema(), 0)`

type lockHolder struct {
	pid         int32
	state       string
	stateChange time.Time
}

func cleanupLockHolders(t *testing.T, conn *pgx.Conn) []lockHolder {
	t.Helper()
	rows, err := conn.Query(bg, sqlCleanupLockHolders)
	if err != nil {
		t.Fatal(err)
	}
	holders, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (lockHolder, error) {
		var h lockHolder
		var st *string
		err := r.Scan(&h.pid, &st, &h.stateChange)
		if st != nil {
			h.state = *st
		}
		return h, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return holders
}

// The background cleaner's lock lives no longer than a transaction: no
// connection ever holds it while idle outside a transaction, which is the
// state in which a connection goes back to the pool. A session-level lock
// shows up there between the cleaner's statements.
func TestCleanerLockNeverOutlivesItsTransaction(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, func(c *state.Config) {
		c.CleanupInterval = 5 * time.Millisecond
		c.CleanupBatchSize = 2
	})
	// The watcher is a separate session of the store's database.
	w := testdb.Conn(t, s.Config().DSN)
	if _, err := w.Exec(bg, `
		INSERT INTO state_entries (key, value, expires_at)
		SELECT convert_to('k' || g, 'UTF8'), 'v', now() - interval '1 minute'
		FROM generate_series(1, 3000) AS g`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(120 * time.Second)
	seen := 0
	for {
		for _, h := range cleanupLockHolders(t, w) {
			seen++
			if h.state != "idle" {
				continue
			}
			// pg_locks and pg_stat_activity are read at slightly different
			// moments: confirm that the same idle period still holds it.
			for _, again := range cleanupLockHolders(t, w) {
				if again.pid == h.pid && again.state == "idle" && again.stateChange.Equal(h.stateChange) {
					t.Fatalf("backend %d holds the cleanup lock while idle outside a transaction (as a pooled connection)", h.pid)
				}
			}
		}
		left := queryInt(t, w, `SELECT count(*) FROM state_entries`)
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d expired entries left after 120s; cleaner stats %+v", left, s.Stats())
		}
	}
	if seen == 0 {
		t.Fatal("the cleaner's lock was never observed held")
	}
	st := s.Stats()
	t.Logf("lock observed held %d times; cleanup runs %d, cleaned %d", seen, st.CleanupRuns, st.CleanedUp)
}

// A round cut short by its deadline while its delete waits for a lock is
// cancelled between taking the cleanup lock and giving it back; afterwards
// the lock is free and the backlog is cleaned.
func TestCleanerTimedOutRoundReleasesLock(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	admin := testdb.Conn(t, dsn)
	if _, err := admin.Exec(bg, `
CREATE FUNCTION hold_cleanup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(4343);
    RETURN NULL;
END;
$$;
CREATE TRIGGER hold_cleanup BEFORE DELETE ON state_entries
    FOR EACH STATEMENT EXECUTE FUNCTION hold_cleanup();
INSERT INTO state_entries (key, value, expires_at)
SELECT convert_to('k' || g, 'UTF8'), 'v', now() - interval '1 minute'
FROM generate_series(1, 100) AS g;
SELECT pg_advisory_lock(4343);`); err != nil {
		t.Fatal(err)
	}
	s := testdb.Open(t, func(c *state.Config) {
		c.DSN = dsn
		c.QueryTimeout = 300 * time.Millisecond
		c.CleanupInterval = 20 * time.Millisecond
	})
	deadline := time.Now().Add(60 * time.Second)
	for s.Stats().Errors < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no timed-out cleanup rounds: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := admin.Exec(bg, `SELECT pg_advisory_unlock(4343)`); err != nil {
		t.Fatal(err)
	}
	for queryInt(t, admin, `SELECT count(*) FROM state_entries`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("expired entries left after timed-out rounds: %+v", s.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Only idle connections are left; none holds the lock.
	for _, h := range cleanupLockHolders(t, admin) {
		if h.state == "idle" {
			for _, again := range cleanupLockHolders(t, admin) {
				if again.pid == h.pid && again.state == "idle" && again.stateChange.Equal(h.stateChange) {
					t.Fatalf("backend %d holds the cleanup lock while idle", h.pid)
				}
			}
		}
	}
}
