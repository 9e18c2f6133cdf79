package statetest

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pgstate/pgstate/state"
)

// writeTests cover the write options, range operations and transactions.
var writeTests = []storeTest{
	{"PutEntryConditions", testPutEntryConditions},
	{"PutEntryOptions", testPutEntryOptions},
	{"PutEntryInvalidOptions", testPutEntryInvalidOptions},
	{"PutEntryExpiresAt", testPutEntryExpiresAt},
	{"DeleteEntryConditions", testDeleteEntryConditions},
	{"ConditionsSeeExpiredAsAbsent", testConditionsSeeExpiredAsAbsent},
	{"DeletePrefixCountPrefix", testDeletePrefixCountPrefix},
	{"TransactCommitsAndRollsBack", testTransactCommitAndRollback},
	{"TransactPanicRollsBack", testTransactPanic},
	{"TransactSerializableAgainstPlainWrites", testTransactAgainstPlainWrites},
	{"CounterThroughTransact", testCounterTransact},
	{"CounterThroughConditionalPut", testCounterConditional},
}

func mustEntry(t *testing.T, s state.Store, key string) state.Entry {
	t.Helper()
	e, ok, err := s.GetEntry(ctx(), []byte(key))
	if err != nil || !ok {
		t.Fatalf("GetEntry(%q) = found %v, %v; want an entry", key, ok, err)
	}
	return e
}

// wantMismatch checks that err is a version mismatch reporting current.
func wantMismatch(t *testing.T, err error, current int64) {
	t.Helper()
	var vm *state.VersionMismatchError
	if !errors.Is(err, state.ErrVersionMismatch) || !errors.As(err, &vm) {
		t.Fatalf("err = %v, want ErrVersionMismatch", err)
	}
	if vm.Current != current {
		t.Fatalf("mismatch reports current version %d, want %d", vm.Current, current)
	}
}

func testPutEntryConditions(t *testing.T, s state.Store) {
	k := []byte("cas")
	r, err := s.PutEntry(ctx(), k, []byte("first"), state.IfAbsent())
	if err != nil || r.Version != 1 || r.Existed {
		t.Fatalf("IfAbsent on a new key = %+v, %v; want version 1, not existed", r, err)
	}
	_, err = s.PutEntry(ctx(), k, []byte("second"), state.IfAbsent())
	wantMismatch(t, err, 1)
	_, err = s.PutEntry(ctx(), k, []byte("second"), state.IfVersion(7))
	wantMismatch(t, err, 1)
	if v, _, _ := s.Get(ctx(), k); string(v) != "first" {
		t.Fatalf("a failed condition wrote %q", v)
	}
	r, err = s.PutEntry(ctx(), k, []byte("second"), state.IfVersion(1))
	if err != nil || r.Version != 2 || !r.Existed {
		t.Fatalf("IfVersion(1) = %+v, %v; want version 2", r, err)
	}
	if e := mustEntry(t, s, "cas"); e.Version != 2 || string(e.Value) != "second" {
		t.Fatalf("entry after IfVersion = %+v", e)
	}
	// IfVersion on a missing key: its version is 0.
	_, err = s.PutEntry(ctx(), []byte("missing"), []byte("x"), state.IfVersion(1))
	wantMismatch(t, err, 0)
	if ok, _ := s.Contains(ctx(), []byte("missing")); ok {
		t.Fatal("IfVersion on a missing key created it")
	}
}

func testPutEntryOptions(t *testing.T, s state.Store) {
	k := []byte("opts")
	r, err := s.PutEntry(ctx(), k, []byte("v1"), state.WithTTL(time.Hour), state.WithMetadata(map[string]any{"a": 1}))
	if err != nil || r.Version != 1 {
		t.Fatalf("PutEntry with TTL and metadata = %+v, %v", r, err)
	}
	e := mustEntry(t, s, "opts")
	if e.ExpiresAt.IsZero() || !jsonEqual(t, e.Metadata, `{"a":1}`) {
		t.Fatalf("entry = %+v, want TTL and metadata together", e)
	}
	expires := e.ExpiresAt

	r, err = s.PutEntry(ctx(), k, []byte("v2"), state.KeepTTL(), state.KeepMetadata(), state.WithPrevEntry())
	if err != nil || r.Prev == nil {
		t.Fatalf("PutEntry keep+prev = %+v, %v; want the previous entry", r, err)
	}
	if string(r.Prev.Value) != "v1" || r.Prev.Version != 1 || !jsonEqual(t, r.Prev.Metadata, `{"a":1}`) || !bytes.Equal(r.Prev.Key, k) {
		t.Fatalf("Prev = %+v, want v1 at version 1 with its metadata", r.Prev)
	}
	e = mustEntry(t, s, "opts")
	if string(e.Value) != "v2" || !e.ExpiresAt.Equal(expires) || !jsonEqual(t, e.Metadata, `{"a":1}`) {
		t.Fatalf("entry = %+v, want v2 keeping expiry %v and metadata", e, expires)
	}

	// Without Keep*, a put clears both, as Put does.
	if _, err := s.PutEntry(ctx(), k, []byte("v3")); err != nil {
		t.Fatal(err)
	}
	e = mustEntry(t, s, "opts")
	if !e.ExpiresAt.IsZero() || e.Metadata != nil {
		t.Fatalf("entry = %+v, want expiry and metadata cleared", e)
	}
	// KeepTTL on a new key: no expiry. WithPrevEntry on a new key: nil.
	r, err = s.PutEntry(ctx(), []byte("fresh"), []byte("x"), state.KeepTTL(), state.WithPrevEntry())
	if err != nil || r.Prev != nil || r.Existed {
		t.Fatalf("PutEntry on a new key = %+v, %v", r, err)
	}
	if e := mustEntry(t, s, "fresh"); !e.ExpiresAt.IsZero() {
		t.Fatalf("KeepTTL gave a new key expiry %v", e.ExpiresAt)
	}
}

func testPutEntryExpiresAt(t *testing.T, s state.Store) {
	at := time.Now().Add(time.Hour).Truncate(time.Millisecond).Add(123 * time.Microsecond)
	if _, err := s.PutEntry(ctx(), []byte("at"), []byte("v"), state.WithExpiresAt(at)); err != nil {
		t.Fatal(err)
	}
	if e := mustEntry(t, s, "at"); !e.ExpiresAt.Equal(at) {
		t.Fatalf("ExpiresAt = %v, want exactly %v", e.ExpiresAt, at)
	}
	// A time already past stores an entry nobody sees.
	if _, err := s.PutEntry(ctx(), []byte("past"), []byte("v"), state.WithExpiresAt(time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Contains(ctx(), []byte("past")); err != nil || ok {
		t.Fatalf("an entry that expired an hour ago is visible: %v, %v", ok, err)
	}
	for name, opts := range map[string][]state.WriteOption{
		"ZeroTime":  {state.WithExpiresAt(time.Time{})},
		"WithTTL":   {state.WithExpiresAt(at), state.WithTTL(time.Minute)},
		"KeepTTL":   {state.WithExpiresAt(at), state.KeepTTL()},
		"OnADelete": nil,
	} {
		var err error
		if name == "OnADelete" {
			_, err = s.DeleteEntry(ctx(), []byte("at"), state.WithExpiresAt(at))
		} else {
			_, err = s.PutEntry(ctx(), []byte("at"), []byte("x"), opts...)
		}
		if !errors.Is(err, state.ErrInvalidOption) {
			t.Fatalf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
}

func testPutEntryInvalidOptions(t *testing.T, s state.Store) {
	mustPut(t, s, "keep", "v")
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"TTLAndKeepTTL", func() error {
			_, err := s.PutEntry(ctx(), []byte("keep"), []byte("x"), state.WithTTL(time.Hour), state.KeepTTL())
			return err
		}, state.ErrInvalidOption},
		{"MetadataAndKeepMetadata", func() error {
			_, err := s.PutEntry(ctx(), []byte("keep"), []byte("x"), state.WithMetadata(map[string]int{"a": 1}), state.KeepMetadata())
			return err
		}, state.ErrInvalidOption},
		{"NegativeVersion", func() error {
			_, err := s.PutEntry(ctx(), []byte("keep"), []byte("x"), state.IfVersion(-1))
			return err
		}, state.ErrInvalidOption},
		{"NegativeTTL", func() error {
			_, err := s.PutEntry(ctx(), []byte("keep"), []byte("x"), state.WithTTL(-time.Second))
			return err
		}, state.ErrInvalidTTL},
		{"InvalidMetadata", func() error {
			_, err := s.PutEntry(ctx(), []byte("keep"), []byte("x"), state.WithMetadata([]byte("{")))
			return err
		}, state.ErrInvalidMetadata},
		{"DeleteWithTTL", func() error {
			_, err := s.DeleteEntry(ctx(), []byte("keep"), state.WithTTL(time.Hour))
			return err
		}, state.ErrInvalidOption},
		{"DeleteIfAbsent", func() error {
			_, err := s.DeleteEntry(ctx(), []byte("keep"), state.IfAbsent())
			return err
		}, state.ErrInvalidOption},
		{"EmptyKey", func() error {
			_, err := s.PutEntry(ctx(), nil, []byte("x"))
			return err
		}, state.ErrEmptyKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if e := mustEntry(t, s, "keep"); string(e.Value) != "v" || e.Version != 1 {
		t.Fatalf("invalid options changed the entry: %+v", e)
	}
}

func testDeleteEntryConditions(t *testing.T, s state.Store) {
	mustPut(t, s, "d", "v1")
	mustPut(t, s, "d", "v2")
	_, err := s.DeleteEntry(ctx(), []byte("d"), state.IfVersion(1))
	wantMismatch(t, err, 2)
	if ok, _ := s.Contains(ctx(), []byte("d")); !ok {
		t.Fatal("a failed conditional delete deleted")
	}
	r, err := s.DeleteEntry(ctx(), []byte("d"), state.IfVersion(2), state.WithPrevEntry())
	if err != nil || !r.Existed || r.Prev == nil || string(r.Prev.Value) != "v2" {
		t.Fatalf("DeleteEntry(IfVersion(2)) = %+v, %v", r, err)
	}
	if ok, _ := s.Contains(ctx(), []byte("d")); ok {
		t.Fatal("conditional delete left the key")
	}
	r, err = s.DeleteEntry(ctx(), []byte("d"))
	if err != nil || r.Existed {
		t.Fatalf("DeleteEntry of a missing key = %+v, %v; want not existed", r, err)
	}
	_, err = s.DeleteEntry(ctx(), []byte("d"), state.IfVersion(2))
	wantMismatch(t, err, 0)
}

func testConditionsSeeExpiredAsAbsent(t *testing.T, s state.Store) {
	k := []byte("ttl-cas")
	if _, err := s.PutEntry(ctx(), k, []byte("short"), state.WithTTL(time.Second)); err != nil {
		t.Fatal(err)
	}
	old := mustEntry(t, s, "ttl-cas")
	waitExpired(t, s, "ttl-cas")
	_, err := s.PutEntry(ctx(), k, []byte("x"), state.IfVersion(old.Version))
	wantMismatch(t, err, 0)
	r, err := s.PutEntry(ctx(), k, []byte("again"), state.IfAbsent(), state.WithPrevEntry())
	if err != nil || r.Existed || r.Prev != nil {
		t.Fatalf("IfAbsent over an expired entry = %+v, %v; want a write with no previous entry", r, err)
	}
	// Versions never go back, so a stale IfVersion cannot match a new life
	// of the key that happens to reach the same number.
	if r.Version <= old.Version {
		t.Fatalf("version after expiry = %d, want more than %d", r.Version, old.Version)
	}
}

func testDeletePrefixCountPrefix(t *testing.T, s state.Store) {
	for _, k := range []string{"a/1", "a/2", "a/3", "ab", "b/1", "\xff", "\xff\xff"} {
		mustPut(t, s, k, "v")
	}
	if err := s.PutWithTTL(ctx(), []byte("a/ttl"), []byte("v"), time.Second); err != nil {
		t.Fatal(err)
	}
	waitExpired(t, s, "a/ttl")
	counts := []struct {
		prefix string
		want   int64
	}{{"a/", 3}, {"a", 4}, {"", 7}, {"\xff", 2}, {"z", 0}}
	for _, c := range counts {
		if n, err := s.CountPrefix(ctx(), []byte(c.prefix)); err != nil || n != c.want {
			t.Fatalf("CountPrefix(%q) = %d, %v; want %d", c.prefix, n, err, c.want)
		}
	}
	n, err := s.DeletePrefix(ctx(), []byte("a/"))
	if err != nil || n != 3 {
		t.Fatalf("DeletePrefix(a/) = %d, %v; want 3 (the expired entry does not count)", n, err)
	}
	n, err = s.DeletePrefix(ctx(), []byte("\xff"))
	if err != nil || n != 2 {
		t.Fatalf("DeletePrefix(0xff) = %d, %v; want 2", n, err)
	}
	keys, err := s.ListKeys(ctx(), nil)
	if err != nil || len(keys) != 2 || string(keys[0]) != "ab" || string(keys[1]) != "b/1" {
		t.Fatalf("keys left = %q, %v; want ab, b/1", keys, err)
	}
}

var errAbort = errors.New("abort")

func testTransactCommitAndRollback(t *testing.T, s state.Store) {
	mustPut(t, s, "gone", "v")
	err := s.Transact(ctx(), func(ctx context.Context, tx state.Ops) error {
		if err := tx.Put(ctx, []byte("t/1"), []byte("one")); err != nil {
			return err
		}
		if _, err := tx.PutEntry(ctx, []byte("t/2"), []byte("two"), state.IfAbsent(), state.WithMetadata(map[string]int{"n": 2})); err != nil {
			return err
		}
		if err := tx.BatchPut(ctx, []state.Entry{{Key: []byte("t/3"), Value: []byte("three")}}); err != nil {
			return err
		}
		if err := tx.Delete(ctx, []byte("gone")); err != nil {
			return err
		}
		// The transaction sees its own writes.
		if n, err := tx.CountPrefix(ctx, []byte("t/")); err != nil || n != 3 {
			return errors.Join(err, errors.New("own writes not visible"))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Transact: %v", err)
	}
	if n, _ := s.CountPrefix(ctx(), []byte("t/")); n != 3 {
		t.Fatalf("after commit %d entries under t/, want 3", n)
	}
	if ok, _ := s.Contains(ctx(), []byte("gone")); ok {
		t.Fatal("the delete did not commit")
	}

	err = s.Transact(ctx(), func(ctx context.Context, tx state.Ops) error {
		if _, err := tx.DeletePrefix(ctx, []byte("t/")); err != nil {
			return err
		}
		if err := tx.Put(ctx, []byte("t/4"), []byte("four")); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatalf("Transact returned %v, want the function's error", err)
	}
	if n, _ := s.CountPrefix(ctx(), []byte("t/")); n != 3 {
		t.Fatalf("after rollback %d entries under t/, want the 3 from before", n)
	}
	if ok, _ := s.Contains(ctx(), []byte("t/4")); ok {
		t.Fatal("a rolled back put is visible")
	}
}

func testTransactPanic(t *testing.T, s state.Store) {
	defer func() {
		if recover() == nil {
			t.Fatal("the panic did not reach the caller")
		}
		if ok, _ := s.Contains(ctx(), []byte("panicked")); ok {
			t.Fatal("a transaction that panicked committed")
		}
		// The store works afterwards.
		mustPut(t, s, "after", "v")
	}()
	_ = s.Transact(ctx(), func(ctx context.Context, tx state.Ops) error {
		if err := tx.Put(ctx, []byte("panicked"), []byte("v")); err != nil {
			return err
		}
		panic("boom")
	})
}

// counterWorkers goroutines each add one to a counter counterRounds times.
const (
	counterWorkers = 8
	counterRounds  = 500
)

func runCounter(t *testing.T, s state.Store, key string, incr func(context.Context) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, counterWorkers)
	for range counterWorkers {
		wg.Go(func() {
			for range counterRounds {
				if err := incr(ctx()); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("increment: %v", err)
	}
	v, _, err := s.Get(ctx(), []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(string(v)); n != counterWorkers*counterRounds {
		t.Fatalf("counter = %s, want %d: updates were lost", v, counterWorkers*counterRounds)
	}
}

func testCounterTransact(t *testing.T, s state.Store) {
	key := []byte("counter")
	runCounter(t, s, "counter", func(ctx context.Context) error {
		return s.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
			v, _, err := tx.Get(ctx, key)
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(string(v))
			return tx.Put(ctx, key, []byte(strconv.Itoa(n+1)))
		})
	})
}

func testCounterConditional(t *testing.T, s state.Store) {
	key := []byte("cas-counter")
	runCounter(t, s, "cas-counter", func(ctx context.Context) error {
		for {
			e, _, err := s.GetEntry(ctx, key)
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(string(e.Value))
			_, err = s.PutEntry(ctx, key, []byte(strconv.Itoa(n+1)), state.IfVersion(e.Version))
			if !errors.Is(err, state.ErrVersionMismatch) {
				return err
			}
		}
	})
}

// testTransactAgainstPlainWrites: a read-modify-write in a transaction and
// a plain Delete of the same key, outside any transaction, that runs while
// the transaction is between its read and its write. Whatever the store
// does (make the Delete wait, or run the transaction again), the outcome
// must be that of some serial order: the Delete after the transaction
// (key absent) or before it (the transaction read nothing and wrote "+"),
// never the transaction's write of what it read before the Delete ("5+"),
// which resurrects a deleted key.
func testTransactAgainstPlainWrites(t *testing.T, s state.Store) {
	mustPut(t, s, "n", "5")
	deleted := make(chan error, 1)
	attempts := 0
	err := s.Transact(ctx(), func(c context.Context, tx state.Ops) error {
		attempts++
		v, _, err := tx.Get(c, []byte("n"))
		if err != nil {
			return err
		}
		if attempts == 1 {
			go func() { deleted <- s.Delete(ctx(), []byte("n")) }()
			select {
			case <-deleted:
				deleted <- nil
			case <-time.After(300 * time.Millisecond): // the Delete waits for the transaction
			}
		}
		return tx.Put(c, []byte("n"), append(v, '+'))
	})
	if err != nil {
		t.Fatalf("Transact: %v", err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("Delete: %v", err)
	}
	v, found := mustGet(t, s, "n")
	if found && v != "+" {
		t.Fatalf("after the transaction and the Delete the key holds %q (%d attempts); want it absent, or \"+\"", v, attempts)
	}
}
