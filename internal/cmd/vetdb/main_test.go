package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/testdb"
)

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, testdb.BaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	return exists
}

// TestDropRemovesTheVetDatabase: vetdb creates and migrates the database,
// and -drop removes it, also with a connection still open. Issue 12,
// defect 8: make check-generated left pgstate_sqlc_vet behind.
func TestDropRemovesTheVetDatabase(t *testing.T) {
	t.Parallel()
	name := fmt.Sprintf("pgstate_vetdb_test_%d", time.Now().UnixNano())
	if err := run(testdb.BaseURL(), name); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = dropDatabase(testdb.BaseURL(), name) })
	if !databaseExists(t, name) {
		t.Fatalf("database %s was not created", name)
	}
	if err := dropDatabase(testdb.BaseURL(), name); err != nil {
		t.Fatalf("drop: %v", err)
	}
	if databaseExists(t, name) {
		t.Fatalf("database %s is still there after -drop", name)
	}
	// Dropping what is gone is not an error: a failed create may leave
	// nothing.
	if err := dropDatabase(testdb.BaseURL(), name); err != nil {
		t.Fatalf("second drop: %v", err)
	}
}

// TestCheckGeneratedDropsItsDatabase: the make target drops the vet
// database whatever sqlc vet's outcome, and still reports that outcome.
func TestCheckGeneratedDropsItsDatabase(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe, ok := strings.CutPrefix(string(b)[strings.Index(string(b), "\ncheck-generated:"):], "\ncheck-generated:")
	if !ok {
		t.Fatal("no check-generated target in the Makefile")
	}
	if end := strings.Index(recipe, "\n\n"); end >= 0 {
		recipe = recipe[:end]
	}
	vet := strings.Index(recipe, "$(SQLC) vet; status=$$?")
	drop := strings.Index(recipe, "vetdb -drop")
	if vet < 0 || drop < vet {
		t.Fatalf("check-generated does not run 'vetdb -drop' after sqlc vet whatever its status:\n%s", recipe)
	}
	if !strings.Contains(recipe[drop:], "exit $$status") {
		t.Fatalf("check-generated does not exit with sqlc vet's status after dropping:\n%s", recipe)
	}
}
