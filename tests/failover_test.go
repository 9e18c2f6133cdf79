package tests

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// failoverLog records every write of the failover test.
type failoverLog struct {
	mu          sync.Mutex
	acked       []string  // keys whose Put returned nil
	lastOK      time.Time // newest acknowledged write before the first failure
	firstFail   time.Time // first failure after the kill began
	firstOKBack time.Time // first acknowledged write begun after that failure
	killedAt    time.Time
	failures    int
	errs        map[string]int
}

func (l *failoverLog) record(key string, err error, start, end time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.acked = append(l.acked, key)
		switch {
		case l.firstFail.IsZero():
			l.lastOK = end
		case l.firstOKBack.IsZero() && start.After(l.firstFail):
			l.firstOKBack = end
		}
		return
	}
	l.failures++
	if l.firstFail.IsZero() && !l.killedAt.IsZero() {
		l.firstFail = end
	}
	kind := "other"
	switch {
	case errors.Is(err, state.ErrOutcomeUnknown):
		kind = "outcome unknown"
	case errors.Is(err, state.ErrUnavailable):
		kind = "unavailable"
	}
	l.errs[kind]++
}

// TestFailover: a primary with one synchronous standby
// (synchronous_standby_names = '*'), a store whose DSN names both hosts
// with target_session_attrs=read-write, 4 writers each writing new keys.
// The primary is killed (immediate stop, as in a crash) and the standby
// promoted with pg_ctl promote. The same store, never reopened, finds the
// new primary; every acknowledged write is there; the time writes failed
// is measured.
func TestFailover(t *testing.T) {
	t.Parallel()
	env := newReplicaEnv(t)
	ctx := context.Background()
	primary, standby := env.cluster, env.standby
	if _, err := env.admin.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = '*'"); err != nil {
		t.Fatal(err)
	}
	if err := primary.Reload(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the standby to become synchronous", func() bool {
		return scalar[int64](t, env.admin, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == 1
	})

	cfg := env.config("app")
	cfg.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/app?sslmode=disable&target_session_attrs=read-write", primary.Port, standby.Port)
	cfg.ConnectTimeout = time.Second
	s := testdb.OpenConfig(t, cfg)

	log := &failoverLog{errs: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d/%07d", w, seq)
				start := time.Now()
				err := s.Put(ctx, []byte(key), []byte("v"))
				log.record(key, err, start, time.Now())
				if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	log.mu.Lock()
	log.killedAt = time.Now()
	log.mu.Unlock()
	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	for {
		log.mu.Lock()
		back := log.firstOKBack
		log.mu.Unlock()
		if !back.IsZero() && time.Since(back) > time.Second {
			break
		}
		if time.Since(promoted) > 30*time.Second {
			t.Fatalf("no write succeeded within 30s of the promotion; failures: %v", log.errs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	downtime := log.firstOKBack.Sub(log.lastOK)
	t.Logf("failover: %d writes acknowledged, %d failed %v; pg_ctl stop -m immediate took %v, pg_ctl promote %v; no write acknowledged for %v (first failure %v after the last success, first success %v after the promotion returned)",
		len(log.acked), log.failures, log.errs, killed.Sub(log.killedAt).Round(time.Millisecond), promoted.Sub(killed).Round(time.Millisecond),
		downtime.Round(time.Millisecond), log.firstFail.Sub(log.lastOK).Round(time.Millisecond), log.firstOKBack.Sub(promoted).Round(time.Millisecond))

	// Every acknowledged write is on the new primary.
	conn := testdb.Conn(t, standby.SocketDSN("app"))
	if scalar[bool](t, conn, "SELECT pg_is_in_recovery()") {
		t.Fatal("the promoted standby is still in recovery")
	}
	found := scalar[int64](t, conn, "SELECT count(*) FROM state_entries WHERE convert_from(key, 'UTF8') = ANY($1::text[])", log.acked)
	if found != int64(len(log.acked)) {
		t.Fatalf("%d of %d acknowledged writes are on the new primary", found, len(log.acked))
	}
	// The same store goes on.
	must(t, s.Put(ctx, []byte("after"), []byte("failover")))
	if v, _, err := s.Get(ctx, []byte("after")); err != nil || string(v) != "failover" {
		t.Fatalf("after failover: %q, %v", v, err)
	}
	if downtime > 20*time.Second {
		t.Fatalf("writes failed for %v", downtime)
	}
}
