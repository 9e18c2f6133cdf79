package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// TestInjection stores SQL-looking keys, values and metadata and finds them
// verbatim, with the tables intact.
func TestInjection(t *testing.T) {
	t.Parallel()
	cfg := testdb.Config(t)
	s := testdb.OpenConfig(t, cfg)
	conn := testdb.Conn(t, cfg.DSN)
	ctx := context.Background()

	hostile := []string{
		`'; DROP TABLE state_entries; --`,
		`"; DROP TABLE state_checkpoints; --`,
		`$1`,
		`$1::bytea); DELETE FROM state_entries; --`,
		"\x00",
		"a\x00'b",
		`'`,
		`''`,
		`"`,
		`\`,
		`\x41`,
		`E'\\x00'`,
		`%`,
		`_`,
		`a%`,
		`$$; DROP TABLE state_entries; $$`,
		`) OR 1=1 --`,
		`{"json": "looking"}`,
		"\xff\xfe",
	}
	tests := []struct {
		name string
		run  func(t *testing.T, i int, h string)
	}{
		{"KeyAndValue", func(t *testing.T, i int, h string) {
			key := []byte("k:" + h)
			if err := s.Put(ctx, key, []byte(h)); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if v, ok, err := s.Get(ctx, key); err != nil || !ok || string(v) != h {
				t.Fatalf("Get = %q, %v, %v; want %q", v, ok, err, h)
			}
			keys, err := s.ListKeys(ctx, key)
			if err != nil || len(keys) == 0 || !bytes.Equal(keys[0], key) {
				t.Fatalf("ListKeys(own key as prefix) = %q, %v; want the key first", keys, err)
			}
			for _, k := range keys {
				if !bytes.HasPrefix(k, key) {
					t.Fatalf("ListKeys(%q) returned %q", key, k)
				}
			}
		}},
		{"BatchKey", func(t *testing.T, i int, h string) {
			key := []byte("b:" + h)
			var md json.RawMessage
			if jsonSafe(h) {
				md = mustJSON(t, map[string]string{"v": h})
			}
			if err := s.BatchPut(ctx, []state.Entry{{Key: key, Value: []byte(h), Metadata: md}}); err != nil {
				t.Fatalf("BatchPut: %v", err)
			}
			got, err := s.GetMany(ctx, [][]byte{key})
			if err != nil || string(got[string(key)]) != h {
				t.Fatalf("GetMany = %q, %v; want %q", got, err, h)
			}
		}},
		{"Metadata", func(t *testing.T, i int, h string) {
			key := []byte{'m', byte(i)}
			if !jsonSafe(h) {
				// See TestPendingInjectionMetadataNulEscape for NUL, and
				// JSON itself cannot carry invalid UTF-8; store the entry
				// without metadata so the counts stay simple.
				if err := s.Put(ctx, key, []byte("v")); err != nil {
					t.Fatal(err)
				}
				return
			}
			md := map[string]string{"field": h, h: "as a key"}
			if err := s.PutWithMetadata(ctx, key, []byte("v"), md); err != nil {
				t.Fatalf("PutWithMetadata: %v", err)
			}
			e, ok, err := s.GetEntry(ctx, key)
			if err != nil || !ok {
				t.Fatalf("GetEntry = %v, %v", ok, err)
			}
			var back map[string]string
			if err := json.Unmarshal(e.Metadata, &back); err != nil || back["field"] != h || back[h] != "as a key" {
				t.Fatalf("metadata read back as %s (%v), want field = %q", e.Metadata, err, h)
			}
			found, err := s.FindByMetadata(ctx, map[string]string{"field": h})
			if err != nil || len(found) != 1 || !bytes.Equal(found[0].Key, key) {
				t.Fatalf("FindByMetadata(field = %q) = %d entries, %v; want exactly %x", h, len(found), err, key)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, h := range hostile {
				tc.run(t, i, h)
			}
		})
	}
	// A prefix made of LIKE wildcards matches only keys that really start
	// with it.
	for _, p := range []string{"k:%", "k:_", "%", "_"} {
		keys, err := s.ListKeys(ctx, []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if !bytes.HasPrefix(k, []byte(p)) {
				t.Fatalf("ListKeys(%q) returned %q", p, k)
			}
		}
	}
	// A checkpoint round trip keeps them all.
	id, err := s.CreateCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreCheckpoint(ctx, id); err != nil {
		t.Fatal(err)
	}
	want := int64(3 * len(hostile))
	if n, err := s.Count(ctx); err != nil || n != want {
		t.Fatalf("Count = %d, %v; want %d", n, err, want)
	}
	if v, ok, err := s.Get(ctx, []byte("k:"+hostile[0])); err != nil || !ok || string(v) != hostile[0] {
		t.Fatalf("after the restore Get = %q, %v, %v", v, ok, err)
	}
	tables := scalar[int64](t, conn, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
		AND tablename IN ('state_entries', 'state_checkpoints', 'state_checkpoint_entries', 'pgstate_schema_version')`)
	if tables != 4 {
		t.Fatalf("%d of the 4 tables are left", tables)
	}
	if n := scalar[int64](t, conn, "SELECT count(*) FROM state_entries"); n != want {
		t.Fatalf("state_entries holds %d rows, want %d", n, want)
	}
}

// jsonSafe reports strings that survive a JSON round trip through jsonb:
// valid UTF-8 without NUL.
func jsonSafe(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
