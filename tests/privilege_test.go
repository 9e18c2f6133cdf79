package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
	"github.com/pgstate/pgstate/state/statetest"
)

// roleEnv is one database with an owner role and an application role set up
// by docs/least-privilege.sql, under names unique to the test (roles are
// global to the server).
type roleEnv struct {
	base      *url.URL // superuser URL of the test's database
	owner     string
	app       string
	passwords map[string]string
	superSQL  string
	ownerSQL  string // grants, for the schema named "pgstate"
	schemas   atomic.Int64
}

func newRoleEnv(t *testing.T) *roleEnv {
	t.Helper()
	raw, err := os.ReadFile("../docs/least-privilege.sql")
	if err != nil {
		t.Fatal(err)
	}
	base, err := url.Parse(testdb.BaseURL())
	if err != nil || base.Scheme == "" {
		t.Skipf("TEST_DATABASE_URL must be a URL for this test: %v", err)
	}
	// The database: empty, owned by another role.
	dbURL, err := url.Parse(testdb.EmptyDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(dbURL.Path, "/")
	base.Path = "/" + db

	suffix := make([]byte, 6)
	rand.Read(suffix)
	e := &roleEnv{
		base:      base,
		owner:     "pgstate_owner_" + hex.EncodeToString(suffix),
		app:       "pgstate_app_" + hex.EncodeToString(suffix),
		passwords: map[string]string{},
	}
	e.passwords[e.owner] = "o-" + hex.EncodeToString(suffix)
	e.passwords[e.app] = "a-" + hex.EncodeToString(suffix)
	sql := strings.NewReplacer(
		"pgstate_owner", e.owner, "pgstate_app", e.app, "pgstate_db", db,
		"'owner-secret'", "'"+e.passwords[e.owner]+"'", "'app-secret'", "'"+e.passwords[e.app]+"'",
	).Replace(string(raw))
	superPart, ownerPart, ok := strings.Cut(sql, "-- [owner]")
	if !ok {
		t.Fatal("docs/least-privilege.sql has no [owner] part")
	}
	e.superSQL, e.ownerSQL = superPart, "-- [owner]"+ownerPart

	super := testdb.Conn(t, base.String())
	if _, err := super.Exec(context.Background(), e.superSQL); err != nil {
		t.Fatalf("superuser part of docs/least-privilege.sql: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, base.String())
		if err != nil {
			t.Logf("drop roles: %v", err)
			return
		}
		defer conn.Close(ctx)
		for _, stmt := range []string{
			fmt.Sprintf("DROP OWNED BY %s, %s CASCADE", e.owner, e.app),
			fmt.Sprintf("DROP ROLE %s", e.app),
			fmt.Sprintf("DROP ROLE %s", e.owner),
		} {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				t.Errorf("%s: %v", stmt, err)
			}
		}
	})
	return e
}

// url is the test database's URL for role.
func (e *roleEnv) url(role string) string {
	u := *e.base
	u.User = url.UserPassword(role, e.passwords[role])
	return u.String()
}

// newSchema migrates a fresh schema as the owner, applies the owner part of
// docs/least-privilege.sql to it, then runs extra (with %s for the schema)
// as the owner.
func (e *roleEnv) newSchema(t *testing.T, extra ...string) (string, *state.Postgres) {
	t.Helper()
	name := fmt.Sprintf("store_%d", e.schemas.Add(1))
	cfg := state.DefaultConfig(e.url(e.owner))
	cfg.Schema = name
	cfg.MinConns = 0
	cfg.MaxConns = 2
	owner := testdb.OpenConfig(t, cfg)
	grants := regexp.MustCompile(`\bpgstate\b`).ReplaceAllString(e.ownerSQL, name)
	ctx := context.Background()
	if _, err := owner.Pool().Exec(ctx, grants); err != nil {
		t.Fatalf("owner part of docs/least-privilege.sql: %v", err)
	}
	for _, stmt := range extra {
		if _, err := owner.Pool().Exec(ctx, fmt.Sprintf(stmt, name)); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	return name, owner
}

func (e *roleEnv) appConfig(schemaName string) state.Config {
	cfg := state.DefaultConfig(e.url(e.app))
	cfg.Schema = schemaName
	cfg.SkipMigrations = true
	cfg.MinConns = 0
	cfg.MaxConns = 3
	cfg.MaxRetries = 1
	return cfg
}

func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	e := newRoleEnv(t)

	t.Run("ConformanceAsAppRole", func(t *testing.T) {
		statetest.RunStore(t, func(t *testing.T) state.Store {
			name, _ := e.newSchema(t)
			return testdb.OpenConfig(t, e.appConfig(name))
		})
	})

	t.Run("AppRoleCannotChangeSchema", func(t *testing.T) {
		t.Parallel()
		name, _ := e.newSchema(t)
		app := testdb.OpenConfig(t, e.appConfig(name))
		ctx := context.Background()
		if err := app.Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		for _, stmt := range []string{
			"DROP TABLE state_entries",
			"DROP TABLE state_checkpoint_entries",
			"ALTER TABLE state_entries ADD COLUMN extra int",
			"ALTER TABLE state_checkpoints DROP COLUMN metadata",
			"ALTER TABLE state_entries DISABLE TRIGGER ALL",
			"TRUNCATE state_entries",
			"CREATE TABLE intruder (x int)",
			"CREATE INDEX intruder_idx ON state_entries (value)",
			"UPDATE pgstate_schema_version SET version = 99",
			"DROP TABLE pgstate_schema_version",
			"DROP SCHEMA " + name + " CASCADE",
			"CALL state_cleanup_expired()",
			// The change feed: no forged, erased or hidden events, no
			// moved marker, no switch (issue 19).
			"INSERT INTO state_changes (kind, key, version) VALUES (1, 'forged', 1)",
			"DELETE FROM state_changes",
			"UPDATE state_changes SET key = 'other'",
			"UPDATE state_changes_meta SET compacted_revision = 9223372036854775807",
			"UPDATE state_changes_meta SET enabled = false",
			"SELECT nextval('state_changes_revision_seq')",
			"SELECT state_changes_set_enabled(false)",
		} {
			t.Run(strings.Join(strings.Fields(stmt)[:min(3, len(strings.Fields(stmt)))], "_"), func(t *testing.T) {
				_, err := app.Pool().Exec(ctx, stmt)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					t.Fatalf("%s as the application role: %v, want SQLSTATE 42501", stmt, err)
				}
			})
		}
		if v, ok, err := app.Get(ctx, []byte("k")); err != nil || !ok || string(v) != "v" {
			t.Fatalf("Get after the refused statements = %q, %v, %v", v, ok, err)
		}
	})

	// Each grant is needed: without it, the operation that uses it fails
	// with ErrPermissionDenied (and the others keep working).
	t.Run("EveryGrantIsNeeded", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		// onOwnersCheckpoint runs op on a checkpoint the owner has just made.
		onOwnersCheckpoint := func(op func(s *state.Postgres, id uuid.UUID) error) func(s, owner *state.Postgres) error {
			return func(s, owner *state.Postgres) error {
				id, err := owner.CreateCheckpoint(ctx)
				if err != nil {
					return fmt.Errorf("setup: %w", err)
				}
				return op(s, id)
			}
		}
		restore := onOwnersCheckpoint(func(s *state.Postgres, id uuid.UUID) error { return s.RestoreCheckpoint(ctx, id) })
		tests := []struct {
			name   string
			revoke string
			op     func(s *state.Postgres, owner *state.Postgres) error
		}{
			{"SchemaUsage", "REVOKE USAGE ON SCHEMA %s FROM " + e.app, nil},
			{"VersionSelect", "REVOKE SELECT ON %s.pgstate_schema_version FROM " + e.app, nil},
			{"EntriesSelect", "REVOKE SELECT ON %s.state_entries FROM " + e.app, func(s, _ *state.Postgres) error { _, _, err := s.Get(ctx, []byte("k")); return err }},
			{"EntriesInsert", "REVOKE INSERT ON %s.state_entries FROM " + e.app, func(s, _ *state.Postgres) error { return s.Put(ctx, []byte("new"), []byte("v")) }},
			{"EntriesUpdate", "REVOKE UPDATE ON %s.state_entries FROM " + e.app, func(s, _ *state.Postgres) error { return s.Put(ctx, []byte("k"), []byte("v2")) }},
			{"EntriesDelete", "REVOKE DELETE ON %s.state_entries FROM " + e.app, func(s, _ *state.Postgres) error { return s.Delete(ctx, []byte("k")) }},
			{"CheckpointsInsert", "REVOKE INSERT ON %s.state_checkpoints FROM " + e.app, func(s, _ *state.Postgres) error { _, err := s.CreateCheckpoint(ctx); return err }},
			{"CheckpointsSelect", "REVOKE SELECT ON %s.state_checkpoints FROM " + e.app, func(s, _ *state.Postgres) error { _, err := s.ListCheckpoints(ctx); return err }},
			{"CheckpointsUpdate", "REVOKE UPDATE ON %s.state_checkpoints FROM " + e.app, restore},
			{"CheckpointsDelete", "REVOKE DELETE ON %s.state_checkpoints FROM " + e.app,
				onOwnersCheckpoint(func(s *state.Postgres, id uuid.UUID) error { return s.DeleteCheckpoint(ctx, id) })},
			{"CheckpointEntriesInsert", "REVOKE INSERT ON %s.state_checkpoint_entries FROM " + e.app, func(s, _ *state.Postgres) error { _, err := s.CreateCheckpoint(ctx); return err }},
			{"CheckpointEntriesSelect", "REVOKE SELECT ON %s.state_checkpoint_entries FROM " + e.app, restore},
			{"ChangesSelect", "REVOKE SELECT ON %s.state_changes FROM " + e.app, func(s, _ *state.Postgres) error { return firstWatchError(ctx, s) }},
			{"ChangesMetaSelect", "REVOKE SELECT ON %s.state_changes_meta FROM " + e.app, func(s, _ *state.Postgres) error { _, err := s.Revision(ctx); return err }},
			{"CompactExecute", "REVOKE EXECUTE ON FUNCTION %s.state_changes_compact(bigint, bigint, bigint) FROM " + e.app, func(s, _ *state.Postgres) error { _, err := s.CompactChanges(ctx, 1); return err }},
			{"EntryRevisionSequenceUsage", "REVOKE USAGE ON SEQUENCE %s.state_entries_revision_seq FROM " + e.app, func(s, _ *state.Postgres) error { return s.Put(ctx, []byte("new"), []byte("v")) }},
			{"RevisionSequenceSelect", "REVOKE SELECT ON SEQUENCE %s.state_changes_revision_seq FROM " + e.app, func(s, _ *state.Postgres) error { _, err := s.Revision(ctx); return err }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				name, owner := e.newSchema(t, tc.revoke)
				if err := owner.Put(ctx, []byte("k"), []byte("v")); err != nil {
					t.Fatal(err)
				}
				s, err := state.Open(ctx, e.appConfig(name))
				if tc.op == nil {
					if err == nil {
						s.Close()
					}
					if !errors.Is(err, state.ErrPermissionDenied) {
						t.Fatalf("Open without the grant = %v, want ErrPermissionDenied", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer s.Close()
				if err := tc.op(s, owner); !errors.Is(err, state.ErrPermissionDenied) {
					t.Fatalf("operation without the grant = %v, want ErrPermissionDenied", err)
				}
			})
		}
	})
}

// firstWatchError returns the error a watch from revision 1 ends with.
func firstWatchError(ctx context.Context, s *state.Postgres) error {
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, err := range s.Watch(c, nil, state.FromRevision(1)) {
		return err
	}
	return c.Err()
}
