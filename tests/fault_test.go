package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/state"
)

// ackLog records the outcome of every write of a fault test.
type ackLog struct {
	mu         sync.Mutex
	acked      map[string][]byte // writes that returned nil
	attempted  map[string][]byte // writes that returned an error: outcome unknown
	unexpected []error           // failures that were not ErrUnavailable
	maxLatency time.Duration
}

func newAckLog() *ackLog {
	return &ackLog{acked: map[string][]byte{}, attempted: map[string][]byte{}}
}

func (l *ackLog) record(key, value []byte, err error, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maxLatency = max(l.maxLatency, took)
	if err == nil {
		l.acked[string(key)] = value
		return
	}
	l.attempted[string(key)] = value
	if !errors.Is(err, state.ErrUnavailable) && len(l.unexpected) < 5 {
		l.unexpected = append(l.unexpected, err)
	}
}

func (l *ackLog) counts() (acked, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), len(l.attempted)
}

// verify checks, through s, that every acknowledged write is there with its
// value and that a failed write left either nothing or exactly its value.
func (l *ackLog) verify(t *testing.T, s state.Store) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.unexpected {
		t.Errorf("a failed write returned %v, want an error wrapping ErrUnavailable", err)
	}
	keys := make([][]byte, 0, len(l.acked)+len(l.attempted))
	for k := range l.acked {
		keys = append(keys, []byte(k))
	}
	for k := range l.attempted {
		keys = append(keys, []byte(k))
	}
	got := map[string][]byte{}
	for start := 0; start < len(keys); start += 1000 {
		part, err := s.GetMany(context.Background(), keys[start:min(len(keys), start+1000)])
		if err != nil {
			t.Fatalf("GetMany after the faults: %v", err)
		}
		for k, v := range part {
			got[k] = v
		}
	}
	lost := 0
	for k, want := range l.acked {
		if v, ok := got[k]; !ok || !bytes.Equal(v, want) {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged write %q: read back %q (found %v), want %q", k, v, ok, want)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost", lost, len(l.acked))
	}
	for k, want := range l.attempted {
		if v, ok := got[k]; ok && !bytes.Equal(v, want) {
			t.Errorf("failed write %q left %q, want nothing or %q", k, v, want)
		}
	}
}

// TestFaultConnectionsKilled: 8 writers put 5,000 keys while every backend
// of the store's database is terminated every 20 ms.
func TestFaultConnectionsKilled(t *testing.T) {
	t.Parallel()
	env := newFaultEnv(t, pgcluster.Options{})
	db := env.database(t, "app")
	s := env.open(t, db, nil)
	queryTimeout := s.Config().QueryTimeout

	const writers, total = 8, 5000
	log := newAckLog()
	stopKiller := env.killer(t, db, 20*time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < total; i += writers {
				key := fmt.Appendf(nil, "k%05d", i)
				value := fmt.Appendf(nil, "v%05d-%d", i, rand.Int64())
				t0 := time.Now()
				err := s.Put(context.Background(), key, value)
				log.record(key, value, err, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	kills, rounds := stopKiller()

	acked, failed := log.counts()
	t.Logf("connections killed: %d writes in %v: %d acknowledged, %d failed; %d backends terminated in %d rounds; %d retries; slowest write %v",
		total, elapsed.Round(time.Millisecond), acked, failed, kills, rounds, s.Stats().Retries, log.maxLatency.Round(time.Millisecond))
	if acked+failed != total {
		t.Fatalf("%d outcomes recorded, want %d", acked+failed, total)
	}
	if kills == 0 {
		t.Fatal("the killer terminated no backend: the test exercised nothing")
	}
	if log.maxLatency > queryTimeout+time.Second {
		t.Errorf("slowest write took %v, more than QueryTimeout (%v)", log.maxLatency, queryTimeout)
	}
	// The same store, not reopened, serves every check below.
	stale := awaitHealthy(t, s)
	t.Logf("after the kills stopped: %d health checks failed on stale pooled connections before one passed", stale)
	log.verify(t, s)
	if err := s.Put(context.Background(), []byte("after"), []byte("ok")); err != nil {
		t.Fatalf("Put after the kills: %v", err)
	}
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatalf("Count after the kills: %v", err)
	}
	if n < int64(acked)+1 || n > int64(total)+1 {
		t.Fatalf("Count = %d, want between %d and %d", n, acked+1, total+1)
	}
}

// TestFaultServerRestart restarts the cluster under load, then stops it to
// probe the outage, then starts it again.
func TestFaultServerRestart(t *testing.T) {
	t.Parallel()
	env := newFaultEnv(t, pgcluster.Options{})
	db := env.database(t, "app")
	s := env.open(t, db, func(c *state.Config) {
		c.ConnectTimeout = time.Second
		c.QueryTimeout = 3 * time.Second
		c.MaxRetries = 2
		c.RetryBackoff = 20 * time.Millisecond
	})
	ctx := context.Background()

	log := newAckLog()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; loadCtx.Err() == nil; i++ {
				key := fmt.Appendf(nil, "w%d-%07d", w, i)
				value := fmt.Appendf(nil, "%d", rand.Int64())
				t0 := time.Now()
				err := s.Put(ctx, key, value)
				log.record(key, value, err, time.Since(t0))
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	defer func() { stopLoad(); wg.Wait() }()

	time.Sleep(500 * time.Millisecond)
	t0 := time.Now()
	if err := env.cluster.Restart(); err != nil {
		t.Fatal(err)
	}
	restartTook := time.Since(t0)
	time.Sleep(500 * time.Millisecond)
	ackedAfterRestart, failedAfterRestart := log.counts()

	// Outage: every probe must fail fast with ErrUnavailable.
	outageStart := time.Now()
	if err := env.cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	var slowestProbe time.Duration
	probes := []struct {
		name string
		op   func() error
	}{
		{"Put", func() error { return s.Put(ctx, []byte("probe"), []byte("x")) }},
		{"Get", func() error { _, _, err := s.Get(ctx, []byte("probe")); return err }},
		{"BatchPut", func() error { return s.BatchPut(ctx, []state.Entry{{Key: []byte("probe"), Value: []byte("y")}}) }},
		{"CreateCheckpoint", func() error { _, err := s.CreateCheckpoint(ctx); return err }},
		{"HealthCheck", func() error { return s.HealthCheck(ctx) }},
	}
	for _, p := range probes {
		t1 := time.Now()
		err := p.op()
		took := time.Since(t1)
		slowestProbe = max(slowestProbe, took)
		if !errors.Is(err, state.ErrUnavailable) {
			t.Errorf("%s during the outage: %v, want ErrUnavailable", p.name, err)
		}
		if took > 2*time.Second {
			t.Errorf("%s during the outage took %v, want a fast failure", p.name, took)
		}
	}
	if err := env.cluster.Start(); err != nil {
		t.Fatal(err)
	}
	startedAt := time.Now()
	var healthFailures int
	for {
		err := s.HealthCheck(ctx)
		if err == nil {
			break
		}
		healthFailures++
		if time.Since(startedAt) > 15*time.Second {
			t.Fatalf("HealthCheck still failing 15s after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	outage := time.Since(outageStart)
	recovery := time.Since(startedAt)
	ackedBeforeRecovery, _ := log.counts()
	// The writers recover by themselves: wait for one more acknowledgement.
	waitFor(t, 30*time.Second, "a write acknowledged after the recovery", func() bool {
		acked, _ := log.counts()
		return acked > ackedBeforeRecovery
	})
	stopLoad()
	wg.Wait()

	acked, failed := log.counts()
	t.Logf("server restart: pg_ctl restart took %v (%d acknowledged, %d failed by then); outage %v (stop to first healthy check), slowest probe during it %v; healthy %v after start (%d failed checks); overall %d writes acknowledged, %d failed; slowest write %v",
		restartTook.Round(time.Millisecond), ackedAfterRestart, failedAfterRestart, outage.Round(time.Millisecond),
		slowestProbe.Round(time.Millisecond), recovery.Round(time.Millisecond), healthFailures, acked, failed, log.maxLatency.Round(time.Millisecond))
	if acked <= ackedBeforeRecovery {
		t.Errorf("no write succeeded after the server came back (%d acknowledged before, %d after)", ackedBeforeRecovery, acked)
	}
	if log.maxLatency > s.Config().QueryTimeout+time.Second {
		t.Errorf("slowest write took %v, more than QueryTimeout", log.maxLatency)
	}
	log.verify(t, s)
}

// TestFaultLockTimeoutAndCancel blocks operations on a row lock held by
// another transaction.
func TestFaultLockTimeoutAndCancel(t *testing.T) {
	t.Parallel()
	env := newFaultEnv(t, pgcluster.Options{})
	db := env.database(t, "app")
	const queryTimeout = 500 * time.Millisecond
	s := env.open(t, db, func(c *state.Config) {
		c.QueryTimeout = queryTimeout
		c.MaxConns = 4
	})
	ctx := context.Background()
	if err := s.Put(ctx, []byte("locked"), []byte("before")); err != nil {
		t.Fatal(err)
	}
	cp, err := s.CreateCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	holder := env.conn(t, db)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM state_entries WHERE key = 'locked' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	ops := []struct {
		name string
		op   func(context.Context) error
	}{
		{"Put", func(ctx context.Context) error {
			return s.Put(ctx, []byte("locked"), []byte("after-"+time.Now().String()))
		}},
		{"Delete", func(ctx context.Context) error { return s.Delete(ctx, []byte("locked")) }},
		{"BatchPut", func(ctx context.Context) error {
			return s.BatchPut(ctx, []state.Entry{{Key: []byte("free"), Value: []byte("x")}, {Key: []byte("locked"), Value: []byte("batch")}})
		}},
		{"RestoreCheckpoint", func(ctx context.Context) error { return s.RestoreCheckpoint(ctx, cp) }},
	}
	modes := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		want    error
		expect  time.Duration // when the call should return
		latency time.Duration // allowed lateness
	}{
		{"QueryTimeout", func() (context.Context, context.CancelFunc) { return ctx, func() {} },
			context.DeadlineExceeded, queryTimeout, time.Second},
		{"CallerDeadline", func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 150*time.Millisecond) },
			context.DeadlineExceeded, 150 * time.Millisecond, time.Second},
		{"Cancelled", func() (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(ctx)
			time.AfterFunc(100*time.Millisecond, cancel)
			return c, cancel
		}, context.Canceled, 100 * time.Millisecond, time.Second},
	}
	for _, m := range modes {
		for _, o := range ops {
			t.Run(m.name+"/"+o.name, func(t *testing.T) {
				t0 := time.Now() // before the context, whose clock starts in m.ctx
				c, cancel := m.ctx()
				defer cancel()
				err := o.op(c)
				took := time.Since(t0)
				t.Logf("%s blocked on a row lock returned after %v: %v", o.name, took.Round(time.Millisecond), err)
				if !errors.Is(err, m.want) {
					t.Fatalf("got %v, want %v", err, m.want)
				}
				if took < m.expect-10*time.Millisecond || took > m.expect+m.latency {
					t.Fatalf("returned after %v, want about %v", took, m.expect)
				}
			})
		}
	}

	// The pool is healthy: other keys are served at once, while the lock is
	// still held.
	t0 := time.Now()
	if err := s.Put(ctx, []byte("other"), []byte("v")); err != nil {
		t.Fatalf("Put of another key while the lock is held: %v", err)
	}
	if err := s.HealthCheck(ctx); err != nil {
		t.Fatalf("HealthCheck while the lock is held: %v", err)
	}
	// The bound leaves room for opening a connection on a busy machine; a
	// call queued behind the lock would not return while the lock is held.
	if took := time.Since(t0); took > 2*time.Second {
		t.Errorf("unrelated operations took %v after the timeouts", took)
	}
	stat := s.Pool().Stat()
	orphans := scalar[int64](t, env.admin,
		`SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, db)
	t.Logf("after the timeouts: pool has %d connections (%d idle, max %d); %d server backends still wait on the lock although their clients gave up",
		stat.TotalConns(), stat.IdleConns(), stat.MaxConns(), orphans)
	if orphans != 0 {
		t.Errorf("%d backends still wait on the lock after their operations returned", orphans)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// No operation that returned an error may take effect once the lock is
	// released.
	time.Sleep(200 * time.Millisecond)
	if v, ok, err := s.Get(ctx, []byte("locked")); err != nil || !ok || string(v) != "before" {
		t.Fatalf("after the lock was released, locked = %q (found %v, %v), want the untouched value \"before\"", v, ok, err)
	}
	if _, ok, _ := s.Get(ctx, []byte("free")); ok {
		t.Fatal("a cancelled BatchPut wrote part of its batch")
	}
	if err := s.Put(ctx, []byte("locked"), []byte("final")); err != nil {
		t.Fatalf("Put after the lock is released: %v", err)
	}
	if v, ok, err := s.Get(ctx, []byte("locked")); err != nil || !ok || string(v) != "final" {
		t.Fatalf("Get(locked) = %q, %v, %v; want final", v, ok, err)
	}
}

// TestFaultAtomicity kills the connection in the middle of BatchPut,
// CreateCheckpoint and RestoreCheckpoint and counts the rows afterwards.
func TestFaultAtomicity(t *testing.T) {
	t.Parallel()
	env := newFaultEnv(t, pgcluster.Options{})
	const rows, size = 30000, 200

	t.Run("BatchPut", func(t *testing.T) {
		for _, retries := range []int{0, 3} {
			t.Run("Retries"+strconv.Itoa(retries), func(t *testing.T) {
				db := env.database(t, "batch"+strconv.Itoa(retries))
				s := env.open(t, db, func(c *state.Config) { c.MaxRetries = retries; c.QueryTimeout = 30 * time.Second })
				conn := env.conn(t, db)
				ctx := context.Background()
				fill(t, s, "k", rows, size, "old")
				// The batch rewrites every key and adds as many new ones; the
				// last key is row-locked by another transaction, so the batch
				// stops there with everything else already written, and is
				// killed in that state.
				last := fmt.Appendf(nil, "k%07d", rows-1)
				batch := make([]state.Entry, 0, 2*rows)
				for i := range rows {
					batch = append(batch, state.Entry{Key: fmt.Appendf(nil, "n%07d", i), Value: padded("new", size)})
				}
				for i := range rows {
					batch = append(batch, state.Entry{Key: fmt.Appendf(nil, "k%07d", i), Value: padded("new", size)})
				}
				tx, err := conn.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, "SELECT 1 FROM state_entries WHERE key = $1 FOR UPDATE", last); err != nil {
					t.Fatal(err)
				}
				result := make(chan error, 1)
				t0 := time.Now()
				go func() { result <- s.BatchPut(ctx, batch) }()
				killer := env.conn(t, "postgres")
				waited, err := env.killWhen(ctx, killer, db, "%unnest(%", true)
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
				err = <-result
				t.Logf("BatchPut of %d entries killed after %v while blocked on its last row (MaxRetries %d): returned after %v: %v",
					len(batch), waited.Round(time.Millisecond), retries, time.Since(t0).Round(time.Millisecond), err)
				total := scalar[int64](t, conn, "SELECT count(*) FROM state_entries")
				fresh := scalar[int64](t, conn, "SELECT count(*) FROM state_entries WHERE value LIKE 'new%'")
				if retries == 0 {
					if !errors.Is(err, state.ErrUnavailable) {
						t.Fatalf("BatchPut = %v, want ErrUnavailable", err)
					}
					if total != rows || fresh != 0 {
						t.Fatalf("after the killed batch: %d rows, %d new; want %d rows, 0 new", total, fresh, rows)
					}
					return
				}
				// With retries the batch is sent again and completes once the
				// lock is gone.
				if err != nil {
					t.Fatalf("BatchPut with retries = %v, want nil", err)
				}
				if total != 2*rows || fresh != 2*rows {
					t.Fatalf("after the retried batch: %d rows, %d new; want %d of each", total, fresh, 2*rows)
				}
			})
		}
	})

	t.Run("CreateCheckpoint", func(t *testing.T) {
		db := env.database(t, "create")
		s := env.open(t, db, func(c *state.Config) { c.MaxRetries = 0; c.QueryTimeout = 30 * time.Second })
		conn := env.conn(t, db)
		killer := env.conn(t, "postgres")
		ctx := context.Background()
		fill(t, s, "k", rows, size, "v")
		// No lock can stop the copy halfway, so the kill races it: poll
		// until the copy statement is seen running.
		killed := false
		for attempt := 1; attempt <= 5 && !killed; attempt++ {
			killCtx, cancel := context.WithCancel(ctx)
			kill := make(chan time.Duration, 1)
			go func() {
				waited, err := env.killWhen(killCtx, killer, db, "%INSERT INTO state_checkpoint_entries%", false)
				if err != nil {
					waited = -1
				}
				kill <- waited
			}()
			t0 := time.Now()
			id, err := s.CreateCheckpoint(ctx)
			took := time.Since(t0)
			cancel()
			waited := <-kill
			checkpoints := scalar[int64](t, conn, "SELECT count(*) FROM state_checkpoints")
			copied := scalar[int64](t, conn, "SELECT count(*) FROM state_checkpoint_entries")
			t.Logf("attempt %d: CreateCheckpoint returned after %v (kill after %v): %v; %d checkpoints, %d copied rows",
				attempt, took.Round(time.Millisecond), waited.Round(time.Millisecond), err, checkpoints, copied)
			if err != nil {
				killed = true
				if !errors.Is(err, state.ErrUnavailable) {
					t.Fatalf("CreateCheckpoint = %v, want ErrUnavailable", err)
				}
				if checkpoints != 0 || copied != 0 {
					t.Fatalf("killed CreateCheckpoint left %d checkpoints and %d copied rows, want none", checkpoints, copied)
				}
				continue
			}
			// The kill came too late: the checkpoint must then be whole.
			if checkpoints != 1 || copied != rows {
				t.Fatalf("completed checkpoint %s: %d checkpoints, %d rows; want 1 and %d", id, checkpoints, copied, rows)
			}
			if err := s.DeleteCheckpoint(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if !killed {
			t.Fatal("no attempt was killed while copying")
		}
	})

	t.Run("CreateCheckpointRetention", func(t *testing.T) {
		db := env.database(t, "retention")
		s := env.open(t, db, func(c *state.Config) {
			c.MaxRetries = 0
			c.QueryTimeout = 30 * time.Second
			c.CheckpointRetention = 1
		})
		conn := env.conn(t, db)
		ctx := context.Background()
		fill(t, s, "k", rows, size, "v")
		old, err := s.CreateCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Retention deletes the old checkpoint after copying the new one; a
		// key-share lock on the old header holds the transaction right there,
		// with the whole new copy written.
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT 1 FROM state_checkpoints WHERE id = $1 FOR KEY SHARE", old); err != nil {
			t.Fatal(err)
		}
		result := make(chan error, 1)
		go func() { _, err := s.CreateCheckpoint(ctx); result <- err }()
		waited, err := env.killWhen(ctx, env.conn(t, "postgres"), db, "%DELETE FROM state_checkpoints%", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		err = <-result
		checkpoints := scalar[int64](t, conn, "SELECT count(*) FROM state_checkpoints")
		copied := scalar[int64](t, conn, "SELECT count(*) FROM state_checkpoint_entries")
		oldRows := scalar[int64](t, conn, "SELECT count(*) FROM state_checkpoint_entries WHERE checkpoint_id = $1", old)
		t.Logf("CreateCheckpoint with retention killed after its copy (%v): %v; %d checkpoints, %d rows (%d of the old one)",
			waited.Round(time.Millisecond), err, checkpoints, copied, oldRows)
		if !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("CreateCheckpoint = %v, want ErrUnavailable", err)
		}
		if checkpoints != 1 || copied != rows || oldRows != rows {
			t.Fatalf("after the kill: %d checkpoints, %d rows, %d of the old one; want 1, %d, %d", checkpoints, copied, oldRows, rows, rows)
		}
	})

	t.Run("RestoreCheckpoint", func(t *testing.T) {
		db := env.database(t, "restore")
		s := env.open(t, db, func(c *state.Config) { c.MaxRetries = 0; c.QueryTimeout = 30 * time.Second })
		conn := env.conn(t, db)
		ctx := context.Background()
		fill(t, s, "k", rows, size, "cp")
		id, err := s.CreateCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fill(t, s, "k", rows, size, "cur")
		fill(t, s, "x", 1000, size, "cur")
		// An access-exclusive lock on the checkpoint entries lets the
		// restore lock and empty state_entries, then stops it before the
		// copy back: the kill lands with every entry deleted.
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "LOCK TABLE state_checkpoint_entries IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		result := make(chan error, 1)
		go func() { result <- s.RestoreCheckpoint(ctx, id) }()
		waited, err := env.killWhen(ctx, env.conn(t, "postgres"), db, "%FROM state_checkpoint_entries AS c%", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		err = <-result
		total := scalar[int64](t, conn, "SELECT count(*) FROM state_entries")
		current := scalar[int64](t, conn, "SELECT count(*) FROM state_entries WHERE value LIKE 'cur%'")
		copied := scalar[int64](t, conn, "SELECT count(*) FROM state_checkpoint_entries WHERE checkpoint_id = $1", id)
		t.Logf("RestoreCheckpoint killed between its delete and its copy (%v): %v; %d entries (%d current), checkpoint keeps %d rows",
			waited.Round(time.Millisecond), err, total, current, copied)
		if !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("RestoreCheckpoint = %v, want ErrUnavailable", err)
		}
		if total != rows+1000 || current != rows+1000 || copied != rows {
			t.Fatalf("after the killed restore: %d entries, %d current, checkpoint %d rows; want %d, %d, %d", total, current, copied, rows+1000, rows+1000, rows)
		}
		// The same store then restores for real.
		if err := s.RestoreCheckpoint(ctx, id); err != nil {
			t.Fatalf("RestoreCheckpoint after the kill: %v", err)
		}
		if n := scalar[int64](t, conn, "SELECT count(*) FROM state_entries WHERE value LIKE 'cp%'"); n != rows {
			t.Fatalf("after the restore: %d checkpoint values, want %d", n, rows)
		}
		if n := scalar[int64](t, conn, "SELECT count(*) FROM state_entries"); n != rows {
			t.Fatalf("after the restore: %d entries, want %d", n, rows)
		}
	})
}

// TestFaultConsistency moves amounts between keys with BatchPut while
// checkpoints are taken and restored and connections are killed; the sum of
// all amounts never changes for any reader, checkpoint or restore.
func TestFaultConsistency(t *testing.T) {
	t.Parallel()
	env := newFaultEnv(t, pgcluster.Options{})
	db := env.database(t, "app")
	s := env.open(t, db, nil)
	conn := env.conn(t, db)
	ctx := context.Background()

	const writers, perWriter, initial = 3, 4, 1000
	const want = writers * perWriter * initial
	keys := make([][]byte, 0, writers*perWriter)
	var seed []state.Entry
	for i := range writers * perWriter {
		k := fmt.Appendf(nil, "acct-%02d", i)
		keys = append(keys, k)
		seed = append(seed, state.Entry{Key: k, Value: []byte(strconv.Itoa(initial))})
	}
	if err := s.BatchPut(ctx, seed); err != nil {
		t.Fatal(err)
	}
	sum := func(m map[string][]byte) (int, error) {
		if len(m) != len(keys) {
			return 0, fmt.Errorf("%d of %d keys present", len(m), len(keys))
		}
		total := 0
		for k, v := range m {
			n, err := strconv.Atoi(string(v))
			if err != nil {
				return 0, fmt.Errorf("%s = %q: %w", k, v, err)
			}
			total += n
		}
		return total, nil
	}

	// The workload runs for at least 4 seconds and until a restore has
	// succeeded; on a slow machine under kills that can take longer.
	const minRun, maxRun = 4 * time.Second, 60 * time.Second
	runCtx, stop := context.WithTimeout(ctx, maxRun)
	defer stop()
	started := time.Now()
	var transfers, failedTransfers, reads, violations atomic.Int64
	report := func(format string, args ...any) {
		if violations.Add(1) <= 5 {
			t.Errorf(format, args...)
		}
	}
	var wg sync.WaitGroup
	// Each writer owns its own keys and always writes all of them, so every
	// committed state, whatever interleaves, sums to want.
	for w := range writers {
		wg.Go(func() {
			own := keys[w*perWriter : (w+1)*perWriter]
			amounts := make([]int, perWriter)
			for i := range amounts {
				amounts[i] = initial
			}
			for runCtx.Err() == nil {
				from, to := rand.IntN(perWriter), rand.IntN(perWriter)
				amt := rand.IntN(50)
				amounts[from] -= amt
				amounts[to] += amt
				batch := make([]state.Entry, perWriter)
				for i, k := range own {
					batch[i] = state.Entry{Key: k, Value: []byte(strconv.Itoa(amounts[i]))}
				}
				if err := s.BatchPut(ctx, batch); err != nil {
					failedTransfers.Add(1)
					if !errors.Is(err, state.ErrUnavailable) {
						report("BatchPut: %v", err)
					}
					continue
				}
				transfers.Add(1)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for runCtx.Err() == nil {
				m, err := s.GetMany(ctx, keys)
				if err != nil {
					if !errors.Is(err, state.ErrUnavailable) {
						report("GetMany: %v", err)
					}
					continue
				}
				reads.Add(1)
				if got, err := sum(m); err != nil || got != want {
					report("a reader saw sum %d (%v), want %d", got, err, want)
				}
			}
		})
	}
	stopKiller := env.killer(t, db, 100*time.Millisecond)
	var created, restored int
	var ids []uuid.UUID
	for runCtx.Err() == nil {
		id, err := s.CreateCheckpoint(ctx)
		if err != nil {
			if !errors.Is(err, state.ErrUnavailable) {
				report("CreateCheckpoint: %v", err)
			}
			continue
		}
		created++
		ids = append(ids, id)
		var cpSum, cpRows int64
		if err := conn.QueryRow(ctx, `SELECT coalesce(sum(value::text::int), 0), count(*) FROM (
			SELECT convert_from(value, 'UTF8') AS value FROM state_checkpoint_entries WHERE checkpoint_id = $1) AS c`, id).Scan(&cpSum, &cpRows); err != nil {
			t.Fatal(err)
		}
		if cpSum != want || cpRows != int64(len(keys)) {
			report("checkpoint %s holds %d rows summing to %d, want %d rows summing to %d", id, cpRows, cpSum, len(keys), want)
		}
		if created%2 == 0 {
			target := ids[rand.IntN(len(ids))]
			if err := s.RestoreCheckpoint(ctx, target); err != nil {
				if !errors.Is(err, state.ErrUnavailable) {
					report("RestoreCheckpoint: %v", err)
				}
				continue
			}
			restored++
			m, err := s.GetMany(ctx, keys)
			if err == nil {
				if got, err := sum(m); err != nil || got != want {
					report("after restoring %s the sum is %d (%v), want %d", target, got, err, want)
				}
			}
		}
		if time.Since(started) >= minRun && restored > 0 && transfers.Load() > 0 && reads.Load() > 0 {
			stop()
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	kills, _ := stopKiller()
	awaitHealthy(t, s)
	t.Logf("consistency: %d transfers (%d failed), %d consistent reads, %d checkpoints created, %d restored, %d backends killed, %d violations",
		transfers.Load(), failedTransfers.Load(), reads.Load(), created, restored, kills, violations.Load())
	if transfers.Load() == 0 || reads.Load() == 0 || restored == 0 {
		t.Fatal("the workload did not run: no transfer, read or restore succeeded")
	}
	m, err := s.GetMany(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sum(m); err != nil || got != want {
		t.Fatalf("final sum %d (%v), want %d", got, err, want)
	}
}

// awaitHealthy calls HealthCheck until it passes, after connections were
// killed: the pool may still hold connections whose backends are gone, and
// each failed call discards one (see TestPendingFirstCallAfterKills). It
// fails the test if that takes more calls than the pool has connections, and
// returns how many calls failed.
func awaitHealthy(t *testing.T, s *state.Postgres) int {
	t.Helper()
	limit := int(s.Config().MaxConns) + 1
	for failed := 0; failed < limit; failed++ {
		err := s.HealthCheck(context.Background())
		if err == nil {
			return failed
		}
		if !errors.Is(err, state.ErrUnavailable) {
			t.Fatalf("HealthCheck after the kills: %v, want nil or ErrUnavailable", err)
		}
	}
	t.Fatalf("HealthCheck still failing after %d calls", limit)
	return limit
}
