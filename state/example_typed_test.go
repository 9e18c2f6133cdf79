package state_test

import (
	"context"
	"fmt"
	"time"

	"github.com/pgstate/pgstate/state"
)

type Cart struct {
	Owner string   `json:"owner"`
	Items []string `json:"items"`
}

func ExampleTyped() {
	ctx := context.Background()
	store := state.NewMemory() // or a *state.Postgres from state.Open
	carts := state.NewTyped[Cart](store)

	if err := carts.Put(ctx, "cart/ada", Cart{Owner: "ada", Items: []string{"book"}}); err != nil {
		fmt.Println(err)
		return
	}
	// Write options are the store's: here a TTL and a compare-and-swap.
	if _, err := carts.PutEntry(ctx, "cart/bob", Cart{Owner: "bob"}, state.IfAbsent(), state.WithTTL(time.Hour)); err != nil {
		fmt.Println(err)
		return
	}
	cart, found, err := carts.Get(ctx, "cart/ada")
	fmt.Println(cart.Owner, cart.Items, found, err)

	page, err := carts.List(ctx, "cart/", state.WithLimit(10))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, it := range page.Items {
		fmt.Printf("%s: %s, version %d\n", it.Key, it.Value.Owner, it.Entry.Version)
	}

	// The bytes stored are JSON, readable by statectl and SQL.
	raw, _, _ := store.Get(ctx, []byte("cart/ada"))
	fmt.Println(string(raw))

	existed, err := carts.Delete(ctx, "cart/ada")
	fmt.Println(existed, err)
	// Output:
	// ada [book] true <nil>
	// cart/ada: ada, version 1
	// cart/bob: bob, version 1
	// {"owner":"ada","items":["book"]}
	// true <nil>
}
