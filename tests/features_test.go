package tests

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

func TestLargeValues(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, nil)
	for _, size := range []int{1 << 20, 16 << 20} {
		t.Run(fmt.Sprintf("%dMiB", size>>20), func(t *testing.T) {
			value := make([]byte, size)
			if _, err := rand.Read(value); err != nil {
				t.Fatal(err)
			}
			key := []byte(fmt.Sprintf("big/%d", size))
			if err := p.Put(bg, key, value); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, ok, err := p.Get(bg, key)
			if err != nil || !ok || !bytes.Equal(got, value) {
				t.Fatalf("Get: %d bytes, %v, %v", len(got), ok, err)
			}
			cp, err := p.CreateCheckpoint(bg)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Delete(bg, key); err != nil {
				t.Fatal(err)
			}
			if err := p.RestoreCheckpoint(bg, cp); err != nil {
				t.Fatal(err)
			}
			if got, _, _ := p.Get(bg, key); !bytes.Equal(got, value) {
				t.Fatalf("value changed by checkpoint and restore")
			}
		})
	}
}

func TestMaxValueSizeIsConfigurable(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, func(c *state.Config) { c.MaxValueSize = 1 << 20 })
	if err := p.Put(bg, []byte("k"), make([]byte, 1<<20)); err != nil {
		t.Fatalf("Put at the limit: %v", err)
	}
	err := p.Put(bg, []byte("k"), make([]byte, 1<<20+1))
	if !errors.Is(err, state.ErrValueTooLarge) {
		t.Fatalf("Put over the limit = %v", err)
	}
	if err := p.BatchPut(bg, []state.Entry{{Key: []byte("b"), Value: make([]byte, 1<<20+1)}}); !errors.Is(err, state.ErrValueTooLarge) {
		t.Fatalf("BatchPut over the limit = %v", err)
	}
	if e, _, _ := p.GetEntry(bg, []byte("k")); e.Version != 1 {
		t.Fatalf("rejected Put wrote: version %d", e.Version)
	}
}

func TestCleanupDeletesInBoundedBatches(t *testing.T) {
	t.Parallel()
	const batch, expired, live = 100, 1050, 20
	p := testdb.Open(t, func(c *state.Config) { c.CleanupBatchSize = batch })
	var entries []state.Entry
	for i := range expired {
		entries = append(entries, state.Entry{Key: []byte(fmt.Sprintf("x%05d", i)), Value: []byte("v"), TTL: time.Millisecond})
	}
	for i := range live {
		entries = append(entries, state.Entry{Key: []byte(fmt.Sprintf("l%05d", i)), Value: []byte("v")})
	}
	if err := p.BatchPut(bg, entries); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	before := p.Stats().Queries
	n, err := p.CleanupExpired(bg)
	if err != nil || n != expired {
		t.Fatalf("CleanupExpired = %d, %v; want %d", n, err, expired)
	}
	// 10 full batches and one partial: eleven statements, none larger
	// than the batch size.
	if q := p.Stats().Queries - before; q != expired/batch+1 {
		t.Fatalf("cleanup used %d statements, want %d", q, expired/batch+1)
	}
	if c, _ := p.Count(bg); c != live {
		t.Fatalf("Count after cleanup = %d", c)
	}
	conn := testdb.Conn(t, p.Config().DSN)
	if rows := queryInt(t, conn, `SELECT count(*) FROM state_entries`); rows != live {
		t.Fatalf("%d rows left in the table, want %d", rows, live)
	}
}

// TestCleanupProcedure runs the SQL procedure operators schedule in the
// database.
func TestCleanupProcedure(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, nil)
	var entries []state.Entry
	for i := range 250 {
		entries = append(entries, state.Entry{Key: []byte(fmt.Sprint(i)), Value: []byte("v"), TTL: time.Millisecond})
	}
	entries = append(entries, state.Entry{Key: []byte("stay"), Value: []byte("v")})
	if err := p.BatchPut(bg, entries); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	conn := testdb.Conn(t, p.Config().DSN)
	if n := queryInt(t, conn, `CALL state_cleanup_expired(100)`); n != 250 {
		t.Fatalf("CALL state_cleanup_expired(100) deleted %d, want 250", n)
	}
	if rows := queryInt(t, conn, `SELECT count(*) FROM state_entries`); rows != 1 {
		t.Fatalf("%d rows left", rows)
	}
}

// cleanupLockSQL takes the same advisory lock as the background cleaner of
// the store in schema public.
const cleanupLockSQL = `SELECT pg_advisory_lock(hashtextextended('pgstate.cleanup.public', 0))`

func TestBackgroundCleanerRunsInOneProcessAtATime(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	open := func() *state.Postgres {
		cfg := state.DefaultConfig(dsn)
		cfg.MaxConns = 2
		cfg.CleanupInterval = 20 * time.Millisecond
		return testdb.OpenConfig(t, cfg)
	}
	a, b := open(), open()
	writeExpired := func(prefix string, n int) {
		t.Helper()
		var entries []state.Entry
		for i := range n {
			entries = append(entries, state.Entry{Key: []byte(fmt.Sprintf("%s%d", prefix, i)), Value: []byte("v"), TTL: time.Millisecond})
		}
		if err := a.BatchPut(bg, entries); err != nil {
			t.Fatal(err)
		}
	}
	conn := testdb.Conn(t, dsn)
	rows := func() int64 { return queryInt(t, conn, `SELECT count(*) FROM state_entries`) }

	// While a third session holds the cleanup lock, neither store cleans.
	holder := testdb.Conn(t, dsn)
	if _, err := holder.Exec(bg, cleanupLockSQL); err != nil {
		t.Fatal(err)
	}
	// pg_advisory_lock waited for any round already under way, so none runs
	// from here until the unlock.
	runsBefore := a.Stats().CleanupRuns + b.Stats().CleanupRuns
	skipsA, skipsB := a.Stats().CleanupSkips, b.Stats().CleanupSkips
	writeExpired("held/", 300)
	waitFor(t, 30*time.Second, "both stores to skip rounds", func() bool {
		return a.Stats().CleanupSkips >= skipsA+3 && b.Stats().CleanupSkips >= skipsB+3
	})
	if n := rows(); n != 300 {
		t.Fatalf("%d rows while the lock was held elsewhere, want 300", n)
	}
	if a.Stats().CleanupRuns+b.Stats().CleanupRuns != runsBefore {
		t.Fatal("a cleanup round ran while another session held the lock")
	}
	if _, err := holder.Exec(bg, `SELECT pg_advisory_unlock_all()`); err != nil {
		t.Fatal(err)
	}
	// The cleaner counts a round's deletions after the database has
	// applied them, so wait for both.
	waitFor(t, 30*time.Second, "the expired rows to be cleaned", func() bool {
		return rows() == 0 && a.Stats().CleanedUp+b.Stats().CleanedUp >= 300
	})
	if got := a.Stats().CleanedUp + b.Stats().CleanedUp; got != 300 {
		t.Fatalf("the two cleaners report %d deletions, want 300", got)
	}

	// Both keep competing: every round either runs or sees the other's lock.
	writeExpired("again/", 200)
	waitFor(t, 30*time.Second, "the second wave to be cleaned", func() bool {
		return rows() == 0 && a.Stats().CleanedUp+b.Stats().CleanedUp >= 500
	})
	sa, sb := a.Stats(), b.Stats()
	if sa.CleanedUp+sb.CleanedUp != 500 {
		t.Fatalf("cleaned %d in all, want 500", sa.CleanedUp+sb.CleanedUp)
	}
	t.Logf("store a: %d rounds run, %d skipped; store b: %d run, %d skipped", sa.CleanupRuns, sa.CleanupSkips, sb.CleanupRuns, sb.CleanupSkips)

	// Close stops the cleaner.
	a.Close()
	b.Close()
	if _, err := conn.Exec(bg, `INSERT INTO state_entries (key, value, expires_at) VALUES ('\x01', '', now() - interval '1 second')`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if n := rows(); n != 1 {
		t.Fatalf("an expired row was cleaned after Close (%d rows)", n)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCheckpointRetentionKeepsTheNewest(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, func(c *state.Config) { c.CheckpointRetention = 2 })
	var ids []uuid.UUID
	for i := range 4 {
		if err := p.Put(bg, []byte(fmt.Sprint(i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
		id, err := p.CreateCheckpointWithMetadata(bg, map[string]int{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	list, err := p.ListCheckpoints(bg)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != ids[3] || list[1].ID != ids[2] {
		t.Fatalf("kept %v, want the last two of %v", list, ids)
	}
	if list[0].Rows != 4 || string(list[0].Metadata) != `{"n": 3}` {
		t.Fatalf("newest checkpoint: %d rows, metadata %s", list[0].Rows, list[0].Metadata)
	}
	conn := testdb.Conn(t, p.Config().DSN)
	// Retention removed the old checkpoints' entries too (4 + 3 remain).
	if n := queryInt(t, conn, `SELECT count(*) FROM state_checkpoint_entries`); n != 7 {
		t.Fatalf("%d checkpoint entries remain, want 7", n)
	}
	if err := p.RestoreCheckpoint(bg, ids[0]); !errors.Is(err, state.ErrCheckpointNotFound) {
		t.Fatalf("restoring a checkpoint dropped by retention = %v", err)
	}
}

// TestRestoreIsAtomicForReaders restores back and forth between two
// checkpoints while readers fetch every key in one statement: each read sees
// all keys of one checkpoint or the other, never a mix or a partial set.
func TestRestoreIsAtomicForReaders(t *testing.T) {
	t.Parallel()
	const keys = 500
	p := testdb.Open(t, func(c *state.Config) { c.MaxConns = 6 })
	all := make([][]byte, keys)
	fill := func(v string) {
		entries := make([]state.Entry, keys)
		for i := range entries {
			all[i] = []byte(fmt.Sprintf("k%04d", i))
			entries[i] = state.Entry{Key: all[i], Value: []byte(v)}
		}
		if err := p.BatchPut(bg, entries); err != nil {
			t.Fatal(err)
		}
	}
	fill("A")
	cpA, err := p.CreateCheckpoint(bg)
	if err != nil {
		t.Fatal(err)
	}
	fill("B")
	cpB, err := p.CreateCheckpoint(bg)
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Go(func() {
			for !stop.Load() {
				got, err := p.GetMany(bg, all)
				if err != nil {
					errs <- err
					return
				}
				if len(got) != keys {
					errs <- fmt.Errorf("a reader saw %d keys, want %d", len(got), keys)
					return
				}
				first := string(got[string(all[0])])
				for k, v := range got {
					if string(v) != first {
						errs <- fmt.Errorf("a reader saw a mix: %s=%s but k0000=%s", k, v, first)
						return
					}
				}
				reads.Add(1)
			}
		})
	}
	// At least 20 restores, and on until 10 reads have overlapped them (the
	// readers may be slow to start on a busy machine).
	deadline := time.Now().Add(60 * time.Second)
	restores := 0
	for ; restores < 20 || (reads.Load() < 10 && time.Now().Before(deadline) && len(errs) == 0); restores++ {
		id := cpA
		if restores%2 == 1 {
			id = cpB
		}
		if err := p.RestoreCheckpoint(bg, id); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if reads.Load() < 10 {
		t.Fatalf("only %d reads overlapped the restores", reads.Load())
	}
	t.Logf("%d consistent reads during %d restores", reads.Load(), restores)
}

// TestCleanupSparesARowRewrittenMeanwhile holds a rewrite of an expired row
// open while cleanup runs: cleanup picks the row, waits for its lock, and
// must then leave the new, unexpiring version alone.
func TestCleanupSparesARowRewrittenMeanwhile(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, nil)
	if err := p.PutWithTTL(bg, []byte("x"), []byte("old"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	writer := testdb.Conn(t, p.Config().DSN)
	tx, err := writer.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(bg)
	if _, err := tx.Exec(bg, `UPDATE state_entries SET value = 'fresh', expires_at = NULL WHERE key = 'x'`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var deleted int64
	go func() {
		var err error
		deleted, err = p.CleanupExpired(bg)
		done <- err
	}()
	watcher := testdb.Conn(t, p.Config().DSN)
	waitFor(t, 30*time.Second, "cleanup to wait for the row lock", func() bool {
		return queryInt(t, watcher, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%EntriesDeleteExpiredBatch%'`) == 1
	})
	if err := tx.Commit(bg); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("CleanupExpired: %v", err)
	}
	if deleted != 0 {
		t.Fatalf("cleanup deleted %d rows", deleted)
	}
	if v, ok, err := p.Get(bg, []byte("x")); err != nil || !ok || string(v) != "fresh" {
		t.Fatalf("the rewritten entry = %q, %v, %v; want fresh", v, ok, err)
	}
}
