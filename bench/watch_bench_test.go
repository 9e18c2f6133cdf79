package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pgstate/pgstate/state"
)

// feedFamily is a store whose feed the benchmarks switch on and off.
func feedFamily(b *testing.B) *fixture {
	return family(b, "feed", 10, nil)
}

// noFeedFamily is a store whose feed triggers are dropped: the floor a Put
// without any change feed costs.
func noFeedFamily(b *testing.B) *fixture {
	return family(b, "nofeed", 10, func(ctx context.Context, f *fixture) error {
		for _, trg := range []string{"state_changes_insert", "state_changes_update", "state_changes_delete", "state_changes_truncate"} {
			if _, err := f.raw.Exec(ctx, "DROP TRIGGER "+trg+" ON state_entries"); err != nil {
				return err
			}
		}
		return nil
	})
}

// logSize is the change log's size on disk, indexes included.
func logSize(b *testing.B, f *fixture) int64 {
	b.Helper()
	var n int64
	if err := f.raw.QueryRow(context.Background(), `SELECT pg_total_relation_size('state_changes')`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func setFeed(b *testing.B, f *fixture, on bool) {
	b.Helper()
	if err := f.lib.SetChangeFeed(context.Background(), on); err != nil {
		b.Fatalf("SetChangeFeed(%v): %v", on, err)
	}
}

// BenchmarkPutFeed is Put with the change feed on, switched off, and on a
// store without the feed's triggers, each beside raw pgx sending the same
// statement to the same table. on/lib ÷ off/lib is what the feed costs a
// Put; off/lib ÷ none/raw is what a switched-off feed still costs.
func BenchmarkPutFeed(b *testing.B) {
	ks := keys("p:", putKeysN)
	ctx := context.Background()
	run := func(b *testing.B, put func(key []byte) error) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := put(ks[i%len(ks)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
	for _, mode := range []string{"on", "off"} {
		b.Run(mode, func(b *testing.B) {
			f := feedFamily(b)
			setFeed(b, f, mode == "on")
			b.Run("lib", func(b *testing.B) {
				size := logSize(b, f)
				run(b, func(k []byte) error { return f.lib.Put(ctx, k, value) })
				if mode == "on" {
					// What the log grows by per write (9-byte keys, 100-byte
					// values), heap and index: B/write is also MB per
					// million writes.
					b.ReportMetric(float64(logSize(b, f)-size)/float64(b.N), "log-B/write")
				}
			})
			b.Run("raw", func(b *testing.B) { run(b, func(k []byte) error { return rawPut(ctx, f.raw, k, value, nil, nil) }) })
		})
	}
	b.Run("none", func(b *testing.B) {
		f := noFeedFamily(b)
		b.Run("lib", func(b *testing.B) { run(b, func(k []byte) error { return f.lib.Put(ctx, k, value) }) })
		b.Run("raw", func(b *testing.B) { run(b, func(k []byte) error { return rawPut(ctx, f.raw, k, value, nil, nil) }) })
	})
}

// BenchmarkWatchLatency measures the delay from a Put's commit (when Put
// returns) to the watch delivering its event, with 1 and 8 concurrent
// writers and the default poll interval; b.N is the number of Puts.
func BenchmarkWatchLatency(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			f := feedFamily(b)
			setFeed(b, f, true)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			from, err := f.lib.Revision(ctx)
			if err != nil {
				b.Fatal(err)
			}
			prefix := fmt.Sprintf("lat%d-%d:", writers, time.Now().UnixNano())
			var mu sync.Mutex
			received := map[string]time.Time{}
			watchDone := make(chan error, 1)
			total := b.N
			go func() {
				n := 0
				for ev, err := range f.lib.Watch(ctx, []byte(prefix), state.FromRevision(from+1), state.WithValues()) {
					if err != nil {
						watchDone <- err
						return
					}
					now := time.Now()
					mu.Lock()
					received[string(ev.Value)] = now
					mu.Unlock()
					if n++; n == total {
						break
					}
				}
				watchDone <- nil
			}()
			acked := make([]time.Time, total)
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := w; i < total; i += writers {
						k := key(prefix, i%1000)
						if err := f.lib.Put(ctx, k, fmt.Appendf(nil, "%d", i)); err != nil {
							b.Error(err)
							return
						}
						acked[i] = time.Now()
					}
				})
			}
			wg.Wait()
			select {
			case err := <-watchDone:
				if err != nil {
					b.Fatal(err)
				}
			case <-time.After(time.Minute):
				b.Fatal("the watch did not deliver every event within a minute")
			}
			b.StopTimer()
			lat := make([]float64, 0, total)
			for i, t := range acked {
				r, ok := received[fmt.Sprint(i)]
				if !ok {
					b.Fatalf("write %d was not delivered", i)
				}
				// The event can arrive before Put's reply does.
				lat = append(lat, max(0, r.Sub(t).Seconds()*1000))
			}
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2], "p50-ms")
			b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
		})
	}
}
