package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/state"
)

// batchSizes are the BatchPut sizes; every iteration writes new keys into an
// emptied table, so the library, the unnest baseline and the COPY ceiling
// all do the same work.
var batchSizes = []int{100, 1_000, 10_000, 100_000}

func batchFamily(b *testing.B) *fixture {
	return feedOffFamily(b, "batch", 10, nil)
}

func batchEntries(n int) []state.Entry {
	es := make([]state.Entry, n)
	for i := range es {
		es[i] = state.Entry{Key: key("b:", i), Value: value}
	}
	return es
}

// emptyTable empties the state_entries that pool's search_path names; it
// runs with the timer stopped before each iteration.
func emptyTable(b *testing.B, pool *pgxpool.Pool) {
	b.StopTimer()
	exec(b, pool, "TRUNCATE state_entries")
	b.StartTimer()
}

// BenchmarkBatchPut writes n new keys into an emptied table. lib is the
// store with its change feed on, lib-feed-off the second store with it
// switched off, raw the library's unnest upsert through pgx on lib's
// table, copy (the floor) a plain COPY into the table without the feed's
// triggers, and put-each (at 1,000) one Put per entry. Each reports the
// median batch's latency (p50-ns) besides the mean.
func BenchmarkBatchPut(b *testing.B) {
	f := batchFamily(b)
	ctx := context.Background()
	perEntry := func(b *testing.B, n int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
	}
	interleavedRotated(b, func(b *testing.B, round int) {
		for _, n := range batchSizes {
			es := batchEntries(n)
			// each runs op on an emptied table: pool's, whose search_path
			// names the table the op writes.
			each := func(pool *pgxpool.Pool, op func() error) func(*testing.B) {
				return func(b *testing.B) {
					opLatencies(b, func() { emptyTable(b, pool) }, op)
					perEntry(b, n)
				}
			}
			sides := []side{
				{"lib", each(f.raw, func() error { return f.lib.BatchPut(ctx, es) })},
				{"lib-feed-off", each(f.offRaw, func() error { return f.off.BatchPut(ctx, es) })},
				// raw: the same unnest upsert, with the arrays built from the
				// entries as any caller holding entries would.
				{"raw", each(f.raw, func() error {
					ks := make([][]byte, len(es))
					vs := make([][]byte, len(es))
					mds := make([]json.RawMessage, len(es))
					ttls := make([]int64, len(es))
					for i, e := range es {
						ks[i], vs[i] = e.Key, e.Value
					}
					return rawUpsertMany(ctx, f.raw, ks, vs, mds, ttls)
				})},
				// copy: the floor, a plain COPY of new rows.
				{"copy", each(f.floor, func() error {
					ks := make([][]byte, len(es))
					vs := make([][]byte, len(es))
					for i, e := range es {
						ks[i], vs[i] = e.Key, e.Value
					}
					return rawCopy(ctx, f.floor, ks, vs)
				})},
			}
			if n == 1_000 {
				// put-each: the same entries written one Put at a time, the
				// floor BatchPut has to beat by 20 times.
				sides = append(sides, side{"put-each", each(f.raw, func() error {
					for _, e := range es {
						if err := f.lib.Put(ctx, e.Key, e.Value); err != nil {
							return err
						}
					}
					return nil
				})})
			}
			b.Run(fmt.Sprint(n), func(b *testing.B) { rotated(b, round, sides...) })
		}
	})
}
