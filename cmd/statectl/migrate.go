package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"sort"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/schema"
)

const migrateUsage = "migrate up [--to N] | down [--to N] | status"

type migrationDoc struct {
	Version int32  `json:"version"`
	Name    string `json:"name"`
	Applied bool   `json:"applied"`
}

func cmdMigrate(ctx context.Context, a *app, args []string) error {
	flags := a.flagSet("migrate")
	to := flags.Int("to", 0, "target version")
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
	latest, err := schema.Latest()
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
		if err := onlyWith(flags, "migrate status"); err != nil {
			return err
		}
	}
	conn, schemaName, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer closeConn(conn)
	current, err := schema.Version(ctx, conn, schemaName)
	if err != nil {
		return fmt.Errorf("read the version of schema %s: %w", schemaName, err)
	}
	if action != "status" && current > latest {
		return fmt.Errorf("%w: schema %q is at version %d, this release knows %d", schema.ErrSchemaTooNew, schemaName, current, latest)
	}
	switch action {
	case "status":
		return a.migrateStatus(schemaName, current, latest)
	case "up":
		target := latest
		if hasTo {
			target = int32(*to)
		}
		if target < current {
			return usagef("migrate up: --to %d is below the current version %d: use 'statectl migrate down --to %d'", target, current, target)
		}
		return a.migrateTo(ctx, conn, schemaName, current, target)
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
		return a.migrateTo(ctx, conn, schemaName, current, target)
	}
}

func (a *app) migrateTo(ctx context.Context, conn *pgx.Conn, schemaName string, from, to int32) error {
	latest, err := schema.Latest()
	if err != nil {
		return err
	}
	switch {
	case from == to:
	case to == latest:
		// Migrate, unlike MigrateTo, is the path applications take at Open;
		// going through it here keeps both on the same code.
		if err := schema.Migrate(ctx, conn, schemaName); err != nil {
			return err
		}
	default:
		if err := schema.MigrateTo(ctx, conn, schemaName, to); err != nil {
			return err
		}
	}
	return a.emit(struct {
		Schema string `json:"schema"`
		From   int32  `json:"from"`
		To     int32  `json:"to"`
	}{schemaName, from, to}, func(w io.Writer) {
		if from == to {
			fmt.Fprintf(w, "%s; nothing to do\n", describeVersion(schemaName, to))
			return
		}
		fmt.Fprintf(w, "migrated schema %s from version %d to %d\n", schemaName, from, to)
	})
}

func (a *app) migrateStatus(schemaName string, current, latest int32) error {
	names, err := fs.Glob(schema.FS(), "*.sql")
	if err != nil {
		return err
	}
	// The file names are zero-padded, so their order is the version order.
	sort.Strings(names)
	migrations := make([]migrationDoc, len(names))
	for i, n := range names {
		v := int32(i + 1)
		migrations[i] = migrationDoc{Version: v, Name: n, Applied: v <= current}
	}
	return a.emit(struct {
		Schema     string         `json:"schema"`
		Version    int32          `json:"version"`
		Latest     int32          `json:"latest"`
		Migrations []migrationDoc `json:"migrations"`
	}{schemaName, current, latest, migrations}, func(w io.Writer) {
		pending := latest - current
		switch {
		case pending > 0:
			fmt.Fprintf(w, "%s of %d (%d pending: run 'statectl migrate up')\n", describeVersion(schemaName, current), latest, pending)
		case pending < 0:
			fmt.Fprintf(w, "%s, newer than this release's %d\n", describeVersion(schemaName, current), latest)
		default:
			fmt.Fprintf(w, "%s (up to date)\n", describeVersion(schemaName, current))
		}
		rows := make([][]string, len(migrations))
		for i, m := range migrations {
			mark := "pending"
			if m.Applied {
				mark = "applied"
			}
			rows[i] = []string{fmt.Sprintf("%3d", m.Version), m.Name, mark}
		}
		table(w, rows)
	})
}
