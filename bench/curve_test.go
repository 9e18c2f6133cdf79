package bench

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/state"
)

var (
	curve         = flag.Bool("curve", false, "run TestConcurrencyCurve: Get and Put throughput against pgbench at 1 to 64 clients (minutes; needs pgbench)")
	curveDuration = flag.Duration("curve-duration", 5*time.Second, "how long each point of TestConcurrencyCurve runs")
)

// curveClients are the client counts of the curve.
var curveClients = []int{1, 2, 4, 8, 16, 32, 64}

// pgbench scripts with the library's statements (EntryGet and EntryPut,
// TTL NULL) on the same keys: what pgbench -S and a custom upsert do with
// the same SQL, so the ratio is the client's cost alone.
const (
	curveGetScript = `\set k random(0, 9999)
SELECT value FROM state_entries WHERE key = convert_to('c:' || lpad(:k::text, 7, '0'), 'UTF8') AND (expires_at IS NULL OR expires_at > now());
`
	curvePutScript = `\set k random(0, 9999)
INSERT INTO state_entries (key, value, metadata, expires_at) VALUES (convert_to('c:' || lpad(:k::text, 7, '0'), 'UTF8'), '\x7676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676767676', NULL, NULL)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, metadata = excluded.metadata, expires_at = excluded.expires_at, updated_at = now(), created_at = CASE WHEN state_entries.expires_at <= now() THEN now() ELSE state_entries.created_at END, version = state_entries.version + 1;
`
)

// TestConcurrencyCurve prints Get and Put throughput of the library at 1 to
// 64 goroutines next to pgbench (-M prepared, the same statements, the same
// number of clients) on the same database, alternating the two at every
// point. The library's pool has as many connections as goroutines, as
// pgbench has one connection per client.
//
//	scripts/with-postgres.sh -- go test ./bench -run TestConcurrencyCurve -curve -v -timeout 30m
func TestConcurrencyCurve(t *testing.T) {
	if !*curve {
		t.Skip("needs -curve")
	}
	pgbench, err := osexec.LookPath("pgbench")
	if err != nil {
		t.Skip("no pgbench")
	}
	ctx := context.Background()
	f := family(t, "curve", 8, func(ctx context.Context, f *fixture) error {
		return seedRows(ctx, f.raw, "c:", putKeysN, nil, nil)
	})
	dir := t.TempDir()
	scripts := map[string]string{"Get": filepath.Join(dir, "get.sql"), "Put": filepath.Join(dir, "put.sql")}
	if err := os.WriteFile(scripts["Get"], []byte(curveGetScript), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(scripts["Put"], []byte(curvePutScript), 0o600); err != nil {
		t.Fatal(err)
	}
	ks := keys("c:", putKeysN)
	ops := map[string]func(*state.Postgres, []byte) error{
		"Get": func(s *state.Postgres, k []byte) error { _, _, err := s.Get(ctx, k); return err },
		"Put": func(s *state.Postgres, k []byte) error { return s.Put(ctx, k, value) },
	}
	// raw: the same statements through a pgx pool of the same
	// configuration, which separates what the Go driver costs from what
	// the library adds.
	var raw *pgxpool.Pool
	rawOps := map[string]func(*state.Postgres, []byte) error{
		"Get": func(_ *state.Postgres, k []byte) error { _, _, err := rawGet(ctx, raw, k); return err },
		"Put": func(_ *state.Postgres, k []byte) error { return rawPut(ctx, raw, k, value, nil, nil) },
	}
	t.Logf("%-4s %8s %12s %12s %12s %9s %9s", "op", "clients", "lib ops/s", "raw ops/s", "pgbench tps", "lib/pgb", "raw/pgb")
	for _, op := range []string{"Get", "Put"} {
		for _, n := range curveClients {
			cfg := state.DefaultConfig(f.dsn)
			cfg.MaxConns = int32(n)
			cfg.MinConns = min(cfg.MinConns, cfg.MaxConns)
			lib, err := state.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			libRate := libThroughput(t, lib, n, ks, ops[op])
			if raw, err = pgxpool.NewWithConfig(ctx, lib.Pool().Config()); err != nil {
				t.Fatal(err)
			}
			lib.Close()
			rawRate := libThroughput(t, nil, n, ks, rawOps[op])
			raw.Close()
			tps := pgbenchTPS(t, pgbench, f.dsn, scripts[op], n)
			t.Logf("%-4s %8d %12.0f %12.0f %12.0f %9.2f %9.2f", op, n, libRate, rawRate, tps, libRate/tps, rawRate/tps)
		}
	}
}

// libThroughput runs op from n goroutines for curveDuration, after a
// second of warm-up that fills the pool and the statement caches.
func libThroughput(t *testing.T, lib *state.Postgres, n int, ks [][]byte, op func(*state.Postgres, []byte) error) float64 {
	t.Helper()
	run := func(d time.Duration) int64 {
		var done, next atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(d)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					i := next.Add(1)
					if err := op(lib, ks[int(i*7919)%len(ks)]); err != nil {
						t.Error(err)
						return
					}
					done.Add(1)
				}
			}()
		}
		wg.Wait()
		return done.Load()
	}
	run(time.Second)
	start := time.Now()
	ops := run(*curveDuration)
	return float64(ops) / time.Since(start).Seconds()
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbenchTPS runs pgbench with one thread per client up to the core count.
func pgbenchTPS(t *testing.T, pgbench, dsn, script string, clients int) float64 {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("pgbench needs a URL DSN: %v", err)
	}
	args := []string{"-n", "-M", "prepared", "-f", script, "-c", strconv.Itoa(clients),
		"-j", strconv.Itoa(min(clients, 2)), "-T", strconv.Itoa(int(curveDuration.Seconds())), u.String()}
	out, err := osexec.Command(pgbench, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench %v: %v\n%s", args, err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := tpsLine.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			return v
		}
	}
	t.Fatalf("no tps in pgbench output:\n%s", out)
	return 0
}
