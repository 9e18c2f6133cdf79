// Command peers runs the same workloads against pgstate, Dapr's PostgreSQL
// v2 state store and gokv's PostgreSQL store, on one server and in one
// process, with rounds that alternate between the stores, and prints the
// medians of the rounds with their spread. It is a nested module so that
// the library's own module never depends on Dapr or gokv. Run it with
// `make bench-peers`; BENCHMARKS.md has a table it printed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/dapr/components-contrib/metadata"
	daprstate "github.com/dapr/components-contrib/state"
	daprpg "github.com/dapr/components-contrib/state/postgresql/v2"
	"github.com/dapr/kit/logger"
	"github.com/jackc/pgx/v5"
	"github.com/philippgille/gokv/postgresql"

	"github.com/pgstate/pgstate/state"
)

// sizes are the amount of work of one round.
type sizes struct {
	Seed        int // keys each store holds before the round
	Gets        int // sequential Gets (p50, p99)
	Puts        int // sequential overwrites (p50, p99)
	Deletes     int // sequential deletes of existing keys
	BulkGets    int // bulk gets of 100 keys
	Bulk1k      int // bulk writes of 1,000 new keys
	Bulk10k     int // bulk writes of 10,000 new keys
	Concurrent  int // Gets spread over 8 goroutines
	Goroutines  int
	MaxConns    int
	ValueLength int
}

var defaultSizes = sizes{
	Seed: 10_000, Gets: 2_000, Puts: 300, Deletes: 300, BulkGets: 200,
	Bulk1k: 3, Bulk10k: 1, Concurrent: 8_000, Goroutines: 8, MaxConns: 10, ValueLength: 100,
}

func main() {
	dsn := flag.String("dsn", baseDSN(), "server to run on (a database is created and dropped)")
	rounds := flag.Int("rounds", 5, "rounds; every workload runs once per store per round, in an order rotated each round")
	flag.Parse()
	ctx := context.Background()
	res, err := run(ctx, *dsn, *rounds, defaultSizes, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
	res.print(os.Stdout, *rounds)
}

// baseDSN is the server scripts/with-postgres.sh names, or the local one.
func baseDSN() string {
	for _, v := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// store is one peer, reduced to the operations every workload needs.
type store struct {
	name    string
	get     func(ctx context.Context, key string) ([]byte, error)
	put     func(ctx context.Context, key string, v []byte) error
	del     func(ctx context.Context, key string) error
	getMany func(ctx context.Context, keys []string) (int, error)
	// putMany writes new keys in one call; nil when the store has no bulk
	// write (gokv), and then a loop of put is measured and marked so.
	putMany func(ctx context.Context, keys []string, v []byte) error
	close   func()
}

// openPgstate opens pgstate in schema; with feed false its change feed is
// switched off (SetChangeFeed), which neither peer has.
func openPgstate(ctx context.Context, dsn string, sz sizes, schema string, feed bool) (*store, error) {
	cfg := state.DefaultConfig(dsn)
	cfg.MaxConns = int32(sz.MaxConns)
	cfg.Schema = schema
	s, err := state.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	name := "pgstate"
	if !feed {
		if err := s.SetChangeFeed(ctx, false); err != nil {
			s.Close()
			return nil, err
		}
		name = "pgstate (feed off)"
	}
	return &store{
		name: name,
		get: func(ctx context.Context, key string) ([]byte, error) {
			v, _, err := s.Get(ctx, []byte(key))
			return v, err
		},
		put: func(ctx context.Context, key string, v []byte) error { return s.Put(ctx, []byte(key), v) },
		del: func(ctx context.Context, key string) error { return s.Delete(ctx, []byte(key)) },
		getMany: func(ctx context.Context, keys []string) (int, error) {
			ks := make([][]byte, len(keys))
			for i, k := range keys {
				ks[i] = []byte(k)
			}
			m, err := s.GetMany(ctx, ks)
			return len(m), err
		},
		putMany: func(ctx context.Context, keys []string, v []byte) error {
			es := make([]state.Entry, len(keys))
			for i, k := range keys {
				es[i] = state.Entry{Key: []byte(k), Value: v}
			}
			return s.BatchPut(ctx, es)
		},
		close: s.Close,
	}, nil
}

// openDapr returns the Dapr store twice: bulk writes through BulkSet (one
// Set per key, run in parallel by Dapr's default bulk store) and through
// Multi (one transaction of Sets).
func openDapr(ctx context.Context, dsn string, sz sizes) (bulkSet, multi *store, err error) {
	log := logger.NewLogger("peers")
	log.SetOutputLevel(logger.FatalLevel)
	s := daprpg.NewPostgreSQLStateStoreWithOptions(log, daprpg.Options{NoAzureAD: true, NoAWSIAM: true})
	err = s.Init(ctx, daprstate.Metadata{Base: metadata.Base{Name: "peers", Properties: map[string]string{
		"connectionString": dsn,
		"maxConns":         fmt.Sprint(sz.MaxConns),
		"tablePrefix":      "dapr_",
		"cleanupInterval":  "-1",
	}}})
	if err != nil {
		return nil, nil, err
	}
	closer := func() { _ = s.(io.Closer).Close() }
	bulkSet = &store{
		name: "dapr",
		get: func(ctx context.Context, key string) ([]byte, error) {
			r, err := s.Get(ctx, &daprstate.GetRequest{Key: key})
			if err != nil {
				return nil, err
			}
			return r.Data, nil
		},
		put: func(ctx context.Context, key string, v []byte) error {
			return s.Set(ctx, &daprstate.SetRequest{Key: key, Value: v})
		},
		del: func(ctx context.Context, key string) error { return s.Delete(ctx, &daprstate.DeleteRequest{Key: key}) },
		getMany: func(ctx context.Context, keys []string) (int, error) {
			reqs := make([]daprstate.GetRequest, len(keys))
			for i, k := range keys {
				reqs[i] = daprstate.GetRequest{Key: k}
			}
			rs, err := s.BulkGet(ctx, reqs, daprstate.BulkGetOpts{})
			n := 0
			for _, r := range rs {
				if r.Data != nil {
					n++
				}
			}
			return n, err
		},
		putMany: func(ctx context.Context, keys []string, v []byte) error {
			reqs := make([]daprstate.SetRequest, len(keys))
			for i, k := range keys {
				reqs[i] = daprstate.SetRequest{Key: k, Value: v}
			}
			return s.BulkSet(ctx, reqs, daprstate.BulkStoreOpts{})
		},
		close: closer,
	}
	m := *bulkSet
	m.name = "dapr-multi"
	m.putMany = func(ctx context.Context, keys []string, v []byte) error {
		ops := make([]daprstate.TransactionalStateOperation, len(keys))
		for i, k := range keys {
			ops[i] = daprstate.SetRequest{Key: k, Value: v}
		}
		return s.(daprstate.TransactionalStore).Multi(ctx, &daprstate.TransactionalStateRequest{Operations: ops})
	}
	m.close = func() {}
	return bulkSet, &m, nil
}

// rawCodec stores []byte values as they are, so that gokv writes the same
// bytes as the others (its default codec would write them as JSON base64).
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T is not []byte", v)
	}
	return b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: %T is not *[]byte", v)
	}
	*p = data
	return nil
}

func openGokv(dsn string, sz sizes) (*store, error) {
	c, err := postgresql.NewClient(postgresql.Options{
		ConnectionURL: dsn, TableName: "gokv_item", MaxOpenConnections: sz.MaxConns, Codec: rawCodec{},
	})
	if err != nil {
		return nil, err
	}
	st := &store{
		name: "gokv",
		get: func(_ context.Context, key string) ([]byte, error) {
			var v []byte
			_, err := c.Get(key, &v)
			return v, err
		},
		put:   func(_ context.Context, key string, v []byte) error { return c.Set(key, v) },
		del:   func(_ context.Context, key string) error { return c.Delete(key) },
		close: func() { _ = c.Close() },
	}
	// gokv has no bulk read: one Get per key.
	st.getMany = func(ctx context.Context, keys []string) (int, error) {
		n := 0
		for _, k := range keys {
			v, err := st.get(ctx, k)
			if err != nil {
				return n, err
			}
			if v != nil {
				n++
			}
		}
		return n, nil
	}
	return st, nil
}

// results: workload → store → one figure per round.
type results struct {
	order  []string
	unit   map[string]string
	values map[string]map[string][]float64
}

func (r *results) add(workload, unit, store string, v float64) {
	if r.values == nil {
		r.values, r.unit = map[string]map[string][]float64{}, map[string]string{}
	}
	if _, ok := r.values[workload]; !ok {
		r.values[workload] = map[string][]float64{}
		r.order = append(r.order, workload)
		r.unit[workload] = unit
	}
	r.values[workload][store] = append(r.values[workload][store], v)
}

func run(ctx context.Context, base string, rounds int, sz sizes, log io.Writer) (*results, error) {
	dbName := fmt.Sprintf("pgstate_peers_%d", os.Getpid())
	dsn, err := createDatabase(ctx, base, dbName)
	if err != nil {
		return nil, err
	}
	defer dropDatabase(context.Background(), base, dbName)

	pg, err := openPgstate(ctx, dsn, sz, "public", true)
	if err != nil {
		return nil, fmt.Errorf("pgstate: %w", err)
	}
	defer pg.close()
	pgOff, err := openPgstate(ctx, dsn, sz, "nofeed", false)
	if err != nil {
		return nil, fmt.Errorf("pgstate (feed off): %w", err)
	}
	defer pgOff.close()
	dapr, daprMulti, err := openDapr(ctx, dsn, sz)
	if err != nil {
		return nil, fmt.Errorf("dapr: %w", err)
	}
	defer dapr.close()
	gk, err := openGokv(dsn, sz)
	if err != nil {
		return nil, fmt.Errorf("gokv: %w", err)
	}
	defer gk.close()
	stores := []*store{pg, pgOff, dapr, gk}

	value := []byte(strings.Repeat("v", sz.ValueLength))
	for _, s := range stores {
		if err := seed(ctx, s, "k:", sz.Seed, value); err != nil {
			return nil, fmt.Errorf("seed %s: %w", s.name, err)
		}
	}
	if err := vacuum(ctx, dsn); err != nil {
		return nil, err
	}

	res := &results{}
	for r := range rounds {
		if log != nil {
			fmt.Fprintf(log, "peers: round %d of %d\n", r+1, rounds)
		}
		// Rotate who goes first, so no store always runs on a warmer cache.
		order := append(slices.Clone(stores[r%3:]), stores[:r%3]...)
		for _, s := range order {
			if err := seed(ctx, s, fmt.Sprintf("d%d:", r), sz.Deletes, value); err != nil {
				return nil, fmt.Errorf("seed deletes %s: %w", s.name, err)
			}
		}
		for _, w := range workloads(sz, value, r) {
			ss := order
			if w.multi {
				// Dapr's Multi beside pgstate's BatchPut again.
				ss = []*store{pg, daprMulti}
				if r%2 == 1 {
					ss = []*store{daprMulti, pg}
				}
			}
			for _, s := range ss {
				if err := w.run(ctx, s, res); err != nil {
					return nil, fmt.Errorf("%s on %s: %w", w.name, s.name, err)
				}
			}
		}
	}
	return res, nil
}

// seed writes n keys prefix0000000… one bulk write (or loop) at a time of
// 1,000.
func seed(ctx context.Context, s *store, prefix string, n int, value []byte) error {
	for lo := 0; lo < n; lo += 1000 {
		keys := keyRange(prefix, lo, min(n, lo+1000))
		if s.putMany != nil {
			if err := s.putMany(ctx, keys, value); err != nil {
				return err
			}
			continue
		}
		for _, k := range keys {
			if err := s.put(ctx, k, value); err != nil {
				return err
			}
		}
	}
	return nil
}

func keyRange(prefix string, lo, hi int) []string {
	out := make([]string, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, fmt.Sprintf("%s%07d", prefix, i))
	}
	return out
}

type workload struct {
	name  string
	multi bool // Dapr's Multi only
	run   func(ctx context.Context, s *store, res *results) error
}

func workloads(sz sizes, value []byte, round int) []workload {
	// latencies runs op n times and records p50 and p99.
	latencies := func(name string, n int, op func(ctx context.Context, s *store, i int) error) workload {
		return workload{name: name, run: func(ctx context.Context, s *store, res *results) error {
			ds := make([]float64, 0, n)
			for i := range n {
				start := time.Now()
				if err := op(ctx, s, i); err != nil {
					return err
				}
				ds = append(ds, float64(time.Since(start).Nanoseconds()))
			}
			res.add(name+" p50", "µs", s.name, quantile(ds, 0.5)/1e3)
			res.add(name+" p99", "µs", s.name, quantile(ds, 0.99)/1e3)
			return nil
		}}
	}
	bulkWrite := func(name string, size, n int, multi bool) workload {
		return workload{name: name, multi: multi, run: func(ctx context.Context, s *store, res *results) error {
			if n == 0 {
				return nil
			}
			ds := make([]float64, 0, n)
			for i := range n {
				keys := keyRange(fmt.Sprintf("n%d.%d.%d:", round, size, i), 0, size)
				start := time.Now()
				var err error
				if s.putMany != nil {
					err = s.putMany(ctx, keys, value)
				} else {
					for _, k := range keys {
						if err = s.put(ctx, k, value); err != nil {
							break
						}
					}
				}
				if err != nil {
					return err
				}
				ds = append(ds, float64(time.Since(start).Nanoseconds()))
			}
			res.add(name, "ms", s.name, quantile(ds, 0.5)/1e6)
			return nil
		}}
	}
	key := func(i int) string { return fmt.Sprintf("k:%07d", i*7919%sz.Seed) }
	return []workload{
		latencies("Get", sz.Gets, func(ctx context.Context, s *store, i int) error {
			v, err := s.get(ctx, key(i))
			if err == nil && len(v) != len(value) {
				err = fmt.Errorf("got %d bytes", len(v))
			}
			return err
		}),
		latencies("Put", sz.Puts, func(ctx context.Context, s *store, i int) error {
			return s.put(ctx, key(i), value)
		}),
		latencies("Delete", sz.Deletes, func(ctx context.Context, s *store, i int) error {
			return s.del(ctx, fmt.Sprintf("d%d:%07d", round, i))
		}),
		latencies("BulkGet 100", sz.BulkGets, func(ctx context.Context, s *store, i int) error {
			keys := make([]string, 100)
			for j := range keys {
				keys[j] = key(i*100 + j)
			}
			n, err := s.getMany(ctx, keys)
			if err == nil && n != 100 {
				err = fmt.Errorf("found %d of 100", n)
			}
			return err
		}),
		bulkWrite("bulk write 1k", 1_000, sz.Bulk1k, false),
		bulkWrite("bulk write 1k Multi", 1_000, sz.Bulk1k, true),
		bulkWrite("bulk write 10k", 10_000, sz.Bulk10k, false),
		bulkWrite("bulk write 10k Multi", 10_000, sz.Bulk10k, true),
		{name: "concurrent Get", run: func(ctx context.Context, s *store, res *results) error {
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, sz.Goroutines)
			start := time.Now()
			for range sz.Goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1))
						if i > sz.Concurrent {
							return
						}
						if _, err := s.get(ctx, key(i)); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				return err
			}
			res.add(fmt.Sprintf("concurrent Get, %d goroutines", sz.Goroutines), "ops/s", s.name, float64(sz.Concurrent)/time.Since(start).Seconds())
			return nil
		}},
	}
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[lo]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}

// print writes one line per workload: each store's median over the rounds
// with the range of the rounds, and the peers' figures relative to
// pgstate's (>1: pgstate is faster).
func (r *results) print(w io.Writer, rounds int) {
	names := []string{"pgstate", "pgstate (feed off)", "dapr", "dapr-multi", "gokv"}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload (median of %d rounds, min–max)\tunit\tpgstate\tpgstate, feed off\tdapr\tgokv\tdapr÷pgstate\tgokv÷pgstate\tdapr÷feed off\tgokv÷feed off\t\n", rounds)
	for _, wl := range r.order {
		unit := r.unit[wl]
		cells := map[string]string{}
		med := map[string]float64{}
		for _, n := range names {
			xs := r.values[wl][n]
			if len(xs) == 0 {
				continue
			}
			med[n] = quantile(xs, 0.5)
			cells[n] = fmt.Sprintf("%s (%s–%s)", num(med[n]), num(slices.Min(xs)), num(slices.Max(xs)))
		}
		if c, ok := cells["dapr-multi"]; ok {
			cells["dapr"], med["dapr"] = c, med["dapr-multi"]
		}
		rel := func(base, n string) string {
			p, okP := med[base]
			o, okO := med[n]
			if !okP || !okO || p == 0 || o == 0 {
				return "-"
			}
			if unit == "ops/s" {
				return fmt.Sprintf("%.2f", p/o)
			}
			return fmt.Sprintf("%.2f", o/p)
		}
		off := "pgstate (feed off)"
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", wl, unit, dash(cells["pgstate"]), dash(cells[off]), dash(cells["dapr"]), dash(cells["gokv"]),
			rel("pgstate", "dapr"), rel("pgstate", "gokv"), rel(off, "dapr"), rel(off, "gokv"))
	}
	tw.Flush()
	fmt.Fprintln(w, "ratios are the peer's time over pgstate's (for ops/s, pgstate's rate over the peer's): above 1, pgstate is faster")
	fmt.Fprintln(w, "gokv has no bulk operations: its BulkGet is a loop of Get, its bulk writes a loop of Set; Dapr's bulk write is BulkSet (parallel Sets), or Multi (one transaction) where named")
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func createDatabase(ctx context.Context, base, name string) (string, error) {
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", err
	}
	defer admin.Close(ctx)
	q := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+q+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+q); err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("the server must be given as a postgres:// URL (gokv takes no other form): %q", base)
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(ctx context.Context, base, name string) {
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return
	}
	defer admin.Close(ctx)
	_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

func vacuum(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "VACUUM ANALYZE")
	return err
}
