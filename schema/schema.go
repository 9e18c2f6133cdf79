// Package schema holds pgstate's migrations and applies them.
//
// The migrations are plain SQL files (no templates) so that the same files
// serve as sqlc's schema. Each contains an up part and, after the line
// "---- create above / drop below ----", a down part. Table names inside them
// are unqualified: Migrate runs each one with search_path set to the target
// schema, which is how one database holds several isolated stores.
package schema

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files.
func FS() fs.FS { return files }

// VersionTable is the name of the table, inside the store's schema, that
// records how far the migrations have been applied.
const VersionTable = "pgstate_schema_version"

// ErrInvalidSchemaName is returned for a schema name that is not a plain
// identifier.
var ErrInvalidSchemaName = errors.New("invalid schema name")

// ErrSchemaTooNew is returned when the database has been migrated by a newer
// release of pgstate than this one: its version is beyond the last migration
// this code knows.
var ErrSchemaTooNew = errors.New("database schema is newer than this pgstate release")

// Statements that sqlc cannot express because they name an identifier (the
// schema) or belong to the migration machinery rather than to the store.
const (
	// Serializes concurrent CREATE SCHEMA IF NOT EXISTS, which otherwise
	// races on the catalog's unique index. Transaction-scoped, so it is
	// released even if the connection is reused.
	sqlLockSchemaCreation = `SELECT pg_advisory_xact_lock(hashtextextended('pgstate.create_schema', 0))`
	sqlCreateSchema       = `CREATE SCHEMA IF NOT EXISTS %s`
	// Checked first because CREATE SCHEMA IF NOT EXISTS needs the CREATE
	// privilege on the database even when the schema exists, which an owner
	// role given a schema by its DBA does not have.
	sqlSchemaExists = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)`
	// Scopes one migration's unqualified names to the target schema; local to
	// the migration's transaction.
	sqlSetLocalSearchPath = `SELECT set_config('search_path', $1, true)`
	sqlVersionTableExists = `SELECT to_regclass($1) IS NOT NULL`
	// tern's own migration lock (migrate.lockNum), held by Migrate across
	// pgstate's and the application's sets; tern takes it again for each
	// set, and session advisory locks nest.
	sqlLockMigrations   = `SELECT pg_advisory_lock(9628173550095224)`
	sqlUnlockMigrations = `SELECT pg_advisory_unlock(9628173550095224)`
	sqlReadVersion      = `SELECT version FROM %s`
)

var schemaNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidateName reports whether name is usable as a store's schema: a plain
// identifier of at most 63 characters (letters, digits, underscore, not
// starting with a digit), and not a system schema: information_schema and
// names starting with pg_ (pg_catalog, pg_toast, pg_temp_N...), which
// PostgreSQL reserves and a default pg_dump leaves out, so a store there
// would be missing from its backups. Anything else, including quotes,
// spaces and semicolons, is rejected with ErrInvalidSchemaName.
func ValidateName(name string) error {
	if !schemaNameRE.MatchString(name) {
		return fmt.Errorf("%w: %q (want letters, digits and underscores, at most 63, not starting with a digit)", ErrInvalidSchemaName, name)
	}
	if lower := strings.ToLower(name); lower == "information_schema" || strings.HasPrefix(lower, "pg_") {
		return fmt.Errorf("%w: %q is a system schema (pg_dump leaves it out by default); choose a schema of your own", ErrInvalidSchemaName, name)
	}
	return nil
}

// QuoteName validates name and returns it as a quoted SQL identifier.
func QuoteName(name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	return pgx.Identifier{name}.Sanitize(), nil
}

// Hash returns a digest of every migration file's name and content. It
// changes whenever a migration is added or edited.
func Hash() (string, error) {
	names, err := migrate.FindMigrations(files)
	if err != nil {
		return "", fmt.Errorf("find migrations: %w", err)
	}
	h := sha256.New()
	for _, name := range names {
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return "", fmt.Errorf("read migration %s: %w", name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(body))
		h.Write(body)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Latest returns the version reached once every migration is applied.
func Latest() (int32, error) {
	names, err := migrate.FindMigrations(files)
	if err != nil {
		return 0, fmt.Errorf("find migrations: %w", err)
	}
	return int32(len(names)), nil
}

// Migrate applies every pending migration to schemaName, creating the schema
// if needed: pgstate's own first, then each of sets (the application's, see
// Set) in the order given. Applying it again is a no-op, and concurrent
// callers (even in different processes) are serialized by an advisory lock,
// held across all the sets so that no other process migrates in between.
func Migrate(ctx context.Context, conn *pgx.Conn, schemaName string, sets ...Set) error {
	if err := ValidateSets(sets); err != nil {
		return err
	}
	latest, err := Latest()
	if err != nil {
		return err
	}
	if len(sets) == 0 {
		return MigrateTo(ctx, conn, schemaName, latest)
	}
	if _, err := conn.Exec(ctx, sqlLockMigrations); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	// Unlocked even when ctx has ended; a connection that cannot run it is
	// broken, and the session's lock goes with it.
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), sqlUnlockMigrations) }()
	if err := MigrateTo(ctx, conn, schemaName, latest); err != nil {
		return err
	}
	for _, set := range sets {
		latest, err := set.Latest()
		if err != nil {
			return err
		}
		if err := migrateSetTo(ctx, conn, schemaName, set, latest); err != nil {
			return err
		}
	}
	return nil
}

// MigrateTo moves schemaName's pgstate migrations up or down to version (0
// removes every table). A schema already at version is left alone without
// any DDL, so a role without the CREATE privilege on it may call MigrateTo
// (and Open may migrate) when nothing is pending.
func MigrateTo(ctx context.Context, conn *pgx.Conn, schemaName string, version int32) error {
	return migrateSetTo(ctx, conn, schemaName, Own(), version)
}

// MigrateSetTo moves one application set up or down to version. Its
// migrations come after pgstate's, so pgstate's must be at this release's
// latest version first.
func MigrateSetTo(ctx context.Context, conn *pgx.Conn, schemaName string, set Set, version int32) error {
	if err := ValidateSets([]Set{set}); err != nil {
		return err
	}
	own, err := Version(ctx, conn, schemaName)
	if err != nil {
		return err
	}
	if latest, err := Latest(); err != nil {
		return err
	} else if own != latest {
		return fmt.Errorf("%w: schema %q is at pgstate version %d, %s's migrations need %d: migrate pgstate's first", ErrPgstateNotLatest, schemaName, own, set.Name, latest)
	}
	return migrateSetTo(ctx, conn, schemaName, set, version)
}

func migrateSetTo(ctx context.Context, conn *pgx.Conn, schemaName string, set Set, version int32) error {
	// tern's migrator always creates its version table unless its own
	// existence check finds it, and that check compares the quoted name
	// literally against the catalog, so it never does: look first, by OID.
	current, exists, err := readVersion(ctx, conn, schemaName, set.VersionTable())
	if err != nil {
		return err
	}
	if exists && current == version {
		latest, err := set.Latest()
		if err != nil {
			return err
		}
		if current > latest {
			return tooNew(schemaName, set, current, latest)
		}
		return nil
	}
	m, err := newMigrator(ctx, conn, schemaName, set)
	if err != nil {
		return err
	}
	current, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return fmt.Errorf("read %s version: %w", set.Name, err)
	}
	latest := int32(len(m.Migrations))
	if current > latest {
		return tooNew(schemaName, set, current, latest)
	}
	if version < 0 || version > latest {
		return fmt.Errorf("migrate schema %q: %s target version %d is outside 0..%d", schemaName, set.Name, version, latest)
	}
	if err := m.MigrateTo(ctx, version); err != nil {
		return fmt.Errorf("migrate schema %q: %s to version %d: %w", schemaName, set.Name, version, err)
	}
	return nil
}

func tooNew(schemaName string, set Set, current, latest int32) error {
	if set.Name == ownName {
		return fmt.Errorf("%w: schema %q is at version %d, this release knows %d", ErrSchemaTooNew, schemaName, current, latest)
	}
	return fmt.Errorf("%w: schema %q has %s migrations at version %d, this build knows %d", ErrSchemaTooNew, schemaName, set.Name, current, latest)
}

// Version returns the version schemaName has been migrated to; 0 when the
// store has never been migrated (or its version table is missing).
func Version(ctx context.Context, conn *pgx.Conn, schemaName string) (int32, error) {
	v, _, err := readVersion(ctx, conn, schemaName, VersionTable)
	return v, err
}

// SetVersion returns the version set has been migrated to in schemaName; 0
// when it never was.
func SetVersion(ctx context.Context, conn *pgx.Conn, schemaName string, set Set) (int32, error) {
	if err := ValidateSets([]Set{set}); err != nil {
		return 0, err
	}
	v, _, err := readVersion(ctx, conn, schemaName, set.VersionTable())
	return v, err
}

// readVersion returns the version recorded in schemaName's version table
// and whether that table exists (the version is 0 when it does not).
func readVersion(ctx context.Context, conn *pgx.Conn, schemaName, versionTable string) (int32, bool, error) {
	quoted, err := QuoteName(schemaName)
	if err != nil {
		return 0, false, err
	}
	table := quoted + "." + pgx.Identifier{versionTable}.Sanitize()
	var exists bool
	if err := conn.QueryRow(ctx, sqlVersionTableExists, table).Scan(&exists); err != nil {
		return 0, false, fmt.Errorf("look up version table: %w", err)
	}
	if !exists {
		return 0, false, nil
	}
	var v int32
	if err := conn.QueryRow(ctx, fmt.Sprintf(sqlReadVersion, table)).Scan(&v); err != nil {
		return 0, true, fmt.Errorf("read schema version: %w", err)
	}
	return v, true, nil
}

func newMigrator(ctx context.Context, conn *pgx.Conn, schemaName string, set Set) (*migrate.Migrator, error) {
	quoted, err := QuoteName(schemaName)
	if err != nil {
		return nil, err
	}
	if err := createSchema(ctx, conn, schemaName, quoted); err != nil {
		return nil, err
	}
	m, err := migrate.NewMigrator(ctx, conn, quoted+"."+pgx.Identifier{set.VersionTable()}.Sanitize())
	if err != nil {
		return nil, fmt.Errorf("prepare migrator: %w", err)
	}
	migrations, err := set.load()
	if err != nil {
		return nil, err
	}
	for i, mig := range migrations {
		// Go-function migrations run inside the transaction tern opens, so
		// SET LOCAL scopes the search_path to exactly one migration.
		m.Migrations = append(m.Migrations, &migrate.Migration{
			Sequence: int32(i + 1),
			Name:     mig.name,
			UpFunc:   inSchema(quoted, mig.up),
			DownFunc: inSchema(quoted, mig.down),
		})
	}
	return m, nil
}

func createSchema(ctx context.Context, conn *pgx.Conn, name, quoted string) error {
	var exists bool
	if err := conn.QueryRow(ctx, sqlSchemaExists, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up schema %s: %w", quoted, err)
	}
	if exists {
		return nil
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlLockSchemaCreation); err != nil {
			return fmt.Errorf("lock schema creation: %w", err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(sqlCreateSchema, quoted)); err != nil {
			return fmt.Errorf("create schema %s: %w", quoted, err)
		}
		return nil
	})
}

func inSchema(quoted, sql string) migrate.MigrationFunc {
	return func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, sqlSetLocalSearchPath, quoted); err != nil {
			return fmt.Errorf("set search_path: %w", err)
		}
		_, err := conn.Exec(ctx, sql)
		return err
	}
}

const separator = "---- create above / drop below ----"

var separatorRE = regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(separator) + `\s*$`)

func split(body string) (up, down string, err error) {
	loc := separatorRE.FindAllStringIndex(body, -1)
	if len(loc) != 1 {
		return "", "", fmt.Errorf("want exactly one %q line, found %d", separator, len(loc))
	}
	up, down = body[:loc[0][0]], body[loc[0][1]:]
	if !hasStatement(up) || !hasStatement(down) {
		return "", "", errors.New("both the up and the down part must contain SQL")
	}
	return up, down, nil
}

var statementRE = regexp.MustCompile(`(?m)^\s*[^-\s]`)

func hasStatement(sql string) bool { return statementRE.MatchString(sql) }
