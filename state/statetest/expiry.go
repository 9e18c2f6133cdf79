package statetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pgstate/pgstate/state"
)

// expiryTests cover Expire, Persist and TTL; counterTests, Increment.
var expiryTests = []storeTest{
	{"ExpireWithoutRewriting", testExpire},
	{"PersistAndTTL", testPersistTTL},
	{"ExpireInvalid", testExpireInvalid},
}

var counterTests = []storeTest{
	{"IncrementCounts", testIncrement},
	{"IncrementNotInteger", testIncrementNotInteger},
	{"IncrementConcurrent", testIncrementConcurrent},
}

func testExpire(t *testing.T, s state.Store) {
	if err := s.PutWithMetadata(ctx(), []byte("session"), []byte("token"), map[string]int{"user": 7}); err != nil {
		t.Fatalf("PutWithMetadata: %v", err)
	}
	found, err := s.Expire(ctx(), []byte("session"), time.Hour)
	if err != nil || !found {
		t.Fatalf("Expire = %v, %v; want found", found, err)
	}
	e := mustEntry(t, s, "session")
	if string(e.Value) != "token" || e.Metadata == nil || e.Version != 2 || e.ExpiresAt.IsZero() {
		t.Fatalf("entry after Expire %+v, want the value and metadata kept, version 2, an expiry", e)
	}
	left, found, err := s.TTL(ctx(), []byte("session"))
	if err != nil || !found || left <= 59*time.Minute || left > time.Hour {
		t.Fatalf("TTL = %v, %v, %v; want just under an hour", left, found, err)
	}
	// Shortening works too, down to expiry.
	if found, err := s.Expire(ctx(), []byte("session"), time.Millisecond); err != nil || !found {
		t.Fatalf("Expire(1ms) = %v, %v", found, err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, ok, _ := s.Get(ctx(), []byte("session")); ok {
		t.Fatal("entry still live after its shortened expiry")
	}
	if found, err := s.Expire(ctx(), []byte("session"), time.Hour); err != nil || found {
		t.Fatalf("Expire of an expired entry = %v, %v; want not found", found, err)
	}
	if found, err := s.Expire(ctx(), []byte("missing"), time.Hour); err != nil || found {
		t.Fatalf("Expire of a missing key = %v, %v; want not found", found, err)
	}
}

func testPersistTTL(t *testing.T, s state.Store) {
	mustPut(t, s, "plain", "v")
	if left, found, err := s.TTL(ctx(), []byte("plain")); err != nil || !found || left != state.NoTTL {
		t.Fatalf("TTL of an entry without expiry = %v, %v, %v; want NoTTL", left, found, err)
	}
	if _, found, err := s.TTL(ctx(), []byte("missing")); err != nil || found {
		t.Fatalf("TTL of a missing key: found %v, %v", found, err)
	}
	if removed, err := s.Persist(ctx(), []byte("plain")); err != nil || removed {
		t.Fatalf("Persist without a TTL = %v, %v; want false", removed, err)
	}
	if err := s.PutWithTTL(ctx(), []byte("temp"), []byte("v"), time.Minute); err != nil {
		t.Fatalf("PutWithTTL: %v", err)
	}
	if removed, err := s.Persist(ctx(), []byte("temp")); err != nil || !removed {
		t.Fatalf("Persist = %v, %v; want true", removed, err)
	}
	e := mustEntry(t, s, "temp")
	if !e.ExpiresAt.IsZero() || e.Version != 2 || string(e.Value) != "v" {
		t.Fatalf("entry after Persist %+v, want no expiry, version 2, value kept", e)
	}
}

func testExpireInvalid(t *testing.T, s state.Store) {
	mustPut(t, s, "k", "v")
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := s.Expire(ctx(), []byte("k"), ttl); !errors.Is(err, state.ErrInvalidTTL) {
			t.Fatalf("Expire(%v) = %v, want ErrInvalidTTL", ttl, err)
		}
	}
	if _, err := s.Expire(ctx(), nil, time.Hour); !errors.Is(err, state.ErrEmptyKey) {
		t.Fatalf("Expire(nil key) = %v, want ErrEmptyKey", err)
	}
	if e := mustEntry(t, s, "k"); !e.ExpiresAt.IsZero() || e.Version != 1 {
		t.Fatalf("entry after rejected calls %+v", e)
	}
}

func testIncrement(t *testing.T, s state.Store) {
	for _, tc := range []struct {
		delta, want int64
	}{{1, 1}, {41, 42}, {-50, -8}, {0, -8}} {
		if got, err := s.Increment(ctx(), []byte("n"), tc.delta); err != nil || got != tc.want {
			t.Fatalf("Increment(%d) = %d, %v; want %d", tc.delta, got, err, tc.want)
		}
	}
	if v, _ := mustGet(t, s, "n"); v != "-8" {
		t.Fatalf("Get(counter) = %q, want \"-8\"", v)
	}
	// A counter keeps its expiry and metadata; an expired one starts over.
	if _, err := s.PutEntry(ctx(), []byte("c"), []byte("10"), state.WithTTL(time.Hour), state.WithMetadata(map[string]int{"m": 1})); err != nil {
		t.Fatalf("PutEntry: %v", err)
	}
	if got, err := s.Increment(ctx(), []byte("c"), 5); err != nil || got != 15 {
		t.Fatalf("Increment = %d, %v; want 15", got, err)
	}
	if e := mustEntry(t, s, "c"); e.ExpiresAt.IsZero() || e.Metadata == nil || e.Version != 2 {
		t.Fatalf("counter %+v, want its expiry and metadata kept, version 2", e)
	}
	if err := s.PutWithTTL(ctx(), []byte("gone"), []byte("100"), time.Millisecond); err != nil {
		t.Fatalf("PutWithTTL: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	if got, err := s.Increment(ctx(), []byte("gone"), 3); err != nil || got != 3 {
		t.Fatalf("Increment of an expired counter = %d, %v; want 3", got, err)
	}
	if e := mustEntry(t, s, "gone"); !e.ExpiresAt.IsZero() {
		t.Fatalf("restarted counter %+v kept the old expiry", e)
	}
}

func testIncrementNotInteger(t *testing.T, s state.Store) {
	for _, v := range []string{"abc", "", "1.5", "+3", " 4", "\xff", "99999999999999999999"} {
		mustPut(t, s, "x", v)
		if _, err := s.Increment(ctx(), []byte("x"), 1); !errors.Is(err, state.ErrNotInteger) {
			t.Fatalf("Increment of %q = %v, want ErrNotInteger", v, err)
		}
		if got, _ := mustGet(t, s, "x"); got != v {
			t.Fatalf("value %q became %q after a refused Increment", v, got)
		}
	}
	mustPut(t, s, "max", "9223372036854775807")
	if _, err := s.Increment(ctx(), []byte("max"), 1); !errors.Is(err, state.ErrNotInteger) {
		t.Fatalf("Increment past int64 = %v, want ErrNotInteger", err)
	}
	if got, err := s.Increment(ctx(), []byte("max"), -7); err != nil || got != 9223372036854775800 {
		t.Fatalf("Increment(-7) of max = %d, %v", got, err)
	}
}

func testIncrementConcurrent(t *testing.T, s state.Store) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := s.Increment(ctx(), []byte("hits"), 1); err != nil {
					t.Errorf("Increment: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if v, _ := mustGet(t, s, "hits"); v != "200" {
		t.Fatalf("counter = %q after %d increments, want 200", v, workers*each)
	}
}
