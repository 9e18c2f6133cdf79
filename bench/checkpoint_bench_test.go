package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
)

var checkpointSizes = []int{100, 100_000}

// checkpointFamily is a store of n entries, one database per size.
func checkpointFamily(b *testing.B, n int) *fixture {
	return family(b, fmt.Sprintf("checkpoint-%d", n), 10, func(ctx context.Context, f *fixture) error {
		return seedRows(ctx, f.raw, "k:", n, groupMetadata, nil)
	})
}

// BenchmarkCreateCheckpoint copies n entries server-side; B/op shows that the
// client's memory does not grow with n.
func BenchmarkCreateCheckpoint(b *testing.B) {
	ctx := context.Background()
	for _, n := range checkpointSizes {
		f := checkpointFamily(b, n)
		clean := func(b *testing.B) {
			b.StopTimer()
			exec(b, f.raw, "TRUNCATE state_checkpoint_entries, state_checkpoints")
			b.StartTimer()
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.Run("lib", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					clean(b)
					if _, err := f.lib.CreateCheckpoint(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("raw", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					clean(b)
					if _, err := rawCreateCheckpoint(ctx, f.raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkRestoreCheckpoint restores a checkpoint of n entries over the
// same n entries: delete all, copy back, in one transaction.
func BenchmarkRestoreCheckpoint(b *testing.B) {
	ctx := context.Background()
	for _, n := range checkpointSizes {
		f := checkpointFamily(b, n)
		var id uuid.UUID
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			if id == uuid.Nil {
				var err error
				if id, err = f.lib.CreateCheckpoint(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("lib", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := f.lib.RestoreCheckpoint(ctx, id); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("raw", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := rawRestoreCheckpoint(ctx, f.raw, id); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
		// The restores leave n dead rows each; keep the next run comparable.
		exec(b, f.raw, "VACUUM state_entries")
	}
}

const cleanupN = 100_000

// expireRows inserts cleanupN entries that expired an hour ago and vacuums
// away what the previous iteration deleted, with the timer stopped.
func expireRows(b *testing.B, f *fixture) {
	b.StopTimer()
	exec(b, f.raw, "VACUUM state_entries")
	exec(b, f.raw, `INSERT INTO state_entries (key, value, expires_at)
		SELECT convert_to('x:' || lpad(i::text, 7, '0'), 'UTF8'), $2, now() - interval '1 hour'
		FROM generate_series(0, $1::int - 1) AS i`, cleanupN, value)
	b.StartTimer()
}

// BenchmarkCleanupExpired deletes 100,000 expired entries from a store that
// also holds 10,000 live ones: the library in batches of CleanupBatchSize
// (5000) through the expires_at index, raw as one DELETE.
func BenchmarkCleanupExpired(b *testing.B) {
	f := family(b, "cleanup", 10, func(ctx context.Context, f *fixture) error {
		return seedRows(ctx, f.raw, "k:", 10_000, nil, nil)
	})
	ctx := context.Background()
	check := func(b *testing.B, n int64, err error) {
		if err != nil || n != cleanupN {
			b.Fatal(n, err)
		}
	}
	b.Run(fmt.Sprint(cleanupN), func(b *testing.B) {
		b.Run("lib", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				expireRows(b, f)
				n, err := f.lib.CleanupExpired(ctx)
				check(b, n, err)
			}
		})
		b.Run("raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				expireRows(b, f)
				n, err := rawCleanupExpired(ctx, f.raw)
				check(b, n, err)
			}
		})
	})
}
