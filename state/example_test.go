package state_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgstate/pgstate/state"
)

func ExampleNewMemory() {
	ctx := context.Background()
	store := state.NewMemory()

	if err := store.Put(ctx, []byte("user/1"), []byte("Ada")); err != nil {
		fmt.Println(err)
		return
	}
	value, found, err := store.Get(ctx, []byte("user/1"))
	fmt.Printf("%s %t %v\n", value, found, err)

	// A missing key is reported by found, not by an error.
	_, found, err = store.Get(ctx, []byte("user/2"))
	fmt.Println(found, err)

	// Empty keys are rejected before anything is stored.
	err = store.Put(ctx, nil, []byte("x"))
	fmt.Println(errors.Is(err, state.ErrEmptyKey))
	// Output:
	// Ada true <nil>
	// false <nil>
	// true
}

func ExampleMemory_PutWithTTL() {
	ctx := context.Background()
	store := state.NewMemory()
	// A controlled clock shows expiry without waiting for it.
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	store.Now = func() time.Time { return now }

	if err := store.PutWithTTL(ctx, []byte("session/abc"), []byte("token"), time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	e, _, _ := store.GetEntry(ctx, []byte("session/abc"))
	fmt.Println("expires at", e.ExpiresAt.Format(time.TimeOnly))

	now = now.Add(59 * time.Second)
	_, found, _ := store.Get(ctx, []byte("session/abc"))
	fmt.Println("after 59s, found:", found)

	now = now.Add(time.Second)
	_, found, _ = store.Get(ctx, []byte("session/abc"))
	fmt.Println("after 60s, found:", found)

	// Expired entries are invisible at once; CleanupExpired reclaims them.
	n, _ := store.CleanupExpired(ctx)
	fmt.Println("cleaned up:", n)
	// Output:
	// expires at 12:01:00
	// after 59s, found: true
	// after 60s, found: false
	// cleaned up: 1
}

func ExampleMemory_BatchPut() {
	ctx := context.Background()
	store := state.NewMemory()

	err := store.BatchPut(ctx, []state.Entry{
		{Key: []byte("order/1"), Value: []byte("10 EUR")},
		{Key: []byte("order/2"), Value: []byte("20 EUR"), Metadata: []byte(`{"status":"paid"}`)},
		{Key: []byte("order/3"), Value: []byte("30 EUR"), TTL: time.Hour},
		// The last occurrence of a key wins.
		{Key: []byte("order/1"), Value: []byte("15 EUR")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	values, _ := store.GetMany(ctx, [][]byte{[]byte("order/1"), []byte("order/3"), []byte("order/9")})
	fmt.Println(string(values["order/1"]), string(values["order/3"]), len(values))

	keys, _ := store.ListKeys(ctx, []byte("order/"))
	for _, k := range keys {
		fmt.Println(string(k))
	}

	// A batch with an invalid entry writes nothing.
	err = store.BatchPut(ctx, []state.Entry{
		{Key: []byte("order/4"), Value: []byte("40 EUR")},
		{Key: nil, Value: []byte("lost")},
	})
	n, _ := store.Count(ctx)
	fmt.Println(errors.Is(err, state.ErrEmptyKey), n)
	// Output:
	// 15 EUR 30 EUR 2
	// order/1
	// order/2
	// order/3
	// true 3
}

func ExampleMemory_FindByMetadata() {
	ctx := context.Background()
	store := state.NewMemory()
	users := []struct {
		key      string
		metadata map[string]any
	}{
		{"user/1", map[string]any{"team": "db", "roles": []string{"admin", "oncall"}}},
		{"user/2", map[string]any{"team": "web", "roles": []string{"oncall"}}},
		{"user/3", map[string]any{"team": "db", "roles": []string{}}},
	}
	for _, u := range users {
		if err := store.PutWithMetadata(ctx, []byte(u.key), []byte("..."), u.metadata); err != nil {
			fmt.Println(err)
			return
		}
	}

	// Filters match documents that contain them, as PostgreSQL's jsonb @>
	// does: every field given must match, and an array matches if it holds
	// the elements given.
	for _, filter := range []string{
		`{"team":"db"}`,
		`{"roles":["oncall"]}`,
		`{"team":"db","roles":["oncall"]}`,
	} {
		found, err := store.FindByMetadata(ctx, []byte(filter))
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Print(filter, ":")
		for _, e := range found {
			fmt.Print(" ", string(e.Key))
		}
		fmt.Println()
	}
	// Output:
	// {"team":"db"}: user/1 user/3
	// {"roles":["oncall"]}: user/1 user/2
	// {"team":"db","roles":["oncall"]}: user/1
}

func ExampleMemory_CreateCheckpoint() {
	ctx := context.Background()
	store := state.NewMemory()
	_ = store.Put(ctx, []byte("price/apple"), []byte("1.00"))
	_ = store.Put(ctx, []byte("price/pear"), []byte("1.20"))

	id, err := store.CreateCheckpoint(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	infos, _ := store.ListCheckpoints(ctx)
	fmt.Println("checkpoints:", len(infos), "entries in it:", infos[0].Rows)

	// A bad change...
	_ = store.Put(ctx, []byte("price/apple"), []byte("100.00"))
	_ = store.Delete(ctx, []byte("price/pear"))

	// ...is undone by restoring the snapshot.
	if err := store.RestoreCheckpoint(ctx, id); err != nil {
		fmt.Println(err)
		return
	}
	for _, k := range []string{"price/apple", "price/pear"} {
		v, _, _ := store.Get(ctx, []byte(k))
		fmt.Println(k, string(v))
	}

	_ = store.DeleteCheckpoint(ctx, id)
	err = store.RestoreCheckpoint(ctx, id)
	fmt.Println(errors.Is(err, state.ErrCheckpointNotFound))
	// Output:
	// checkpoints: 1 entries in it: 2
	// price/apple 1.00
	// price/pear 1.20
	// true
}
