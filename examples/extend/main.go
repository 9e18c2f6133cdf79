// Command extend plays an application that builds on pgstate from its own
// module: the shop's migration (an orders table) is applied in the store's
// schema after pgstate's, the shop's sqlc queries are compiled against both,
// and a checkout inserts an order, deletes the cart entry and puts a receipt
// with a TTL in one transaction.
//
//	DATABASE_URL=postgres://… go run .
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

func main() {
	if err := run(context.Background(), os.Getenv("DATABASE_URL"), "shop"); err != nil {
		fmt.Fprintln(os.Stderr, "extend:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dsn, schemaName string) error {
	if dsn == "" {
		return fmt.Errorf("DATABASE_URL is not set")
	}
	cfg := state.DefaultConfig(dsn)
	cfg.Schema = schemaName
	cfg.Migrations = []schema.Set{Migrations()}
	store, err := state.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()

	if err := store.Put(ctx, CartKey("ada"), []byte(`{"items":["tea","cups"]}`)); err != nil {
		return err
	}
	id, err := Checkout(ctx, store, "ada", 1250)
	if err != nil {
		return err
	}
	fmt.Printf("order %d placed; cart deleted; receipt %s kept for %v\n", id, ReceiptKey(id), ReceiptTTL)
	if _, err := Checkout(ctx, store, "ada", 990); err != nil {
		fmt.Printf("second checkout rolled back: %v\n", err)
	}
	orders, err := queries.OrdersListByCustomer(ctx, store.Pool(), "ada")
	if err != nil {
		return state.MapError(err)
	}
	fmt.Printf("ada has %d order(s)\n", len(orders))
	return nil
}
