package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/state"
)

const (
	entriesN   = 100_000 // k: keys, with metadata {"group": i % 1000}
	putKeysN   = 10_000  // p: keys, rewritten by the Put benchmarks
	deleteKeys = 20_000  // d: keys, refilled when the Delete benchmarks run out
)

func groupMetadata(i int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"group": %d, "kind": "bench"}`, i%1000))
}

// entriesFamily is the store that the single-entry benchmarks read and write:
// 100,000 k: entries with metadata, 10,000 p: entries for the writes.
func entriesFamily(b *testing.B) *fixture {
	return feedOffFamily(b, "entries", 10, func(ctx context.Context, f *fixture) error {
		if err := seedRows(ctx, f.raw, "k:", entriesN, groupMetadata, nil); err != nil {
			return err
		}
		return seedRows(ctx, f.raw, "p:", putKeysN, nil, nil)
	})
}

func BenchmarkGet(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := entriesFamily(b)
		ks := keys("k:", entriesN)
		ctx := context.Background()
		b.Run("lib", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok, err := f.lib.Get(ctx, ks[i%len(ks)]); err != nil || !ok {
					b.Fatal(ok, err)
				}
				i += 7919
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok, err := rawGet(ctx, f.raw, ks[i%len(ks)]); err != nil || !ok {
					b.Fatal(ok, err)
				}
				i += 7919
			}
		})
		b.Run("floor", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ok, err := floorGetOne(ctx, f.floor, floorGet, ks[i%len(ks)]); err != nil || !ok {
					b.Fatal(ok, err)
				}
				i += 7919
			}
		})
		// raw-timeout: raw with a per-call context.WithTimeout, what enforcing
		// Config.QueryTimeout with a context per call would cost; the library
		// uses a timer per connection instead.
		b.Run("raw-timeout", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tctx, cancel := context.WithTimeout(ctx, time.Minute)
				if _, ok, err := rawGet(tctx, f.raw, ks[i%len(ks)]); err != nil || !ok {
					b.Fatal(ok, err)
				}
				cancel()
				i += 7919
			}
		})
	})
}

func BenchmarkContains(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := entriesFamily(b)
		ks := keys("k:", entriesN)
		ctx := context.Background()
		b.Run("lib", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ok, err := f.lib.Contains(ctx, ks[i%len(ks)]); err != nil || !ok {
					b.Fatal(ok, err)
				}
				i += 7919
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ok, err := rawContains(ctx, f.raw, ks[i%len(ks)]); err != nil || !ok {
					b.Fatal(ok, err)
				}
				i += 7919
			}
		})
		b.Run("floor", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ok, err := floorContainsOne(ctx, f.floor, ks[i%len(ks)]); err != nil || !ok {
					b.Fatal(ok, err)
				}
				i += 7919
			}
		})
	})
}

// BenchmarkPut overwrites existing entries (the common case; the update is
// HOT because no indexed column changes). lib is the store as shipped, its
// change feed on; lib-feed-off the same call on a second store whose feed
// is switched off (SetChangeFeed(false)); raw the library's statement
// through pgx on lib's table; floor the smallest versioned upsert on a
// table without the feed's triggers. Each writes the p: keys of its own
// table. lib and raw share a table but not its pages: lib rewrites the
// first half of the p: keys, raw the second, and lib-feed-off and floor the
// first half of theirs, so that every side's pages see the same number of
// updates (HOT pruning, dead row versions) per round.
func BenchmarkPut(b *testing.B) {
	f := entriesFamily(b)
	ks := keys("p:", putKeysN)
	half := len(ks) / 2
	ctx := context.Background()
	loop := func(b *testing.B, ks [][]byte, put func(k []byte) error) {
		i := 0
		opLatencies(b, nil, func() error {
			k := ks[i%len(ks)]
			i++
			return put(k)
		})
	}
	interleavedRotated(b, func(b *testing.B, round int) {
		rotated(b, round,
			side{"lib", func(b *testing.B) {
				loop(b, ks[:half], func(k []byte) error { return f.lib.Put(ctx, k, value) })
			}},
			side{"lib-feed-off", func(b *testing.B) {
				loop(b, ks[:half], func(k []byte) error { return f.off.Put(ctx, k, value) })
			}},
			side{"raw", func(b *testing.B) {
				loop(b, ks[half:], func(k []byte) error { return rawPut(ctx, f.raw, k, value, nil, nil) })
			}},
			side{"floor", func(b *testing.B) {
				loop(b, ks[:half], func(k []byte) error { _, err := f.floor.Exec(ctx, floorPut, k, value); return err })
			}},
		)
	})
}

// BenchmarkPutWithTTL rewrites the keys of BenchmarkPut (lib the first half
// of the p: keys, raw the second, floor the first half of the floor's).
func BenchmarkPutWithTTL(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := entriesFamily(b)
		all := keys("p:", putKeysN)
		lower, upper := all[:len(all)/2], all[len(all)/2:]
		ctx := context.Background()
		const ttl = time.Hour
		b.Run("lib", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := f.lib.PutWithTTL(ctx, lower[i%len(lower)], value, ttl); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				micros := ttl.Microseconds()
				if err := rawPut(ctx, f.raw, upper[i%len(upper)], value, nil, &micros); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("floor", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := f.floor.Exec(ctx, floorPutWithTTL, lower[i%len(lower)], value, ttl.Microseconds()); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}

// deletable hands out d: keys that exist in the table pool's search_path
// names, inserting a fresh block (with the timer stopped) when the previous
// one is used up.
type deletable struct {
	pool *pgxpool.Pool
	next int
	end  int
}

// newDeletable continues after the highest d: key left in pool's table.
func newDeletable(b *testing.B, pool *pgxpool.Pool) *deletable {
	b.Helper()
	var start int
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(max(substr(convert_from(key, 'UTF8'), 3)::int) + 1, 0)
		FROM state_entries WHERE key >= 'd:' AND key < 'd;'`).Scan(&start); err != nil {
		b.Fatal(err)
	}
	return &deletable{pool: pool, next: start, end: start}
}

func (d *deletable) key(b *testing.B) []byte {
	if d.next == d.end {
		b.StopTimer()
		exec(b, d.pool, `INSERT INTO state_entries (key, value)
			SELECT convert_to('d:' || lpad(i::text, 7, '0'), 'UTF8'), $3
			FROM generate_series($1::int, $2::int - 1) AS i`, d.end, d.end+deleteKeys, value)
		d.end += deleteKeys
		b.StartTimer()
	}
	k := key("d:", d.next)
	d.next++
	return k
}

// BenchmarkDelete deletes entries that exist, so each iteration writes and
// commits like a real delete. The sides are those of BenchmarkPut; lib and
// raw take their keys from one supply in lib's table, lib-feed-off and
// floor each from their own table's.
func BenchmarkDelete(b *testing.B) {
	f := entriesFamily(b)
	ctx := context.Background()
	store, off, floor := newDeletable(b, f.raw), newDeletable(b, f.offRaw), newDeletable(b, f.floor)
	loop := func(b *testing.B, d *deletable, del func(k []byte) error) {
		var k []byte
		opLatencies(b, func() { k = d.key(b) }, func() error { return del(k) })
	}
	interleavedRotated(b, func(b *testing.B, round int) {
		rotated(b, round,
			side{"lib", func(b *testing.B) {
				loop(b, store, func(k []byte) error { return f.lib.Delete(ctx, k) })
			}},
			side{"lib-feed-off", func(b *testing.B) {
				loop(b, off, func(k []byte) error { return f.off.Delete(ctx, k) })
			}},
			side{"raw", func(b *testing.B) {
				loop(b, store, func(k []byte) error { return rawDelete(ctx, f.raw, k) })
			}},
			side{"floor", func(b *testing.B) {
				loop(b, floor, func(k []byte) error { _, err := f.floor.Exec(ctx, floorDelete, k); return err })
			}},
		)
	})
}

// BenchmarkCount counts the family's 100,000+ live entries: a full scan.
func BenchmarkCount(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := entriesFamily(b)
		ctx := context.Background()
		b.Run("lib", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.lib.Count(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rawCount(ctx, f.raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("floor", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var n int64
				if err := f.floor.QueryRow(ctx, floorCount).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkGetMany reads 100 keys spread over the whole key space.
func BenchmarkGetMany(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := entriesFamily(b)
		ctx := context.Background()
		const batches = 64
		sets := make([][][]byte, batches)
		for s := range sets {
			for j := range 100 {
				sets[s] = append(sets[s], key("k:", (s*100+j)*7919%entriesN))
			}
		}
		check := func(b *testing.B, n int, err error) {
			if err != nil || n != 100 {
				b.Fatal(n, err)
			}
		}
		b.Run("lib", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m, err := f.lib.GetMany(ctx, sets[i%batches])
				check(b, len(m), err)
				i++
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m, err := rawGetMany(ctx, f.raw, sets[i%batches])
				check(b, len(m), err)
				i++
			}
		})
		// floor: the rows as they come, into slices, no map.
		b.Run("floor", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				n, err := floorRows(ctx, f, floorGetMany, sets[i%batches])
				check(b, n, err)
				i++
			}
		})
	})
}

// BenchmarkListKeys lists 1,000 keys out of the family's 100,000.
func BenchmarkListKeys(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := entriesFamily(b)
		ctx := context.Background()
		prefixes := make([][]byte, 100)
		for i := range prefixes {
			prefixes[i] = fmt.Appendf(nil, "k:%04d", i)
		}
		b.Run("lib", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ks, err := f.lib.ListKeys(ctx, prefixes[i%len(prefixes)])
				if err != nil || len(ks) != 1000 {
					b.Fatal(len(ks), err)
				}
				i++
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := prefixes[i%len(prefixes)]
				ks, err := rawListKeys(ctx, f.raw, p, state.PrefixEnd(p))
				if err != nil || len(ks) != 1000 {
					b.Fatal(len(ks), err)
				}
				i++
			}
		})
		b.Run("floor", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := prefixes[i%len(prefixes)]
				n, err := floorRows(ctx, f, floorListKeys, p, state.PrefixEnd(p))
				if err != nil || n != 1000 {
					b.Fatal(n, err)
				}
				i++
			}
		})
	})
}

// BenchmarkFindByMetadata finds the 100 entries of one group among 100,000;
// it first checks that the plan goes through the GIN index and reports that
// as the gin-index metric (1 = used).
func BenchmarkFindByMetadata(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := entriesFamily(b)
		ctx := context.Background()
		gin := 0.0
		plan := explainGeneric(b, f, rawEntriesFindByMetadata, "jsonb", `'{"group": 7}'`)
		if strings.Contains(plan, "state_entries_metadata_idx") {
			gin = 1
		} else {
			b.Logf("FindByMetadata does not use the GIN index:\n%s", plan)
		}
		filters := make([]json.RawMessage, 100)
		for i := range filters {
			filters[i] = json.RawMessage(fmt.Sprintf(`{"group": %d}`, i*7%1000))
		}
		b.Run("lib", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				es, err := f.lib.FindByMetadata(ctx, filters[i%len(filters)])
				if err != nil || len(es) != entriesN/1000 {
					b.Fatal(len(es), err)
				}
				i++
			}
			b.ReportMetric(gin, "gin-index")
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				es, err := rawFindByMetadata(ctx, f.raw, filters[i%len(filters)])
				if err != nil || len(es) != entriesN/1000 {
					b.Fatal(len(es), err)
				}
				i++
			}
			b.ReportMetric(gin, "gin-index")
		})
		b.Run("floor", func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				n, err := floorRows(ctx, f, floorFindByMetadata, filters[i%len(filters)])
				if err != nil || n != entriesN/1000 {
					b.Fatal(n, err)
				}
				i++
			}
		})
	})
}

// explainGeneric returns the generic plan of sql (a statement with $n
// parameters of the given types) executed with args.
func explainGeneric(tb testing.TB, f *fixture, sql, types, args string) string {
	tb.Helper()
	ctx := context.Background()
	conn, err := f.raw.Acquire(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Release()
	for _, s := range []string{"SET plan_cache_mode = force_generic_plan", "PREPARE bench_explain(" + types + ") AS " + sql} {
		if _, err := conn.Exec(ctx, s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
	defer conn.Exec(ctx, "DEALLOCATE bench_explain; RESET plan_cache_mode")
	rows, err := conn.Query(ctx, "EXPLAIN EXECUTE bench_explain("+args+")")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			tb.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	return plan.String()
}

// concurrentFamily has a pool of 8 connections on each side.
func concurrentFamily(b *testing.B) *fixture {
	return family(b, "concurrent", 8, func(ctx context.Context, f *fixture) error {
		return seedRows(ctx, f.raw, "c:", putKeysN, nil, nil)
	})
}

// runConcurrent runs op on keys of ks from 16 goroutines, whatever
// GOMAXPROCS is, and reports the throughput.
func runConcurrent(b *testing.B, ks [][]byte, op func(k []byte) error) {
	b.ReportAllocs()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((16 + procs - 1) / procs)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if err := op(ks[int(i*7919)%len(ks)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkConcurrentGet(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := concurrentFamily(b)
		ks := keys("c:", putKeysN)
		ctx := context.Background()
		b.Run("lib", func(b *testing.B) {
			runConcurrent(b, ks, func(k []byte) error {
				_, _, err := f.lib.Get(ctx, k)
				return err
			})
		})
		b.Run("raw", func(b *testing.B) {
			runConcurrent(b, ks, func(k []byte) error {
				_, _, err := rawGet(ctx, f.raw, k)
				return err
			})
		})
		b.Run("floor", func(b *testing.B) {
			runConcurrent(b, ks, func(k []byte) error {
				_, err := floorGetOne(ctx, f.floor, floorGet, k)
				return err
			})
		})
	})
}

// BenchmarkConcurrentPut: lib writes the first half of the c: keys, raw
// (on the same table) the second, floor the first half of the floor's, so
// that each side's rows see the same number of updates.
func BenchmarkConcurrentPut(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := concurrentFamily(b)
		all := keys("c:", putKeysN)
		lower, upper := all[:len(all)/2], all[len(all)/2:]
		ctx := context.Background()
		b.Run("lib", func(b *testing.B) {
			runConcurrent(b, lower, func(k []byte) error { return f.lib.Put(ctx, k, value) })
		})
		b.Run("raw", func(b *testing.B) {
			runConcurrent(b, upper, func(k []byte) error { return rawPut(ctx, f.raw, k, value, nil, nil) })
		})
		b.Run("floor", func(b *testing.B) {
			runConcurrent(b, lower, func(k []byte) error { _, err := f.floor.Exec(ctx, floorPut, k, value); return err })
		})
	})
}
