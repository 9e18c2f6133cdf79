package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pgstate/pgstate/state"
)

// listTests cover the listing options: limits, resuming, reverse order,
// ranges and keys-only listings, for List, FindByMetadataPage and Scan.
var listTests = []storeTest{
	{"ListPages", testListPages},
	{"ListReverse", testListReverse},
	{"ListRange", testListRange},
	{"ListKeysOnly", testListKeysOnly},
	{"ListEdges", testListEdges},
	{"FindByMetadataPages", testFindByMetadataPages},
	{"ScanWithOptions", testScanWithOptions},
}

func putKeys(t *testing.T, s state.Store, keys ...string) {
	t.Helper()
	for _, k := range keys {
		mustPut(t, s, k, "v-"+k)
	}
}

func tenKeys() []string {
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	return keys
}

func mustPage(t *testing.T, s state.Store, prefix string, opts ...state.ListOption) state.Page {
	t.Helper()
	pg, err := s.List(ctx(), []byte(prefix), opts...)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return pg
}

func wantPage(t *testing.T, pg state.Page, more bool, keys ...string) {
	t.Helper()
	got := make([]string, len(pg.Entries))
	for i, e := range pg.Entries {
		got[i] = string(e.Key)
	}
	if fmt.Sprint(got) != fmt.Sprint(keys) || pg.More != more {
		t.Fatalf("page %q (more %v), want %q (more %v)", got, pg.More, keys, more)
	}
}

func testListPages(t *testing.T, s state.Store) {
	putKeys(t, s, tenKeys()...)
	putKeys(t, s, "a", "z")
	pg := mustPage(t, s, "k", state.WithLimit(3))
	wantPage(t, pg, true, "k00", "k01", "k02")
	if string(pg.Entries[0].Value) != "v-k00" || pg.Entries[0].Version != 1 {
		t.Fatalf("entry %+v, want its value and version", pg.Entries[0])
	}
	pg = mustPage(t, s, "k", state.WithLimit(3), state.StartAfter(pg.Next()))
	wantPage(t, pg, true, "k03", "k04", "k05")
	pg = mustPage(t, s, "k", state.WithLimit(3), state.StartAfter(pg.Next()))
	wantPage(t, pg, true, "k06", "k07", "k08")
	pg = mustPage(t, s, "k", state.WithLimit(3), state.StartAfter(pg.Next()))
	wantPage(t, pg, false, "k09")
	// Exactly the limit left: More is false.
	wantPage(t, mustPage(t, s, "k", state.WithLimit(2), state.StartAfter([]byte("k07"))), false, "k08", "k09")
	// Without a limit, everything; a start-after key need not exist.
	wantPage(t, mustPage(t, s, "", state.StartAfter([]byte("k085"))), false, "k09", "z")
	if keys := mustPage(t, s, "k").Keys(); len(keys) != 10 {
		t.Fatalf("List without options = %d keys, want 10", len(keys))
	}
}

func testListReverse(t *testing.T, s state.Store) {
	putKeys(t, s, tenKeys()...)
	putKeys(t, s, "a", "z")
	pg := mustPage(t, s, "k", state.Reverse(), state.WithLimit(4))
	wantPage(t, pg, true, "k09", "k08", "k07", "k06")
	pg = mustPage(t, s, "k", state.Reverse(), state.WithLimit(4), state.StartAfter(pg.Next()))
	wantPage(t, pg, true, "k05", "k04", "k03", "k02")
	pg = mustPage(t, s, "k", state.Reverse(), state.WithLimit(4), state.StartAfter(pg.Next()))
	wantPage(t, pg, false, "k01", "k00")
	wantPage(t, mustPage(t, s, "", state.Reverse(), state.WithLimit(1)), true, "z")
}

func testListRange(t *testing.T, s state.Store) {
	putKeys(t, s, tenKeys()...)
	putKeys(t, s, "a", "z", "k03x")
	wantPage(t, mustPage(t, s, "", state.Range([]byte("k03"), []byte("k06"))), false, "k03", "k03x", "k04", "k05")
	wantPage(t, mustPage(t, s, "", state.Range([]byte("k08"), nil)), false, "k08", "k09", "z")
	wantPage(t, mustPage(t, s, "", state.Range(nil, []byte("k01"))), false, "a", "k00")
	// The range and the prefix both apply.
	wantPage(t, mustPage(t, s, "k03", state.Range([]byte("k"), []byte("k04"))), false, "k03", "k03x")
	wantPage(t, mustPage(t, s, "", state.Range([]byte("k03"), []byte("k06")), state.Reverse(), state.WithLimit(2)), true, "k05", "k04")
	// An empty or inverted range matches nothing.
	wantPage(t, mustPage(t, s, "", state.Range([]byte("k05"), []byte("k05"))), false)
	wantPage(t, mustPage(t, s, "", state.Range([]byte("k06"), []byte("k05"))), false)
}

func testListKeysOnly(t *testing.T, s state.Store) {
	if err := s.PutWithMetadata(ctx(), []byte("big"), bytes.Repeat([]byte("x"), 100_000), map[string]int{"n": 1}); err != nil {
		t.Fatalf("PutWithMetadata: %v", err)
	}
	pg := mustPage(t, s, "", state.KeysOnly())
	if len(pg.Entries) != 1 || string(pg.Entries[0].Key) != "big" || len(pg.Entries[0].Value) != 0 ||
		pg.Entries[0].Version != 1 || pg.Entries[0].Metadata == nil {
		t.Fatalf("keys-only page %+v, want the key, version and metadata without the value", pg)
	}
}

func testListEdges(t *testing.T, s state.Store) {
	putKeys(t, s, "\xff", "\xff\xff", "a")
	if err := s.PutWithTTL(ctx(), []byte("b-expired"), []byte("v"), time.Millisecond); err != nil {
		t.Fatalf("PutWithTTL: %v", err)
	}
	time.Sleep(5 * time.Millisecond)
	wantPage(t, mustPage(t, s, "\xff"), false, "\xff", "\xff\xff")
	wantPage(t, mustPage(t, s, "", state.StartAfter([]byte("\xff"))), false, "\xff\xff")
	wantPage(t, mustPage(t, s, "", state.StartAfter([]byte("\xff\xff"))), false)
	wantPage(t, mustPage(t, s, "", state.Reverse(), state.StartAfter([]byte("a"))), false)
	wantPage(t, mustPage(t, s, ""), false, "a", "\xff", "\xff\xff")
	for _, n := range []int{0, -1} {
		if _, err := s.List(ctx(), nil, state.WithLimit(n)); !errors.Is(err, state.ErrInvalidOption) {
			t.Fatalf("WithLimit(%d): %v, want ErrInvalidOption", n, err)
		}
	}
	if pg := mustPage(t, s, string(bytes.Repeat([]byte("a"), state.MaxKeySize+1))); len(pg.Entries) != 0 || pg.Entries == nil {
		t.Fatalf("prefix longer than any key: %+v, want an empty page", pg)
	}
}

func testFindByMetadataPages(t *testing.T, s state.Store) {
	for i := range 7 {
		md := map[string]any{"team": "ops", "n": i}
		if i%2 == 1 {
			md["team"] = "dev"
		}
		if err := s.PutWithMetadata(ctx(), []byte(fmt.Sprintf("u%d", i)), []byte("v"), md); err != nil {
			t.Fatalf("PutWithMetadata: %v", err)
		}
	}
	filter := map[string]string{"team": "ops"}
	pg, err := s.FindByMetadataPage(ctx(), nil, filter, state.WithLimit(2))
	if err != nil {
		t.Fatalf("FindByMetadataPage: %v", err)
	}
	wantPage(t, pg, true, "u0", "u2")
	pg, err = s.FindByMetadataPage(ctx(), nil, filter, state.WithLimit(2), state.StartAfter(pg.Next()))
	if err != nil {
		t.Fatalf("FindByMetadataPage: %v", err)
	}
	wantPage(t, pg, false, "u4", "u6")
	pg, err = s.FindByMetadataPage(ctx(), []byte("u"), filter, state.Reverse(), state.Range([]byte("u1"), []byte("u5")))
	if err != nil {
		t.Fatalf("FindByMetadataPage: %v", err)
	}
	wantPage(t, pg, false, "u4", "u2")
	if _, err := s.FindByMetadataPage(ctx(), nil, nil); !errors.Is(err, state.ErrInvalidMetadata) {
		t.Fatalf("FindByMetadataPage without a filter: %v, want ErrInvalidMetadata", err)
	}
}

func testScanWithOptions(t *testing.T, s state.Store) {
	keys := make([]string, state.ScanPageSize+5)
	for i := range keys {
		keys[i] = fmt.Sprintf("s%05d", i)
	}
	entries := make([]state.Entry, len(keys))
	for i, k := range keys {
		entries[i] = state.Entry{Key: []byte(k), Value: []byte("v")}
	}
	if err := s.BatchPut(ctx(), entries); err != nil {
		t.Fatalf("BatchPut: %v", err)
	}
	collect := func(opts ...state.ListOption) []string {
		var got []string
		for e, err := range s.Scan(ctx(), []byte("s"), opts...) {
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			got = append(got, string(e.Key))
		}
		return got
	}
	if got := collect(state.Reverse()); len(got) != len(keys) || got[0] != keys[len(keys)-1] || got[len(got)-1] != keys[0] {
		t.Fatalf("reverse scan: %d keys from %q to %q", len(got), got[0], got[len(got)-1])
	}
	if got := collect(state.WithLimit(state.ScanPageSize + 2)); len(got) != state.ScanPageSize+2 {
		t.Fatalf("scan with limit %d: %d keys", state.ScanPageSize+2, len(got))
	}
	if got := collect(state.StartAfter([]byte(keys[len(keys)-3]))); fmt.Sprint(got) != fmt.Sprint(keys[len(keys)-2:]) {
		t.Fatalf("scan after %q: %q", keys[len(keys)-3], got)
	}
	for _, err := range s.Scan(ctx(), nil, state.WithLimit(-1)) {
		if !errors.Is(err, state.ErrInvalidOption) {
			t.Fatalf("Scan with WithLimit(-1): %v, want ErrInvalidOption", err)
		}
	}
}
