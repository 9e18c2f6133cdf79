package tests

import (
	"context"
	"errors"
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// FuzzMetadataMemoryVsPostgres stores an arbitrary metadata document in
// Memory and Postgres, alone and as a superseded duplicate in a batch, and
// looks it up with an arbitrary filter: both backends must accept or refuse
// the same documents (with ErrInvalidMetadata) and find the same entries.
func FuzzMetadataMemoryVsPostgres(f *testing.F) {
	pg := testdb.Open(f, nil)
	mem := state.NewMemory()
	for _, seed := range [][2]string{
		{`{"a":"\ud800"}`, `{}`},
		{"{\"a\":\"\xff\"}", `{}`},
		{`{"id":12345678901234568}`, `{"id":12345678901234567}`},
		{`{"n":1e400,"k":"x"}`, `{"k":"x"}`},
		{`{"n":1e200000}`, `{}`},
		{`{"v":[1.0,-0,1e2]}`, `{"v":[100,0,1]}`},
		{`[1,"a",{"b":[2]}]`, `1`},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, doc, filter []byte) {
		for _, s := range []state.Store{pg, mem} {
			if err := s.Clear(ctx); err != nil {
				t.Fatalf("Clear: %v", err)
			}
		}
		errPG := pg.PutWithMetadata(ctx, []byte("single"), []byte("v"), doc)
		errMem := mem.PutWithMetadata(ctx, []byte("single"), []byte("v"), doc)
		if !sameMetadataError(errPG, errMem) {
			t.Fatalf("PutWithMetadata(%q): Postgres %v, Memory %v", doc, errPG, errMem)
		}
		batch := []state.Entry{
			{Key: []byte("batch"), Value: []byte("old"), Metadata: doc},
			{Key: []byte("batch"), Value: []byte("new"), Metadata: []byte(`{"superseding":true}`)},
		}
		errPG, errMem = pg.BatchPut(ctx, batch), mem.BatchPut(ctx, batch)
		if !sameMetadataError(errPG, errMem) {
			t.Fatalf("BatchPut with %q superseded: Postgres %v, Memory %v", doc, errPG, errMem)
		}
		foundPG, errPG := pg.FindByMetadata(ctx, filter)
		foundMem, errMem := mem.FindByMetadata(ctx, filter)
		if !sameMetadataError(errPG, errMem) {
			t.Fatalf("FindByMetadata(%q): Postgres %v, Memory %v", filter, errPG, errMem)
		}
		if len(foundPG) != len(foundMem) {
			t.Fatalf("FindByMetadata(%q) over %q: Postgres %d entries, Memory %d", filter, doc, len(foundPG), len(foundMem))
		}
		for i := range foundPG {
			if string(foundPG[i].Key) != string(foundMem[i].Key) {
				t.Fatalf("FindByMetadata(%q) over %q: Postgres found %q, Memory %q", filter, doc, foundPG[i].Key, foundMem[i].Key)
			}
		}
	})
}

// sameMetadataError reports whether two errors are both nil or both
// ErrInvalidMetadata; any other error fails the comparison.
func sameMetadataError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return errors.Is(a, state.ErrInvalidMetadata) && errors.Is(b, state.ErrInvalidMetadata)
}
