package tests

import (
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
)

// TestStoreCodeIgnoresTheCallersSearchPath: a session whose search_path
// puts another schema's operators before pg_catalog's writes to the store
// with every kind of statement and runs the cleanup procedure. None of the
// store's triggers, functions or procedures may run those operators (with
// the privileges of whoever writes, a superuser's included).
func TestStoreCodeIgnoresTheCallersSearchPath(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	conn := testdb.Conn(t, s.Config().DSN)
	for _, stmt := range []string{
		`CREATE SCHEMA evil`,
		`CREATE TABLE evil.calls (op text)`,
		// The operators the store's code uses, each recording its call
		// and then doing what pg_catalog's does.
		`CREATE FUNCTION evil.plus(a bigint, b integer) RETURNS bigint LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO evil.calls VALUES ('+'); RETURN a OPERATOR(pg_catalog.+) b; END $$`,
		`CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = integer, FUNCTION = evil.plus)`,
		`CREATE FUNCTION evil.plus8(a bigint, b bigint) RETURNS bigint LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO evil.calls VALUES ('+8'); RETURN a OPERATOR(pg_catalog.+) b; END $$`,
		`CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.plus8)`,
		`CREATE FUNCTION evil.le(a timestamptz, b timestamptz) RETURNS boolean LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO evil.calls VALUES ('<='); RETURN a OPERATOR(pg_catalog.<=) b; END $$`,
		`CREATE OPERATOR evil.<= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.le)`,
		`CREATE FUNCTION evil.lt(a integer, b integer) RETURNS boolean LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO evil.calls VALUES ('<'); RETURN a OPERATOR(pg_catalog.<) b; END $$`,
		`CREATE OPERATOR evil.< (LEFTARG = integer, RIGHTARG = integer, FUNCTION = evil.lt)`,
		`CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO evil.calls VALUES ('now'); RETURN pg_catalog.now(); END $$`,
		`SET search_path = evil, pg_catalog, public`,
		`INSERT INTO public.state_entries (key, value, expires_at) VALUES ('a', 'x', pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour'), ('b', 'y', NULL)`,
		`UPDATE public.state_entries SET value = 'z' WHERE key = 'b'`,
		`DELETE FROM public.state_entries WHERE key = 'b'`,
		`INSERT INTO public.state_entries (key, value, expires_at) VALUES ('c', 'x', pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour')`,
		`CALL public.state_cleanup_expired()`,
	} {
		if _, err := conn.Exec(bg, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if n := queryInt(t, conn, `SELECT pg_catalog.count(*) FROM evil.calls`); n != 0 {
		var ops []string
		rows, _ := conn.Query(bg, `SELECT op FROM evil.calls`)
		for rows.Next() {
			var op string
			_ = rows.Scan(&op)
			ops = append(ops, op)
		}
		t.Fatalf("the store's code ran %d operators of the caller's search_path: %v", n, ops)
	}
	if n := queryInt(t, conn, `SELECT pg_catalog.count(*) FROM public.state_entries`); n != 0 {
		t.Fatalf("%d entries left, want none (b deleted, a and c expired and cleaned up)", n)
	}
}
