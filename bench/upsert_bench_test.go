package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/pgstate/pgstate/state"
)

// upsertSizes are the sizes of BenchmarkBatchUpsert.
var upsertSizes = []int{1_000, 10_000}

// floorUpdateMany is what an expert writes to overwrite keys known to
// exist: one UPDATE joined to the arrays, without the speculative insertion
// of INSERT … ON CONFLICT.
const floorUpdateMany = `UPDATE state_entries AS e
SET value = b.value, metadata = NULL, expires_at = NULL, updated_at = now(), version = e.version + 1
FROM unnest($1::bytea[], $2::bytea[]) AS b(key, value)
WHERE e.key = b.key`

// BenchmarkBatchUpsert rewrites keys that all exist: the library's BatchPut
// (its COPY meets the existing keys and falls back to the upsert at 1,000
// and more), raw, the same unnest upsert through pgx, and the floor, one
// UPDATE … FROM unnest. lib rewrites the u: keys, raw (on the same table)
// the v: keys, floor the u: keys of the floor's table, so that each
// side's rows bloat at the same rate.
func BenchmarkBatchUpsert(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		f := family(b, "upsert", 10, func(ctx context.Context, f *fixture) error {
			for _, prefix := range []string{"u:", "v:"} {
				if err := seedRows(ctx, f.raw, prefix, upsertSizes[len(upsertSizes)-1], nil, nil); err != nil {
					return err
				}
			}
			return nil
		})
		ctx := context.Background()
		for _, n := range upsertSizes {
			es := make([]state.Entry, n)
			ks := make([][]byte, n)
			rks := make([][]byte, n)
			vs := make([][]byte, n)
			for i := range es {
				es[i] = state.Entry{Key: key("u:", i), Value: value}
				ks[i], vs[i] = es[i].Key, es[i].Value
				rks[i] = key("v:", i)
			}
			b.Run(fmt.Sprint(n), func(b *testing.B) {
				b.Run("lib", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := f.lib.BatchPut(ctx, es); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("raw", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if err := rawUpsertMany(ctx, f.raw, rks, vs, make([]json.RawMessage, n), make([]int64, n)); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run("floor", func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := f.floor.Exec(ctx, floorUpdateMany, ks, vs); err != nil {
							b.Fatal(err)
						}
					}
				})
			})
		}
	})
}
