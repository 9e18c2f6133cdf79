package schema

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jackc/tern/v2/migrate"
)

// Set is one sequence of migrations applied to a store's schema, with a
// version table of its own in that schema. pgstate's migrations are one set
// (Own); an application adds its own tables, indexes and functions to the
// store's schema as another, applied after pgstate's by Migrate, by
// state.Open (Config.Migrations) and by statectl migrate (--app NAME=DIR).
type Set struct {
	// Name identifies the set in errors and in statectl's output, and names
	// its version table: Name + "_schema_version". A plain identifier of at
	// most 48 characters; "pgstate" is pgstate's own.
	Name string
	// FS holds the set's migration files at its root: NNN_name.sql,
	// numbered from 001 without gaps, each with an up part and, after the
	// line "---- create above / drop below ----", a down part. Like
	// pgstate's, they hold no tern templates (so sqlc can read them) and name
	// tables unqualified: they run with search_path set to the store's
	// schema. For a directory of an embed.FS use fs.Sub.
	FS fs.FS
}

// ownName is the name of pgstate's own set: its version table is
// VersionTable.
const ownName = "pgstate"

// maxSetName keeps Name + "_schema_version" within PostgreSQL's 63 bytes.
const maxSetName = 63 - len("_schema_version")

// ErrInvalidSet is returned for an application set that cannot be applied:
// a bad or duplicate name, no files, a file without an up and a down part.
var ErrInvalidSet = errors.New("invalid migration set")

// ErrPgstateNotLatest is returned when an application set is moved while
// pgstate's own migrations are not at this release's latest version: the
// application's migrations come after them.
var ErrPgstateNotLatest = errors.New("pgstate's migrations are not at the latest version")

// Own returns pgstate's own migrations as a Set.
func Own() Set { return Set{Name: ownName, FS: files} }

// VersionTable returns the name of the set's version table, inside the
// store's schema.
func (s Set) VersionTable() string { return s.Name + "_schema_version" }

// Latest returns the version the set reaches once every migration in it is
// applied.
func (s Set) Latest() (int32, error) {
	names, err := migrate.FindMigrations(s.FS)
	if err != nil {
		return 0, fmt.Errorf("find %s migrations: %w", s.Name, err)
	}
	return int32(len(names)), nil
}

// Migrations returns the file names of the set, in version order (the
// first is version 1).
func (s Set) Migrations() ([]string, error) {
	names, err := migrate.FindMigrations(s.FS)
	if err != nil {
		return nil, fmt.Errorf("find %s migrations: %w", s.Name, err)
	}
	return names, nil
}

type migration struct{ name, up, down string }

func (s Set) load() ([]migration, error) {
	names, err := s.Migrations()
	if err != nil {
		return nil, err
	}
	out := make([]migration, 0, len(names))
	for _, name := range names {
		body, err := fs.ReadFile(s.FS, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		up, down, err := split(string(body))
		if err != nil {
			return nil, fmt.Errorf("%s migration %s: %w", s.Name, name, err)
		}
		out = append(out, migration{name: name, up: up, down: down})
	}
	return out, nil
}

// ValidateSets checks application sets before anything runs: each name a
// plain identifier of at most 48 characters, not "pgstate" and not used
// twice, and each set's files numbered without gaps and split into an up and
// a down part. Errors match ErrInvalidSet.
func ValidateSets(sets []Set) error {
	seen := map[string]bool{}
	for _, s := range sets {
		switch {
		case !schemaNameRE.MatchString(s.Name) || len(s.Name) > maxSetName:
			return fmt.Errorf("%w: name %q (want letters, digits and underscores, at most %d, not starting with a digit)", ErrInvalidSet, s.Name, maxSetName)
		case s.Name == ownName:
			return fmt.Errorf("%w: name %q is pgstate's own", ErrInvalidSet, s.Name)
		case seen[s.Name]:
			return fmt.Errorf("%w: name %q given twice", ErrInvalidSet, s.Name)
		case s.FS == nil:
			return fmt.Errorf("%w: %s has no FS", ErrInvalidSet, s.Name)
		}
		seen[s.Name] = true
		migrations, err := s.load()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidSet, err)
		}
		if len(migrations) == 0 {
			return fmt.Errorf("%w: %s has no NNN_name.sql file", ErrInvalidSet, s.Name)
		}
	}
	return nil
}

// Export writes pgstate's migration files into dir (created if needed), for
// an application's sqlc.yaml to list as schema next to its own migrations:
// its queries may then join the store's tables and are checked against them.
// Files of dir that are not pgstate migrations are left alone.
func Export(dir string) error {
	names, err := Own().Migrations()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export schema: %w", err)
	}
	for _, name := range names {
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return fmt.Errorf("export schema: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return fmt.Errorf("export schema: %w", err)
		}
	}
	return nil
}
