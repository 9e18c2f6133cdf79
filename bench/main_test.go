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
	"slices"
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

// fixture is one benchmark family's database. Its default schema (public)
// holds the store as users get it, change feed on, with two identically
// configured pools on it: the library's (lib) and the raw baseline's (raw).
// The floors run on a schema of their own, migrated the same way but with
// the change feed's four triggers dropped: the same columns, primary key,
// CHECKs, indexes and touch trigger as state_entries, and nothing that
// logs a write. Write families also get a third schema holding a second
// store whose feed is switched off with SetChangeFeed(false) (off), and a
// pool on it for preparing its table (offRaw).
type fixture struct {
	name string
	dsn  string
	lib  *state.Postgres
	raw  *pgxpool.Pool

	// floor is a pool on floorSchema; floorStore, the store on that schema,
	// only prepares what a floor starts from (a checkpoint to restore).
	floor      *pgxpool.Pool
	floorStore *state.Postgres

	// off and offRaw are nil unless the family was made by feedOffFamily.
	off    *state.Postgres
	offRaw *pgxpool.Pool
}

const (
	// floorSchema holds the floors' tables: state_entries without the
	// change feed's triggers.
	floorSchema = "bench_floor"
	// offSchema holds the second store, its change feed switched off.
	offSchema = "bench_feed_off"
)

// feedTriggers are the statement triggers migration 007 puts on
// state_entries to fill the change log.
var feedTriggers = []string{"state_changes_insert", "state_changes_update", "state_changes_delete", "state_changes_truncate"}

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*fixture{}
)

// family returns the database of a benchmark family, creating and seeding it
// on first use. It lives until the test binary exits, so -count=5 seeds once;
// testdb's per-test databases would be dropped and re-seeded after every run.
// seed fills the store's table through f.raw; the floor's table (and the
// feed-off store's, see feedOffFamily) then receive a copy of the same rows.
func family(tb testing.TB, name string, maxConns int32, seed func(context.Context, *fixture) error) *fixture {
	return openFamily(tb, name, maxConns, false, seed)
}

// feedOffFamily is family with the feed-off store as well, for the write
// benchmarks that measure the library with its change feed on and off.
// The rows seeded are the same in all three tables.
func feedOffFamily(tb testing.TB, name string, maxConns int32, seed func(context.Context, *fixture) error) *fixture {
	return openFamily(tb, name, maxConns, true, seed)
}

func openFamily(tb testing.TB, name string, maxConns int32, feedOff bool, seed func(context.Context, *fixture) error) *fixture {
	tb.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f, ok := fixtures[name]; ok {
		if feedOff && f.off == nil {
			tb.Fatalf("family %s was made without its feed-off store", name)
		}
		return f
	}
	ctx := context.Background()
	f, err := newFixture(ctx, name, maxConns, feedOff)
	if err != nil {
		tb.Fatalf("family %s: %v", name, err)
	}
	fixtures[name] = f
	start := time.Now()
	if seed != nil {
		if err := seed(ctx, f); err != nil {
			tb.Fatalf("seed %s: %v", name, err)
		}
	}
	copies := []string{floorSchema}
	if feedOff {
		copies = append(copies, offSchema)
	}
	for _, s := range copies {
		// Same migrations, so the same column order.
		if _, err := f.raw.Exec(ctx, "INSERT INTO "+s+".state_entries SELECT * FROM public.state_entries"); err != nil {
			tb.Fatalf("copy %s's entries into %s: %v", name, s, err)
		}
	}
	for _, s := range append(copies, "public") {
		if _, err := f.raw.Exec(ctx, "VACUUM (ANALYZE) "+s+".state_entries"); err != nil {
			tb.Fatalf("vacuum %s.%s: %v", name, s, err)
		}
	}
	if seed != nil {
		tb.Logf("seeded %s in %v", name, time.Since(start).Round(time.Millisecond))
	}
	return f
}

func newFixture(ctx context.Context, name string, maxConns int32, feedOff bool) (_ *fixture, err error) {
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
	f := &fixture{name: dbName, dsn: dsn}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	// open opens a store on schema (migrating it) and a second pool of the
	// same pgxpool configuration, copied: same MaxConns, MinConns,
	// search_path, application_name and QueryExecMode.
	open := func(schema string) (*state.Postgres, *pgxpool.Pool, error) {
		cfg := state.DefaultConfig(dsn)
		cfg.Schema = schema
		cfg.MaxConns = maxConns
		lib, err := state.Open(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("open store on %s: %w", schema, err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, lib.Pool().Config())
		if err != nil {
			lib.Close()
			return nil, nil, err
		}
		return lib, pool, nil
	}
	if f.lib, f.raw, err = open("public"); err != nil {
		return nil, err
	}
	if f.floorStore, f.floor, err = open(floorSchema); err != nil {
		return nil, err
	}
	for _, trg := range feedTriggers {
		if _, err := f.floor.Exec(ctx, "DROP TRIGGER "+trg+" ON state_entries"); err != nil {
			return nil, fmt.Errorf("drop %s on the floor's table: %w", trg, err)
		}
	}
	if feedOff {
		if f.off, f.offRaw, err = open(offSchema); err != nil {
			return nil, err
		}
		if err := f.off.SetChangeFeed(ctx, false); err != nil {
			return nil, fmt.Errorf("switch the feed off on %s: %w", offSchema, err)
		}
	}
	return f, nil
}

// close closes every store and pool of the fixture that is open.
func (f *fixture) close() {
	for _, s := range []*state.Postgres{f.lib, f.floorStore, f.off} {
		if s != nil {
			s.Close()
		}
	}
	for _, p := range []*pgxpool.Pool{f.raw, f.floor, f.offRaw} {
		if p != nil {
			p.Close()
		}
	}
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
		f.close()
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

// side is one sub-benchmark of a round: its name (lib, raw, floor…) and
// its body.
type side struct {
	name string
	run  func(*testing.B)
}

// interleavedRotated is interleaved for benchmarks whose rounds run their
// sides through rotated: body gets the round's number.
func interleavedRotated(b *testing.B, body func(b *testing.B, round int)) {
	for r := range *rounds {
		body(b, r)
	}
}

// rotated runs one round's sides, starting round places further into the
// list, so that over the rounds each side runs first, second… about as
// often as the others: what a place in the round brings (caches the side
// before warmed, a checkpoint its WAL set off) is spread over all sides
// instead of always falling on the same one. The i-th sample of every side
// still comes from the i-th round, which is what per-round ratios pair.
func rotated(b *testing.B, round int, sides ...side) {
	for i := range sides {
		s := sides[(round+i)%len(sides)]
		b.Run(s.name, s.run)
	}
}

// opLatencies runs op b.N times (b.Loop) and reports, besides ns/op, the
// median latency of one op as p50-ns: on a machine whose other load comes
// in bursts, a burst that covers less than half of a round moves the mean
// but not the median. next, if not nil, runs before each op outside its
// latency (it may still count in ns/op).
func opLatencies(b *testing.B, next func(), op func() error) {
	b.ReportAllocs()
	var lat []time.Duration
	for b.Loop() {
		if next != nil {
			next()
		}
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		p50 := float64(lat[n/2])
		if n%2 == 0 {
			p50 = float64(lat[n/2-1]+lat[n/2]) / 2
		}
		b.ReportMetric(p50, "p50-ns")
	}
}
