// Command basic is a guided tour of pgstate against a real PostgreSQL:
// reading and writing entries, metadata queries, expiry, batches, prefix
// listing and scanning, checkpoints, cleanup and statistics.
//
//	DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable go run ./examples/basic
//
// or simply "make demo", which starts a throwaway server when DATABASE_URL
// is not set. The tour works in its own schema, pgstate_demo, and drops it
// at the end (pass -keep to leave it for a look with statectl), so it can be
// run any number of times and never touches other stores in the database.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/state"
)

const demoSchema = "pgstate_demo"

// sqlDropSchema removes the demo's store. It lives here, not in queries/,
// because removing a whole schema is the demo's housekeeping rather than
// something the store does.
const sqlDropSchema = `DROP SCHEMA IF EXISTS ` + demoSchema + ` CASCADE`

func main() {
	keep := flag.Bool("keep", false, "leave the "+demoSchema+" schema in place afterwards")
	flag.Parse()
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		fmt.Fprintln(os.Stderr, "demo: DATABASE_URL is not set: export it (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) or run 'make demo', which starts a throwaway server")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, dsn, *keep)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dsn string, keep bool) (err error) {
	// A run that was interrupted may have left its schema behind; starting
	// from nothing makes every run print the same story.
	if err := dropSchema(ctx, dsn); err != nil {
		return err
	}

	cfg := state.DefaultConfig(dsn)
	cfg.Schema = demoSchema
	cfg.MinConns = 0
	cfg.MaxConns = 4
	// Open creates the schema and applies the migrations.
	store, err := state.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		store.Close()
		if keep {
			fmt.Printf("\nkept schema %s: try 'go run ./cmd/statectl --schema %s list'\n", demoSchema, demoSchema)
			return
		}
		if dropErr := dropSchema(context.WithoutCancel(ctx), dsn); dropErr != nil {
			err = errors.Join(err, dropErr)
			return
		}
		fmt.Printf("\ndropped schema %s; the demo left nothing behind\n", demoSchema)
	}()

	fmt.Printf("pgstate demo in schema %s\n", demoSchema)
	for _, part := range []struct {
		title string
		fn    func(context.Context, *state.Postgres) error
	}{
		{"put and get", putAndGet},
		{"concurrent writers", concurrentWriters},
		{"metadata", metadata},
		{"batch", batch},
		{"prefix listing and scanning", prefixes},
		{"checkpoints", checkpoints},
		{"expiry", expiry},
		{"everyday calls", everyday},
		{"statistics", statistics},
	} {
		fmt.Printf("\n== %s\n", part.title)
		if err := part.fn(ctx, store); err != nil {
			return fmt.Errorf("%s: %w", part.title, err)
		}
	}
	return nil
}

func putAndGet(ctx context.Context, s *state.Postgres) error {
	if err := s.Put(ctx, []byte("user/1"), []byte(`{"name":"Ada"}`)); err != nil {
		return err
	}
	value, found, err := s.Get(ctx, []byte("user/1"))
	if err != nil {
		return err
	}
	fmt.Printf("get user/1     -> %s (found %t)\n", value, found)

	// A missing key is not an error: found says so.
	_, found, err = s.Get(ctx, []byte("user/404"))
	if err != nil {
		return err
	}
	fmt.Printf("get user/404   -> found %t\n", found)

	if err := s.Put(ctx, []byte("user/1"), []byte(`{"name":"Ada Lovelace"}`)); err != nil {
		return err
	}
	e, _, err := s.GetEntry(ctx, []byte("user/1"))
	if err != nil {
		return err
	}
	fmt.Printf("overwrite      -> %s, version %d\n", e.Value, e.Version)
	return nil
}

// concurrentWriters shows the writes that cannot lose an update: a
// conditional put (first write wins, then compare-and-swap), and a
// transaction that commits the application's own table together with the
// store. It leaves no entries behind.
func concurrentWriters(ctx context.Context, s *state.Postgres) error {
	lock := []byte("lock/report")
	r, err := s.PutEntry(ctx, lock, []byte("worker-1"), state.IfAbsent(), state.WithTTL(time.Minute))
	if err != nil {
		return err
	}
	_, err = s.PutEntry(ctx, lock, []byte("worker-2"), state.IfAbsent())
	var vm *state.VersionMismatchError
	fmt.Printf("if absent      -> worker-1 got version %d; worker-2: %v (mismatch %t)\n", r.Version, err, errors.As(err, &vm))
	r, err = s.PutEntry(ctx, lock, []byte("worker-1"), state.IfVersion(r.Version), state.KeepTTL())
	if err != nil {
		return err
	}
	fmt.Printf("if version     -> renewed at version %d, expiry kept\n", r.Version)

	// The application's own table, in the same database: its rows and the
	// store's entries commit together or not at all.
	if _, err := s.Pool().Exec(ctx, `CREATE TABLE demo_orders (id int PRIMARY KEY, total numeric NOT NULL)`); err != nil {
		return err
	}
	err = s.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
		if _, err := tx.(*state.PostgresTx).Tx().Exec(ctx, `INSERT INTO demo_orders VALUES ($1, $2)`, 7, "42.00"); err != nil {
			return err
		}
		return tx.Put(ctx, []byte("order-status/7"), []byte("paid"))
	})
	if err != nil {
		return err
	}
	var orders int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM demo_orders`).Scan(&orders); err != nil {
		return err
	}
	status, _, err := s.Get(ctx, []byte("order-status/7"))
	if err != nil {
		return err
	}
	fmt.Printf("transact       -> demo_orders has %d row, order-status/7 = %s, one commit\n", orders, status)

	n, err := s.DeletePrefix(ctx, []byte("lock/"))
	if err != nil {
		return err
	}
	m, err := s.DeletePrefix(ctx, []byte("order-status/"))
	if err != nil {
		return err
	}
	fmt.Printf("delete prefix  -> removed %d + %d entries\n", n, m)
	return nil
}

func metadata(ctx context.Context, s *state.Postgres) error {
	users := []struct {
		key, value string
		md         map[string]any
	}{
		{"user/2", `{"name":"Grace"}`, map[string]any{"team": "compilers", "admin": true}},
		{"user/3", `{"name":"Edsger"}`, map[string]any{"team": "algorithms"}},
		{"user/4", `{"name":"Barbara"}`, map[string]any{"team": "compilers"}},
	}
	for _, u := range users {
		if err := s.PutWithMetadata(ctx, []byte(u.key), []byte(u.value), u.md); err != nil {
			return err
		}
	}
	// The filter matches documents that contain it (jsonb @>), through a GIN
	// index.
	found, err := s.FindByMetadata(ctx, map[string]any{"team": "compilers"})
	if err != nil {
		return err
	}
	fmt.Printf("team compilers -> %s\n", joinKeys(found))
	found, err = s.FindByMetadata(ctx, map[string]any{"team": "compilers", "admin": true})
	if err != nil {
		return err
	}
	fmt.Printf("and admin      -> %s\n", joinKeys(found))
	return nil
}

func batch(ctx context.Context, s *state.Postgres) error {
	var orders []state.Entry
	for i := 1; i <= 5; i++ {
		orders = append(orders, state.Entry{
			Key:   fmt.Appendf(nil, "order/%d", i),
			Value: fmt.Appendf(nil, "%d.00 EUR", i*10),
		})
	}
	// One statement: all five are written or none is.
	if err := s.BatchPut(ctx, orders); err != nil {
		return err
	}
	n, err := s.Count(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d orders in one statement; the store holds %d entries\n", len(orders), n)
	return nil
}

func prefixes(ctx context.Context, s *state.Postgres) error {
	keys, err := s.ListKeys(ctx, []byte("order/"))
	if err != nil {
		return err
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = string(k)
	}
	fmt.Printf("keys order/*   -> %s\n", strings.Join(names, " "))

	// Scan reads page by page, so it suits prefixes of any size.
	for e, err := range s.Scan(ctx, []byte("user/")) {
		if err != nil {
			return err
		}
		fmt.Printf("scan user/*    -> %s = %s\n", e.Key, e.Value)
	}
	return nil
}

func checkpoints(ctx context.Context, s *state.Postgres) error {
	info, err := s.CreateCheckpointWith(ctx, state.CheckpointName("before-price-change"),
		state.CheckpointMetadata(map[string]string{"reason": "before the price change"}))
	if err != nil {
		return err
	}
	id := info.ID
	list, err := s.ListCheckpoints(ctx)
	if err != nil {
		return err
	}
	for _, c := range list {
		fmt.Printf("checkpoint     -> %s %q: %d entries, %d bytes, %s\n", c.ID, c.Name, c.Rows, c.Bytes, c.Metadata)
	}
	// By name, or by a short id as git and docker take them.
	byName, err := s.FindCheckpoint(ctx, "before-price-change")
	if err != nil {
		return err
	}
	byShortID, err := s.FindCheckpoint(ctx, id.String()[:13])
	if err != nil {
		return err
	}
	fmt.Printf("find           -> by name and by short id %s: same checkpoint %t\n", id.String()[:13], byName.ID == id && byShortID.ID == id)

	if err := s.Put(ctx, []byte("order/1"), []byte("999.00 EUR")); err != nil {
		return err
	}
	if err := s.Delete(ctx, []byte("order/2")); err != nil {
		return err
	}
	if err := showOrders(ctx, s, "after changes "); err != nil {
		return err
	}
	// Reading the checkpoint does not restore it.
	page, err := s.ListCheckpointEntries(ctx, id, []byte("order/"), state.WithLimit(2))
	if err != nil {
		return err
	}
	old, _, err := s.GetCheckpointEntry(ctx, id, []byte("order/1"))
	if err != nil {
		return err
	}
	fmt.Printf("in checkpoint  -> first keys %s (more %t), order/1 = %s\n", bytes.Join(page.Keys(), []byte(" ")), page.More, old.Value)

	n, err := s.RestoreCheckpointCount(ctx, id)
	if err != nil {
		return err
	}
	fmt.Printf("restored       -> %d entries written\n", n)
	if err := showOrders(ctx, s, "after restore "); err != nil {
		return err
	}

	if err := s.DeleteCheckpoint(ctx, id); err != nil {
		return err
	}
	err = s.RestoreCheckpoint(ctx, id)
	fmt.Printf("deleted it; restoring again fails with ErrCheckpointNotFound: %t\n", errors.Is(err, state.ErrCheckpointNotFound))
	return nil
}

func showOrders(ctx context.Context, s *state.Postgres, label string) error {
	values, err := s.GetMany(ctx, [][]byte{[]byte("order/1"), []byte("order/2")})
	if err != nil {
		return err
	}
	show := func(k string) string {
		if v, ok := values[k]; ok {
			return string(v)
		}
		return "(missing)"
	}
	fmt.Printf("%s -> order/1 = %s, order/2 = %s\n", label, show("order/1"), show("order/2"))
	return nil
}

func expiry(ctx context.Context, s *state.Postgres) error {
	const ttl = time.Second
	if err := s.PutWithTTL(ctx, []byte("session/abc"), []byte("token"), ttl); err != nil {
		return err
	}
	_, found, err := s.Get(ctx, []byte("session/abc"))
	if err != nil {
		return err
	}
	fmt.Printf("TTL %v         -> session/abc found %t\n", ttl, found)

	fmt.Printf("waiting        -> %v\n", ttl+500*time.Millisecond)
	select {
	case <-time.After(ttl + 500*time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	_, found, err = s.Get(ctx, []byte("session/abc"))
	if err != nil {
		return err
	}
	fmt.Printf("after expiry   -> found %t\n", found)

	// Expired rows are invisible at once but stay on disk until a cleanup
	// (this call, or Config.CleanupInterval's background cleaner).
	n, err := s.CleanupExpired(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("cleanup        -> CleanupExpired deleted %d expired row(s) from disk\n", n)
	return nil
}

// everyday shows pages of a listing, expiry control and a counter; it
// removes its keys at the end so the statistics below stay the same.
func everyday(ctx context.Context, s *state.Postgres) error {
	for i := 1; i <= 5; i++ {
		if err := s.Put(ctx, []byte(fmt.Sprintf("daily/item-%d", i)), []byte("v")); err != nil {
			return err
		}
	}
	// Pages of two: resume after the last key of the previous page.
	var pages []string
	var after []state.ListOption
	for {
		pg, err := s.List(ctx, []byte("daily/"), append(after, state.WithLimit(2), state.KeysOnly())...)
		if err != nil {
			return err
		}
		pages = append(pages, joinKeys(pg.Entries))
		if !pg.More {
			break
		}
		after = []state.ListOption{state.StartAfter(pg.Next())}
	}
	fmt.Printf("pages of 2     -> %s\n", strings.Join(pages, " | "))
	last, err := s.List(ctx, []byte("daily/"), state.Reverse(), state.WithLimit(1))
	if err != nil {
		return err
	}
	fmt.Printf("newest key     -> %s\n", joinKeys(last.Entries))

	// Extend a session without rewriting it, read what is left, make it
	// permanent.
	if err := s.PutWithTTL(ctx, []byte("daily/session"), []byte("token"), time.Minute); err != nil {
		return err
	}
	if _, err := s.Expire(ctx, []byte("daily/session"), time.Hour); err != nil {
		return err
	}
	left, _, err := s.TTL(ctx, []byte("daily/session"))
	if err != nil {
		return err
	}
	fmt.Printf("expire 1h      -> about %s left\n", left.Round(time.Minute))
	if _, err := s.Persist(ctx, []byte("daily/session")); err != nil {
		return err
	}
	left, _, err = s.TTL(ctx, []byte("daily/session"))
	if err != nil {
		return err
	}
	fmt.Printf("persist        -> no expiry: %v\n", left == state.NoTTL)

	// A counter: one statement per increment, no read-modify-write.
	var n int64
	for range 3 {
		if n, err = s.Increment(ctx, []byte("daily/visits"), 10); err != nil {
			return err
		}
	}
	fmt.Printf("increment x3   -> %d\n", n)
	_, err = s.Increment(ctx, []byte("daily/session"), 1)
	fmt.Printf("increment text -> ErrNotInteger: %v\n", errors.Is(err, state.ErrNotInteger))

	// Typed access: values of a Go type (JSON by default, or any Codec),
	// string keys, the store's options.
	type profile struct {
		Name  string   `json:"name"`
		Langs []string `json:"langs"`
	}
	profiles := state.NewTyped[profile](s)
	if _, err := profiles.PutEntry(ctx, "daily/profile/ada", profile{"Ada", []string{"go", "sql"}}, state.WithTTL(time.Hour)); err != nil {
		return err
	}
	p, found, err := profiles.Get(ctx, "daily/profile/ada")
	if err != nil {
		return err
	}
	fmt.Printf("typed get      -> %s knows %s (found %t)\n", p.Name, strings.Join(p.Langs, ", "), found)
	page, err := profiles.List(ctx, "daily/profile/")
	if err != nil {
		return err
	}
	fmt.Printf("typed list     -> %d profile(s), first %s\n", len(page.Items), page.Items[0].Key)
	_, err = s.DeletePrefix(ctx, []byte("daily/"))
	return err
}

func statistics(ctx context.Context, s *state.Postgres) error {
	st := s.Stats()
	fmt.Printf("this process   -> %d gets, %d puts, %d deletes, %d queries, %d transactions, %d errors (the deliberate failed restore)\n",
		st.Gets, st.Puts, st.Deletes, st.Queries, st.Transactions, st.Errors)
	fmt.Printf("pool           -> %d of at most %d connections open\n", st.TotalConns, st.MaxConns)

	if err := s.Vacuum(ctx); err != nil {
		return err
	}
	n, err := s.Count(ctx)
	if err != nil {
		return err
	}
	estimate, err := s.CountEstimate(ctx)
	if err != nil {
		return err
	}
	ts, err := s.TableStats(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("entries        -> %d (estimate after VACUUM ANALYZE: %d)\n", n, estimate)
	fmt.Printf("tables         -> %d bytes on disk = %d heap + %d TOAST + %d indexes; checkpoint tables %d bytes on disk\n",
		ts.TotalBytes, ts.TableBytes, ts.ToastBytes, ts.IndexBytes, ts.CheckpointBytes)
	return s.HealthCheck(ctx)
}

func joinKeys(entries []state.Entry) string {
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = string(e.Key)
	}
	return strings.Join(keys, " ")
}

func dropSchema(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, sqlDropSchema); err != nil {
		return fmt.Errorf("drop schema %s: %w", demoSchema, err)
	}
	return nil
}
