package tests

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// Vacuum works for every role PostgreSQL lets vacuum the store's tables
// (superuser, table owner, database owner) and refuses the others with
// ErrPermissionDenied instead of letting VACUUM skip them with a warning.
func TestVacuumPrivileges(t *testing.T) {
	t.Parallel()
	base, err := url.Parse(testdb.BaseURL())
	if err != nil || base.Scheme == "" {
		t.Skipf("TEST_DATABASE_URL must be a URL for this test: %v", err)
	}
	// A database owned by pgtestdb's unprivileged role, whose tables the
	// superuser creates and so owns.
	ownerURL := testdb.EmptyDSN(t)
	u, err := url.Parse(ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	superURL := *base
	superURL.Path = u.Path
	super := testdb.Open(t, func(c *state.Config) { c.DSN = superURL.String() })
	if err := super.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	admin := testdb.Conn(t, superURL.String())
	suffix := make([]byte, 6)
	rand.Read(suffix)
	plain := "pgstate_plain_" + hex.EncodeToString(suffix)
	for _, stmt := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD 'p-%s'", plain, hex.EncodeToString(suffix)),
		"GRANT USAGE ON SCHEMA public TO " + plain,
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + plain,
		"GRANT SELECT ON pgstate_schema_version TO " + u.User.Username(),
	} {
		if _, err := admin.Exec(bg, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		for _, stmt := range []string{"DROP OWNED BY " + plain, "DROP ROLE " + plain} {
			if _, err := admin.Exec(bg, stmt); err != nil {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})
	plainURL := superURL
	plainURL.User = url.UserPassword(plain, "p-"+hex.EncodeToString(suffix))

	// lastVacuum reads when state_entries was last vacuumed by hand.
	lastVacuum := func() *time.Time {
		var ts *time.Time
		if err := admin.QueryRow(bg, `SELECT last_vacuum FROM pg_stat_user_tables WHERE relid = 'state_entries'::regclass`).Scan(&ts); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	open := func(dsn string) *state.Postgres {
		return testdb.Open(t, func(c *state.Config) {
			c.DSN = dsn
			c.SkipMigrations = true
		})
	}
	tests := []struct {
		name    string
		dsn     string
		allowed bool
	}{
		{"DatabaseOwner", ownerURL, true},
		{"Superuser", superURL.String(), true},
		{"PlainRole", plainURL.String(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := lastVacuum()
			err := open(tc.dsn).Vacuum(bg)
			if !tc.allowed {
				if !errors.Is(err, state.ErrPermissionDenied) {
					t.Fatalf("Vacuum = %v, want ErrPermissionDenied", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Vacuum: %v", err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				after := lastVacuum()
				if after != nil && (before == nil || after.After(*before)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Vacuum returned nil but state_entries was not vacuumed (last_vacuum %v)", after)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
