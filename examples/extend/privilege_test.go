package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

// The shop runs as a role that can only read and write rows: the owner
// applies pgstate's and the shop's migrations and runs the grants of
// docs/least-privilege.sql and docs/least-privilege-app.sql; the
// application role then opens the store with SkipMigrations and checks out.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, err := url.Parse(databaseURL())
	if err != nil || base.Scheme == "" {
		t.Skipf("TEST_DATABASE_URL must be a URL for this test: %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	suffix := hex.EncodeToString(b) // roles are global to the server
	names := strings.NewReplacer("pgstate_owner", "shop_owner_"+suffix, "pgstate_app", "shop_app_"+suffix, "pgstate_db", "shop_db_"+suffix)
	var sql strings.Builder
	for _, f := range []string{"../../docs/least-privilege.sql", "../../docs/least-privilege-app.sql"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sql.WriteString(names.Replace(string(b)))
		sql.WriteString("\n")
	}
	superPart, ownerPart, ok := strings.Cut(sql.String(), "-- [owner]")
	if !ok {
		t.Fatal("docs/least-privilege.sql has no [owner] part")
	}
	ownerPart = "-- [owner]" + ownerPart
	owner, app, db := "shop_owner_"+suffix, "shop_app_"+suffix, "shop_db_"+suffix

	super, err := pgx.Connect(ctx, base.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { super.Close(context.Background()) })
	if _, err := super.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range []string{"DROP DATABASE IF EXISTS " + db + " WITH (FORCE)", "DROP ROLE IF EXISTS " + app, "DROP ROLE IF EXISTS " + owner} {
			if _, err := super.Exec(context.Background(), s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	})
	if _, err := super.Exec(ctx, superPart); err != nil {
		t.Fatalf("superuser part: %v", err)
	}
	as := func(role string) string {
		u := *base
		u.User = url.UserPassword(role, map[string]string{owner: "owner-secret", app: "app-secret"}[role])
		u.Path = "/" + db
		return u.String()
	}

	// The owner migrates (pgstate's and the shop's) and grants.
	cfg := state.DefaultConfig(as(owner))
	cfg.Schema, cfg.MinConns = "pgstate", 0
	cfg.Migrations = []schema.Set{Migrations()}
	store, err := state.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open as the owner: %v", err)
	}
	store.Close()
	ownerConn, err := pgx.Connect(ctx, as(owner))
	if err != nil {
		t.Fatal(err)
	}
	defer ownerConn.Close(ctx)
	if _, err := ownerConn.Exec(ctx, ownerPart); err != nil {
		t.Fatalf("owner part: %v", err)
	}

	// The application role: reads and writes rows, the shop's included.
	cfg.DSN, cfg.SkipMigrations = as(app), true
	store, err = state.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open as the application: %v", err)
	}
	defer store.Close()
	if err := store.Put(ctx, CartKey("gus"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if _, err := Checkout(ctx, store, "gus", 42); err != nil {
		t.Fatalf("checkout as the application: %v", err)
	}
	if err := store.HealthCheck(ctx); err != nil {
		t.Errorf("health check as the application: %v", err)
	}
	// …and nothing more.
	_, err = store.Pool().Exec(ctx, "DROP TABLE orders")
	if err = state.MapError(err); !errors.Is(err, state.ErrPermissionDenied) {
		t.Errorf("DROP TABLE orders as the application: %v, want ErrPermissionDenied", err)
	}
	_, err = store.Pool().Exec(ctx, "UPDATE shop_schema_version SET version = 0")
	if err = state.MapError(err); !errors.Is(err, state.ErrPermissionDenied) {
		t.Errorf("changing the shop's version as the application: %v, want ErrPermissionDenied", err)
	}
}
