// Package bench measures pgstate against raw pgx running the same SQL in the
// same process and on the same server. Run it with `make bench`; see
// BENCHMARKS.md for how to read the output.
package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

var scale = flag.Bool("scale", false, "run TestScale, which builds stores of 10k, 100k and 1M entries (minutes)")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	closeFixtures()
	os.Exit(code)
}

// fixture is one benchmark family's database with two identically
// configured pools on it: the library's and the raw baseline's.
type fixture struct {
	name string
	dsn  string
	lib  *state.Postgres
	raw  *pgxpool.Pool
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*fixture{}
)

// family returns the database of a benchmark family, creating and seeding it
// on first use. It lives until the test binary exits, so -count=5 seeds once;
// testdb's per-test databases would be dropped and re-seeded after every run.
func family(tb testing.TB, name string, maxConns int32, seed func(context.Context, *fixture) error) *fixture {
	tb.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f, ok := fixtures[name]; ok {
		return f
	}
	f, err := newFixture(context.Background(), name, maxConns)
	if err != nil {
		tb.Fatalf("family %s: %v", name, err)
	}
	fixtures[name] = f
	if seed != nil {
		start := time.Now()
		if err := seed(context.Background(), f); err != nil {
			tb.Fatalf("seed %s: %v", name, err)
		}
		if _, err := f.raw.Exec(context.Background(), "VACUUM (ANALYZE) state_entries"); err != nil {
			tb.Fatalf("vacuum %s: %v", name, err)
		}
		tb.Logf("seeded %s in %v", name, time.Since(start).Round(time.Millisecond))
	}
	return f
}

func newFixture(ctx context.Context, name string, maxConns int32) (*fixture, error) {
	dbName := fmt.Sprintf("pgstate_bench_%s_%d", strings.ReplaceAll(name, "-", "_"), os.Getpid())
	admin, err := pgx.Connect(ctx, testdb.BaseURL())
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	quoted := pgx.Identifier{dbName}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+quoted+" WITH (FORCE)"); err != nil {
		return nil, err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+quoted); err != nil {
		return nil, err
	}
	dsn, err := withDatabase(testdb.BaseURL(), dbName)
	if err != nil {
		return nil, err
	}
	cfg := state.DefaultConfig(dsn)
	cfg.MaxConns = maxConns
	lib, err := state.Open(ctx, cfg) // migrates the new database
	if err != nil {
		return nil, err
	}
	// The same pgxpool configuration, copied: same MaxConns, MinConns,
	// search_path, application_name and QueryExecMode.
	raw, err := pgxpool.NewWithConfig(ctx, lib.Pool().Config())
	if err != nil {
		lib.Close()
		return nil, err
	}
	return &fixture{name: dbName, dsn: dsn, lib: lib, raw: raw}, nil
}

func withDatabase(base, db string) (string, error) {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		u.Path = "/" + db
		return u.String(), nil
	}
	return base + " dbname=" + db, nil
}

func closeFixtures() {
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	ctx := context.Background()
	for _, f := range fixtures {
		f.lib.Close()
		f.raw.Close()
		dropDatabase(ctx, f.name)
	}
	clear(fixtures)
}

func dropDatabase(ctx context.Context, name string) {
	admin, err := pgx.Connect(ctx, testdb.BaseURL())
	if err != nil {
		fmt.Fprintf(os.Stderr, "drop %s: %v\n", name, err)
		return
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		fmt.Fprintf(os.Stderr, "drop %s: %v\n", name, err)
	}
}

// key builds the i-th key of a key space: prefix and seven digits, so that
// "k:0042" covers exactly 1,000 of the keys k:0000000 to k:0099999.
func key(prefix string, i int) []byte {
	return fmt.Appendf(nil, "%s%07d", prefix, i)
}

func keys(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = key(prefix, i)
	}
	return out
}

// value is the 100-byte value every seeded and written entry carries.
var value = []byte(strings.Repeat("v", 100))

// seedRows is one COPY of n new rows into state_entries. metadata and
// expires may be nil.
func seedRows(ctx context.Context, pool *pgxpool.Pool, prefix string, n int, metadata func(int) json.RawMessage, expires *time.Time) error {
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		var md json.RawMessage
		if metadata != nil {
			md = metadata(i)
		}
		row := []any{key(prefix, i), value, md, expires}
		i++
		return row, nil
	})
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"state_entries"}, []string{"key", "value", "metadata", "expires_at"}, src)
	return err
}

func exec(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	tb.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

var rounds = flag.Int("rounds", 1, "rounds of every benchmark in one process: each round runs its lib, raw and floor sub-benchmarks once, one after the other (use with -count=1)")

// interleaved runs a benchmark's body -rounds times. go test's -count
// repeats each sub-benchmark back to back (lib ×N, then raw ×N), so a
// change in the machine's load between them reads as a difference between
// the library and its baseline; rounds alternate them instead. go test
// names the repeats lib#01, lib#02…; benchratio reads them as rounds of
// lib.
func interleaved(b *testing.B, body func(*testing.B)) {
	for range *rounds {
		body(b)
	}
}
