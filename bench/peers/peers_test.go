package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSmoke runs every workload once on every store with tiny sizes, so CI
// sees the peers program build and work without paying for a benchmark. It
// is skipped when no server answers.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := baseDSN()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Skipf("no server at %s: %v", base, err)
	}
	conn.Close(ctx)
	sz := sizes{Seed: 200, Gets: 5, Puts: 2, Deletes: 2, BulkGets: 1, Bulk1k: 1, Bulk10k: 0, Concurrent: 20, Goroutines: 2, MaxConns: 2, ValueLength: 10}
	res, err := run(ctx, base, 1, sz, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res.print(&out, 1)
	for _, want := range []string{"Get p50", "BulkGet 100 p50", "bulk write 1k", "bulk write 1k Multi", "concurrent Get"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
}
