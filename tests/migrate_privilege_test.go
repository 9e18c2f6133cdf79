package tests

import (
	"errors"
	"testing"

	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

// Opening an up-to-date store runs no DDL, so the application role (USAGE
// but no CREATE on the schema) may open it without SkipMigrations. When a
// migration is pending it still fails, with ErrPermissionDenied.
func TestOpenUpToDateSchemaNeedsNoCreatePrivilege(t *testing.T) {
	t.Parallel()
	e := newRoleEnv(t)

	t.Run("UpToDate", func(t *testing.T) {
		t.Parallel()
		name, _ := e.newSchema(t)
		cfg := e.appConfig(name)
		cfg.SkipMigrations = false
		s, err := state.Open(bg, cfg)
		if err != nil {
			t.Fatalf("Open as a role without CREATE on an up-to-date schema: %v", err)
		}
		defer s.Close()
		if err := s.Put(bg, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("MigrationPending", func(t *testing.T) {
		t.Parallel()
		name, owner := e.newSchema(t)
		latest, err := schema.Latest()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := owner.Pool().Acquire(bg)
		if err != nil {
			t.Fatal(err)
		}
		err = schema.MigrateTo(bg, conn.Conn(), name, latest-1)
		conn.Release()
		if err != nil {
			t.Fatal(err)
		}
		cfg := e.appConfig(name)
		cfg.SkipMigrations = false
		s, err := state.Open(bg, cfg)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, state.ErrPermissionDenied) {
			t.Fatalf("Open as a role without CREATE with a migration pending = %v, want ErrPermissionDenied", err)
		}
	})
}
