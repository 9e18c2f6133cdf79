package tests

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// stormLog records, per key, the newest acknowledged write and the newest
// write attempted at all. Each key belongs to one writer, whose values carry
// an increasing sequence number.
type stormLog struct {
	mu         sync.Mutex
	acked      map[string]int64 // key → sequence of the newest acknowledged write
	tried      map[string]int64 // key → sequence of the newest write attempted
	writes     int64
	failures   int64
	unexpected []error
	maxLatency time.Duration // over the whole test
	phaseMax   time.Duration // since the current phase began
}

func newStormLog() *stormLog {
	return &stormLog{acked: map[string]int64{}, tried: map[string]int64{}}
}

func (l *stormLog) record(key string, seq int64, err error, took time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	l.maxLatency = max(l.maxLatency, took)
	l.phaseMax = max(l.phaseMax, took)
	l.tried[key] = seq
	if err == nil {
		l.acked[key] = seq
		return
	}
	l.failures++
	if !errors.Is(err, state.ErrUnavailable) && len(l.unexpected) < 5 {
		l.unexpected = append(l.unexpected, err)
	}
}

// phase is the outcome of one period of a kill storm.
type phase struct {
	interval       time.Duration
	writes, failed int64
	kills, rounds  int64
	maxLatency     time.Duration
}

func (ph phase) String() string {
	return fmt.Sprintf("kills every %v: %d writes, %d failed (%.2f%%), %d backends terminated in %d rounds, slowest write %v",
		ph.interval, ph.writes, ph.failed, 100*float64(ph.failed)/float64(max(ph.writes, 1)), ph.kills, ph.rounds, ph.maxLatency.Round(time.Millisecond))
}

// TestKillStorm: with the default Config, 8 writers Put while every backend
// of the database is terminated, first every 200 ms (at most 1% of writes
// may fail), then every 20 ms (no acknowledged write may be lost and no call
// may outlive QueryTimeout plus the margin); afterwards the same store works
// without being reopened.
func TestKillStorm(t *testing.T) {
	t.Parallel()
	env := newFaultEnv(t, pgcluster.Options{})
	db := env.database(t, "app")
	// The default configuration, only the DSN is the cluster's.
	s := testdb.OpenConfig(t, state.DefaultConfig(env.cluster.URL("postgres", db)+"?sslmode=disable"))
	cfg := s.Config()

	const writers, keysPerWriter = 8, 50
	log := newStormLog()
	var seq atomic.Int64
	run := func(interval, duration time.Duration) phase {
		writes0, failures0 := log.startPhase()
		stopKiller := env.killer(t, db, interval)
		ctx, stop := context.WithTimeout(bg, duration)
		defer stop()
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					key := fmt.Sprintf("w%d-%03d", w, i%keysPerWriter)
					n := seq.Add(1)
					t0 := time.Now()
					err := s.Put(bg, []byte(key), []byte(strconv.FormatInt(n, 10)))
					log.record(key, n, err, time.Since(t0))
				}
			})
		}
		wg.Wait()
		kills, rounds := stopKiller()
		writes, failures, slowest := log.endPhase()
		return phase{
			interval: interval,
			writes:   writes - writes0, failed: failures - failures0,
			kills: kills, rounds: rounds, maxLatency: slowest,
		}
	}

	slow := run(200*time.Millisecond, 5*time.Second)
	t.Logf("%v; %d retries, %d pool resets so far", slow, s.Stats().Retries, s.Stats().PoolResets)
	fast := run(20*time.Millisecond, 5*time.Second)
	t.Logf("%v; %d retries, %d pool resets so far", fast, s.Stats().Retries, s.Stats().PoolResets)

	if slow.kills == 0 || fast.kills == 0 {
		t.Fatal("the killer terminated no backend: the test exercised nothing")
	}
	if slow.failed*100 > slow.writes {
		t.Errorf("kills every 200ms: %d of %d writes failed, want at most 1%%", slow.failed, slow.writes)
	}
	if limit := cfg.QueryTimeout + timeoutMargin; log.maxLatency > limit {
		t.Errorf("slowest write took %v, more than QueryTimeout (%v) plus the margin", log.maxLatency, cfg.QueryTimeout)
	}
	for _, err := range log.unexpected {
		t.Errorf("a failed write returned %v, want an error wrapping ErrUnavailable", err)
	}

	// The same store, not reopened: its first call after the storm works.
	if err := s.Put(bg, []byte("after"), []byte("ok")); err != nil {
		t.Fatalf("first Put after the storm: %v", err)
	}
	// Every acknowledged write is there, or a later write of its writer to
	// the same key (one that failed may still have been applied).
	keys := make([][]byte, 0, len(log.tried))
	for k := range log.tried {
		keys = append(keys, []byte(k))
	}
	got, err := s.GetMany(bg, keys)
	if err != nil {
		t.Fatalf("GetMany after the storm: %v", err)
	}
	lost := 0
	for k, tried := range log.tried {
		acked, wasAcked := log.acked[k]
		v, found := got[k]
		n, _ := strconv.ParseInt(string(v), 10, 64)
		switch {
		case wasAcked && (!found || n < acked):
			if lost++; lost <= 5 {
				t.Errorf("key %s: acknowledged write %d, read back %q (found %v)", k, acked, v, found)
			}
		case found && n > tried:
			t.Errorf("key %s: read back %d, newer than any write attempted (%d)", k, n, tried)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged keys lost", lost, len(log.acked))
	}
}

// startPhase resets the per-phase latency and returns the counters so far.
func (l *stormLog) startPhase() (writes, failures int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phaseMax = 0
	return l.writes, l.failures
}

// endPhase returns the counters and the phase's slowest write.
func (l *stormLog) endPhase() (writes, failures int64, slowest time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes, l.failures, l.phaseMax
}
