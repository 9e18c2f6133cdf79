package statetest

import (
	"errors"
	"testing"

	"github.com/pgstate/pgstate/state"
)

// revisionTests cover revisions as the identity of a write: ModRevision,
// CreateRevision, WriteResult.Revision and IfModRevision.
var revisionTests = []storeTest{
	{"RevisionsOfWrites", testRevisionsOfWrites},
	{"IfModRevisionHasNoABA", testIfModRevisionHasNoABA},
	{"IfModRevisionAfterRestore", testIfModRevisionAfterRestore},
	{"IfModRevisionInvalid", testIfModRevisionInvalid},
}

// wantRevisionMismatch checks that err is a failed IfModRevision that
// reports current as the live mod revision.
func wantRevisionMismatch(t *testing.T, err error, current int64) {
	t.Helper()
	var vm *state.VersionMismatchError
	if !errors.Is(err, state.ErrVersionMismatch) || !errors.As(err, &vm) || !vm.Revision || vm.Current != current {
		t.Fatalf("got %v (%+v), want a mod revision mismatch at %d", err, vm, current)
	}
}

func testRevisionsOfWrites(t *testing.T, s state.Store) {
	first, err := s.PutEntry(ctx(), []byte("r"), []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	e := mustEntry(t, s, "r")
	if first.Revision <= 0 || e.ModRevision != first.Revision || e.CreateRevision != first.Revision {
		t.Fatalf("after the first put: result revision %d, entry mod %d create %d; want one positive revision", first.Revision, e.ModRevision, e.CreateRevision)
	}
	second, err := s.PutEntry(ctx(), []byte("r"), []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	e = mustEntry(t, s, "r")
	if second.Revision <= first.Revision || e.ModRevision != second.Revision || e.CreateRevision != first.Revision {
		t.Fatalf("after the second put: result revision %d, entry mod %d create %d; want a later mod revision, the first as create revision", second.Revision, e.ModRevision, e.CreateRevision)
	}
	// Every kind of write moves the mod revision.
	mustPut(t, s, "r", "3")
	if got := mustEntry(t, s, "r"); got.ModRevision <= e.ModRevision || got.CreateRevision != first.Revision {
		t.Fatalf("after Put: mod %d create %d, want mod above %d, create %d", got.ModRevision, got.CreateRevision, e.ModRevision, first.Revision)
	}
	if w, ok := s.(state.Watcher); ok {
		from := mustRevision(t, w) + 1
		third, err := s.PutEntry(ctx(), []byte("r"), []byte("4"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx(), []byte("r")); err != nil {
			t.Fatal(err)
		}
		evs := collect(t, w, "r", 2, state.FromRevision(from))
		if evs[0].ModRevision != third.Revision || evs[1].ModRevision != 0 {
			t.Fatalf("put and delete events carry mod revisions %d and %d; want the put's %d, then 0", evs[0].ModRevision, evs[1].ModRevision, third.Revision)
		}
	}
}

// testIfModRevisionHasNoABA: a lock taken, freed and taken again by someone
// else has the same version as the first time, but not the same revision.
func testIfModRevisionHasNoABA(t *testing.T, s state.Store) {
	mine, err := s.PutEntry(ctx(), []byte("lock"), []byte("me"), state.IfModRevision(0))
	if err != nil {
		t.Fatalf("take the free lock: %v", err)
	}
	if err := s.Delete(ctx(), []byte("lock")); err != nil {
		t.Fatal(err)
	}
	theirs, err := s.PutEntry(ctx(), []byte("lock"), []byte("them"), state.IfAbsent())
	if err != nil {
		t.Fatal(err)
	}
	if theirs.Version != mine.Version {
		t.Fatalf("versions %d and %d: the test needs the same version twice", mine.Version, theirs.Version)
	}
	_, err = s.PutEntry(ctx(), []byte("lock"), []byte("me again"), state.IfModRevision(mine.Revision))
	wantRevisionMismatch(t, err, theirs.Revision)
	_, err = s.DeleteEntry(ctx(), []byte("lock"), state.IfModRevision(mine.Revision))
	wantRevisionMismatch(t, err, theirs.Revision)
	_, err = s.PutEntry(ctx(), []byte("lock"), []byte("x"), state.IfModRevision(0))
	wantRevisionMismatch(t, err, theirs.Revision)
	if v, _ := mustGet(t, s, "lock"); v != "them" {
		t.Fatalf("the lock holds %q after refused writes, want them", v)
	}
	renewed, err := s.PutEntry(ctx(), []byte("lock"), []byte("them"), state.IfModRevision(theirs.Revision))
	if err != nil || renewed.Revision <= theirs.Revision {
		t.Fatalf("renew with the current revision: %+v, %v", renewed, err)
	}
	if _, err := s.DeleteEntry(ctx(), []byte("lock"), state.IfModRevision(renewed.Revision)); err != nil {
		t.Fatalf("release with the current revision: %v", err)
	}
	if _, ok := mustGet(t, s, "lock"); ok {
		t.Fatal("the lock is still held after its release")
	}
}

// testIfModRevisionAfterRestore: a restore writes new revisions, so a
// revision read before it does not match what it brought back.
func testIfModRevisionAfterRestore(t *testing.T, s state.Store) {
	mustPut(t, s, "cp", "old")
	before := mustEntry(t, s, "cp")
	id, err := s.CreateCheckpoint(ctx())
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "cp", "new")
	if err := s.RestoreCheckpoint(ctx(), id); err != nil {
		t.Fatal(err)
	}
	after := mustEntry(t, s, "cp")
	if after.Version != before.Version || after.ModRevision <= before.ModRevision || after.CreateRevision != after.ModRevision {
		t.Fatalf("restored entry: version %d mod %d create %d; before: version %d mod %d; want the version back and new revisions", after.Version, after.ModRevision, after.CreateRevision, before.Version, before.ModRevision)
	}
	_, err = s.PutEntry(ctx(), []byte("cp"), []byte("x"), state.IfModRevision(before.ModRevision))
	wantRevisionMismatch(t, err, after.ModRevision)
	if _, err := s.PutEntry(ctx(), []byte("cp"), []byte("x"), state.IfVersion(before.Version)); err != nil {
		t.Fatalf("IfVersion with the restored version (it does not tell incarnations apart): %v", err)
	}
}

func testIfModRevisionInvalid(t *testing.T, s state.Store) {
	for _, tc := range []struct {
		name string
		opts []state.WriteOption
	}{
		{"Negative", []state.WriteOption{state.IfModRevision(-1)}},
		{"WithIfVersion", []state.WriteOption{state.IfVersion(1), state.IfModRevision(1)}},
		{"AfterIfVersion", []state.WriteOption{state.IfModRevision(1), state.IfVersion(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.PutEntry(ctx(), []byte("k"), []byte("v"), tc.opts...); !errors.Is(err, state.ErrInvalidOption) {
				t.Fatalf("PutEntry: %v, want ErrInvalidOption", err)
			}
		})
	}
	if _, err := s.DeleteEntry(ctx(), []byte("k"), state.IfModRevision(0)); !errors.Is(err, state.ErrInvalidOption) {
		t.Fatalf("DeleteEntry(IfModRevision(0)): %v, want ErrInvalidOption", err)
	}
}
