//go:build pending

// Tests that fail because of known bugs in the state package; run them with
// go test -tags pending ./tests/ -run Pending.

package tests

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// TestPendingInjectionMetadataNulEscape stores a JSON document that Go accepts and
// PostgreSQL's jsonb does not (a \u0000 escape): it must be rejected with
// ErrInvalidMetadata, like any other metadata the database cannot hold.
func TestPendingInjectionMetadataNulEscape(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	ctx := context.Background()
	err := s.PutWithMetadata(ctx, []byte("k"), []byte("v"), map[string]string{"nul": "a\x00b"})
	t.Logf("PutWithMetadata with a NUL in a string: %v", err)
	if err == nil {
		e, _, _ := s.GetEntry(ctx, []byte("k"))
		var back map[string]string
		if err := json.Unmarshal(e.Metadata, &back); err != nil || back["nul"] != "a\x00b" {
			t.Fatalf("metadata stored as %s, not verbatim", e.Metadata)
		}
		return
	}
	if !errors.Is(err, state.ErrInvalidMetadata) {
		t.Fatalf("PutWithMetadata = %v, want ErrInvalidMetadata (the document is valid JSON that jsonb cannot store)", err)
	}
	if _, ok, _ := s.Get(ctx, []byte("k")); ok {
		t.Fatal("a rejected PutWithMetadata stored the entry")
	}
}
