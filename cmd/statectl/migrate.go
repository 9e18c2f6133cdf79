package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/schema"
)

const migrateUsage = "migrate up [--to N] | down [--to N] | status [--app NAME=DIR]... [--set NAME]"

type migrationDoc struct {
	Version int32  `json:"version"`
	Name    string `json:"name"`
	Applied bool   `json:"applied"`
}

// cmdMigrate moves or shows pgstate's migrations and, with --app, the
// application's own sets (see schema.Set). "up" without --to applies
// everything, pgstate's first; --to and "down" act on one set, pgstate's
// unless --set names an application's.
func cmdMigrate(ctx context.Context, a *app, args []string) error {
	flags := a.flagSet("migrate")
	to := flags.Int("to", 0, "target version")
	var apps appSets
	flags.Var(&apps, "app", "an application migration set, `NAME=DIR` (repeatable)")
	setName := flags.String("set", "pgstate", "the set --to and down act on")
	yes := flags.Bool("yes", false, "roll back without asking, even when the store holds entries (down)")
	args, err := a.parse(flags, args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("migrate: missing action: usage is 'statectl %s'", migrateUsage)
	}
	action, args := args[0], args[1:]
	switch action {
	case "up", "down", "status":
	default:
		return usagef("migrate: unknown action %q: usage is 'statectl %s'", action, migrateUsage)
	}
	if err := wantArgs("migrate "+action, args); err != nil {
		return err
	}
	if err := schema.ValidateSets(apps); err != nil {
		return usagef("migrate: --app: %v", err)
	}
	set, err := apps.pick(*setName)
	if err != nil {
		return err
	}
	latest, err := set.Latest()
	if err != nil {
		return err
	}
	// Whether --to was given is asked of the flag set: no value of the flag
	// itself may stand for "not given", or that value would be accepted.
	hasTo := isSet(flags, "to")
	if hasTo && (*to < 0 || *to > int(latest)) {
		return usagef("migrate %s: --to %d is outside 0..%d", action, *to, latest)
	}
	if action == "status" {
		if err := onlyWith(flags, "migrate status", "app"); err != nil {
			return err
		}
	}
	conn, schemaName, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	if action == "status" {
		return a.migrateStatus(ctx, conn, schemaName, apps)
	}
	current, err := setVersion(ctx, conn, schemaName, set)
	if err != nil {
		return fmt.Errorf("read the version of schema %s: %w", schemaName, err)
	}
	if current > latest {
		if set.Name == schema.Own().Name {
			return fmt.Errorf("%w: schema %q is at version %d, this release knows %d", schema.ErrSchemaTooNew, schemaName, current, latest)
		}
		return fmt.Errorf("%w: schema %q has %s migrations at version %d, the files know %d", schema.ErrSchemaTooNew, schemaName, set.Name, current, latest)
	}
	switch action {
	case "up":
		if !hasTo && !isSet(flags, "set") {
			return a.migrateAll(ctx, conn, schemaName, apps)
		}
		target := latest
		if hasTo {
			target = int32(*to)
		}
		if target < current {
			return usagef("migrate up: --to %d is below the current version %d: use 'statectl migrate down --to %d'", target, current, target)
		}
		return a.migrateTo(ctx, conn, schemaName, set, current, target)
	default:
		target := current - 1
		if hasTo {
			target = int32(*to)
		}
		if target > current {
			return usagef("migrate down: --to %d is above the current version %d: use 'statectl migrate up --to %d'", target, current, target)
		}
		if target < 0 {
			target = 0
		}
		if target < current && !*yes {
			n, err := a.liveEntries(ctx)
			if err != nil {
				return err
			}
			if n > 0 {
				what := fmt.Sprintf("roll schema %s back from version %d to %d while it holds %s", schemaName, current, target, plural(n, "entry", "entries"))
				if err := a.confirm("migrate down", false, what); err != nil {
					return err
				}
			}
		}
		return a.migrateTo(ctx, conn, schemaName, set, current, target)
	}
}

// migrateTo moves one set from version from to version to.
func (a *app) migrateTo(ctx context.Context, conn *pgx.Conn, schemaName string, set schema.Set, from, to int32) error {
	own := set.Name == schema.Own().Name
	latest, err := set.Latest()
	if err != nil {
		return err
	}
	switch {
	case from == to:
	case own && to == latest:
		// Migrate, unlike MigrateTo, is the path applications take at Open;
		// going through it here keeps both on the same code.
		if err := schema.Migrate(ctx, conn, schemaName); err != nil {
			return err
		}
	case own:
		if err := schema.MigrateTo(ctx, conn, schemaName, to); err != nil {
			return err
		}
	default:
		if err := schema.MigrateSetTo(ctx, conn, schemaName, set, to); err != nil {
			return err
		}
	}
	return a.emitMoves(schemaName, []setMove{{set.Name, from, to}})
}

// migrateAll applies every pending migration, pgstate's and then each
// application set's, as Open does, under one lock.
func (a *app) migrateAll(ctx context.Context, conn *pgx.Conn, schemaName string, apps appSets) error {
	sets := append([]schema.Set{schema.Own()}, apps...)
	moves := make([]setMove, len(sets))
	for i, set := range sets {
		from, err := setVersion(ctx, conn, schemaName, set)
		if err != nil {
			return fmt.Errorf("read the version of schema %s: %w", schemaName, err)
		}
		latest, err := set.Latest()
		if err != nil {
			return err
		}
		moves[i] = setMove{set.Name, from, latest}
	}
	if err := schema.Migrate(ctx, conn, schemaName, apps...); err != nil {
		return err
	}
	return a.emitMoves(schemaName, moves)
}

type setMove struct {
	name     string
	from, to int32
}

// emitMoves prints what migrate up or down did: pgstate's set alone keeps
// the output statectl always had; application sets add a line (and a JSON
// object in "sets") each.
func (a *app) emitMoves(schemaName string, moves []setMove) error {
	type setDoc struct {
		Name string `json:"name"`
		From int32  `json:"from"`
		To   int32  `json:"to"`
	}
	doc := struct {
		Schema string   `json:"schema"`
		From   int32    `json:"from"`
		To     int32    `json:"to"`
		Sets   []setDoc `json:"sets,omitempty"`
	}{Schema: schemaName}
	for _, m := range moves {
		if m.name == schema.Own().Name {
			doc.From, doc.To = m.from, m.to
			continue
		}
		doc.Sets = append(doc.Sets, setDoc{m.name, m.from, m.to})
	}
	if len(moves) == 1 && moves[0].name != schema.Own().Name {
		doc.From, doc.To = moves[0].from, moves[0].to
	}
	return a.emit(doc, func(w io.Writer) {
		for _, m := range moves {
			own := m.name == schema.Own().Name
			switch {
			case m.from == m.to && own:
				fmt.Fprintf(w, "%s; nothing to do\n", describeVersion(schemaName, m.to))
			case m.from == m.to:
				fmt.Fprintf(w, "schema %s: %s is at version %d; nothing to do\n", schemaName, m.name, m.to)
			case own:
				fmt.Fprintf(w, "migrated schema %s from version %d to %d\n", schemaName, m.from, m.to)
			default:
				fmt.Fprintf(w, "migrated schema %s: %s from version %d to %d\n", schemaName, m.name, m.from, m.to)
			}
		}
	})
}

type setStatusDoc struct {
	Name         string         `json:"name"`
	VersionTable string         `json:"version_table"`
	Version      int32          `json:"version"`
	Latest       int32          `json:"latest"`
	Migrations   []migrationDoc `json:"migrations"`
}

// migrateStatus shows pgstate's migrations at the top level (as statectl
// always has) and each application set's in "sets".
func (a *app) migrateStatus(ctx context.Context, conn *pgx.Conn, schemaName string, apps appSets) error {
	docs := make([]setStatusDoc, 0, 1+len(apps))
	for _, set := range append([]schema.Set{schema.Own()}, apps...) {
		current, err := setVersion(ctx, conn, schemaName, set)
		if err != nil {
			return fmt.Errorf("read the version of schema %s: %w", schemaName, err)
		}
		names, err := set.Migrations()
		if err != nil {
			return err
		}
		d := setStatusDoc{Name: set.Name, VersionTable: set.VersionTable(), Version: current, Latest: int32(len(names))}
		for i, n := range names {
			v := int32(i + 1)
			d.Migrations = append(d.Migrations, migrationDoc{Version: v, Name: n, Applied: v <= current})
		}
		docs = append(docs, d)
	}
	own := docs[0]
	return a.emit(struct {
		Schema     string         `json:"schema"`
		Version    int32          `json:"version"`
		Latest     int32          `json:"latest"`
		Migrations []migrationDoc `json:"migrations"`
		Sets       []setStatusDoc `json:"sets,omitempty"`
	}{schemaName, own.Version, own.Latest, own.Migrations, docs[1:]}, func(w io.Writer) {
		for i, d := range docs {
			label := describeVersion(schemaName, d.Version)
			if i > 0 {
				fmt.Fprintln(w)
				label = fmt.Sprintf("schema %s: %s (%s) is at version %d", schemaName, d.Name, d.VersionTable, d.Version)
			}
			pending := d.Latest - d.Version
			switch {
			case pending > 0:
				fmt.Fprintf(w, "%s of %d (%d pending: run 'statectl migrate up')\n", label, d.Latest, pending)
			case pending < 0 && i == 0:
				fmt.Fprintf(w, "%s, newer than this release's %d\n", label, d.Latest)
			case pending < 0:
				fmt.Fprintf(w, "%s, newer than the %d files given\n", label, d.Latest)
			default:
				fmt.Fprintf(w, "%s (up to date)\n", label)
			}
			rows := make([][]string, len(d.Migrations))
			for j, m := range d.Migrations {
				mark := "pending"
				if m.Applied {
					mark = "applied"
				}
				rows[j] = []string{fmt.Sprintf("%3d", m.Version), m.Name, mark}
			}
			table(w, rows)
		}
	})
}
