package statetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgstate/pgstate/state"
)

// RunStore checks the Backend behaviours (as Run does) and every feature of
// the Store interface: metadata, expiry, batches, scans and checkpoints.
func RunStore(t *testing.T, newStore func(t *testing.T) state.Store) {
	t.Helper()
	Run(t, func(t *testing.T) state.Backend { return newStore(t) })
	for _, tc := range append(append(append(append(storeTests, writeTests...), revisionTests...), watchTests...), dailyTests()...) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

type storeTest struct {
	name string
	run  func(t *testing.T, s state.Store)
}

var storeTests = []storeTest{
	{"MetadataRoundTrip", testMetadataRoundTrip},
	{"MetadataInvalid", testMetadataInvalid},
	{"FindByMetadata", testFindByMetadata},
	{"EntryVersionsAndTimes", testEntryVersionsAndTimes},
	{"TTLExpiresEverywhere", testTTLExpiresEverywhere},
	{"TTLInvalid", testTTLInvalid},
	{"PutClearsTTLAndMetadata", testPutClearsTTLAndMetadata},
	{"BatchPut", testBatchPut},
	{"BatchPutDuplicatesLastWins", testBatchPutDuplicates},
	{"BatchPutLarge", testBatchPutLarge},
	{"BatchPutInvalidWritesNothing", testBatchPutInvalid},
	{"GetManyDeleteMany", testGetManyDeleteMany},
	{"Scan", testScan},
	{"Checkpoints", testCheckpoints},
	{"CheckpointUnknownID", testCheckpointUnknownID},
	{"ConcurrentFeatures", testConcurrentFeatures},
	{"TTLExtreme", testTTLExtreme},
	{"MetadataMatchesPostgres", testMetadataMatchesPostgres},
}

func testMetadataRoundTrip(t *testing.T, s state.Store) {
	type md struct {
		Owner string   `json:"owner"`
		Tags  []string `json:"tags"`
	}
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"Struct", md{Owner: "ann", Tags: []string{"x"}}, `{"owner":"ann","tags":["x"]}`},
		{"RawMessage", json.RawMessage(`{"a": [1, 2, {"b": null}]}`), `{"a":[1,2,{"b":null}]}`},
		{"Map", map[string]any{"n": 1.5}, `{"n":1.5}`},
		{"Nil", nil, ``},
		{"JSONNull", json.RawMessage(`null`), ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := []byte("md-" + tc.name)
			if err := s.PutWithMetadata(ctx(), key, []byte("value"), tc.in); err != nil {
				t.Fatalf("PutWithMetadata: %v", err)
			}
			e, ok, err := s.GetEntry(ctx(), key)
			if err != nil || !ok {
				t.Fatalf("GetEntry = %v, %v", ok, err)
			}
			if string(e.Value) != "value" || !bytes.Equal(e.Key, key) {
				t.Fatalf("GetEntry returned key %q value %q", e.Key, e.Value)
			}
			if !jsonEqual(t, e.Metadata, tc.want) {
				t.Fatalf("metadata = %s, want %s", e.Metadata, tc.want)
			}
		})
	}
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	if want == "" || got == nil {
		return want == "" && got == nil
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("stored metadata is not JSON: %s", got)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad expectation %s", want)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func testMetadataInvalid(t *testing.T, s state.Store) {
	for _, tc := range []struct {
		name string
		md   any
	}{
		{"BrokenRaw", json.RawMessage(`{"a":`)},
		{"BrokenBytes", []byte(`not json`)},
		{"Unmarshalable", map[string]any{"f": func() {}}},
		// Valid JSON, but jsonb cannot hold a NUL character.
		{"NULInString", map[string]string{"nul": "a\x00b"}},
		{"NULInKey", json.RawMessage(`{"a\u0000": 1}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.PutWithMetadata(ctx(), []byte("k"), []byte("v"), tc.md)
			if !errors.Is(err, state.ErrInvalidMetadata) {
				t.Fatalf("got %v, want ErrInvalidMetadata", err)
			}
			if ok, _ := s.Contains(ctx(), []byte("k")); ok {
				t.Fatal("an entry was written despite invalid metadata")
			}
		})
	}
	// An escaped backslash followed by "u0000" is an ordinary string.
	if err := s.PutWithMetadata(ctx(), []byte("bs"), []byte("v"), json.RawMessage(`{"a":"\\u0000"}`)); err != nil {
		t.Fatalf("PutWithMetadata with an escaped backslash: %v", err)
	}
	if _, err := s.FindByMetadata(ctx(), json.RawMessage(`{`)); !errors.Is(err, state.ErrInvalidMetadata) {
		t.Fatalf("FindByMetadata(invalid) = %v, want ErrInvalidMetadata", err)
	}
}

func testFindByMetadata(t *testing.T, s state.Store) {
	put := func(key string, md string) {
		t.Helper()
		if err := s.PutWithMetadata(ctx(), []byte(key), []byte("v-"+key), json.RawMessage(md)); err != nil {
			t.Fatalf("PutWithMetadata(%s): %v", key, err)
		}
	}
	put("a", `{"kind":"order","region":"eu","tags":["x","y"]}`)
	put("b", `{"kind":"order","region":"us"}`)
	put("c", `{"kind":"user","nested":{"level":2}}`)
	mustPut(t, s, "d", "no metadata")
	if err := s.PutWithTTL(ctx(), []byte("e"), []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		filter any
		want   []string
	}{
		{"OneField", map[string]string{"kind": "order"}, []string{"a", "b"}},
		{"TwoFields", json.RawMessage(`{"kind":"order","region":"eu"}`), []string{"a"}},
		{"ArrayElement", json.RawMessage(`{"tags":["y"]}`), []string{"a"}},
		{"Nested", json.RawMessage(`{"nested":{"level":2}}`), []string{"c"}},
		{"EmptyObjectMatchesAllWithMetadata", json.RawMessage(`{}`), []string{"a", "b", "c"}},
		{"NoMatch", json.RawMessage(`{"kind":"none"}`), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.FindByMetadata(ctx(), tc.filter)
			if err != nil {
				t.Fatalf("FindByMetadata: %v", err)
			}
			var keys []string
			for _, e := range got {
				keys = append(keys, string(e.Key))
				if string(e.Value) != "v-"+string(e.Key) {
					t.Fatalf("entry %s has value %q", e.Key, e.Value)
				}
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.want) {
				t.Fatalf("found %v, want %v", keys, tc.want)
			}
		})
	}
}

func testEntryVersionsAndTimes(t *testing.T, s state.Store) {
	key := []byte("versioned")
	var prev state.Entry
	for i := 1; i <= 3; i++ {
		if err := s.Put(ctx(), key, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		e, ok, err := s.GetEntry(ctx(), key)
		if err != nil || !ok {
			t.Fatalf("GetEntry: %v, %v", ok, err)
		}
		if e.Version != int64(i) {
			t.Fatalf("write %d: version %d", i, e.Version)
		}
		if e.CreatedAt.IsZero() || e.UpdatedAt.Before(e.CreatedAt) || !e.ExpiresAt.IsZero() {
			t.Fatalf("write %d: created %v updated %v expires %v", i, e.CreatedAt, e.UpdatedAt, e.ExpiresAt)
		}
		if i > 1 && (!e.CreatedAt.Equal(prev.CreatedAt) || e.UpdatedAt.Before(prev.UpdatedAt)) {
			t.Fatalf("write %d: created_at moved (%v -> %v) or updated_at went back", i, prev.CreatedAt, e.CreatedAt)
		}
		prev = e
	}
	if err := s.Delete(ctx(), key); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "versioned", "again")
	if e, _, _ := s.GetEntry(ctx(), key); e.Version != 1 {
		t.Fatalf("version after delete and put = %d, want 1", e.Version)
	}
}

// shortTTL is long enough for the writes before the first check to finish
// on a busy machine; the tests then poll until the entry written last has
// expired, for at most expiryDeadline.
const (
	shortTTL       = 3 * time.Second
	expiryDeadline = 30 * time.Second
)

// waitExpired polls until key is gone. Entries written before it with the
// same TTL have then expired as well.
func waitExpired(t *testing.T, s state.Store, key string) {
	t.Helper()
	deadline := time.Now().Add(expiryDeadline)
	for {
		ok, err := s.Contains(ctx(), []byte(key))
		if err != nil {
			t.Fatalf("Contains(%s): %v", key, err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still live %v after its %v TTL", key, expiryDeadline, shortTTL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testTTLExpiresEverywhere(t *testing.T, s state.Store) {
	if err := s.PutWithTTL(ctx(), []byte("t/short"), []byte("v"), shortTTL); err != nil {
		t.Fatalf("PutWithTTL: %v", err)
	}
	if err := s.BatchPut(ctx(), []state.Entry{{Key: []byte("t/batch"), Value: []byte("v"), TTL: shortTTL, Metadata: json.RawMessage(`{"ttl":true}`)}}); err != nil {
		t.Fatalf("BatchPut with TTL: %v", err)
	}
	if err := s.PutWithTTL(ctx(), []byte("t/long"), []byte("v"), time.Hour); err != nil {
		t.Fatalf("PutWithTTL: %v", err)
	}
	if err := s.PutWithMetadata(ctx(), []byte("t/forever"), []byte("v"), json.RawMessage(`{"ttl":true}`)); err != nil {
		t.Fatal(err)
	}
	e, ok, err := s.GetEntry(ctx(), []byte("t/short"))
	if err != nil || !ok || e.ExpiresAt.IsZero() {
		t.Fatalf("before expiry: GetEntry = %+v, %v, %v", e, ok, err)
	}
	if n := mustCount(t, s); n != 4 {
		t.Fatalf("Count before expiry = %d, want 4", n)
	}
	waitExpired(t, s, "t/batch")
	for _, key := range []string{"t/short", "t/batch"} {
		if _, ok := mustGet(t, s, key); ok {
			t.Fatalf("Get(%s) found an expired entry", key)
		}
		if _, ok, _ := s.GetEntry(ctx(), []byte(key)); ok {
			t.Fatalf("GetEntry(%s) found an expired entry", key)
		}
		if ok, _ := s.Contains(ctx(), []byte(key)); ok {
			t.Fatalf("Contains(%s) = true for an expired entry", key)
		}
	}
	if n := mustCount(t, s); n != 2 {
		t.Fatalf("Count after expiry = %d, want 2", n)
	}
	wantKeys(t, mustList(t, s, []byte("t/")), []byte("t/forever"), []byte("t/long"))
	found, err := s.FindByMetadata(ctx(), json.RawMessage(`{"ttl":true}`))
	if err != nil || len(found) != 1 || string(found[0].Key) != "t/forever" {
		t.Fatalf("FindByMetadata after expiry = %v, %v", found, err)
	}
	got, err := s.GetMany(ctx(), [][]byte{[]byte("t/short"), []byte("t/long")})
	if err != nil || len(got) != 1 {
		t.Fatalf("GetMany after expiry = %v, %v", got, err)
	}
	n, err := s.CleanupExpired(ctx())
	if err != nil || n != 2 {
		t.Fatalf("CleanupExpired = %d, %v; want 2", n, err)
	}
	if n, _ := s.CleanupExpired(ctx()); n != 0 {
		t.Fatalf("second CleanupExpired = %d, want 0", n)
	}
	// A key written again after expiring starts a new life.
	mustPut(t, s, "t/short", "new")
	if v, ok := mustGet(t, s, "t/short"); !ok || v != "new" {
		t.Fatalf("rewritten key = %q, %v", v, ok)
	}
}

func testTTLInvalid(t *testing.T, s state.Store) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		err := s.PutWithTTL(ctx(), []byte("k"), []byte("v"), ttl)
		if !errors.Is(err, state.ErrInvalidTTL) {
			t.Fatalf("PutWithTTL(%v) = %v, want ErrInvalidTTL", ttl, err)
		}
	}
	err := s.BatchPut(ctx(), []state.Entry{{Key: []byte("k"), Value: []byte("v"), TTL: -1}})
	if !errors.Is(err, state.ErrInvalidTTL) {
		t.Fatalf("BatchPut(negative TTL) = %v, want ErrInvalidTTL", err)
	}
	if n := mustCount(t, s); n != 0 {
		t.Fatalf("Count = %d after rejected writes", n)
	}
}

func testPutClearsTTLAndMetadata(t *testing.T, s state.Store) {
	if err := s.PutWithTTL(ctx(), []byte("k"), []byte("v"), shortTTL); err != nil {
		t.Fatal(err)
	}
	if err := s.PutWithMetadata(ctx(), []byte("k"), []byte("v2"), map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "k", "v3")
	// The TTL the first write set would have run out by now.
	time.Sleep(shortTTL + time.Second)
	e, ok, err := s.GetEntry(ctx(), []byte("k"))
	if err != nil || !ok {
		t.Fatalf("Put did not clear the TTL: %v, %v", ok, err)
	}
	if e.Metadata != nil || !e.ExpiresAt.IsZero() || string(e.Value) != "v3" || e.Version != 3 {
		t.Fatalf("after Put: %+v", e)
	}
}

func testBatchPut(t *testing.T, s state.Store) {
	mustPut(t, s, "b/003", "old")
	var batch []state.Entry
	for i := range 500 {
		batch = append(batch, state.Entry{Key: []byte(fmt.Sprintf("b/%03d", i)), Value: []byte(fmt.Sprint(i))})
	}
	batch[7].Metadata = json.RawMessage(`{"seven":7}`)
	if err := s.BatchPut(ctx(), batch); err != nil {
		t.Fatalf("BatchPut: %v", err)
	}
	if n := mustCount(t, s); n != 500 {
		t.Fatalf("Count = %d, want 500", n)
	}
	if v, _ := mustGet(t, s, "b/003"); v != "3" {
		t.Fatalf("b/003 = %q, want 3 (overwritten by the batch)", v)
	}
	e, _, _ := s.GetEntry(ctx(), []byte("b/007"))
	if !jsonEqual(t, e.Metadata, `{"seven":7}`) {
		t.Fatalf("b/007 metadata = %s", e.Metadata)
	}
	if err := s.BatchPut(ctx(), nil); err != nil {
		t.Fatalf("BatchPut(nil) = %v", err)
	}
}

func testBatchPutDuplicates(t *testing.T, s state.Store) {
	err := s.BatchPut(ctx(), []state.Entry{
		{Key: []byte("dup"), Value: []byte("first")},
		{Key: []byte("other"), Value: []byte("x")},
		{Key: []byte("dup"), Value: []byte("second")},
		{Key: []byte("dup"), Value: []byte("last")},
	})
	if err != nil {
		t.Fatalf("BatchPut with duplicates: %v", err)
	}
	if v, _ := mustGet(t, s, "dup"); v != "last" {
		t.Fatalf("dup = %q, want last", v)
	}
	if e, _, _ := s.GetEntry(ctx(), []byte("dup")); e.Version != 1 {
		t.Fatalf("dup written %d times, want once", e.Version)
	}
	if n := mustCount(t, s); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
}

func testBatchPutInvalid(t *testing.T, s state.Store) {
	mustPut(t, s, "keep", "v")
	tests := []struct {
		name string
		bad  state.Entry
		want error
	}{
		{"EmptyKey", state.Entry{Value: []byte("v")}, state.ErrEmptyKey},
		{"KeyTooLarge", state.Entry{Key: make([]byte, state.MaxKeySize+1)}, state.ErrKeyTooLarge},
		{"BadMetadata", state.Entry{Key: []byte("m"), Metadata: json.RawMessage(`{`)}, state.ErrInvalidMetadata},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			batch := []state.Entry{{Key: []byte("good1"), Value: []byte("v")}, tc.bad, {Key: []byte("good2")}}
			if err := s.BatchPut(ctx(), batch); !errors.Is(err, tc.want) {
				t.Fatalf("BatchPut = %v, want %v", err, tc.want)
			}
			wantKeys(t, mustList(t, s, nil), []byte("keep"))
		})
	}
}

func testGetManyDeleteMany(t *testing.T, s state.Store) {
	for i := range 10 {
		mustPut(t, s, fmt.Sprintf("m%d", i), fmt.Sprintf("v%d", i))
	}
	keys := [][]byte{[]byte("m1"), []byte("m5"), []byte("missing"), []byte("m9"), []byte("m1")}
	got, err := s.GetMany(ctx(), keys)
	if err != nil {
		t.Fatalf("GetMany: %v", err)
	}
	if len(got) != 3 || string(got["m1"]) != "v1" || string(got["m5"]) != "v5" || string(got["m9"]) != "v9" {
		t.Fatalf("GetMany = %q", got)
	}
	if got, err := s.GetMany(ctx(), nil); err != nil || len(got) != 0 {
		t.Fatalf("GetMany(nil) = %v, %v", got, err)
	}
	if _, err := s.GetMany(ctx(), [][]byte{[]byte("m1"), nil}); !errors.Is(err, state.ErrEmptyKey) {
		t.Fatalf("GetMany with an empty key = %v", err)
	}
	n, err := s.DeleteMany(ctx(), [][]byte{[]byte("m1"), []byte("m2"), []byte("missing")})
	if err != nil || n != 2 {
		t.Fatalf("DeleteMany = %d, %v; want 2", n, err)
	}
	if c := mustCount(t, s); c != 8 {
		t.Fatalf("Count after DeleteMany = %d", c)
	}
	if _, err := s.DeleteMany(ctx(), [][]byte{[]byte("m3"), make([]byte, state.MaxKeySize+1)}); !errors.Is(err, state.ErrKeyTooLarge) {
		t.Fatalf("DeleteMany with a long key = %v", err)
	}
	if ok, _ := s.Contains(ctx(), []byte("m3")); !ok {
		t.Fatal("a rejected DeleteMany deleted m3")
	}
}

func testScan(t *testing.T, s state.Store) {
	const n = 2500 // more than two pages
	var batch []state.Entry
	for i := range n {
		batch = append(batch, state.Entry{Key: []byte(fmt.Sprintf("s/%05d", i)), Value: []byte(fmt.Sprint(i))})
	}
	batch = append(batch, state.Entry{Key: []byte("t/outside"), Value: []byte("x")}, state.Entry{Key: []byte("s"), Value: []byte("x")})
	if err := s.BatchPut(ctx(), batch); err != nil {
		t.Fatal(err)
	}
	i := 0
	for e, err := range s.Scan(ctx(), []byte("s/")) {
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		if want := fmt.Sprintf("s/%05d", i); string(e.Key) != want || string(e.Value) != fmt.Sprint(i) {
			t.Fatalf("entry %d: %s=%s, want %s", i, e.Key, e.Value, want)
		}
		i++
	}
	if i != n {
		t.Fatalf("Scan yielded %d entries, want %d", i, n)
	}
	// Stopping early stops the scan.
	seen := 0
	for _, err := range s.Scan(ctx(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		seen++
		if seen == 10 {
			break
		}
	}
	if seen != 10 {
		t.Fatalf("early break saw %d", seen)
	}
	all := 0
	for _, err := range s.Scan(ctx(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		all++
	}
	if all != n+2 {
		t.Fatalf("Scan(nil) yielded %d, want %d", all, n+2)
	}
}

func testCheckpoints(t *testing.T, s state.Store) {
	mustPut(t, s, "a", "1")
	mustPut(t, s, "b", "2")
	if err := s.PutWithMetadata(ctx(), []byte("c"), []byte{0, 0xff}, json.RawMessage(`{"m":1}`)); err != nil {
		t.Fatal(err)
	}
	first, err := s.CreateCheckpoint(ctx())
	if err != nil || first == uuid.Nil {
		t.Fatalf("CreateCheckpoint = %v, %v", first, err)
	}
	mustPut(t, s, "a", "changed")
	if err := s.Delete(ctx(), []byte("b")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "d", "new")
	second, err := s.CreateCheckpoint(ctx())
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.ListCheckpoints(ctx())
	if err != nil || len(list) != 2 {
		t.Fatalf("ListCheckpoints = %v, %v", list, err)
	}
	if list[0].ID != second || list[1].ID != first {
		t.Fatalf("ListCheckpoints order = %v, %v; want newest first", list[0].ID, list[1].ID)
	}
	if list[1].Rows != 3 || list[1].Bytes != 1+1+1+1+1+2 {
		t.Fatalf("first checkpoint: %d rows, %d bytes; want 3 rows, 7 bytes", list[1].Rows, list[1].Bytes)
	}
	if list[1].CreatedAt.IsZero() || list[0].CreatedAt.Before(list[1].CreatedAt) {
		t.Fatalf("checkpoint times: %v, %v", list[0].CreatedAt, list[1].CreatedAt)
	}
	if err := s.RestoreCheckpoint(ctx(), first); err != nil {
		t.Fatalf("RestoreCheckpoint: %v", err)
	}
	wantKeys(t, mustList(t, s, nil), []byte("a"), []byte("b"), []byte("c"))
	if v, _ := mustGet(t, s, "a"); v != "1" {
		t.Fatalf("a = %q after restore, want 1", v)
	}
	e, _, _ := s.GetEntry(ctx(), []byte("c"))
	if !bytes.Equal(e.Value, []byte{0, 0xff}) || !jsonEqual(t, e.Metadata, `{"m":1}`) {
		t.Fatalf("c after restore = %x %s", e.Value, e.Metadata)
	}
	if err := s.RestoreCheckpoint(ctx(), second); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, mustList(t, s, nil), []byte("a"), []byte("c"), []byte("d"))
	if err := s.DeleteCheckpoint(ctx(), first); err != nil {
		t.Fatalf("DeleteCheckpoint: %v", err)
	}
	list, _ = s.ListCheckpoints(ctx())
	if len(list) != 1 || list[0].ID != second {
		t.Fatalf("after delete: %v", list)
	}
	if err := s.RestoreCheckpoint(ctx(), first); !errors.Is(err, state.ErrCheckpointNotFound) {
		t.Fatalf("restoring a deleted checkpoint = %v", err)
	}
	// A checkpoint of an empty store restores to empty.
	if err := s.Clear(ctx()); err != nil {
		t.Fatal(err)
	}
	empty, err := s.CreateCheckpoint(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreCheckpoint(ctx(), second); err != nil {
		t.Fatal(err)
	}
	if err := s.RestoreCheckpoint(ctx(), empty); err != nil {
		t.Fatal(err)
	}
	if n := mustCount(t, s); n != 0 {
		t.Fatalf("Count after restoring an empty checkpoint = %d", n)
	}
}

func testCheckpointUnknownID(t *testing.T, s state.Store) {
	mustPut(t, s, "k", "v")
	for _, id := range []uuid.UUID{uuid.Nil, uuid.New()} {
		if err := s.RestoreCheckpoint(ctx(), id); !errors.Is(err, state.ErrCheckpointNotFound) {
			t.Fatalf("RestoreCheckpoint(%s) = %v", id, err)
		}
		if err := s.DeleteCheckpoint(ctx(), id); !errors.Is(err, state.ErrCheckpointNotFound) {
			t.Fatalf("DeleteCheckpoint(%s) = %v", id, err)
		}
	}
	if v, ok := mustGet(t, s, "k"); !ok || v != "v" {
		t.Fatal("store changed by a failed restore")
	}
}

// testConcurrentFeatures runs 20 goroutines that each use a different mix of
// the Store's features at once (batches, metadata, expiry, scans,
// checkpoints) on their own keys, then checks what each one left behind.
func testConcurrentFeatures(t *testing.T, s state.Store) {
	const workers, rounds = 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			prefix := fmt.Sprintf("c%02d/", w)
			key := func(i int) []byte { return []byte(fmt.Sprintf("%s%02d", prefix, i)) }
			for i := range rounds {
				var err error
				switch w % 5 {
				case 0:
					err = s.BatchPut(ctx(), []state.Entry{{Key: key(i), Value: []byte("b")}, {Key: key(i + 50), Value: []byte("b")}})
				case 1:
					err = s.PutWithMetadata(ctx(), key(i), []byte("m"), map[string]any{"worker": w, "i": i})
					if err == nil {
						var found []state.Entry
						found, err = s.FindByMetadata(ctx(), map[string]any{"worker": w})
						if err == nil && len(found) != i+1 {
							err = fmt.Errorf("worker %d found %d entries, want %d", w, len(found), i+1)
						}
					}
				case 2:
					err = s.PutWithTTL(ctx(), key(i), []byte("t"), time.Hour)
				case 3:
					err = s.Put(ctx(), key(i), []byte("p"))
					if err == nil {
						var got map[string][]byte
						got, err = s.GetMany(ctx(), [][]byte{key(i), key(i + 99)})
						if err == nil && len(got) != 1 {
							err = fmt.Errorf("worker %d: GetMany = %d entries, want 1", w, len(got))
						}
					}
				case 4:
					err = s.Put(ctx(), key(i), []byte("s"))
					if err == nil {
						_, err = s.CreateCheckpoint(ctx())
					}
					n := 0
					for _, serr := range s.Scan(ctx(), []byte(prefix)) {
						if serr != nil {
							err = serr
						}
						n++
					}
					if err == nil && n != i+1 {
						err = fmt.Errorf("worker %d scanned %d entries, want %d", w, n, i+1)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for w := range workers {
		want := rounds
		if w%5 == 0 {
			want = 2 * rounds
		}
		if keys := mustList(t, s, []byte(fmt.Sprintf("c%02d/", w))); len(keys) != want {
			t.Fatalf("worker %d left %d keys, want %d", w, len(keys), want)
		}
	}
	cps, err := s.ListCheckpoints(ctx())
	if err != nil || len(cps) != 4*rounds {
		t.Fatalf("ListCheckpoints = %d, %v; want %d", len(cps), err, 4*rounds)
	}
}

// testBatchPutLarge writes batches big enough for a bulk-load path: first
// all new keys (with TTLs and metadata), then a batch in which some keys
// exist already, and checks every entry either way.
func testBatchPutLarge(t *testing.T, s state.Store) {
	const n = 3000
	batch := make([]state.Entry, n)
	for i := range batch {
		batch[i] = state.Entry{Key: []byte(fmt.Sprintf("L%05d", i)), Value: []byte(fmt.Sprint(i))}
		if i%3 == 0 {
			batch[i].TTL = time.Hour
		}
		if i%5 == 0 {
			batch[i].Metadata = json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))
		}
	}
	before := time.Now()
	if err := s.BatchPut(ctx(), batch); err != nil {
		t.Fatalf("BatchPut of %d new keys: %v", n, err)
	}
	after := time.Now()
	if c := mustCount(t, s); c != n {
		t.Fatalf("Count = %d, want %d", c, n)
	}
	check := func(i int, value string, version int64) {
		t.Helper()
		e, ok, err := s.GetEntry(ctx(), []byte(fmt.Sprintf("L%05d", i)))
		if err != nil || !ok || string(e.Value) != value || e.Version != version {
			t.Fatalf("entry %d = %+v, %v, %v; want value %s version %d", i, e, ok, err, value, version)
		}
		if i%3 == 0 {
			// Allow for clock skew between this process and the database.
			lo, hi := before.Add(time.Hour-time.Minute), after.Add(time.Hour+time.Minute)
			if e.ExpiresAt.Before(lo) || e.ExpiresAt.After(hi) {
				t.Fatalf("entry %d expires at %v, want about an hour from now", i, e.ExpiresAt)
			}
		} else if !e.ExpiresAt.IsZero() {
			t.Fatalf("entry %d expires at %v, want never", i, e.ExpiresAt)
		}
		if want := i%5 == 0; want != (e.Metadata != nil) {
			t.Fatalf("entry %d metadata = %s", i, e.Metadata)
		}
	}
	for _, i := range []int{0, 1, 2, 3, 5, 15, 1234, n - 1} {
		check(i, fmt.Sprint(i), 1)
	}
	found, err := s.FindByMetadata(ctx(), json.RawMessage(`{"i":15}`))
	if err != nil || len(found) != 1 {
		t.Fatalf("FindByMetadata after a large batch = %v, %v", found, err)
	}
	// Half new keys, half existing ones (the existing ones last).
	second := make([]state.Entry, n)
	for i := range second {
		k := n/2 + i
		second[i] = state.Entry{Key: []byte(fmt.Sprintf("L%05d", k)), Value: []byte("v2")}
	}
	if err := s.BatchPut(ctx(), second); err != nil {
		t.Fatalf("BatchPut over existing keys: %v", err)
	}
	if c := mustCount(t, s); c != n+n/2 {
		t.Fatalf("Count = %d, want %d", c, n+n/2)
	}
	e, _, _ := s.GetEntry(ctx(), []byte(fmt.Sprintf("L%05d", n/2+3)))
	if string(e.Value) != "v2" || e.Version != 2 || !e.ExpiresAt.IsZero() {
		t.Fatalf("overwritten entry = %+v", e)
	}
	e, _, _ = s.GetEntry(ctx(), []byte(fmt.Sprintf("L%05d", n+10)))
	if string(e.Value) != "v2" || e.Version != 1 {
		t.Fatalf("new entry of the second batch = %+v", e)
	}
	if v, _ := mustGet(t, s, "L00010"); v != "10" {
		t.Fatalf("an entry outside the second batch changed: %q", v)
	}
}
