package bench

import (
	"context"
	crand "crypto/rand"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/state"
)

var partitionScale = flag.Int("partition-scale", 0, "run TestPartitionScale with this many entries per layout (e.g. 1000000, 10000000)")

// TestPartitionScale compares the plain state_entries with one
// hash-partitioned by key into 16 partitions, each filled with the same n
// entries (100-byte values), on a throwaway cluster of its own:
//
//	go test ./bench -run TestPartitionScale -partition-scale 10000000 -v -timeout 3h
//
// It prints Get and Put p50 (1000 calls), ListKeys of 1000 keys, Count,
// CountEstimate, CleanupExpired of n/10 expired rows, Create/Restore/
// DeleteCheckpoint and the table and index sizes, and checks that prefix
// listing stays index-backed and in key order.
func TestPartitionScale(t *testing.T) {
	n := *partitionScale
	if n == 0 {
		t.Skip("needs -partition-scale N")
	}
	ctx := context.Background()
	c := pgcluster.New(t, pgcluster.Options{Settings: map[string]string{
		"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
		"shared_buffers": "'512MB'", "max_wal_size": "'8GB'", "maintenance_work_mem": "'256MB'",
		"work_mem": "'64MB'", "autovacuum": "off",
	}})
	admin, err := pgxpool.New(ctx, c.URL("postgres", "postgres")+"?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var report []string
	for _, layout := range []string{"plain", "hash16"} {
		cfg := state.DefaultConfig(c.URL("postgres", "postgres") + "?sslmode=disable")
		cfg.Schema = layout
		cfg.QueryTimeout = time.Hour
		s, err := state.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		must := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s %s: %v", layout, what, err)
			}
		}
		sqlIn := func(sql string) {
			t.Helper()
			_, err := admin.Exec(ctx, strings.ReplaceAll(sql, "state_entries", layout+".state_entries"))
			must(sql, err)
		}
		must("feed off", s.SetChangeFeed(ctx, false))
		if layout == "hash16" {
			partition(t, ctx, admin, layout, 16)
		}
		start := time.Now()
		load(t, ctx, admin, layout, n)
		sqlIn("VACUUM (ANALYZE) state_entries")
		loaded := time.Since(start).Round(time.Second)
		must("feed on", s.SetChangeFeed(ctx, true))

		key := func(i int) []byte { return fmt.Appendf(nil, "key:%09d", i) }
		p50 := func(what string, fn func(i int) error) time.Duration {
			d := make([]time.Duration, 1000)
			for j := range d {
				i := rand.IntN(n)
				t0 := time.Now()
				must(what, fn(i))
				d[j] = time.Since(t0)
			}
			slices.Sort(d)
			return d[len(d)/2]
		}
		timed := func(what string, fn func() error) time.Duration {
			t0 := time.Now()
			must(what, fn())
			return time.Since(t0)
		}
		get := p50("get", func(i int) error { _, _, err := s.Get(ctx, key(i)); return err })
		value := make([]byte, 100)
		put := p50("put", func(i int) error { return s.Put(ctx, key(i), value) })
		var listed int
		list := timed("list", func() error {
			ks, err := s.ListKeys(ctx, []byte("key:000001"))
			listed = len(ks)
			return err
		})
		var count, estimate int64
		cnt := timed("count", func() (err error) { count, err = s.Count(ctx); return })
		est := timed("estimate", func() (err error) { estimate, err = s.CountEstimate(ctx); return })
		var id [16]byte
		create := timed("create checkpoint", func() error { got, err := s.CreateCheckpoint(ctx); id = got; return err })
		restore := timed("restore checkpoint", func() error { return s.RestoreCheckpoint(ctx, id) })
		del := timed("delete checkpoint", func() error { return s.DeleteCheckpoint(ctx, id) })
		sqlIn(fmt.Sprintf("UPDATE state_entries SET expires_at = now() - interval '1 hour' WHERE key < 'key:%09d'::text::bytea", n/10))
		sqlIn("VACUUM (ANALYZE) state_entries")
		var cleaned int64
		cleanup := timed("cleanup", func() (err error) { cleaned, err = s.CleanupExpired(ctx); return })
		var heap, index int64
		must("sizes", admin.QueryRow(ctx, `SELECT coalesce(sum(pg_table_size(relid)), 0)::bigint, coalesce(sum(pg_indexes_size(relid)), 0)::bigint
			FROM (SELECT relid FROM pg_partition_tree($1::regclass) UNION SELECT $1::regclass) r`, layout+".state_entries").Scan(&heap, &index))
		var plan string
		rows, err := admin.Query(ctx, "EXPLAIN SELECT key FROM "+layout+".state_entries WHERE key >= 'key:000001'::bytea AND key < 'key:000002'::bytea ORDER BY key")
		must("explain", err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		must("explain", err)
		plan = strings.Join(lines, " | ")
		if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "Sort  (") {
			t.Errorf("%s: prefix listing is not index-backed and ordered: %s", layout, plan)
		}
		plan = strings.Join(lines[:min(3, len(lines))], " | ")
		line := fmt.Sprintf("| %s | %d | %v | %v | %v (%d keys) | %v (%d) | %v (%d) | %v (%d rows) | %v | %v | %v | %d MB | %d MB | %v |",
			layout, n, get.Round(time.Microsecond), put.Round(time.Microsecond), list.Round(time.Microsecond), listed,
			cnt.Round(time.Millisecond), count, est.Round(time.Microsecond), estimate, cleanup.Round(time.Millisecond), cleaned,
			create.Round(time.Millisecond), restore.Round(time.Millisecond), del.Round(time.Millisecond), heap>>20, index>>20, loaded)
		t.Log(line)
		t.Logf("%s plan: %s", layout, plan)
		report = append(report, line)
		s.Close()
	}
	t.Log("\n| layout | entries | Get p50 | Put p50 | ListKeys 1000 | Count | CountEstimate | CleanupExpired n/10 | CreateCheckpoint | RestoreCheckpoint | DeleteCheckpoint | table | indexes | load |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n" + strings.Join(report, "\n"))
}

// partition replaces the schema's state_entries by a table of the same
// shape hash-partitioned by key, with the same indexes and triggers.
func partition(t *testing.T, ctx context.Context, admin *pgxpool.Pool, schema string, parts int) {
	t.Helper()
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatalf("partition: %s: %v", sql, err)
		}
	}
	exec("SET LOCAL search_path TO " + schema)
	rows, err := tx.Query(ctx, `SELECT pg_get_triggerdef(oid), tgname, tgenabled = 'D' FROM pg_trigger WHERE tgrelid = 'state_entries'::regclass AND NOT tgisinternal`)
	if err != nil {
		t.Fatal(err)
	}
	type trig struct {
		def, name string
		disabled  bool
	}
	var trigs []trig
	for rows.Next() {
		var tr trig
		if err := rows.Scan(&tr.def, &tr.name, &tr.disabled); err != nil {
			t.Fatal(err)
		}
		trigs = append(trigs, tr)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	exec("ALTER TABLE state_entries RENAME TO state_entries_plain")
	exec("ALTER TABLE state_entries_plain RENAME CONSTRAINT state_entries_pkey TO state_entries_plain_pkey")
	exec("CREATE TABLE state_entries (LIKE state_entries_plain INCLUDING ALL) PARTITION BY HASH (key)")
	for i := range parts {
		exec(fmt.Sprintf("CREATE TABLE state_entries_p%02d PARTITION OF state_entries FOR VALUES WITH (MODULUS %d, REMAINDER %d)", i, parts, i))
	}
	for _, tr := range trigs {
		exec(strings.Replace(tr.def, "state_entries_plain", "state_entries", 1))
		if tr.disabled {
			exec("ALTER TABLE state_entries DISABLE TRIGGER " + tr.name)
		}
	}
	exec("DROP TABLE state_entries_plain")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// load copies n entries key:%09d → 100 random bytes in chunks of 100,000.
func load(t *testing.T, ctx context.Context, admin *pgxpool.Pool, schema string, n int) {
	t.Helper()
	const chunk = 100_000
	value := make([]byte, 100)
	_, _ = crand.Read(value)
	for start := 0; start < n; start += chunk {
		end := min(n, start+chunk)
		rows := make([][]any, 0, end-start)
		for i := start; i < end; i++ {
			rows = append(rows, []any{fmt.Appendf(nil, "key:%09d", i), value})
		}
		if _, err := admin.CopyFrom(ctx, pgx.Identifier{schema, "state_entries"}, []string{"key", "value"}, pgx.CopyFromRows(rows)); err != nil {
			t.Fatalf("load %s at %d: %v", schema, start, err)
		}
	}
}
