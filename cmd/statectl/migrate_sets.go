package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/schema"
)

// appSets is migrate's repeatable --app NAME=DIR flag: the application's
// own migration sets, read from directories.
type appSets []schema.Set

func (s *appSets) String() string {
	names := make([]string, len(*s))
	for i, set := range *s {
		names[i] = set.Name
	}
	return strings.Join(names, ",")
}

func (s *appSets) Set(v string) error {
	name, dir, ok := strings.Cut(v, "=")
	if !ok || name == "" || dir == "" {
		return fmt.Errorf("want NAME=DIR, got %q", v)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	*s = append(*s, schema.Set{Name: name, FS: os.DirFS(dir)})
	return nil
}

// pick returns the set named name: pgstate's own or one given with --app.
func (s appSets) pick(name string) (schema.Set, error) {
	if name == schema.Own().Name {
		return schema.Own(), nil
	}
	for _, set := range s {
		if set.Name == name {
			return set, nil
		}
	}
	return schema.Set{}, usagef("migrate: --set %s names no set: give its files with --app %s=DIR", name, name)
}

// setVersion reads how far set has been applied to schemaName.
func setVersion(ctx context.Context, conn *pgx.Conn, schemaName string, set schema.Set) (int32, error) {
	if set.Name == schema.Own().Name {
		return schema.Version(ctx, conn, schemaName)
	}
	return schema.SetVersion(ctx, conn, schemaName, set)
}

const schemaUsage = "schema export DIR"

// cmdSchema writes pgstate's migrations into a directory, for an
// application's sqlc.yaml to read next to its own (see the README's
// "Extending the schema"). It needs no database.
func cmdSchema(_ context.Context, a *app, args []string) error {
	flags := a.flagSet("schema")
	args, err := a.parse(flags, args)
	if err != nil {
		return err
	}
	if len(args) == 0 || args[0] != "export" {
		return usagef("schema: usage is 'statectl %s'", schemaUsage)
	}
	if err := wantArgs("schema export", args[1:], "DIR"); err != nil {
		return err
	}
	if err := onlyWith(flags, "schema export"); err != nil {
		return err
	}
	dir := args[1]
	if err := schema.Export(dir); err != nil {
		return err
	}
	names, err := schema.Own().Migrations()
	if err != nil {
		return err
	}
	return a.emit(struct {
		Dir   string   `json:"dir"`
		Files []string `json:"files"`
	}{dir, names}, func(w io.Writer) {
		fmt.Fprintf(w, "wrote %d pgstate migrations to %s\n", len(names), dir)
	})
}
