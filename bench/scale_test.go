package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestScale prints how the store-wide operations grow with the number of
// entries. It builds stores of 1M entries, so it runs only with -scale:
//
//	scripts/with-postgres.sh -- go test ./bench -run TestScale -scale -v -timeout 30m
func TestScale(t *testing.T) {
	if !*scale {
		t.Skip("needs -scale")
	}
	ctx := context.Background()
	type row struct {
		n                                                          int
		create, restore, cleanup, count, estimate, list1k, listAll time.Duration
	}
	var rows []row
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		f := family(t, fmt.Sprintf("scale-%d", n), 10, func(ctx context.Context, f *fixture) error {
			return seedRows(ctx, f.raw, "k:", n, groupMetadata, nil)
		})
		timed := func(what string, fn func() error) time.Duration {
			start := time.Now()
			if err := fn(); err != nil {
				t.Fatalf("%s at %d: %v", what, n, err)
			}
			return time.Since(start)
		}
		r := row{n: n}
		r.count = timed("count", func() error { _, err := f.lib.Count(ctx); return err })
		r.estimate = timed("count estimate", func() error { _, err := f.lib.CountEstimate(ctx); return err })
		r.list1k = timed("list 1k", func() error {
			ks, err := f.lib.ListKeys(ctx, []byte("k:0000"))
			if err == nil && len(ks) != 1000 {
				err = fmt.Errorf("%d keys", len(ks))
			}
			return err
		})
		r.listAll = timed("list all", func() error { _, err := f.lib.ListKeys(ctx, nil); return err })
		var id [16]byte
		r.create = timed("create checkpoint", func() error {
			got, err := f.lib.CreateCheckpoint(ctx)
			id = got
			return err
		})
		r.restore = timed("restore checkpoint", func() error { return f.lib.RestoreCheckpoint(ctx, id) })
		exec(t, f.raw, "UPDATE state_entries SET expires_at = now() - interval '1 hour'")
		exec(t, f.raw, "VACUUM (ANALYZE) state_entries")
		r.cleanup = timed("cleanup", func() error {
			got, err := f.lib.CleanupExpired(ctx)
			if err == nil && got != int64(n) {
				err = fmt.Errorf("deleted %d", got)
			}
			return err
		})
		rows = append(rows, r)
	}
	var b strings.Builder
	b.WriteString("\n| entries | CreateCheckpoint | RestoreCheckpoint | CleanupExpired (all expired) | Count | CountEstimate | ListKeys 1k | ListKeys all |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	for _, r := range rows {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", r.n,
			ms(r.create), ms(r.restore), ms(r.cleanup), ms(r.count), ms(r.estimate), ms(r.list1k), ms(r.listAll))
	}
	t.Log(b.String())
}
