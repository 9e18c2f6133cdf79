package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/state"
)

// checkpointSizes: 150,000 is the size issue 11 measured.
var checkpointSizes = []int{100, 150_000}

// checkpointFamily is a store of n entries, one database per size, with the
// floor's checkpoint table in the floor's schema.
func checkpointFamily(b *testing.B, n int) *fixture {
	return family(b, fmt.Sprintf("checkpoint-%d", n), 10, func(ctx context.Context, f *fixture) error {
		if _, err := f.floor.Exec(ctx, floorCheckpointTable); err != nil {
			return err
		}
		return seedRows(ctx, f.raw, "k:", n, groupMetadata, nil)
	})
}

// clearCheckpoints empties every checkpoint table, the store's and the
// floor's, with the timer stopped, so no iteration pays for the dead rows
// of another.
func clearCheckpoints(b *testing.B, f *fixture) {
	b.StopTimer()
	truncateCheckpoints(b, f)
	b.StartTimer()
}

func truncateCheckpoints(b *testing.B, f *fixture) {
	exec(b, f.raw, "TRUNCATE state_checkpoint_entries, state_checkpoints")
	exec(b, f.floor, "TRUNCATE state_checkpoint_entries, state_checkpoints, floor_checkpoint_entries")
}

// BenchmarkCreateCheckpoint copies n entries server-side; B/op shows that the
// client's memory does not grow with n. floor is the plain INSERT … SELECT
// into a table with the same primary key, in one transaction.
func BenchmarkCreateCheckpoint(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		ctx := context.Background()
		for _, n := range checkpointSizes {
			f := checkpointFamily(b, n)
			b.Run(fmt.Sprint(n), func(b *testing.B) {
				b.Run("lib", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						clearCheckpoints(b, f)
						if _, err := f.lib.CreateCheckpoint(ctx); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("raw", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						clearCheckpoints(b, f)
						if _, err := rawCreateCheckpoint(ctx, f.raw); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("floor", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						clearCheckpoints(b, f)
						if _, err := floorCreateCheckpoint(ctx, f.floor); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	})
}

// BenchmarkRestoreCheckpoint restores a checkpoint of n entries over the
// same n entries: delete all, copy back, in one transaction.
func BenchmarkRestoreCheckpoint(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		ctx := context.Background()
		for _, n := range checkpointSizes {
			f := checkpointFamily(b, n)
			b.Run(fmt.Sprint(n), func(b *testing.B) {
				truncateCheckpoints(b, f)
				id, err := f.lib.CreateCheckpoint(ctx)
				if err != nil {
					b.Fatal(err)
				}
				// The floor restores the same entries from a checkpoint of
				// its own table.
				floorID, err := f.floorStore.CreateCheckpoint(ctx)
				if err != nil {
					b.Fatal(err)
				}
				for _, who := range []struct {
					name    string
					pool    *pgxpool.Pool
					restore func() error
				}{
					{"lib", f.raw, func() error { return f.lib.RestoreCheckpoint(ctx, id) }},
					{"raw", f.raw, func() error { return rawRestoreCheckpoint(ctx, f.raw, id) }},
					{"floor", f.floor, func() error { return floorRestoreCheckpoint(ctx, f.floor, floorID) }},
				} {
					b.Run(who.name, func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							if err := who.restore(); err != nil {
								b.Fatal(err)
							}
						}
					})
					// The restores leave n dead rows each; keep the next one comparable.
					exec(b, who.pool, "VACUUM state_entries")
				}
			})
		}
	})
}

// BenchmarkDeleteCheckpoint deletes a checkpoint of n entries, made with the
// timer stopped into emptied tables. floor deletes the same rows from the
// floor's table, which has no header.
func BenchmarkDeleteCheckpoint(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		ctx := context.Background()
		for _, n := range checkpointSizes {
			f := checkpointFamily(b, n)
			made := func(b *testing.B, create func() (uuid.UUID, error)) uuid.UUID {
				clearCheckpoints(b, f)
				b.StopTimer()
				defer b.StartTimer()
				id, err := create()
				if err != nil {
					b.Fatal(err)
				}
				return id
			}
			libCreate := func() (uuid.UUID, error) { return f.lib.CreateCheckpoint(ctx) }
			b.Run(fmt.Sprint(n), func(b *testing.B) {
				b.Run("lib", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := f.lib.DeleteCheckpoint(ctx, made(b, libCreate)); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("raw", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if d, err := rawDeleteCheckpoint(ctx, f.raw, made(b, libCreate)); err != nil || d != 1 {
							b.Fatal(d, err)
						}
					}
				})
				b.Run("floor", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						id := made(b, func() (uuid.UUID, error) { return floorCreateCheckpoint(ctx, f.floor) })
						if _, err := f.floor.Exec(ctx, floorCheckpointDelete, id); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	})
}

// BenchmarkCheckpointRetention makes a checkpoint of n entries with
// CheckpointRetention 1 while one other exists: the copy and the deletion of
// the old one, in one transaction. floor does the same two statements on the
// floor's table.
func BenchmarkCheckpointRetention(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		ctx := context.Background()
		n := checkpointSizes[len(checkpointSizes)-1]
		f := checkpointFamily(b, n)
		cfg := state.DefaultConfig(f.dsn)
		cfg.CheckpointRetention = 1
		keep1, err := state.Open(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer keep1.Close()
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.Run("lib", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					clearCheckpoints(b, f)
					b.StopTimer()
					if _, err := keep1.CreateCheckpoint(ctx); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if _, err := keep1.CreateCheckpoint(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("floor", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					clearCheckpoints(b, f)
					b.StopTimer()
					old, err := floorCreateCheckpoint(ctx, f.floor)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					id, err := uuid.NewV7()
					if err != nil {
						b.Fatal(err)
					}
					err = pgx.BeginFunc(ctx, f.floor, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, floorCheckpointCopy, id); err != nil {
							return err
						}
						_, err := tx.Exec(ctx, floorCheckpointDelete, old)
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	})
}

// cleanupSizes are the numbers of expired rows CleanupExpired removes: 50,000
// is the size of issue 19's target, 100,000 that of issue 11's.
var cleanupSizes = []int{50_000, 100_000}

// expireRows inserts n entries that expired an hour ago into the table of
// pool's search_path and vacuums away what the previous iteration deleted,
// with the timer stopped.
func expireRows(b *testing.B, pool *pgxpool.Pool, n int) {
	b.StopTimer()
	exec(b, pool, "VACUUM state_entries")
	exec(b, pool, `INSERT INTO state_entries (key, value, expires_at)
		SELECT convert_to('x:' || lpad(i::text, 7, '0'), 'UTF8'), $2, now() - interval '1 hour'
		FROM generate_series(0, $1::int - 1) AS i`, n, value)
	b.StartTimer()
}

// BenchmarkCleanupExpired deletes n expired entries from a store that also
// holds 10,000 live ones: lib, the store's CleanupExpired with the change
// feed on, in batches of CleanupBatchSize (10,000 by default);
// lib-feed-off, the same on the store whose feed is switched off; raw, the
// library's batch statement in the same loop on lib's table; floor, one
// DELETE of every expired row from the table without the feed's triggers.
func BenchmarkCleanupExpired(b *testing.B) {
	f := feedOffFamily(b, "cleanup", 10, func(ctx context.Context, f *fixture) error {
		return seedRows(ctx, f.raw, "k:", 10_000, nil, nil)
	})
	ctx := context.Background()
	batch := int32(state.DefaultConfig("").CleanupBatchSize)
	interleavedRotated(b, func(b *testing.B, round int) {
		for _, n := range cleanupSizes {
			// each runs cleanup after filling pool's table with n expired
			// rows; cleanup returns how many it removed.
			each := func(pool *pgxpool.Pool, cleanup func() (int64, error)) func(*testing.B) {
				return func(b *testing.B) {
					opLatencies(b, func() { expireRows(b, pool, n) }, func() error {
						got, err := cleanup()
						if err == nil && got != int64(n) {
							err = fmt.Errorf("removed %d rows, want %d", got, n)
						}
						return err
					})
				}
			}
			b.Run(fmt.Sprint(n), func(b *testing.B) {
				rotated(b, round,
					side{"lib", each(f.raw, func() (int64, error) { return f.lib.CleanupExpired(ctx) })},
					side{"lib-feed-off", each(f.offRaw, func() (int64, error) { return f.off.CleanupExpired(ctx) })},
					side{"raw", each(f.raw, func() (int64, error) { return rawCleanupExpired(ctx, f.raw, batch) })},
					side{"floor", each(f.floor, func() (int64, error) {
						tag, err := f.floor.Exec(ctx, floorDeleteExpired)
						return tag.RowsAffected(), err
					})},
				)
			})
		}
	})
}
