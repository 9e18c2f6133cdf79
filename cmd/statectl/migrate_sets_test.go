package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/schema"
)

// The application's own migrations go through statectl migrate with --app,
// after pgstate's, and migrate status shows both.
func TestMigrateApplicationSet(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	widgets := "CREATE TABLE widgets (id BIGINT PRIMARY KEY);\n---- create above / drop below ----\nDROP TABLE widgets;\n"
	if err := os.WriteFile(filepath.Join(dir, "001_widgets.sql"), []byte(widgets), 0o644); err != nil {
		t.Fatal(err)
	}
	latest, _ := schema.Latest()
	dsn := testdb.EmptyDSN(t)
	app := "shop=" + dir
	type setJSON struct {
		Name         string         `json:"name"`
		VersionTable string         `json:"version_table"`
		Version      int32          `json:"version"`
		Latest       int32          `json:"latest"`
		Migrations   []migrationDoc `json:"migrations"`
	}
	type statusJSON struct {
		Schema     string         `json:"schema"`
		Version    int32          `json:"version"`
		Latest     int32          `json:"latest"`
		Migrations []migrationDoc `json:"migrations"`
		Sets       []setJSON      `json:"sets"`
	}
	status := func(t *testing.T) statusJSON {
		t.Helper()
		r := statectl(t, nil, "--dsn", dsn, "--json", "migrate", "status", "--app", app)
		if r.code != 0 {
			t.Fatalf("migrate status: %+v", r)
		}
		return decodeJSON[statusJSON](t, r)
	}

	r := statectl(t, nil, "--dsn", dsn, "migrate", "up", "--app", app)
	want := "migrated schema public from version 0 to " + itoa(latest) + "\nmigrated schema public: shop from version 0 to 1\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("migrate up --app: %+v, want stdout %q", r, want)
	}
	if s := status(t); s.Version != latest || len(s.Sets) != 1 || s.Sets[0].Name != "shop" ||
		s.Sets[0].VersionTable != "shop_schema_version" || s.Sets[0].Version != 1 || !s.Sets[0].Migrations[0].Applied {
		t.Errorf("status after up: %+v", s)
	}
	r = statectl(t, nil, "--dsn", dsn, "migrate", "status", "--app", app)
	if !strings.Contains(r.stdout, "shop (shop_schema_version) is at version 1 (up to date)") || !strings.Contains(r.stdout, "001_widgets.sql") {
		t.Errorf("human status does not show the shop's set: %q", r.stdout)
	}
	r = statectl(t, nil, "--dsn", dsn, "migrate", "down", "--set", "shop", "--app", app)
	if r.code != 0 || r.stdout != "migrated schema public: shop from version 1 to 0\n" {
		t.Errorf("migrate down --set shop: %+v", r)
	}
	if s := status(t); s.Version != latest || s.Sets[0].Version != 0 {
		t.Errorf("status after the shop's down: %+v; want pgstate untouched, shop at 0", s)
	}
	r = statectl(t, nil, "--dsn", dsn, "migrate", "down", "--set", "nosuch", "--app", app)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--set nosuch names no set") {
		t.Errorf("--set of an unknown set: %+v", r)
	}
	r = statectl(t, nil, "--dsn", dsn, "migrate", "up", "--app", "pgstate="+dir)
	if r.code != exitUsage || !strings.Contains(r.stderr, "pgstate's own") {
		t.Errorf("--app named pgstate: %+v", r)
	}
}

func TestSchemaExport(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "pgstate-schema")
	r := statectl(t, nil, "schema", "export", dir)
	names, _ := schema.Own().Migrations()
	if r.code != 0 || !strings.Contains(r.stdout, "wrote "+itoa(int32(len(names)))+" pgstate migrations") {
		t.Fatalf("schema export: %+v", r)
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("exported %s: %v", n, err)
		}
	}
	if r := statectl(t, nil, "schema", "export"); r.code != exitUsage {
		t.Errorf("schema export without DIR: %+v", r)
	}
}

func itoa(v int32) string { return strconv.Itoa(int(v)) }
