package bench

import (
	"context"
	"runtime"
	"testing"

	"github.com/pgstate/pgstate/state"
)

const scanN = 1_000_000

// heapPeak samples the live heap every sampleEvery entries.
type heapPeak struct {
	seen int
	peak uint64
	ms   runtime.MemStats
}

const sampleEvery = 25_000

func (h *heapPeak) entry() {
	h.seen++
	if h.seen%sampleEvery == 0 {
		runtime.ReadMemStats(&h.ms)
		h.peak = max(h.peak, h.ms.HeapAlloc)
	}
}

// BenchmarkScan iterates over 1,000,000 entries. Besides B/op it reports
// peak-heap-B, the largest heap seen while iterating: bounded by one page
// (ScanPageSize entries), not by the store.
func BenchmarkScan(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := family(b, "scan", 10, func(ctx context.Context, f *fixture) error {
			return seedRows(ctx, f.raw, "s:", scanN, nil, nil)
		})
		ctx := context.Background()
		b.Run("lib", func(b *testing.B) {
			b.ReportAllocs()
			var h heapPeak
			for b.Loop() {
				h.seen = 0
				for _, err := range f.lib.Scan(ctx, nil) {
					if err != nil {
						b.Fatal(err)
					}
					h.entry()
				}
				if h.seen != scanN {
					b.Fatal(h.seen)
				}
			}
			b.ReportMetric(float64(h.peak), "peak-heap-B")
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			var h heapPeak
			for b.Loop() {
				h.seen = 0
				if err := rawScan(ctx, f.raw, state.ScanPageSize, func(rawEntry) { h.entry() }); err != nil {
					b.Fatal(err)
				}
				if h.seen != scanN {
					b.Fatal(h.seen)
				}
			}
			b.ReportMetric(float64(h.peak), "peak-heap-B")
		})
		// floor: one streamed query, each row scanned into an entry.
		b.Run("floor", func(b *testing.B) {
			b.ReportAllocs()
			var h heapPeak
			for b.Loop() {
				h.seen = 0
				rows, err := f.floor.Query(ctx, floorScan)
				if err != nil {
					b.Fatal(err)
				}
				for rows.Next() {
					var e rawEntry
					if err := rows.Scan(&e.Key, &e.Value, &e.CreatedAt, &e.UpdatedAt, &e.ExpiresAt, &e.Metadata, &e.Version); err != nil {
						b.Fatal(err)
					}
					h.entry()
				}
				if err := rows.Err(); err != nil || h.seen != scanN {
					b.Fatal(h.seen, err)
				}
			}
			b.ReportMetric(float64(h.peak), "peak-heap-B")
		})
	})
}
