package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

// databaseURL is the server the tests use: TEST_DATABASE_URL (which
// scripts/with-postgres.sh, and so make test, sets), or the local server.
func databaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// testSchema returns a schema name of the test's own, dropped (with the
// shop's and pgstate's tables in it) when the test ends: each schema is an
// independent store.
func testSchema(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "shop_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), databaseURL())
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

func openShop(t *testing.T, schemaName string, mutate func(*state.Config)) *state.Postgres {
	t.Helper()
	cfg := state.DefaultConfig(databaseURL())
	cfg.Schema = schemaName
	cfg.MinConns, cfg.MaxConns = 0, 4
	cfg.Migrations = []schema.Set{Migrations()}
	if mutate != nil {
		mutate(&cfg)
	}
	store, err := state.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(store.Close)
	return store
}

func TestCheckoutCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openShop(t, testSchema(t), nil)
	if err := store.Put(ctx, CartKey("ada"), []byte(`{"items":["tea"]}`)); err != nil {
		t.Fatal(err)
	}
	id, err := Checkout(ctx, store, "ada", 1250)
	if err != nil {
		t.Fatalf("checkout: %v", err)
	}
	orders, err := queries.OrdersListByCustomer(ctx, store.Pool(), "ada")
	if err != nil || len(orders) != 1 || orders[0].ID != id || orders[0].TotalCents != 1250 {
		t.Fatalf("orders %+v, %v; want the one order %d", orders, err, id)
	}
	if found, err := store.Contains(ctx, CartKey("ada")); err != nil || found {
		t.Errorf("cart still there after checkout: %v, %v", found, err)
	}
	receipt, found, err := store.GetEntry(ctx, ReceiptKey(id))
	if err != nil || !found {
		t.Fatalf("receipt: found %v, %v", found, err)
	}
	if left := time.Until(receipt.ExpiresAt); left <= ReceiptTTL-time.Minute || left > ReceiptTTL {
		t.Errorf("receipt expires in %v, want about %v", left, ReceiptTTL)
	}
	// The shop's query that joins its table with the store's: the cart is
	// gone, so no order has a live cart.
	live, err := queries.OrdersWithLiveCart(ctx, store.Pool())
	if err != nil || len(live) != 0 {
		t.Errorf("orders with a live cart: %+v, %v; want none", live, err)
	}
}

func TestCheckoutRollsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openShop(t, testSchema(t), nil)
	noOrders := func(t *testing.T, customer string) {
		t.Helper()
		orders, err := queries.OrdersListByCustomer(ctx, store.Pool(), customer)
		if err != nil || len(orders) != 0 {
			t.Errorf("orders of %.20s: %+v, %v; want none: the insert must roll back", customer, orders, err)
		}
	}

	t.Run("NoCart", func(t *testing.T) {
		// The order is inserted, then the cart is found missing.
		_, err := Checkout(ctx, store, "bob", 100)
		if !errors.Is(err, ErrEmptyCart) {
			t.Fatalf("checkout without a cart: %v, want ErrEmptyCart", err)
		}
		noOrders(t, "bob")
	})
	t.Run("StoreValidation", func(t *testing.T) {
		// The store's validation runs inside the transaction: a cart key
		// over MaxKeySize fails the delete with ErrKeyTooLarge, not with a
		// bare SQLSTATE, and the order inserted before it is rolled back.
		customer := strings.Repeat("x", 3000)
		_, err := Checkout(ctx, store, customer, 100)
		if !errors.Is(err, state.ErrKeyTooLarge) {
			t.Fatalf("checkout with a 3000-byte key: %v, want ErrKeyTooLarge", err)
		}
		noOrders(t, customer)
	})
	t.Run("ShopQueryFails", func(t *testing.T) {
		// The shop's own query fails (a negative total breaks its CHECK):
		// the error keeps the driver's PgError, and the cart stays.
		if err := store.Put(ctx, CartKey("cy"), []byte("{}")); err != nil {
			t.Fatal(err)
		}
		_, err := Checkout(ctx, store, "cy", -1)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
			t.Fatalf("checkout with a negative total: %v, want SQLSTATE 23514", err)
		}
		if found, err := store.Contains(ctx, CartKey("cy")); err != nil || !found {
			t.Errorf("cart after a failed checkout: found %v, %v; want it kept", found, err)
		}
		noOrders(t, "cy")
	})
}

// Two checkouts of one cart at once: SERIALIZABLE makes one of them fail
// with a serialization failure, Transact runs it again, and the second run
// finds the cart gone. Exactly one order is placed.
func TestConcurrentCheckoutsPlaceOneOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := openShop(t, testSchema(t), nil)
	for round := range 5 {
		customer := "dee" + string(rune('a'+round))
		if err := store.Put(ctx, CartKey(customer), []byte("{}")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = Checkout(ctx, store, customer, 10) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrEmptyCart):
				t.Errorf("checkout: %v, want success or ErrEmptyCart", err)
			}
		}
		orders, err := queries.OrdersListByCustomer(ctx, store.Pool(), customer)
		if ok != 1 || err != nil || len(orders) != 1 {
			t.Errorf("%d checkouts succeeded, %d orders (%v); want exactly one", ok, len(orders), err)
		}
	}
}

func TestShopMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	name := testSchema(t)
	openShop(t, name, nil)
	conn, err := pgx.Connect(ctx, databaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	version := func() int32 {
		t.Helper()
		v, err := schema.SetVersion(ctx, conn, name, Migrations())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(); v != 1 {
		t.Fatalf("shop version after Open: %d, want 1", v)
	}
	// Down and up again: the down part works, and Open then refuses a
	// store whose shop migrations are behind when it may not migrate.
	if err := schema.MigrateSetTo(ctx, conn, name, Migrations(), 0); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != 0 {
		t.Fatalf("shop version after migrating down: %d, want 0", v)
	}
	cfg := state.DefaultConfig(databaseURL())
	cfg.Schema, cfg.SkipMigrations = name, true
	cfg.Migrations = []schema.Set{Migrations()}
	if _, err := state.Open(ctx, cfg); !errors.Is(err, state.ErrSchemaOutdated) {
		t.Errorf("open with SkipMigrations and the shop at 0: %v, want ErrSchemaOutdated", err)
	}
	if err := schema.Migrate(ctx, conn, name, Migrations()); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != 1 {
		t.Fatalf("shop version after Migrate: %d, want 1", v)
	}
	pgstateVersion, err := schema.Version(ctx, conn, name)
	latest, _ := schema.Latest()
	if err != nil || pgstateVersion != latest {
		t.Errorf("pgstate version %d, %v; want %d, untouched by the shop's set", pgstateVersion, err, latest)
	}
}

// An application that already has a pool (its own tracer, TLS, limits)
// opens the store on it; the store leaves the pool open when it closes.
func TestOpenPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	name := testSchema(t)
	openShop(t, name, nil).Close() // migrates
	pc, err := pgxpool.ParseConfig(databaseURL())
	if err != nil {
		t.Fatal(err)
	}
	pc.ConnConfig.RuntimeParams["search_path"] = name
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	cfg := state.DefaultConfig("")
	cfg.Schema = name
	cfg.Migrations = []schema.Set{Migrations()}
	store, err := state.OpenPool(ctx, pool, cfg)
	if err != nil {
		t.Fatalf("open on the application's pool: %v", err)
	}
	if err := store.Put(ctx, CartKey("eve"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := Checkout(ctx, store, "eve", 5); err != nil {
		t.Fatalf("checkout: %v", err)
	}
	store.Close()
	if orders, err := queries.OrdersListByCustomer(ctx, pool, "eve"); err != nil || len(orders) != 1 {
		t.Errorf("the application's pool after store.Close: %+v, %v; want it open, with the order", orders, err)
	}

	t.Run("WrongSearchPath", func(t *testing.T) {
		other, err := pgxpool.New(ctx, databaseURL()) // search_path: public
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := state.OpenPool(ctx, other, cfg); !errors.Is(err, state.ErrInvalidConfig) {
			t.Errorf("open on a pool whose search_path is not the store's: %v, want ErrInvalidConfig", err)
		}
	})
	t.Run("PoolConfig", func(t *testing.T) {
		pc, err := pgxpool.ParseConfig(databaseURL())
		if err != nil {
			t.Fatal(err)
		}
		pc.MaxConns = 2
		store, err := state.OpenPoolConfig(ctx, pc, cfg)
		if err != nil {
			t.Fatalf("open on the application's pool config: %v", err)
		}
		defer store.Close()
		if got := store.Stats().MaxConns; got != 2 {
			t.Errorf("pool MaxConns %d, want the application's 2", got)
		}
		if err := store.Put(ctx, CartKey("fay"), []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if _, err := Checkout(ctx, store, "fay", 5); err != nil {
			t.Fatalf("checkout: %v", err)
		}
	})
}

// pgstate-schema/ must be exactly pgstate's migrations, as `statectl schema
// export` writes them (make generate does), or sqlc would check the shop's
// queries against an old schema.
func TestExportedSchemaIsCurrent(t *testing.T) {
	t.Parallel()
	names, err := schema.Own().Migrations()
	if err != nil {
		t.Fatal(err)
	}
	exported, err := fs.Glob(os.DirFS("pgstate-schema"), "*.sql")
	if err != nil || len(exported) != len(names) {
		t.Fatalf("pgstate-schema holds %v (%v), want %v: run make generate", exported, err, names)
	}
	for _, n := range names {
		want, _ := fs.ReadFile(schema.Own().FS, n)
		got, err := os.ReadFile("pgstate-schema/" + n)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("pgstate-schema/%s differs from pgstate's (%v): run make generate", n, err)
		}
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	if err := run(context.Background(), "", "x"); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("run without a DSN: %v", err)
	}
	if err := run(context.Background(), databaseURL(), testSchema(t)); err != nil {
		t.Errorf("run: %v", err)
	}
}
