package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/pgstate/pgstate/state"
)

// batchSizes are the BatchPut sizes; every iteration writes new keys into an
// emptied table, so the library, the unnest baseline and the COPY ceiling
// all do the same work.
var batchSizes = []int{100, 1_000, 10_000, 100_000}

func batchFamily(b *testing.B) *fixture {
	return family(b, "batch", 10, nil)
}

func batchEntries(n int) []state.Entry {
	es := make([]state.Entry, n)
	for i := range es {
		es[i] = state.Entry{Key: key("b:", i), Value: value}
	}
	return es
}

// emptyTable runs with the timer stopped before each iteration.
func emptyTable(b *testing.B, f *fixture) {
	b.StopTimer()
	exec(b, f.raw, "TRUNCATE state_entries")
	b.StartTimer()
}

func BenchmarkBatchPut(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := batchFamily(b)
		ctx := context.Background()
		for _, n := range batchSizes {
			es := batchEntries(n)
			b.Run(fmt.Sprint(n), func(b *testing.B) {
				b.Run("lib", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						emptyTable(b, f)
						if err := f.lib.BatchPut(ctx, es); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
				})
				// raw: the same unnest upsert, with the arrays built from the
				// entries as any caller holding entries would.
				b.Run("raw", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						emptyTable(b, f)
						ks := make([][]byte, len(es))
						vs := make([][]byte, len(es))
						mds := make([]json.RawMessage, len(es))
						ttls := make([]int64, len(es))
						for i, e := range es {
							ks[i], vs[i] = e.Key, e.Value
						}
						if err := rawUpsertMany(ctx, f.raw, ks, vs, mds, ttls); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
				})
				// copy: the ceiling, a plain COPY of new rows.
				b.Run("copy", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						emptyTable(b, f)
						ks := make([][]byte, len(es))
						vs := make([][]byte, len(es))
						for i, e := range es {
							ks[i], vs[i] = e.Key, e.Value
						}
						if err := rawCopy(ctx, f.raw, ks, vs); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
				})
				if n != 1_000 {
					return
				}
				// put-each: the same entries written one Put at a time, the
				// floor BatchPut has to beat by 20 times.
				b.Run("put-each", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						emptyTable(b, f)
						for _, e := range es {
							if err := f.lib.Put(ctx, e.Key, e.Value); err != nil {
								b.Fatal(err)
							}
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
				})
			})
		}
	})
}
