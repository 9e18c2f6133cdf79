package statetest

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/pgstate/pgstate/state"
)

// typedTests cover state.Typed over the store and inside a transaction.
var typedTests = []storeTest{
	{"TypedRoundTrip", testTypedRoundTrip},
	{"TypedWriteOptions", testTypedWriteOptions},
	{"TypedList", testTypedList},
	{"TypedCodec", testTypedCodec},
	{"TypedInTransaction", testTypedInTransaction},
}

type cart struct {
	Owner string   `json:"owner"`
	Items []string `json:"items"`
	Total float64  `json:"total"`
}

func testTypedRoundTrip(t *testing.T, s state.Store) {
	carts := state.NewTyped[cart](s)
	want := cart{Owner: "ada", Items: []string{"book", "pen"}, Total: 12.5}
	if err := carts.Put(ctx(), "cart/1", want); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, found, err := carts.Get(ctx(), "cart/1")
	if err != nil || !found || got.Owner != want.Owner || len(got.Items) != 2 || got.Total != want.Total {
		t.Fatalf("Get = %+v, %v, %v; want %+v", got, found, err, want)
	}
	// The bytes are JSON, readable by anything else.
	if raw, _ := mustGet(t, s, "cart/1"); !jsonEqual(t, []byte(raw), `{"owner":"ada","items":["book","pen"],"total":12.5}`) {
		t.Fatalf("stored bytes %s, want the JSON document", raw)
	}
	if got, found, err := carts.Get(ctx(), "cart/2"); err != nil || found || got.Owner != "" {
		t.Fatalf("Get(missing) = %+v, %v, %v; want the zero value, false", got, found, err)
	}
	if existed, err := carts.Delete(ctx(), "cart/1"); err != nil || !existed {
		t.Fatalf("Delete = %v, %v; want existed", existed, err)
	}
	if existed, err := carts.Delete(ctx(), "cart/1"); err != nil || existed {
		t.Fatalf("Delete again = %v, %v; want not existed", existed, err)
	}
	if err := carts.Put(ctx(), "", want); !errors.Is(err, state.ErrEmptyKey) {
		t.Fatalf("Put(\"\") = %v, want ErrEmptyKey", err)
	}
}

func testTypedWriteOptions(t *testing.T, s state.Store) {
	carts := state.NewTyped[cart](s)
	res, err := carts.PutEntry(ctx(), "cart/1", cart{Owner: "ada"}, state.IfAbsent(), state.WithTTL(time.Hour), state.WithMetadata(map[string]string{"tier": "gold"}))
	if err != nil || res.Version != 1 || res.Existed {
		t.Fatalf("PutEntry = %+v, %v", res, err)
	}
	e := mustEntry(t, s, "cart/1")
	if e.ExpiresAt.IsZero() || !jsonEqual(t, e.Metadata, `{"tier":"gold"}`) {
		t.Fatalf("entry %+v, want an expiry and the metadata", e)
	}
	if _, err := carts.PutEntry(ctx(), "cart/1", cart{Owner: "eve"}, state.IfAbsent()); !errors.Is(err, state.ErrVersionMismatch) {
		t.Fatalf("PutEntry IfAbsent on an existing key = %v, want ErrVersionMismatch", err)
	}
	res, err = carts.PutEntry(ctx(), "cart/1", cart{Owner: "bob"}, state.IfVersion(1), state.KeepTTL(), state.WithPrevEntry())
	if err != nil || res.Version != 2 {
		t.Fatalf("PutEntry IfVersion(1) = %+v, %v", res, err)
	}
	prev, ok, err := carts.DecodePrev(res)
	if err != nil || !ok || prev.Owner != "ada" {
		t.Fatalf("DecodePrev = %+v, %v, %v; want ada's cart", prev, ok, err)
	}
	if e := mustEntry(t, s, "cart/1"); e.ExpiresAt.IsZero() || e.Metadata != nil {
		t.Fatalf("entry after KeepTTL %+v, want the expiry kept and the metadata cleared", e)
	}
	if _, ok, err := carts.DecodePrev(state.WriteResult{}); ok || err != nil {
		t.Fatalf("DecodePrev(no previous) = %v, %v", ok, err)
	}
	if _, err := carts.Delete(ctx(), "cart/1", state.IfVersion(1)); !errors.Is(err, state.ErrVersionMismatch) {
		t.Fatalf("Delete IfVersion(1) at version 2 = %v, want ErrVersionMismatch", err)
	}
}

func testTypedList(t *testing.T, s state.Store) {
	nums := state.NewTyped[int](s)
	for i := range 5 {
		if err := nums.Put(ctx(), "n/"+strconv.Itoa(i), i*i); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(t, s, "other", "not a number, not listed")
	var keys []string
	var values []int
	var opts []state.ListOption
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page, err := nums.List(ctx(), "n/", append(opts, state.WithLimit(2))...)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, it := range page.Items {
			keys = append(keys, it.Key)
			values = append(values, it.Value)
			if it.Entry.Version != 1 || it.Entry.Value != nil || it.Entry.Key == nil {
				t.Fatalf("item %q entry %+v", it.Key, it.Entry)
			}
		}
		if !page.More {
			break
		}
		opts = []state.ListOption{state.StartAfter([]byte(page.Next()))}
	}
	if len(keys) != 5 || keys[0] != "n/0" || keys[4] != "n/4" || values[3] != 9 {
		t.Fatalf("listed %v = %v", keys, values)
	}
	rev, err := nums.List(ctx(), "n/", state.Reverse(), state.WithLimit(1))
	if err != nil || len(rev.Items) != 1 || rev.Items[0].Value != 16 || !rev.More || rev.Next() != "n/4" {
		t.Fatalf("reverse page %+v, %v", rev, err)
	}
	// KeysOnly reads no values, so none is decoded: even the non-number.
	all, err := nums.List(ctx(), "", state.KeysOnly())
	if err != nil || len(all.Items) != 6 || all.Items[5].Key != "other" || all.Items[5].Value != 0 {
		t.Fatalf("KeysOnly listing %+v, %v", all, err)
	}
	if _, err := nums.List(ctx(), ""); !errors.Is(err, state.ErrCodec) {
		t.Fatalf("listing a value that is not an int: %v, want ErrCodec", err)
	}
	if empty, err := nums.List(ctx(), "none/"); err != nil || len(empty.Items) != 0 || empty.Next() != "" {
		t.Fatalf("empty listing %+v, %v", empty, err)
	}
}

// upperCodec stores strings upper-cased, to show the codec is the one given.
type upperCodec struct{}

var errRefused = errors.New("refused by the codec")

func (upperCodec) Encode(v string) ([]byte, error) {
	if v == "refuse" {
		return nil, errRefused
	}
	out := []byte(v)
	for i, c := range out {
		if c >= 'a' && c <= 'z' {
			out[i] = c - 'a' + 'A'
		}
	}
	return out, nil
}

func (upperCodec) Decode(data []byte) (string, error) {
	if len(data) == 0 {
		return "", errRefused
	}
	return "<" + string(data) + ">", nil
}

func testTypedCodec(t *testing.T, s state.Store) {
	names := state.NewTypedCodec[string](s, upperCodec{})
	if err := names.Put(ctx(), "name", "ada"); err != nil {
		t.Fatal(err)
	}
	if raw, _ := mustGet(t, s, "name"); raw != "ADA" {
		t.Fatalf("stored %q, want ADA", raw)
	}
	if v, _, err := names.Get(ctx(), "name"); err != nil || v != "<ADA>" {
		t.Fatalf("Get = %q, %v; want <ADA>", v, err)
	}
	// Encoding failures write nothing; decoding failures say which key.
	if err := names.Put(ctx(), "name", "refuse"); !errors.Is(err, state.ErrCodec) || !errors.Is(err, errRefused) {
		t.Fatalf("Put of a value the codec refuses = %v, want ErrCodec wrapping the codec's error", err)
	}
	if _, err := names.PutEntry(ctx(), "name", "refuse"); !errors.Is(err, state.ErrCodec) {
		t.Fatalf("PutEntry of a value the codec refuses = %v", err)
	}
	if raw, _ := mustGet(t, s, "name"); raw != "ADA" {
		t.Fatalf("stored %q after refused writes, want ADA", raw)
	}
	mustPut(t, s, "empty", "")
	if _, found, err := names.Get(ctx(), "empty"); !errors.Is(err, state.ErrCodec) || found {
		t.Fatalf("Get of undecodable bytes = %v, %v; want ErrCodec", found, err)
	}
	mustPut(t, s, "json", "{not json")
	if _, _, err := state.NewTyped[cart](s).Get(ctx(), "json"); !errors.Is(err, state.ErrCodec) {
		t.Fatalf("JSON Get of invalid JSON = %v, want ErrCodec", err)
	}
}

func testTypedInTransaction(t *testing.T, s state.Store) {
	counters := state.NewTyped[map[string]int](s)
	if err := counters.Put(ctx(), "stock", map[string]int{"pens": 3}); err != nil {
		t.Fatal(err)
	}
	err := s.Transact(ctx(), func(ctx context.Context, tx state.Ops) error {
		stock := state.NewTyped[map[string]int](tx)
		m, _, err := stock.Get(ctx, "stock")
		if err != nil {
			return err
		}
		m["pens"]--
		return stock.Put(ctx, "stock", m)
	})
	if err != nil {
		t.Fatalf("Transact: %v", err)
	}
	if m, _, err := counters.Get(ctx(), "stock"); err != nil || m["pens"] != 2 {
		t.Fatalf("after the transaction: %v, %v; want 2 pens", m, err)
	}
	boom := errors.New("boom")
	err = s.Transact(ctx(), func(ctx context.Context, tx state.Ops) error {
		if err := state.NewTyped[map[string]int](tx).Put(ctx, "stock", map[string]int{"pens": 100}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Transact = %v, want boom", err)
	}
	if m, _, _ := counters.Get(ctx(), "stock"); m["pens"] != 2 {
		t.Fatalf("a rolled-back typed write is visible: %v", m)
	}
}
