package statetest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pgstate/pgstate/state"
)

// checkpointManageTests cover named checkpoints, lookup by name and short
// id, reading a checkpoint without restoring it, and restore's count.
var checkpointManageTests = []storeTest{
	{"CheckpointNamed", testCheckpointNamed},
	{"CheckpointNameInvalid", testCheckpointNameInvalid},
	{"CheckpointFindByIDPrefix", testCheckpointFindByIDPrefix},
	{"CheckpointEntriesWithoutRestore", testCheckpointEntries},
	{"CheckpointEntriesPaged", testCheckpointEntriesPaged},
	{"CheckpointRestoreCount", testCheckpointRestoreCount},
}

func testCheckpointNamed(t *testing.T, s state.Store) {
	mustPut(t, s, "a", "1")
	info, err := s.CreateCheckpointWith(ctx(), state.CheckpointName("before-upgrade"), state.CheckpointMetadata(map[string]int{"release": 7}))
	if err != nil {
		t.Fatalf("CreateCheckpointWith: %v", err)
	}
	if info.ID == uuid.Nil || info.Name != "before-upgrade" || info.Rows != 1 || info.Bytes != 2 || info.CreatedAt.IsZero() || !jsonEqual(t, info.Metadata, `{"release":7}`) {
		t.Fatalf("CreateCheckpointWith = %+v", info)
	}
	unnamed, err := s.CreateCheckpoint(ctx())
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.ListCheckpoints(ctx())
	if err != nil || len(list) != 2 || list[0].ID != unnamed || list[0].Name != "" || list[1].Name != "before-upgrade" {
		t.Fatalf("ListCheckpoints = %+v, %v; want the name listed", list, err)
	}
	if _, err := s.CreateCheckpointWith(ctx(), state.CheckpointName("before-upgrade")); !errors.Is(err, state.ErrCheckpointNameTaken) {
		t.Fatalf("a second checkpoint of the same name: %v, want ErrCheckpointNameTaken", err)
	}
	if list, _ := s.ListCheckpoints(ctx()); len(list) != 2 {
		t.Fatalf("%d checkpoints after a refused name, want 2", len(list))
	}
	for _, ref := range []string{"before-upgrade", info.ID.String(), strings.ToUpper(info.ID.String())} {
		got, err := s.FindCheckpoint(ctx(), ref)
		if err != nil || got.ID != info.ID || got.Name != "before-upgrade" || got.Rows != 1 {
			t.Fatalf("FindCheckpoint(%q) = %+v, %v", ref, got, err)
		}
	}
	if _, err := s.FindCheckpoint(ctx(), "no-such-name"); !errors.Is(err, state.ErrCheckpointNotFound) {
		t.Fatalf("FindCheckpoint(unknown name) = %v, want ErrCheckpointNotFound", err)
	}
	if _, err := s.FindCheckpoint(ctx(), uuid.New().String()); !errors.Is(err, state.ErrCheckpointNotFound) {
		t.Fatalf("FindCheckpoint(unknown id) = %v, want ErrCheckpointNotFound", err)
	}
	// Deleting a checkpoint frees its name.
	if err := s.DeleteCheckpoint(ctx(), info.ID); err != nil {
		t.Fatal(err)
	}
	again, err := s.CreateCheckpointWith(ctx(), state.CheckpointName("before-upgrade"))
	if err != nil || again.ID == info.ID {
		t.Fatalf("reusing a deleted checkpoint's name: %+v, %v", again, err)
	}
}

func testCheckpointNameInvalid(t *testing.T, s state.Store) {
	for _, name := range []string{"", strings.Repeat("n", state.MaxCheckpointName+1), "tab\there", "\xff", uuid.New().String()} {
		if _, err := s.CreateCheckpointWith(ctx(), state.CheckpointName(name)); !errors.Is(err, state.ErrInvalidOption) {
			t.Fatalf("CheckpointName(%q): %v, want ErrInvalidOption", name, err)
		}
	}
	if list, _ := s.ListCheckpoints(ctx()); len(list) != 0 {
		t.Fatalf("%d checkpoints after invalid names, want 0", len(list))
	}
	if _, err := s.CreateCheckpointWith(ctx(), state.CheckpointName(strings.Repeat("é", state.MaxCheckpointName))); err != nil {
		t.Fatalf("a name of %d characters: %v", state.MaxCheckpointName, err)
	}
}

func testCheckpointFindByIDPrefix(t *testing.T, s state.Store) {
	mustPut(t, s, "k", "v")
	var ids []uuid.UUID
	for range 3 {
		id, err := s.CreateCheckpoint(ctx())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	hexOf := func(id uuid.UUID) string { return strings.ReplaceAll(id.String(), "-", "") }
	// Every id has a shortest prefix no other id shares; a prefix shared by
	// all three is ambiguous.
	common := hexOf(ids[0])
	for _, id := range ids[1:] {
		h := hexOf(id)
		n := 0
		for n < len(h) && n < len(common) && h[n] == common[n] {
			n++
		}
		common = common[:n]
	}
	if common == "" {
		t.Skip("the ids share no prefix")
	}
	_, err := s.FindCheckpoint(ctx(), common)
	var amb *state.AmbiguousCheckpointError
	if !errors.Is(err, state.ErrAmbiguousCheckpoint) || !errors.As(err, &amb) || len(amb.Matches) != 3 {
		t.Fatalf("FindCheckpoint(%q) = %v, want ambiguous among 3", common, err)
	}
	for _, id := range ids {
		if !strings.Contains(err.Error(), id.String()) {
			t.Fatalf("the ambiguity error %q does not name %s", err, id)
		}
	}
	for _, id := range ids {
		h := hexOf(id)
		short := h[:len(common)+1]
		unique := true
		for _, other := range ids {
			if other != id && strings.HasPrefix(hexOf(other), short) {
				unique = false
			}
		}
		if !unique {
			continue
		}
		// Dashed, upper-case and plain hex prefixes all work.
		dashed, digits := "", 0
		for _, r := range id.String() {
			if digits == len(short) {
				break
			}
			if r != '-' {
				digits++
			}
			dashed += string(r)
		}
		for _, ref := range []string{short, strings.ToUpper(short), dashed} {
			got, err := s.FindCheckpoint(ctx(), ref)
			if err != nil || got.ID != id {
				t.Fatalf("FindCheckpoint(%q) = %v, %v; want %s", ref, got.ID, err, id)
			}
		}
	}
	for _, ref := range []string{"zz", "", strings.Repeat("0", 33)} {
		if _, err := s.FindCheckpoint(ctx(), ref); !errors.Is(err, state.ErrCheckpointNotFound) {
			t.Fatalf("FindCheckpoint(%q) = %v, want ErrCheckpointNotFound", ref, err)
		}
	}
	// A name wins over an id prefix it happens to spell.
	named, err := s.CreateCheckpointWith(ctx(), state.CheckpointName(common))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindCheckpoint(ctx(), common); err != nil || got.ID != named.ID {
		t.Fatalf("FindCheckpoint(%q) = %v, %v; want the checkpoint of that name", common, got.ID, err)
	}
}

func testCheckpointEntries(t *testing.T, s state.Store) {
	if err := s.PutWithMetadata(ctx(), []byte("user/1"), []byte{0, 0xff}, map[string]string{"team": "x"}); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "user/2", "two")
	mustPut(t, s, "order/1", "o")
	if err := s.PutWithTTL(ctx(), []byte("user/3"), []byte("brief"), time.Hour); err != nil {
		t.Fatal(err)
	}
	before := mustEntry(t, s, "user/1")
	info, err := s.CreateCheckpointWith(ctx(), state.CheckpointName("snap"))
	if err != nil {
		t.Fatal(err)
	}
	// The live store moves on; the checkpoint does not.
	mustPut(t, s, "user/1", "changed")
	mustPut(t, s, "user/4", "new")
	if err := s.Delete(ctx(), []byte("user/2")); err != nil {
		t.Fatal(err)
	}
	e, found, err := s.GetCheckpointEntry(ctx(), info.ID, []byte("user/1"))
	if err != nil || !found || !bytes.Equal(e.Value, []byte{0, 0xff}) || e.Version != before.Version ||
		!jsonEqual(t, e.Metadata, `{"team":"x"}`) || !e.CreatedAt.Equal(before.CreatedAt) || !e.ExpiresAt.IsZero() {
		t.Fatalf("GetCheckpointEntry(user/1) = %+v, %v, %v; want the entry as it was", e, found, err)
	}
	if e, found, err := s.GetCheckpointEntry(ctx(), info.ID, []byte("user/3")); err != nil || !found || e.ExpiresAt.IsZero() {
		t.Fatalf("GetCheckpointEntry(user/3) = %+v, %v, %v; want its expiry kept", e, found, err)
	}
	if _, found, err := s.GetCheckpointEntry(ctx(), info.ID, []byte("user/4")); err != nil || found {
		t.Fatalf("GetCheckpointEntry(a key written after) = %v, %v; want not found", found, err)
	}
	page, err := s.ListCheckpointEntries(ctx(), info.ID, []byte("user/"))
	if err != nil || page.More {
		t.Fatalf("ListCheckpointEntries = %v, %v", page, err)
	}
	wantKeys(t, page.Keys(), []byte("user/1"), []byte("user/2"), []byte("user/3"))
	if string(page.Entries[1].Value) != "two" {
		t.Fatalf("user/2 in the checkpoint = %q, want two", page.Entries[1].Value)
	}
	all, err := s.ListCheckpointEntries(ctx(), info.ID, nil, state.KeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	wantKeys(t, all.Keys(), []byte("order/1"), []byte("user/1"), []byte("user/2"), []byte("user/3"))
	for _, e := range all.Entries {
		if len(e.Value) != 0 || e.Version == 0 {
			t.Fatalf("KeysOnly entry %q: value %q, version %d", e.Key, e.Value, e.Version)
		}
	}
	// Reading changed nothing live.
	if v, _ := mustGet(t, s, "user/1"); v != "changed" {
		t.Fatalf("user/1 = %q after reading the checkpoint", v)
	}
	// Unknown checkpoints are errors, not empty answers; an empty
	// checkpoint is an empty page.
	unknown := uuid.New()
	if _, err := s.ListCheckpointEntries(ctx(), unknown, nil); !errors.Is(err, state.ErrCheckpointNotFound) {
		t.Fatalf("ListCheckpointEntries(unknown) = %v", err)
	}
	if _, _, err := s.GetCheckpointEntry(ctx(), unknown, []byte("k")); !errors.Is(err, state.ErrCheckpointNotFound) {
		t.Fatalf("GetCheckpointEntry(unknown) = %v", err)
	}
	if _, _, err := s.GetCheckpointEntry(ctx(), info.ID, nil); !errors.Is(err, state.ErrEmptyKey) {
		t.Fatalf("GetCheckpointEntry(empty key) = %v", err)
	}
	if err := s.Clear(ctx()); err != nil {
		t.Fatal(err)
	}
	empty, err := s.CreateCheckpoint(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if page, err := s.ListCheckpointEntries(ctx(), empty, nil); err != nil || len(page.Entries) != 0 || page.Entries == nil {
		t.Fatalf("ListCheckpointEntries(empty checkpoint) = %#v, %v; want an empty page", page, err)
	}
}

func testCheckpointEntriesPaged(t *testing.T, s state.Store) {
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}
	for _, k := range keys {
		mustPut(t, s, string(k), "v"+string(k))
	}
	id, err := s.CreateCheckpoint(ctx())
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	var opts []state.ListOption
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page, err := s.ListCheckpointEntries(ctx(), id, nil, append(opts, state.WithLimit(2))...)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Keys()...)
		if !page.More {
			break
		}
		opts = []state.ListOption{state.StartAfter(page.Next())}
	}
	wantKeys(t, got, keys...)
	rev, err := s.ListCheckpointEntries(ctx(), id, nil, state.Reverse(), state.WithLimit(2))
	if err != nil || !rev.More {
		t.Fatalf("reverse page = %v, %v", rev, err)
	}
	wantKeys(t, rev.Keys(), []byte("e"), []byte("d"))
	rng, err := s.ListCheckpointEntries(ctx(), id, nil, state.Range([]byte("b"), []byte("d")))
	if err != nil {
		t.Fatal(err)
	}
	wantKeys(t, rng.Keys(), []byte("b"), []byte("c"))
	if _, err := s.ListCheckpointEntries(ctx(), id, nil, state.WithLimit(0)); !errors.Is(err, state.ErrInvalidOption) {
		t.Fatalf("WithLimit(0) = %v, want ErrInvalidOption", err)
	}
}

func testCheckpointRestoreCount(t *testing.T, s state.Store) {
	for _, k := range []string{"a", "b", "c"} {
		mustPut(t, s, k, "v")
	}
	id, err := s.CreateCheckpoint(ctx())
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "d", "v")
	if err := s.Delete(ctx(), []byte("a")); err != nil {
		t.Fatal(err)
	}
	n, err := s.RestoreCheckpointCount(ctx(), id)
	if err != nil || n != 3 {
		t.Fatalf("RestoreCheckpointCount = %d, %v; want 3", n, err)
	}
	wantKeys(t, mustList(t, s, nil), []byte("a"), []byte("b"), []byte("c"))
	if n, err := s.RestoreCheckpointCount(ctx(), uuid.New()); !errors.Is(err, state.ErrCheckpointNotFound) || n != 0 {
		t.Fatalf("RestoreCheckpointCount(unknown) = %d, %v", n, err)
	}
	if n := mustCount(t, s); n != 3 {
		t.Fatalf("Count = %d after a failed restore, want 3", n)
	}
}
