package tests

import (
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

// TestUpgradeFromVersion9: a store at schema version 9 (the feed of gap
// rows) with data, changes in its log and a gap row, upgraded in place by
// Open. Its entries keep their data and get mod revisions of their own; a
// watcher resuming from before the upgrade continues exactly: the old
// changes once, the gap row skipped, then the writes after the upgrade.
func TestUpgradeFromVersion9(t *testing.T) {
	t.Parallel()
	dsn := testdb.EmptyDSN(t)
	conn := testdb.Conn(t, dsn)
	if err := schema.MigrateTo(bg, conn, "public", 9); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO state_entries (key, value) VALUES ('u/a', 'a'), ('u/b', 'b')`,
		`INSERT INTO state_changes (kind) VALUES (0)`, // a hole filled by a watcher of release 9
		`UPDATE state_entries SET value = 'b2', version = version + 1 WHERE key = 'u/b'`,
	} {
		if _, err := conn.Exec(bg, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	last := queryInt(t, conn, `SELECT max(revision) FROM state_changes`)
	cfg := state.DefaultConfig(dsn)
	s := testdb.OpenConfig(t, cfg)
	if v, found, err := s.Get(bg, []byte("u/b")); err != nil || !found || string(v) != "b2" {
		t.Fatalf("Get after the upgrade = %q, %v, %v", v, found, err)
	}
	a, _, err := s.GetEntry(bg, []byte("u/a"))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := s.GetEntry(bg, []byte("u/b"))
	if err != nil {
		t.Fatal(err)
	}
	if a.ModRevision <= 0 || b.ModRevision <= 0 || a.ModRevision == b.ModRevision || b.Version != 2 {
		t.Fatalf("after the upgrade: u/a at mod revision %d, u/b at %d version %d; want distinct revisions and the versions kept", a.ModRevision, b.ModRevision, b.Version)
	}
	res, err := s.PutEntry(bg, []byte("u/c"), []byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	items := watchEvents(t, s, "u/", state.FromRevision(1))
	want := []struct {
		key     string
		version int64
	}{{"u/a", 1}, {"u/b", 1}, {"u/b", 2}, {"u/c", 1}}
	for i, w := range want {
		ev := next(t, items, 30*time.Second)
		if string(ev.Key) != w.key || ev.Version != w.version || ev.Kind != state.EventPut {
			t.Fatalf("event %d: %v %q v%d at %d, want put %s v%d", i, ev.Kind, ev.Key, ev.Version, ev.Revision, w.key, w.version)
		}
		if i == 3 && (ev.ModRevision != res.Revision || ev.Revision <= last) {
			t.Fatalf("the put after the upgrade (mod revision %d): event at %d with mod revision %d, want it after %d", res.Revision, ev.Revision, ev.ModRevision, last)
		}
	}
	resumed := watchEvents(t, s, "u/", state.FromRevision(last+1))
	if ev := next(t, resumed, 30*time.Second); string(ev.Key) != "u/c" {
		t.Fatalf("resumed after the last change of version 9: %q first, want u/c", ev.Key)
	}
}
