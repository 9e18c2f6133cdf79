package tests

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// replicaEnv is a throwaway primary with a database "app" and a streaming
// standby of it (pg_basebackup -R) on another port.
type replicaEnv struct {
	*faultEnv
	standby *pgcluster.Cluster
}

func newReplicaEnv(t *testing.T) *replicaEnv {
	t.Helper()
	env := newFaultEnv(t, pgcluster.Options{Settings: map[string]string{"wal_level": "replica"}})
	env.database(t, "app")
	standby := pgcluster.NewStandby(t, env.cluster, pgcluster.Options{})
	return &replicaEnv{faultEnv: env, standby: standby}
}

// servedFromStandby reports pg_is_in_recovery() on the connection a read
// with ctx is served by.
func servedFromStandby(t *testing.T, s *state.Postgres, ctx context.Context) bool {
	t.Helper()
	var inRecovery bool
	err := s.Read(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return inRecovery
}

// TestReadReplica: reads opted in are served by a real streaming standby
// (pg_is_in_recovery() on the serving connection), writes are not; replay
// lag shows in ReplicaStats and Stats; ReadFromReplicaAfter gives
// read-your-writes, even while replay is paused (it then falls back to the
// primary); and stopping the standby moves reads to the primary under 4
// concurrent readers without one failed call.
func TestReadReplica(t *testing.T) {
	t.Parallel()
	env := newReplicaEnv(t)
	ctx := context.Background()
	cfg := env.config("app")
	cfg.Replicas = []string{env.standby.URL("postgres", "app") + "?sslmode=disable"}
	cfg.ReplicaCheckInterval = 100 * time.Millisecond
	cfg.ReplicaWaitTimeout = 2 * time.Second
	s := testdb.OpenConfig(t, cfg)
	replica := state.ReadFromReplica(ctx)

	if servedFromStandby(t, s, ctx) {
		t.Fatal("a read without a replica mode was served by the standby")
	}
	if !servedFromStandby(t, s, replica) {
		t.Fatalf("ReadFromReplica was served by the primary: %+v", s.ReplicaStats())
	}
	// Writes with a replica context still go to the primary (a standby
	// would refuse them).
	must(t, s.Put(replica, []byte("w"), []byte("1")))
	must(t, s.Transact(replica, func(ctx context.Context, tx state.Ops) error { return tx.Put(ctx, []byte("w"), []byte("2")) }))

	// Read-your-writes: each read sees the write just before it.
	before := s.Stats()
	const rounds = 200
	for i := range rounds {
		v := []byte(strconv.Itoa(i))
		must(t, s.Put(ctx, []byte("ryw"), v))
		pos, err := s.WALPosition(ctx)
		must(t, err)
		got, ok, err := s.Get(state.ReadFromReplicaAfter(ctx, pos), []byte("ryw"))
		if err != nil || !ok || string(got) != string(v) {
			t.Fatalf("round %d: read-your-writes Get = %q, %v, %v", i, got, ok, err)
		}
	}
	after := s.Stats()
	served := after.ReplicaReads - before.ReplicaReads
	t.Logf("read-your-writes: %d of %d reads served by the standby, %d by the primary", served, rounds, after.ReplicaFallbacks-before.ReplicaFallbacks)
	if served < rounds*9/10 {
		t.Fatalf("only %d of %d read-your-writes reads were served by the standby", served, rounds)
	}

	// Lag: pause replay on the standby, write, and watch it show.
	standbyConn := testdb.Conn(t, env.standby.SocketDSN("app"))
	if _, err := standbyConn.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	must(t, s.Put(ctx, []byte("lag"), []byte("new")))
	pos, err := s.WALPosition(ctx)
	must(t, err)
	deadline := time.Now().Add(5 * time.Second)
	for {
		rs := s.ReplicaStats()
		if rs[0].Lag > 0 && rs[0].LagBytes > 0 {
			t.Logf("paused replay: replica %s lag %v, %d bytes; Stats: healthy %d, max lag %v", rs[0].Addr, rs[0].Lag, rs[0].LagBytes, s.Stats().HealthyReplicas, s.Stats().MaxReplicaLag)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lag reported while replay is paused: %+v", rs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The eventual mode reads the stale state; read-your-writes waits
	// ReplicaWaitTimeout, then reads from the primary.
	if _, ok, err := s.Get(replica, []byte("lag")); err != nil || ok {
		t.Fatalf("ReadFromReplica with replay paused: found %v, %v; want the stale state (absent)", ok, err)
	}
	start := time.Now()
	if v, _, err := s.Get(state.ReadFromReplicaAfter(ctx, pos), []byte("lag")); err != nil || string(v) != "new" {
		t.Fatalf("read-your-writes with replay paused: %q, %v", v, err)
	}
	t.Logf("read-your-writes with replay paused: primary answered after %v", time.Since(start).Round(time.Millisecond))
	if _, err := standbyConn.Exec(ctx, "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	standbyConn.Close(ctx)

	// Stop the standby under 4 readers: no call may fail.
	var reads, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _, err := s.Get(replica, []byte("w"))
				reads.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("reader %d: %w", r, err))
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	beforeStop := s.Stats().ReplicaReads
	if err := env.standby.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	st := s.Stats()
	t.Logf("standby stopped: %d reads, %d failed; replica served %d before the stop; %d reads fell back to the primary; replica: %+v",
		reads.Load(), failed.Load(), beforeStop, st.ReplicaFallbacks, s.ReplicaStats()[0])
	if failed.Load() > 0 {
		t.Fatalf("%d of %d reads failed when the standby stopped: %v", failed.Load(), reads.Load(), firstErr.Load())
	}
	if beforeStop == 0 || st.HealthyReplicas != 0 {
		t.Fatalf("replica reads before the stop %d, healthy replicas after %d", beforeStop, st.HealthyReplicas)
	}
	if servedFromStandby(t, s, replica) {
		t.Fatal("a replica read was served by a standby after it stopped")
	}
}
