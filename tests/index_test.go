package tests

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/gen"
	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

var putCost = flag.Bool("putcost", false, "run TestPutCostPerIndex, a timing measurement")

// sqlCatcher is a gen.DBTX that records the statement it is given and runs
// nothing, so a test can read the exact text a generated function sends.
type sqlCatcher struct{ sql string }

var errCaught = errors.New("statement caught, not run")

func (c *sqlCatcher) Exec(_ context.Context, sql string, _ ...any) (pgconn.CommandTag, error) {
	c.sql = sql
	return pgconn.CommandTag{}, errCaught
}

func (c *sqlCatcher) Query(_ context.Context, sql string, _ ...any) (pgx.Rows, error) {
	c.sql = sql
	return nil, errCaught
}

func (c *sqlCatcher) QueryRow(_ context.Context, sql string, _ ...any) pgx.Row {
	c.sql = sql
	return caughtRow{}
}

func (c *sqlCatcher) CopyFrom(_ context.Context, table pgx.Identifier, _ []string, _ pgx.CopyFromSource) (int64, error) {
	c.sql = "COPY " + table.Sanitize()
	return 0, errCaught
}

type caughtRow struct{}

func (caughtRow) Scan(...any) error { return errCaught }

// generatedSQL returns the statement a generated function sends.
func generatedSQL(call func(q *gen.Queries, db gen.DBTX)) string {
	c := &sqlCatcher{}
	call(gen.New(), c)
	return c.sql
}

// TestIndexesServeTheirQueries EXPLAINs every statement that should use an
// index, as a generic plan (what a prepared statement gets once PostgreSQL
// stops planning per call), checks the index it names, and finally checks
// that every index in the schema served at least one query.
func TestIndexesServeTheirQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testdb.DSN(t)
	conn := testdb.Conn(t, dsn)
	// 20,000 live entries in 1,000 metadata groups, 2,000 expired ones, and
	// two checkpoints: enough that a sequential scan loses wherever an
	// index applies.
	for _, s := range []string{
		`INSERT INTO state_entries (key, value, metadata)
			SELECT convert_to('k:' || lpad(i::text, 7, '0'), 'UTF8'), '\x00'::bytea,
				jsonb_build_object('group', i % 1000)
			FROM generate_series(0, 19999) AS i`,
		`INSERT INTO state_entries (key, value, expires_at)
			SELECT convert_to('x:' || lpad(i::text, 7, '0'), 'UTF8'), '\x00'::bytea, now() - interval '1 hour'
			FROM generate_series(0, 1999) AS i`,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	q := gen.New()
	var ids []uuid.UUID
	for range 2 {
		id := uuid.New()
		if _, err := q.CheckpointCreate(ctx, conn, gen.CheckpointCreateParams{ID: id}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}

	k := []byte("k:0000042")
	tests := []struct {
		name  string
		sql   string
		types string
		args  string
		index string
		// noSeqScan proves the index usable where, on this little data,
		// the planner rightly prefers to read the whole table.
		noSeqScan bool
	}{
		{"Get", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.EntryGet(ctx, db, k) }),
			"bytea", `'\x6b3a30303030303432'`, "state_entries_pkey", false},
		{"GetEntry", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.EntryGetFull(ctx, db, k) }),
			"bytea", `'\x6b3a30303030303432'`, "state_entries_pkey", false},
		{"Contains", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.EntryExists(ctx, db, k) }),
			"bytea", `'\x6b3a30303030303432'`, "state_entries_pkey", false},
		{"Delete", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.EntryDelete(ctx, db, k) }),
			"bytea", `'\x6b3a30303030303432'`, "state_entries_pkey", false},
		{"GetMany", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.EntriesGetMany(ctx, db, [][]byte{k}) }),
			"bytea[]", `ARRAY['\x6b3a30303030303432'::bytea, '\x6b3a30303030303433'::bytea]`, "state_entries_pkey", false},
		{"ListKeysRange", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.EntryKeysListRange(ctx, db, gen.EntryKeysListRangeParams{})
		}), "bytea, bytea", `'\x6b3a303030', '\x6b3a303031'`, "state_entries_pkey", false},
		{"ListKeysFrom", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.EntryKeysListFrom(ctx, db, k) }),
			"bytea", `'\xffff'`, "state_entries_pkey", false},
		{"ScanRange", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.EntriesScanRange(ctx, db, gen.EntriesScanRangeParams{})
		}), "bytea, bytea, int4", `'\x6b3a', '\x6b3b', 1000`, "state_entries_pkey", false},
		{"ScanFrom", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.EntriesScanFrom(ctx, db, gen.EntriesScanFromParams{})
		}), "bytea, int4", `'\x', 1000`, "state_entries_pkey", false},
		{"CleanupBatch", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.EntriesDeleteExpiredBatch(ctx, db, 5000) }),
			"int4", `5000`, "state_entries_expires_at_idx", false},
		{"FindByMetadata", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.EntriesFindByMetadata(ctx, db, nil) }),
			"jsonb", `'{"group": 7}'`, "state_entries_metadata_idx", false},
		{"RestoreCopy", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.EntriesRestoreFromCheckpoint(ctx, db, ids[0]) }),
			"uuid", "'" + ids[0].String() + "'", "state_checkpoint_entries_pkey", true},
		{"RestoreLock", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.CheckpointLockShared(ctx, db, ids[0]) }),
			"uuid", "'" + ids[0].String() + "'", "state_checkpoints_pkey", true},
		{"ListCheckpoints", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.CheckpointsList(ctx, db) }),
			"", "", "state_checkpoints_created_at_idx", true},
		{"ChangesPage", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.ChangesPage(ctx, db, gen.ChangesPageParams{})
		}), "bool, int8, int4, int8", `true, 100, 1000, 16777216`, "state_changes_pkey", false},
		{"FindCheckpointByID", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.CheckpointGet(ctx, db, ids[0]) }),
			"uuid", "'" + ids[0].String() + "'", "state_checkpoints_pkey", true},
		{"FindCheckpointByName", generatedSQL(func(q *gen.Queries, db gen.DBTX) { q.CheckpointGetByName(ctx, db, "") }),
			"text", "'before-upgrade'", "state_checkpoints_name_key", true},
		{"FindCheckpointByIDPrefix", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.CheckpointsFindByIDRange(ctx, db, gen.CheckpointsFindByIDRangeParams{})
		}), "uuid, uuid, int4", "'01900000-0000-0000-0000-000000000000', '0190ffff-ffff-ffff-ffff-ffffffffffff', 6", "state_checkpoints_pkey", true},
		{"CheckpointEntryGet", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.CheckpointEntryGet(ctx, db, gen.CheckpointEntryGetParams{})
		}), "uuid, bytea", "'" + ids[0].String() + `', '\x6b3a30303030303432'`, "state_checkpoint_entries_pkey", false},
		{"CheckpointEntriesList", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.CheckpointEntriesListAsc(ctx, db, gen.CheckpointEntriesListAscParams{})
		}), "bool, uuid, bytea, bytea, int8", "true, '" + ids[0].String() + `', '\x6b3a', '\x6b3b', 101`, "state_checkpoint_entries_pkey", false},
		{"CheckpointEntriesListReverse", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.CheckpointEntriesListDesc(ctx, db, gen.CheckpointEntriesListDescParams{})
		}), "bool, uuid, bytea, bytea, int8", "true, '" + ids[0].String() + `', '\x6b3a', '\x6b3b', 101`, "state_checkpoint_entries_pkey", false},
		{"Retention", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.CheckpointsDeleteBeyond(ctx, db, gen.CheckpointsDeleteBeyondParams{ID: ids[0], Keep: 1})
		}), "uuid, int4", "'" + ids[0].String() + "', 1", "state_checkpoints_created_at_idx", true},
	}
	used := map[string]bool{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.HasPrefix(tc.sql, "-- name: ") {
				t.Fatalf("no generated statement caught: %q", tc.sql)
			}
			plan := genericPlan(t, conn, tc.sql, tc.types, tc.args, tc.noSeqScan)
			if !strings.Contains(plan, tc.index) {
				t.Fatalf("the plan does not use %s:\n%s", tc.index, plan)
			}
			used[tc.index] = true
		})
	}
	rows, err := conn.Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	indexes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(indexes)
	for _, ix := range indexes {
		if !used[ix] {
			t.Errorf("index %s serves none of the queries above", ix)
		}
	}
}

// genericPlan prepares sql and returns the generic plan of executing it with
// args.
func genericPlan(t *testing.T, conn *pgx.Conn, sql, types, args string, noSeqScan bool) string {
	t.Helper()
	ctx := context.Background()
	prepare := "PREPARE idx_p AS " + sql
	execute := "EXPLAIN EXECUTE idx_p"
	if types != "" {
		prepare = "PREPARE idx_p(" + types + ") AS " + sql
		execute += "(" + args + ")"
	}
	setup := []string{"SET plan_cache_mode = force_generic_plan", prepare}
	if noSeqScan {
		setup = append(setup, "SET enable_seqscan = off")
	}
	for _, s := range setup {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	defer conn.Exec(ctx, "DEALLOCATE idx_p")
	defer conn.Exec(ctx, "RESET enable_seqscan")
	rows, err := conn.Query(ctx, execute)
	if err != nil {
		t.Fatalf("%s: %v", execute, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestPlainPutIsAHOTUpdate checks what keeps Put cheap with every index of
// the schema in place: no index covers a column a plain overwrite changes
// (updated_at and version are unindexed; the secondary indexes are partial
// on columns a plain Put leaves NULL), so PostgreSQL updates the row in
// place without touching any index. The table is given room on every page
// (fillfactor 50), so that whether an update is HOT depends only on the
// columns it changes, not on when other sessions let old versions be pruned;
// an overwrite that sets a TTL, an indexed column, is the control.
func TestPlainPutIsAHOTUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := testdb.Open(t, nil)
	// Room for a second version of every row on its page (an update also
	// fills in create_revision, so the new version is 8 bytes longer).
	if _, err := store.Pool().Exec(ctx, `ALTER TABLE state_entries SET (fillfactor = 40)`); err != nil {
		t.Fatal(err)
	}
	const keys = 100
	write := func(put func(key []byte) error) {
		t.Helper()
		for i := range keys {
			if err := put(fmt.Appendf(nil, "k%03d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(func(k []byte) error { return store.Put(ctx, k, []byte("first")) })
	write(func(k []byte) error { return store.Put(ctx, k, []byte("second")) })
	write(func(k []byte) error { return store.PutWithTTL(ctx, k, []byte("third"), time.Hour) })
	conn := testdb.Conn(t, store.Config().DSN)
	// A backend publishes its counters when it exits (when idle, only every
	// ten seconds).
	store.Close()
	var updates, hot int64
	deadline := time.Now().Add(10 * time.Second)
	for updates < 2*keys && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if err := conn.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'state_entries'::regclass`).Scan(&updates, &hot); err != nil {
			t.Fatal(err)
		}
	}
	if updates != 2*keys {
		t.Fatalf("%d updates counted, want %d", updates, 2*keys)
	}
	// The plain overwrites are HOT; the ones that set a TTL are not.
	if hot != keys {
		t.Fatalf("%d of %d updates were HOT, want exactly the %d plain overwrites", hot, updates, keys)
	}
	t.Logf("%d plain overwrites HOT, %d TTL overwrites not", hot, updates-hot)
}

// TestPutCostPerIndex measures Put, PutWithTTL and PutWithMetadata with the
// schema's two secondary indexes present and dropped one at a time, and
// logs the figures that BENCHMARKS.md quotes. It is a measurement, run by
// hand (-run TestPutCostPerIndex -putcost); TestPlainPutIsAHOTUpdate checks
// the property behind it.
func TestPutCostPerIndex(t *testing.T) {
	if !*putCost {
		t.Skip("a timing measurement: run with -putcost")
	}
	if testing.Short() {
		t.Skip("timing measurement")
	}
	const rounds = 300
	variants := []struct {
		name string
		drop []string
	}{
		{"AllIndexes", nil},
		{"WithoutExpiresAt", []string{"state_entries_expires_at_idx"}},
		{"WithoutMetadata", []string{"state_entries_metadata_idx"}},
		{"Neither", []string{"state_entries_expires_at_idx", "state_entries_metadata_idx"}},
	}
	ctx := context.Background()
	var report strings.Builder
	fmt.Fprintf(&report, "\n%-18s %12s %12s %12s  (mean of %d, µs)\n", "schema", "Put", "PutWithTTL", "PutWithMeta", rounds)
	for _, v := range variants {
		store := testdb.Open(t, func(c *state.Config) { c.MaxConns = 2 })
		for _, ix := range v.drop {
			if _, err := store.Pool().Exec(ctx, "DROP INDEX "+ix); err != nil {
				t.Fatal(err)
			}
		}
		// Existing rows, as in steady state: every Put below is an update.
		for i := range 1000 {
			if err := store.PutWithMetadata(ctx, fmt.Appendf(nil, "k%04d", i), []byte("v"), json.RawMessage(`{"n": 0}`)); err != nil {
				t.Fatal(err)
			}
		}
		ops := []func(i int) error{
			func(i int) error { return store.Put(ctx, fmt.Appendf(nil, "p%04d", i%100), []byte("v")) },
			func(i int) error {
				return store.PutWithTTL(ctx, fmt.Appendf(nil, "k%04d", i%1000), []byte("v"), time.Hour)
			},
			func(i int) error {
				return store.PutWithMetadata(ctx, fmt.Appendf(nil, "k%04d", i%1000), []byte("v"), json.RawMessage(fmt.Sprintf(`{"n": %d}`, i)))
			},
		}
		var means []float64
		for _, op := range ops {
			for i := range 50 { // warm up
				if err := op(i); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			for i := range rounds {
				if err := op(i); err != nil {
					t.Fatal(err)
				}
			}
			means = append(means, float64(time.Since(start).Microseconds())/rounds)
		}
		fmt.Fprintf(&report, "%-18s %12.0f %12.0f %12.0f\n", v.name, means[0], means[1], means[2])
	}
	t.Log(report.String())
}
