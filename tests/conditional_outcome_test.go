package tests

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// A conditional write whose reply is lost after the server committed it
// must not be retried into a false mismatch, nor reported as a plain
// failure: the caller learns that the outcome is unknown, and the data
// shows it committed.
func TestConditionalWriteReplyLost(t *testing.T) {
	t.Parallel()
	proxy, s := proxiedStore(t, testdb.DSN(t))
	ctx := context.Background()

	cases := []struct {
		name  string
		write func(key []byte, version int64) error
		check func(t *testing.T, key []byte)
	}{
		{"PutIfVersion", func(key []byte, version int64) error {
			_, err := s.PutEntry(ctx, key, []byte("new"), state.IfVersion(version), state.WithPrevEntry())
			return err
		}, func(t *testing.T, key []byte) {
			e, ok, err := s.GetEntry(ctx, key)
			if err != nil || !ok || string(e.Value) != "new" || e.Version != 2 {
				t.Fatalf("entry = %+v (found %v, %v); want the write committed once, at version 2", e, ok, err)
			}
		}},
		{"DeleteIfVersion", func(key []byte, version int64) error {
			_, err := s.DeleteEntry(ctx, key, state.IfVersion(version), state.WithPrevEntry())
			return err
		}, func(t *testing.T, key []byte) {
			if ok, err := s.Contains(ctx, key); err != nil || ok {
				t.Fatalf("key still there (%v): the delete should have committed", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Serial: the proxy's one-shot cut is shared.
			marker := "reply-marker-" + tc.name
			key := []byte("k-" + tc.name)
			if err := s.Put(ctx, key, []byte(marker)); err != nil {
				t.Fatal(err)
			}
			// The reply carries the previous value, so the proxy drops
			// exactly that reply; the server flushes it only with
			// ReadyForQuery, after the commit.
			proxy.cutAfterReply(marker)
			err := tc.write(key, 1)
			if !errors.Is(err, state.ErrOutcomeUnknown) {
				t.Fatalf("err = %v, want ErrOutcomeUnknown", err)
			}
			if errors.Is(err, state.ErrVersionMismatch) {
				t.Fatalf("err = %v also claims a mismatch", err)
			}
			if proxy.cut.Load() == 0 {
				t.Fatal("the proxy never cut the reply")
			}
			proxy.cut.Store(0)
			tc.check(t, key)
		})
	}
}

// A conditional write whose session is terminated while the statement runs
// was aborted by the server, which says so (57P01): running it again is
// safe, and it is applied exactly once.
func TestConditionalWriteSessionKilled(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	cfg := testdb.Config(t)
	cfg.DSN = dsn
	s := testdb.OpenConfig(t, cfg)
	admin := testdb.Conn(t, dsn)
	ctx := context.Background()
	if err := s.Put(ctx, []byte("slow"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	// Every update waits for an advisory lock the test holds, so that the
	// session can be killed in the middle of the statement.
	if _, err := admin.Exec(ctx, `
CREATE FUNCTION wait_for_test() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$;
CREATE TRIGGER wait_for_test BEFORE UPDATE ON state_entries FOR EACH ROW EXECUTE FUNCTION wait_for_test();
SELECT pg_advisory_lock(4242);`); err != nil {
		t.Fatal(err)
	}
	retries := s.Stats().Retries
	var wg sync.WaitGroup
	var res state.WriteResult
	var werr error
	wg.Go(func() {
		res, werr = s.PutEntry(ctx, []byte("slow"), []byte("v2"), state.IfVersion(1))
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		var n int64
		if err := admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the conditional put never reached the trigger")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock(4242)`); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if werr != nil || res.Version != 2 {
		t.Fatalf("PutEntry = %+v, %v; want it retried and applied at version 2", res, werr)
	}
	if got := s.Stats().Retries - retries; got < 1 {
		t.Fatalf("%d retries, want the aborted attempt retried", got)
	}
	e, ok, err := s.GetEntry(ctx, []byte("slow"))
	if err != nil || !ok || string(e.Value) != "v2" || e.Version != 2 {
		t.Fatalf("entry = %+v (found %v, %v); want v2 at version 2, written once", e, ok, err)
	}
}

// A transaction whose COMMIT reply is lost is not run again (it may have
// committed) and says that its outcome is unknown; one whose session dies
// before COMMIT was sent certainly did not commit and runs again.
func TestTransactLostConnection(t *testing.T) {
	t.Parallel()
	base := testdb.DSN(t)
	proxy, s := proxiedStore(t, base)
	admin := testdb.Conn(t, base)
	ctx := context.Background()

	t.Run("CommitReplyLost", func(t *testing.T) {
		calls := 0
		proxy.cutAfterReply("COMMIT\x00")
		err := s.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
			calls++
			return tx.Put(ctx, []byte("committed"), []byte("once"))
		})
		if !errors.Is(err, state.ErrOutcomeUnknown) {
			t.Fatalf("err = %v, want ErrOutcomeUnknown (calls %d, cut %d)", err, calls, proxy.cut.Load())
		}
		if calls != 1 || proxy.cut.Load() != 1 {
			t.Fatalf("fn ran %d times, proxy cut %d replies; want 1 and 1", calls, proxy.cut.Load())
		}
		if v, ok, err := s.Get(ctx, []byte("committed")); err != nil || !ok || string(v) != "once" {
			t.Fatalf("Get = %q, %v, %v; the server committed the transaction", v, ok, err)
		}
	})

	t.Run("SessionKilledBeforeCommit", func(t *testing.T) {
		calls := 0
		err := s.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
			calls++
			if err := tx.Put(ctx, []byte("retried"), []byte("v")); err != nil {
				return err
			}
			if calls == 1 {
				var pid uint32
				row := tx.(*state.PostgresTx).Tx().QueryRow(ctx, "SELECT pg_backend_pid()")
				if err := row.Scan(&pid); err != nil {
					return err
				}
				if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
					return err
				}
				// The next statement meets the dead session.
				_, _, err := tx.Get(ctx, []byte("retried"))
				return err
			}
			return nil
		})
		if err != nil || calls != 2 {
			t.Fatalf("Transact = %v after %d calls; want success on the second", err, calls)
		}
		if v, ok, _ := s.Get(ctx, []byte("retried")); !ok || string(v) != "v" {
			t.Fatalf("Get = %q, %v; want the second attempt's write", v, ok)
		}
	})
}
