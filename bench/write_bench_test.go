package bench

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/gen"
	"github.com/pgstate/pgstate/state"
)

// casKeysN keys per baseline: each of lib, raw and floor rewrites its own,
// so that the versions each one tracks stay its own (floor's are in the
// floor's table).
const casKeysN = 2000

// writesFamily holds keys for the conditional-write and transaction
// benchmarks: c<who>: for PutEntry(IfVersion), t<who>: for Transact.
func writesFamily(b *testing.B) *fixture {
	return family(b, "writes", 10, func(ctx context.Context, f *fixture) error {
		for _, prefix := range []string{"cl:", "cr:", "cf:", "tl:", "tr:", "tf:"} {
			if err := seedRows(ctx, f.raw, prefix, casKeysN, nil, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// versionsOf reads the current version of every key under prefix, in key
// order, so a benchmark run can continue where the previous one left off.
func versionsOf(b *testing.B, pool *pgxpool.Pool, prefix string) []int64 {
	b.Helper()
	ks := keys(prefix, casKeysN)
	out := make([]int64, len(ks))
	for i, k := range ks {
		if err := pool.QueryRow(context.Background(), "SELECT version FROM state_entries WHERE key = $1", k).Scan(&out[i]); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

// floorCAS is the compare-and-swap an expert writes by hand: one UPDATE
// guarded by the version, no previous-entry reporting, no expiry handling.
const floorCAS = `UPDATE state_entries SET value = $2, version = version + 1, updated_at = now()
WHERE key = $1 AND version = $3 RETURNING version`

func BenchmarkPutIfVersion(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := writesFamily(b)
		ctx := context.Background()
		q := gen.New()
		run := func(b *testing.B, pool *pgxpool.Pool, prefix string, put func(key []byte, version int64) (int64, error)) {
			ks := keys(prefix, casKeysN)
			versions := versionsOf(b, pool, prefix)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				j := i % len(ks)
				v, err := put(ks[j], versions[j])
				if err != nil || v != versions[j]+1 {
					b.Fatalf("put %s at version %d: got %d, %v", ks[j], versions[j], v, err)
				}
				versions[j] = v
				i++
			}
		}
		b.Run("lib", func(b *testing.B) {
			run(b, f.raw, "cl:", func(key []byte, version int64) (int64, error) {
				r, err := f.lib.PutEntry(ctx, key, value, state.IfVersion(version))
				return r.Version, err
			})
		})
		// raw: the library's statement through pgx, nothing else.
		b.Run("raw", func(b *testing.B) {
			run(b, f.raw, "cr:", func(key []byte, version int64) (int64, error) {
				row, err := q.EntryWrite(ctx, f.raw, gen.EntryWriteParams{Key: key, Value: value, Conditional: true, Expected: version})
				return row.Version, err
			})
		})
		b.Run("floor", func(b *testing.B) {
			run(b, f.floor, "cf:", func(key []byte, version int64) (int64, error) {
				var v int64
				err := f.floor.QueryRow(ctx, floorCAS, key, value, version).Scan(&v)
				return v, err
			})
		})
	})
}

// BenchmarkTransact is a read-modify-write of one key: the library's
// serializable Transact with Get and Put; raw, the same two generated
// statements in a serializable pgx transaction; floor, what an expert
// writes for a lost-update-free read-modify-write: SELECT … FOR UPDATE and
// UPDATE in a read committed transaction.
func BenchmarkTransact(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := writesFamily(b)
		ctx := context.Background()
		q := gen.New()
		b.Run("lib", func(b *testing.B) {
			ks := keys("tl:", casKeysN)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := ks[i%len(ks)]
				err := f.lib.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
					v, _, err := tx.Get(ctx, k)
					if err != nil {
						return err
					}
					return tx.Put(ctx, k, v)
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("raw", func(b *testing.B) {
			ks := keys("tr:", casKeysN)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := ks[i%len(ks)]
				err := pgx.BeginTxFunc(ctx, f.raw, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
					v, err := q.EntryGet(ctx, tx, k)
					if err != nil {
						return err
					}
					return q.EntryPut(ctx, tx, gen.EntryPutParams{Key: k, Value: v})
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("floor", func(b *testing.B) {
			ks := keys("tf:", casKeysN)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := ks[i%len(ks)]
				err := pgx.BeginFunc(ctx, f.floor, func(tx pgx.Tx) error {
					var v []byte
					if err := tx.QueryRow(ctx, "SELECT value FROM state_entries WHERE key = $1 FOR UPDATE", k).Scan(&v); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "UPDATE state_entries SET value = $2, version = version + 1, updated_at = now() WHERE key = $1", k, v)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}
