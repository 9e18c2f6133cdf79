package tests

import (
	"context"
	"strings"
	"testing"

	"github.com/pgstate/pgstate/gen"
	"github.com/pgstate/pgstate/internal/testdb"
)

// TestListKeysUsesPrimaryKeyUnderGenericPlan proves that a prefix listing is
// a range scan on the primary key even when PostgreSQL plans it without
// looking at the parameters (a generic plan, as a prepared statement gets
// after a few executions), for both the bounded and the unbounded form.
func TestListKeysUsesPrimaryKeyUnderGenericPlan(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	conn := testdb.Conn(t, dsn)
	ctx := context.Background()
	// Enough rows that a sequential scan would be the cheaper plan for an
	// unselective condition.
	if _, err := conn.Exec(ctx, `INSERT INTO state_entries (key, value)
		SELECT convert_to(lpad(i::text, 8, '0'), 'UTF8'), '\x00'::bytea FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE state_entries`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		query   string
		sql     string
		types   string
		execute string
	}{
		{"Range", "EntryKeysListRange", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.EntryKeysListRange(bg, db, gen.EntryKeysListRangeParams{})
		}), "bytea, bytea", `EXECUTE p('\x303030303031'::bytea, '\x303030303032'::bytea)`},
		{"FromPrefixWithoutSuccessor", "EntryKeysListFrom", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.EntryKeysListFrom(bg, db, nil)
		}), "bytea", `EXECUTE p('\xffff'::bytea)`},
		{"ScanPage", "EntriesScanRange", generatedSQL(func(q *gen.Queries, db gen.DBTX) {
			q.EntriesScanRange(bg, db, gen.EntriesScanRangeParams{})
		}), "bytea, bytea, int4", `EXECUTE p('\x30'::bytea, '\x31'::bytea, 1000)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := conn.Exec(ctx, "DEALLOCATE ALL"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "PREPARE p("+tc.types+") AS "+tc.sql); err != nil {
				t.Fatalf("prepare %s: %v", tc.query, err)
			}
			plan := explain(t, conn, "EXPLAIN "+tc.execute)
			if !strings.Contains(plan, "Index") || !strings.Contains(plan, "state_entries_pkey") || strings.Contains(plan, "Seq Scan") {
				t.Fatalf("%s does not use the primary key:\n%s", tc.query, plan)
			}
			// The generic plan has $n placeholders, not the constants.
			if !strings.Contains(plan, "$1") {
				t.Fatalf("%s was not planned generically:\n%s", tc.query, plan)
			}
			cond := indexCond(plan)
			if !strings.Contains(cond, "key >= $1") {
				t.Fatalf("%s: the lower bound is not an index condition:\n%s", tc.query, plan)
			}
			if tc.query != "EntryKeysListFrom" && !strings.Contains(cond, "key < $2") {
				t.Fatalf("%s: the upper bound is not an index condition:\n%s", tc.query, plan)
			}
		})
	}
}

// indexCond returns the plan's "Index Cond:" line.
func indexCond(plan string) string {
	for _, line := range strings.Split(plan, "\n") {
		if strings.Contains(line, "Index Cond:") {
			return line
		}
	}
	return ""
}
