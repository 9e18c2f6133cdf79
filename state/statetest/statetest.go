// Package statetest is a conformance suite for state.Backend and
// state.Store implementations. Every implementation runs the same checks, so
// code written against Memory behaves the same on Postgres.
//
//	func TestConformance(t *testing.T) {
//		statetest.Run(t, func(t *testing.T) state.Backend { return state.NewMemory() })
//	}
package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/pgstate/pgstate/state"
)

// Run checks every behaviour of the Backend interface. newBackend must return
// an empty backend, independent of any other it returned; subtests run in
// parallel.
func Run(t *testing.T, newBackend func(t *testing.T) state.Backend) {
	t.Helper()
	for _, tc := range backendTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newBackend(t))
		})
	}
}

type backendTest struct {
	name string
	run  func(t *testing.T, b state.Backend)
}

var backendTests = []backendTest{
	{"GetMissing", testGetMissing},
	{"PutGet", testPutGet},
	{"Overwrite", testOverwrite},
	{"NilAndEmptyValues", testNilAndEmptyValues},
	{"BinaryKeysAndValues", testBinaryKeysAndValues},
	{"Delete", testDelete},
	{"ContainsAndCount", testContainsAndCount},
	{"Clear", testClear},
	{"ListKeysSorted", testListKeysSorted},
	{"ListKeysPrefixEdges", testListKeysPrefixEdges},
	{"KeySizeLimit", testKeySizeLimit},
	{"InvalidInputChangesNothing", testInvalidInputChangesNothing},
	{"CancelledContext", testCancelledContext},
	{"ConcurrentMixed", testConcurrentMixed},
}

func ctx() context.Context { return context.Background() }

// mustPut and the helpers below fail the test on any error.
func mustPut(t *testing.T, b state.Backend, key, value string) {
	t.Helper()
	if err := b.Put(ctx(), []byte(key), []byte(value)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, b state.Backend, key string) (string, bool) {
	t.Helper()
	v, ok, err := b.Get(ctx(), []byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v), ok
}

func mustCount(t *testing.T, b state.Backend) int64 {
	t.Helper()
	n, err := b.Count(ctx())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}

func mustList(t *testing.T, b state.Backend, prefix []byte) [][]byte {
	t.Helper()
	keys, err := b.ListKeys(ctx(), prefix)
	if err != nil {
		t.Fatalf("ListKeys(%x): %v", prefix, err)
	}
	return keys
}

func wantKeys(t *testing.T, got [][]byte, want ...[]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d keys %x, want %d keys %x", len(got), got, len(want), want)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("key %d: got %x, want %x (all: %x)", i, got[i], want[i], got)
		}
	}
}

func testGetMissing(t *testing.T, b state.Backend) {
	v, ok, err := b.Get(ctx(), []byte("missing"))
	if err != nil || ok || v != nil {
		t.Fatalf("Get(missing) = %q, %v, %v; want nil, false, nil", v, ok, err)
	}
}

func testPutGet(t *testing.T, b state.Backend) {
	mustPut(t, b, "k", "v")
	if v, ok := mustGet(t, b, "k"); !ok || v != "v" {
		t.Fatalf("Get(k) = %q, %v; want v, true", v, ok)
	}
}

func testOverwrite(t *testing.T, b state.Backend) {
	mustPut(t, b, "k", "one")
	mustPut(t, b, "k", "two")
	if v, _ := mustGet(t, b, "k"); v != "two" {
		t.Fatalf("Get(k) = %q after overwrite, want two", v)
	}
	if n := mustCount(t, b); n != 1 {
		t.Fatalf("Count = %d after overwrite, want 1", n)
	}
}

func testNilAndEmptyValues(t *testing.T, b state.Backend) {
	for _, tc := range []struct {
		name  string
		value []byte
	}{{"Nil", nil}, {"Empty", []byte{}}} {
		key := []byte("k" + tc.name)
		if err := b.Put(ctx(), key, tc.value); err != nil {
			t.Fatalf("%s: Put: %v", tc.name, err)
		}
		v, ok, err := b.Get(ctx(), key)
		if err != nil || !ok || v == nil || len(v) != 0 {
			t.Fatalf("%s: Get = %v (nil: %v), %v, %v; want an empty non-nil value, true, nil", tc.name, v, v == nil, ok, err)
		}
	}
}

func testBinaryKeysAndValues(t *testing.T, b state.Backend) {
	cases := map[string][]byte{
		"\x00":         {0, 0, 0},
		"\xff":         {0xff},
		"\x00\xff\x00": []byte("mixed"),
		"a\x00b":       {0x80, 0x00, 0x7f},
		"\xff\xff\xff": bytes.Repeat([]byte{0xab}, 1000),
		"日本":           []byte("utf-8 key"),
	}
	for k, v := range cases {
		if err := b.Put(ctx(), []byte(k), v); err != nil {
			t.Fatalf("Put(%x): %v", k, err)
		}
	}
	for k, want := range cases {
		got, ok, err := b.Get(ctx(), []byte(k))
		if err != nil || !ok || !bytes.Equal(got, want) {
			t.Fatalf("Get(%x) = %x, %v, %v; want %x", k, got, ok, err, want)
		}
	}
	// "a" and "a\x00" are distinct keys.
	mustPut(t, b, "a", "short")
	if v, _ := mustGet(t, b, "a\x00b"); v != "\x80\x00\x7f" {
		t.Fatalf("a\\x00b was clobbered: %x", v)
	}
	if n := mustCount(t, b); n != int64(len(cases))+1 {
		t.Fatalf("Count = %d, want %d", n, len(cases)+1)
	}
}

func testDelete(t *testing.T, b state.Backend) {
	mustPut(t, b, "k", "v")
	mustPut(t, b, "other", "v")
	if err := b.Delete(ctx(), []byte("k")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := mustGet(t, b, "k"); ok {
		t.Fatal("k still present after Delete")
	}
	if _, ok := mustGet(t, b, "other"); !ok {
		t.Fatal("Delete(k) removed other")
	}
	if err := b.Delete(ctx(), []byte("never-existed")); err != nil {
		t.Fatalf("Delete(missing) = %v, want nil", err)
	}
}

func testContainsAndCount(t *testing.T, b state.Backend) {
	if n := mustCount(t, b); n != 0 {
		t.Fatalf("Count of empty store = %d", n)
	}
	for i := range 10 {
		mustPut(t, b, fmt.Sprintf("key-%02d", i), "v")
	}
	if n := mustCount(t, b); n != 10 {
		t.Fatalf("Count = %d, want 10", n)
	}
	for _, tc := range []struct {
		key  string
		want bool
	}{{"key-00", true}, {"key-09", true}, {"key-10", false}, {"key-0", false}} {
		got, err := b.Contains(ctx(), []byte(tc.key))
		if err != nil || got != tc.want {
			t.Fatalf("Contains(%q) = %v, %v; want %v", tc.key, got, err, tc.want)
		}
	}
}

func testClear(t *testing.T, b state.Backend) {
	for i := range 5 {
		mustPut(t, b, fmt.Sprint(i), "v")
	}
	if err := b.Clear(ctx()); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	if n := mustCount(t, b); n != 0 {
		t.Fatalf("Count after Clear = %d", n)
	}
	if keys := mustList(t, b, nil); len(keys) != 0 {
		t.Fatalf("ListKeys after Clear = %x", keys)
	}
	mustPut(t, b, "again", "v")
	if n := mustCount(t, b); n != 1 {
		t.Fatalf("Count after Clear and Put = %d", n)
	}
}

func testListKeysSorted(t *testing.T, b state.Backend) {
	// Bytewise order, shorter key first on a common prefix, 0x00 lowest and
	// 0xFF highest: not the order of any text collation.
	want := [][]byte{
		{0x00}, {0x00, 0x00}, {0x01}, []byte("A"), []byte("B"), []byte("a"),
		[]byte("a\x00"), []byte("ab"), []byte("b"), {0x7f}, {0x80}, {0xfe, 0xff}, {0xff}, {0xff, 0x00},
	}
	shuffled := slices.Clone(want)
	slices.Reverse(shuffled)
	for _, k := range shuffled {
		if err := b.Put(ctx(), k, []byte("v")); err != nil {
			t.Fatalf("Put(%x): %v", k, err)
		}
	}
	wantKeys(t, mustList(t, b, nil), want...)
	wantKeys(t, mustList(t, b, []byte{}), want...)
}

func testListKeysPrefixEdges(t *testing.T, b state.Backend) {
	all := [][]byte{
		[]byte("a"), []byte("a\x00"), []byte("a\xff"), []byte("a\xff\xff"), []byte("a\xff\xff\x00"),
		[]byte("ab"), []byte("b"), {0xff}, {0xff, 0xff}, {0xff, 0xff, 0x00}, {0xff, 0xff, 0xff, 0xff},
		{0xfe, 0xff, 0xff}, {0xff, 0xfe},
	}
	for _, k := range all {
		if err := b.Put(ctx(), k, []byte("v")); err != nil {
			t.Fatalf("Put(%x): %v", k, err)
		}
	}
	tests := []struct {
		name   string
		prefix []byte
		want   [][]byte
	}{
		{"Letter", []byte("a"), [][]byte{[]byte("a"), []byte("a\x00"), []byte("ab"), []byte("a\xff"), []byte("a\xff\xff"), []byte("a\xff\xff\x00")}},
		{"TrailingFF", []byte("a\xff"), [][]byte{[]byte("a\xff"), []byte("a\xff\xff"), []byte("a\xff\xff\x00")}},
		{"TrailingFFFF", []byte("a\xff\xff"), [][]byte{[]byte("a\xff\xff"), []byte("a\xff\xff\x00")}},
		{"TrailingZero", []byte("a\x00"), [][]byte{[]byte("a\x00")}},
		{"AllFF", []byte{0xff}, [][]byte{{0xff}, {0xff, 0xfe}, {0xff, 0xff}, {0xff, 0xff, 0x00}, {0xff, 0xff, 0xff, 0xff}}},
		{"AllFFFF", []byte{0xff, 0xff}, [][]byte{{0xff, 0xff}, {0xff, 0xff, 0x00}, {0xff, 0xff, 0xff, 0xff}}},
		{"FEFF", []byte{0xfe, 0xff}, [][]byte{{0xfe, 0xff, 0xff}}},
		{"WholeKey", []byte("ab"), [][]byte{[]byte("ab")}},
		{"NoMatch", []byte("c"), nil},
		{"LongerThanAnyKey", []byte("a\xff\xff\x00\x00"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantKeys(t, mustList(t, b, tc.prefix), tc.want...)
		})
	}
}

func testKeySizeLimit(t *testing.T, b state.Backend) {
	largest := bytes.Repeat([]byte{0xff}, state.MaxKeySize)
	if err := b.Put(ctx(), largest, []byte("v")); err != nil {
		t.Fatalf("Put(key of %d bytes): %v", state.MaxKeySize, err)
	}
	if ok, err := b.Contains(ctx(), largest); err != nil || !ok {
		t.Fatalf("Contains(largest key) = %v, %v", ok, err)
	}
	wantKeys(t, mustList(t, b, largest[:100]), largest)
}

// testInvalidInputChangesNothing checks each input rule: a typed error, and
// the store exactly as it was.
func testInvalidInputChangesNothing(t *testing.T, b state.Backend) {
	mustPut(t, b, "keep", "original")
	tooLong := bytes.Repeat([]byte("k"), state.MaxKeySize+1)
	tooBig := make([]byte, state.DefaultMaxValueSize+1)
	tests := []struct {
		name string
		op   func() error
		want error
	}{
		{"PutEmptyKey", func() error { return b.Put(ctx(), nil, []byte("v")) }, state.ErrEmptyKey},
		{"PutZeroLengthKey", func() error { return b.Put(ctx(), []byte{}, []byte("v")) }, state.ErrEmptyKey},
		{"GetEmptyKey", func() error { _, _, err := b.Get(ctx(), nil); return err }, state.ErrEmptyKey},
		{"DeleteEmptyKey", func() error { return b.Delete(ctx(), nil) }, state.ErrEmptyKey},
		{"ContainsEmptyKey", func() error { _, err := b.Contains(ctx(), nil); return err }, state.ErrEmptyKey},
		{"PutKeyTooLarge", func() error { return b.Put(ctx(), tooLong, []byte("v")) }, state.ErrKeyTooLarge},
		{"GetKeyTooLarge", func() error { _, _, err := b.Get(ctx(), tooLong); return err }, state.ErrKeyTooLarge},
		{"DeleteKeyTooLarge", func() error { return b.Delete(ctx(), tooLong) }, state.ErrKeyTooLarge},
		{"PutValueTooLarge", func() error { return b.Put(ctx(), []byte("keep"), tooBig) }, state.ErrValueTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			if v, ok := mustGet(t, b, "keep"); !ok || v != "original" {
				t.Fatalf("keep = %q, %v after a rejected call", v, ok)
			}
			if n := mustCount(t, b); n != 1 {
				t.Fatalf("Count = %d after a rejected call, want 1", n)
			}
		})
	}
}

func testCancelledContext(t *testing.T, b state.Backend) {
	mustPut(t, b, "k", "v")
	c, cancel := context.WithCancel(ctx())
	cancel()
	if err := b.Put(c, []byte("k"), []byte("changed")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	if _, _, err := b.Get(c, []byte("k")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v, want context.Canceled", err)
	}
	if v, _ := mustGet(t, b, "k"); v != "v" {
		t.Fatalf("k = %q after a cancelled Put", v)
	}
}

// testConcurrentMixed runs 20 goroutines of puts, gets, deletes and listings
// on disjoint key sets and checks every goroutine's final state.
func testConcurrentMixed(t *testing.T, b state.Backend) {
	const workers, rounds = 20, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			prefix := fmt.Sprintf("w%02d/", w)
			for i := range rounds {
				key := []byte(fmt.Sprintf("%s%03d", prefix, i))
				val := []byte(fmt.Sprintf("v%d", i))
				if err := b.Put(ctx(), key, val); err != nil {
					errs <- err
					return
				}
				got, ok, err := b.Get(ctx(), key)
				if err != nil || !ok || !bytes.Equal(got, val) {
					errs <- fmt.Errorf("worker %d: Get(%s) = %q, %v, %v", w, key, got, ok, err)
					return
				}
				if i%5 == 4 {
					if err := b.Delete(ctx(), key); err != nil {
						errs <- err
						return
					}
				}
				if _, err := b.ListKeys(ctx(), []byte(prefix)); err != nil {
					errs <- err
					return
				}
				if _, err := b.Count(ctx()); err != nil {
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
		keys := mustList(t, b, []byte(fmt.Sprintf("w%02d/", w)))
		if len(keys) != rounds-rounds/5 {
			t.Fatalf("worker %d left %d keys, want %d", w, len(keys), rounds-rounds/5)
		}
	}
	if n := mustCount(t, b); n != workers*(rounds-rounds/5) {
		t.Fatalf("Count = %d, want %d", n, workers*(rounds-rounds/5))
	}
}
