package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/pgstate/pgstate/examples/extend/db"
	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations is the shop's own migration set: applied in the store's schema
// after pgstate's, recorded in shop_schema_version.
func Migrations() schema.Set {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return schema.Set{Name: "shop", FS: sub}
}

// ReceiptTTL is how long a receipt stays in the store.
const ReceiptTTL = 24 * time.Hour

// ErrEmptyCart: the customer has no cart to check out.
var ErrEmptyCart = errors.New("no cart to check out")

var queries = db.New()

// CartKey and ReceiptKey are the store keys of a customer's cart and of an
// order's receipt.
func CartKey(customer string) []byte { return []byte("cart/" + customer) }
func ReceiptKey(id int64) []byte     { return fmt.Appendf(nil, "receipt/%d", id) }

// Checkout places customer's order in one transaction: it inserts the order
// with the shop's generated query, deletes the cart entry and puts a receipt
// that expires after ReceiptTTL. Either all three happen or none does.
//
// The function given to Transact may run more than once (after a
// serialization failure, or a connection lost before COMMIT), so it only
// touches the database, and it returns the errors of the shop's own queries
// wrapped with %w so that Transact can still see a failure it should retry.
func Checkout(ctx context.Context, store *state.Postgres, customer string, totalCents int64) (int64, error) {
	var id int64
	err := store.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
		pgtx, ok := state.PgxTx(tx)
		if !ok {
			return errors.New("checkout needs the PostgreSQL store")
		}
		var err error
		id, err = queries.OrderInsert(ctx, pgtx, db.OrderInsertParams{
			Customer:   customer,
			CartKey:    CartKey(customer),
			TotalCents: totalCents,
		})
		if err != nil {
			return fmt.Errorf("insert order: %w", state.MapError(err))
		}
		res, err := tx.DeleteEntry(ctx, CartKey(customer))
		if err != nil {
			return err
		}
		if !res.Existed {
			return fmt.Errorf("%w: %s", ErrEmptyCart, customer)
		}
		receipt, err := json.Marshal(map[string]any{"order": id, "customer": customer, "total_cents": totalCents})
		if err != nil {
			return err
		}
		return tx.PutWithTTL(ctx, ReceiptKey(id), receipt, ReceiptTTL)
	})
	if err != nil {
		return 0, fmt.Errorf("checkout %s: %w", customer, err)
	}
	return id, nil
}
