package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// binary is the statectl built once by TestMain; the tests run it as an
// operator would, so flag parsing, output and exit codes are what ships.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "statectl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "statectl")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build statectl: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// unreachable is a DSN on which nothing listens: commands that fail with a
// usage error must do so before they connect, and the others fail with 3.
const unreachable = "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=5"

type result struct {
	code   int
	stdout string
	stderr string
}

// statectl runs the binary with stdin and without DATABASE_URL, so that
// only the flags given decide where it connects.
func statectl(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		t.Fatalf("run statectl %q: %v", args, err)
	}
	return r
}

// step is one invocation in a scenario. Empty expectations are not checked,
// except that a failing step must print exactly one line on stderr and a
// succeeding one nothing.
type step struct {
	name       string
	args       []string
	stdin      string
	code       int
	stdout     string   // the exact output, when set
	contains   []string // substrings of stdout
	stderrHas  string   // substring of the error line
	check      func(t *testing.T, r result)
	noDSNFlags bool // args carry their own --dsn (or none)
}

func runSteps(t *testing.T, dsn string, steps []step) {
	t.Helper()
	for _, s := range steps {
		args := s.args
		if !s.noDSNFlags {
			args = append([]string{"--dsn", dsn}, args...)
		}
		r := statectl(t, []byte(s.stdin), args...)
		checkResult(t, s, r)
	}
}

func checkResult(t *testing.T, s step, r result) {
	t.Helper()
	if r.code != s.code {
		t.Fatalf("%s: statectl %q exited %d, want %d\nstdout: %s\nstderr: %s", s.name, s.args, r.code, s.code, r.stdout, r.stderr)
	}
	if s.code == 0 && r.stderr != "" {
		t.Errorf("%s: unexpected stderr %q", s.name, r.stderr)
	}
	if s.code != 0 {
		if !strings.HasPrefix(r.stderr, "statectl: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: stderr %q, want one line starting with \"statectl: \"", s.name, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("%s: a failing command printed %q on stdout", s.name, r.stdout)
		}
	}
	if s.stderrHas != "" && !strings.Contains(r.stderr, s.stderrHas) {
		t.Errorf("%s: stderr %q does not contain %q", s.name, r.stderr, s.stderrHas)
	}
	if s.stdout != "" && r.stdout != s.stdout {
		t.Errorf("%s: stdout %q, want %q", s.name, r.stdout, s.stdout)
	}
	for _, want := range s.contains {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("%s: stdout %q does not contain %q", s.name, r.stdout, want)
		}
	}
	if s.check != nil {
		s.check(t, r)
	}
}

// decodeJSON parses the single JSON document a --json command prints.
func decodeJSON[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("parse JSON output %q: %v", r.stdout, err)
	}
	if dec.More() {
		t.Fatalf("JSON output %q holds more than one document", r.stdout)
	}
	return v
}

type entryJSON struct {
	Key       string          `json:"key"`
	Value     string          `json:"value"`
	Encoding  string          `json:"encoding"`
	Metadata  json.RawMessage `json:"metadata"`
	Version   int64           `json:"version"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	ExpiresAt *time.Time      `json:"expires_at"`
}

type keysJSON struct {
	Keys     []string `json:"keys"`
	Encoding string   `json:"encoding"`
}

type checkpointJSON struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	CreatedAt time.Time       `json:"created_at"`
	Rows      int64           `json:"rows"`
	Bytes     int64           `json:"bytes"`
	Metadata  json.RawMessage `json:"metadata"`
}

type migrateStatusJSON struct {
	Schema     string `json:"schema"`
	Version    int32  `json:"version"`
	Latest     int32  `json:"latest"`
	Migrations []struct {
		Version int32  `json:"version"`
		Name    string `json:"name"`
		Applied bool   `json:"applied"`
	} `json:"migrations"`
}

type migrateJSON struct {
	Schema string `json:"schema"`
	From   int32  `json:"from"`
	To     int32  `json:"to"`
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	// Every case points at a server that does not exist: exit code 2 (not
	// 3) proves the mistake is caught before connecting.
	tests := []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"NoCommand", []string{}, "no command"},
		{"UnknownCommand", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"UnknownGlobalFlag", []string{"--verbose", "count"}, "flag provided but not defined: --verbose"},
		{"UnknownCommandFlag", []string{"get", "--prefix", "a", "k"}, "flag provided but not defined: --prefix"},
		{"GetMissingKey", []string{"get"}, "get: missing KEY"},
		{"GetExtraArgument", []string{"get", "a", "b"}, `unexpected argument "b"`},
		{"PutMissingKey", []string{"put"}, "put: missing KEY"},
		{"PutExtraArgument", []string{"put", "k", "v", "w"}, `unexpected argument "w"`},
		{"DeleteMissingKey", []string{"delete"}, "delete: missing KEY"},
		{"CountExtraArgument", []string{"count", "x"}, `unexpected argument "x"`},
		{"BadHexKey", []string{"--hex", "get", "zz"}, "is not valid hex"},
		{"OddHexValue", []string{"--hex", "put", "00", "abc"}, "is not valid hex"},
		{"BadBase64Key", []string{"--base64", "get", "!!!"}, "is not valid base64"},
		{"BadHexPrefix", []string{"--hex", "list", "--prefix", "0g"}, "is not valid hex"},
		{"HexAndBase64", []string{"--hex", "--base64", "get", "00"}, "exclude each other"},
		{"BadTTL", []string{"put", "k", "v", "--ttl", "soon"}, "want a duration"},
		{"NegativeTTL", []string{"put", "k", "v", "--ttl", "-5s"}, "want a positive duration"},
		{"BadMetadata", []string{"put", "k", "v", "--metadata", "{a:1}"}, "not a valid JSON document"},
		{"CheckpointNoAction", []string{"checkpoint"}, "checkpoint: missing action"},
		{"CheckpointUnknownAction", []string{"checkpoint", "undo"}, `unknown action "undo"`},
		{"CheckpointRestoreNoID", []string{"checkpoint", "restore"}, "missing REF"},
		{"CheckpointBadID", []string{"checkpoint", "restore", "", "--yes"}, "is not a checkpoint id, name or id prefix"},
		{"CheckpointRestoreUnconfirmed", []string{"checkpoint", "restore", "before"}, "stdin is not a terminal to confirm it: pass --yes"},
		{"CheckpointFlagOnWrongAction", []string{"checkpoint", "list", "--metadata", "{}"}, "--metadata does not apply"},
		{"CheckpointBadMetadata", []string{"checkpoint", "create", "--metadata", "nope"}, "not a valid JSON document"},
		{"MigrateNoAction", []string{"migrate"}, "migrate: missing action"},
		{"MigrateUnknownAction", []string{"migrate", "sideways"}, `unknown action "sideways"`},
		{"MigrateTargetOutOfRange", []string{"migrate", "down", "--to", "99"}, "--to 99 is outside 0.."},
		{"MigrateStatusWithTo", []string{"migrate", "status", "--to", "1"}, "--to does not apply"},
		{"BadSchemaName", []string{"--schema", "a;drop", "count"}, "--schema"},
		{"SystemSchema", []string{"--schema", "information_schema", "count"}, "system schema"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--dsn", unreachable}, tc.args...)
			r := statectl(t, nil, args...)
			checkResult(t, step{name: tc.name, args: args, code: exitUsage, stderrHas: tc.stderrHas}, r)
		})
	}

	t.Run("NoDSN", func(t *testing.T) {
		t.Parallel()
		r := statectl(t, nil, "count")
		checkResult(t, step{name: "NoDSN", args: []string{"count"}, code: exitUsage,
			stderrHas: "no DSN: pass --dsn or set DATABASE_URL"}, r)
	})
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			t.Parallel()
			r := statectl(t, nil, args...)
			checkResult(t, step{name: "help", args: args, code: exitOK,
				contains: []string{"checkpoint  manage snapshots", "migrate     apply", "Exit codes: 0 success, 1 not found, 2 usage error, 3"}}, r)
		})
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	empty := testdb.EmptyDSN(t)
	tests := []struct {
		name      string
		dsn       string
		args      []string
		stderrHas string
	}{
		{"UnreachableCount", unreachable, []string{"count"}, "check that PostgreSQL is running"},
		{"UnreachableHealth", unreachable, []string{"health"}, "database unavailable"},
		{"UnreachableMigrate", unreachable, []string{"migrate", "status"}, "check that PostgreSQL is running"},
		{"UnmigratedGet", empty, []string{"get", "k"}, "migrate up"},
		{"UnmigratedPut", empty, []string{"put", "k", "v"}, "migrate up"},
		{"UnmigratedHealth", empty, []string{"health"}, "is at version 0"},
		{"UnmigratedStats", empty, []string{"stats"}, "migrate up"},
		{"UnknownDatabase", otherDatabase(t, empty, "no_such_database"), []string{"count"}, "does not exist"},
	}
	// The group returns only when all its parallel subtests have finished.
	t.Run("Commands", func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				args := append([]string{"--dsn", tc.dsn}, tc.args...)
				r := statectl(t, nil, args...)
				checkResult(t, step{name: tc.name, args: args, code: exitFailure, stderrHas: tc.stderrHas}, r)
			})
		}
	})

	t.Run("NoImplicitMigration", func(t *testing.T) {
		// The failed commands above must not have created the store.
		r := statectl(t, nil, "--dsn", empty, "--json", "migrate", "status")
		checkResult(t, step{name: "status", code: exitOK}, r)
		if got := decodeJSON[migrateStatusJSON](t, r); got.Version != 0 {
			t.Errorf("schema version %d after non-migrate commands, want 0", got.Version)
		}
	})
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	dsn := testdb.EmptyDSN(t)
	status := func(version int32) func(t *testing.T, r result) {
		return func(t *testing.T, r result) {
			got := decodeJSON[migrateStatusJSON](t, r)
			if got.Schema != "public" || got.Version != version || got.Latest != 10 || len(got.Migrations) != 10 {
				t.Fatalf("status %+v, want public at %d of 10 with 10 migrations", got, version)
			}
			for _, m := range got.Migrations {
				if m.Applied != (m.Version <= version) || !strings.HasSuffix(m.Name, ".sql") {
					t.Errorf("migration %+v at schema version %d", m, version)
				}
			}
		}
	}
	moved := func(from, to int32) func(t *testing.T, r result) {
		return func(t *testing.T, r result) {
			if got := decodeJSON[migrateJSON](t, r); got != (migrateJSON{"public", from, to}) {
				t.Errorf("migrate output %+v, want public from %d to %d", got, from, to)
			}
		}
	}
	runSteps(t, dsn, []step{
		{name: "StatusEmpty", args: []string{"--json", "migrate", "status"}, check: status(0)},
		{name: "StatusHuman", args: []string{"migrate", "status"}, contains: []string{"version 0 of 10 (10 pending", "001_create_state_table.sql", "pending"}},
		{name: "Up", args: []string{"migrate", "up"}, stdout: "migrated schema public from version 0 to 10\n"},
		{name: "StatusUp", args: []string{"migrate", "status", "--json"}, check: status(10)},
		{name: "UpAgain", args: []string{"migrate", "up"}, stdout: "schema public is at version 10; nothing to do\n"},
		{name: "HealthUp", args: []string{"health"}, stdout: "ok: schema public is at version 10\n"},
		{name: "PutWhileUp", args: []string{"put", "k", "v"}},
		{name: "DownUnconfirmed", args: []string{"migrate", "down"}, code: exitUsage, stderrHas: "while it holds 1 entry; stdin is not a terminal to confirm it: pass --yes"},
		{name: "DownOne", args: []string{"--json", "migrate", "down", "--yes"}, check: moved(10, 9)},
		{name: "GetWhileDown", args: []string{"get", "k"}, code: exitFailure, stderrHas: "this release needs 10"},
		{name: "DownTo", args: []string{"migrate", "down", "--to", "2", "--json", "--yes"}, check: moved(9, 2)},
		{name: "StatusDown", args: []string{"--json", "migrate", "status"}, check: status(2)},
		{name: "UpBelowCurrent", args: []string{"migrate", "up", "--to", "1"}, code: exitUsage, stderrHas: "use 'statectl migrate down --to 1'"},
		{name: "DownAboveCurrent", args: []string{"migrate", "down", "--to", "3"}, code: exitUsage, stderrHas: "use 'statectl migrate up --to 3'"},
		{name: "UpTo", args: []string{"--json", "migrate", "up", "--to", "3"}, check: moved(2, 3)},
		{name: "UpRest", args: []string{"--json", "migrate", "up"}, check: moved(3, 10)},
		// Rolling back to 2 kept the entries table of migration 1.
		{name: "DataSurvivesPartialRollback", args: []string{"count"}, stdout: "1\n"},
		{name: "DownToZero", args: []string{"migrate", "down", "--to", "0", "--yes"}, stdout: "migrated schema public from version 10 to 0\n"},
		{name: "DownAtZero", args: []string{"migrate", "down"}, stdout: "schema public is at version 0; nothing to do\n"},
		{name: "StatusZero", args: []string{"--json", "migrate", "status"}, check: status(0)},
		// A second schema is a second, independent store in the same
		// database.
		{name: "UpOtherSchema", args: []string{"--schema", "tenant_b", "migrate", "up"}, stdout: "migrated schema tenant_b from version 0 to 10\n"},
		{name: "PutOtherSchema", args: []string{"--schema", "tenant_b", "put", "only-b", "1"}},
		{name: "PublicStillEmpty", args: []string{"count"}, code: exitFailure, stderrHas: "migrate up"},
		{name: "CountOtherSchema", args: []string{"--schema", "tenant_b", "count"}, stdout: "1\n"},
	})
}

func TestEntries(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	runSteps(t, dsn, []step{
		{name: "GetMissing", args: []string{"get", "user/1"}, code: exitNotFound, stderrHas: `key "user/1" not found in schema public`},
		{name: "Put", args: []string{"put", "user/1", "alice"}, stdout: "stored user/1 (5 bytes, version 1)\n"},
		{name: "Get", args: []string{"get", "user/1"}, stdout: "alice\n"},
		{name: "FlagsAfterArguments", args: []string{"get", "user/1", "--json"}, check: func(t *testing.T, r result) {
			e := decodeJSON[entryJSON](t, r)
			if e.Key != "user/1" || e.Value != "alice" || e.Encoding != "text" || e.Version != 1 ||
				string(e.Metadata) != "null" || e.ExpiresAt != nil || e.CreatedAt.IsZero() {
				t.Errorf("entry %+v", e)
			}
		}},
		{name: "Overwrite", args: []string{"--json", "put", "user/1", "alicia"}, stdout: `{"key":"user/1","bytes":6,"version":2}` + "\n"},
		{name: "VersionGrows", args: []string{"--json", "get", "user/1"}, check: func(t *testing.T, r result) {
			if e := decodeJSON[entryJSON](t, r); e.Value != "alicia" || e.Version != 2 {
				t.Errorf("entry %+v, want alicia at version 2", e)
			}
		}},
		{name: "PutStdin", args: []string{"put", "user/2"}, stdin: "line one\nline two\n", stdout: "stored user/2 (18 bytes, version 1)\n"},
		{name: "StdinKeptExactly", args: []string{"--json", "get", "user/2"}, check: func(t *testing.T, r result) {
			if e := decodeJSON[entryJSON](t, r); e.Value != "line one\nline two\n" {
				t.Errorf("value %q, want the stdin bytes unchanged", e.Value)
			}
		}},
		{name: "ValueStartingWithDash", args: []string{"put", "order/1", "--", "-5"}},
		{name: "GetDashValue", args: []string{"get", "order/1"}, stdout: "-5\n"},
		{name: "EmptyValue", args: []string{"put", "order/2", ""}, stdout: "stored order/2 (0 bytes, version 1)\n"},
		{name: "GetEmptyValue", args: []string{"get", "order/2"}, stdout: "\n"},
		{name: "PutMetadata", args: []string{"put", "user/3", "carol", "--metadata", `{"team":"ops","level":2}`}},
		{name: "GetMetadata", args: []string{"--json", "get", "user/3"}, check: func(t *testing.T, r result) {
			var md map[string]any
			e := decodeJSON[entryJSON](t, r)
			if err := json.Unmarshal(e.Metadata, &md); err != nil || md["team"] != "ops" || md["level"] != float64(2) {
				t.Errorf("metadata %s (%v), want team ops, level 2", e.Metadata, err)
			}
		}},
		{name: "ListAll", args: []string{"list"}, stdout: "order/1\norder/2\nuser/1\nuser/2\nuser/3\n"},
		{name: "ListPrefix", args: []string{"list", "--prefix", "user/"}, stdout: "user/1\nuser/2\nuser/3\n"},
		{name: "ListPrefixJSON", args: []string{"--json", "list", "--prefix", "order/"}, check: func(t *testing.T, r result) {
			got := decodeJSON[keysJSON](t, r)
			if strings.Join(got.Keys, ",") != "order/1,order/2" || got.Encoding != "text" {
				t.Errorf("keys %+v, want order/1 and order/2", got)
			}
		}},
		{name: "ListNoMatchJSON", args: []string{"--json", "list", "--prefix", "zzz"}, stdout: `{"keys":[],"encoding":"text"}` + "\n"},
		{name: "ListNoMatch", args: []string{"list", "--prefix", "zzz"}, stdout: ""},
		{name: "Count", args: []string{"count"}, stdout: "5\n"},
		{name: "Delete", args: []string{"delete", "user/2"}, stdout: "deleted user/2\n"},
		{name: "DeleteMissing", args: []string{"--json", "delete", "user/2"}, stdout: `{"key":"user/2","deleted":false}` + "\n"},
		{name: "DeleteMissingHuman", args: []string{"delete", "user/2"}, stdout: "user/2 did not exist\n"},
		{name: "GetDeleted", args: []string{"get", "user/2"}, code: exitNotFound, stderrHas: "not found"},
		{name: "CountJSON", args: []string{"--json", "count"}, stdout: `{"count":4}` + "\n"},
		{name: "EmptyKey", args: []string{"put", "", "v"}, code: exitUsage, stderrHas: "empty key"},
	})
}

func TestBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	key := []byte{0x00, 'k', 0xFF}
	value := []byte{0xFF, 0x00, 0x01, 0xFE, 0x00}
	stdinKey := []byte{0xFF, 0xFF, 0x00}
	tests := []struct {
		name   string
		flag   string
		encode func([]byte) string
	}{
		{"Hex", "--hex", func(b []byte) string { return fmt.Sprintf("%x", b) }},
		{"Base64", "--base64", func(b []byte) string { return base64Std(b) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn := testdb.DSN(t)
			k, v, sk := tc.encode(key), tc.encode(value), tc.encode(stdinKey)
			runSteps(t, dsn, []step{
				{name: "Put", args: []string{tc.flag, "put", k, v}},
				{name: "PutStdin", args: []string{tc.flag, "put", sk}, stdin: v + "\n"},
				{name: "Get", args: []string{tc.flag, "get", k}, stdout: v + "\n"},
				{name: "GetStdinValue", args: []string{"get", sk, tc.flag}, stdout: v + "\n"},
				{name: "GetJSON", args: []string{tc.flag, "--json", "get", k}, check: func(t *testing.T, r result) {
					e := decodeJSON[entryJSON](t, r)
					if e.Key != k || e.Value != v || e.Encoding != strings.TrimPrefix(tc.flag, "--") {
						t.Errorf("entry %+v, want key %s value %s", e, k, v)
					}
				}},
				{name: "ListPrefixZeroByte", args: []string{tc.flag, "list", "--prefix", tc.encode([]byte{0x00})}, stdout: k + "\n"},
				{name: "ListPrefixFFByte", args: []string{tc.flag, "--json", "list", "--prefix", tc.encode([]byte{0xFF})}, check: func(t *testing.T, r result) {
					if got := decodeJSON[keysJSON](t, r); len(got.Keys) != 1 || got.Keys[0] != sk {
						t.Errorf("keys %v, want [%s]", got.Keys, sk)
					}
				}},
			})

			// The bytes in the database are the decoded ones, not the text
			// that was typed.
			cfg := state.DefaultConfig(dsn)
			cfg.MinConns = 0
			cfg.SkipMigrations = true
			s, err := state.Open(context.Background(), cfg)
			if err != nil {
				t.Fatalf("open store: %v", err)
			}
			defer s.Close()
			for _, k := range [][]byte{key, stdinKey} {
				got, found, err := s.Get(context.Background(), k)
				if err != nil || !found || !bytes.Equal(got, value) {
					t.Errorf("Get(%x) = %x, %v, %v; want %x", k, got, found, err, value)
				}
			}

			runSteps(t, dsn, []step{
				{name: "Delete", args: []string{tc.flag, "delete", k}, stdout: "deleted " + k + "\n"},
				{name: "GetDeleted", args: []string{tc.flag, "get", k}, code: exitNotFound},
			})
		})
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	start := time.Now()
	runSteps(t, dsn, []step{
		{name: "PutTTL", args: []string{"put", "session/1", "token", "--ttl", "4s"}, stdout: "stored session/1 (5 bytes, version 1), expires in 4s\n"},
		{name: "PutTTLAndMetadata", args: []string{"--json", "put", "session/2", "token", "--ttl", "4s", "--metadata", `{"user":7}`},
			stdout: `{"key":"session/2","bytes":5,"ttl":"4s","version":1}` + "\n"},
		{name: "LiveBeforeExpiry", args: []string{"--json", "get", "session/2"}, check: func(t *testing.T, r result) {
			e := decodeJSON[entryJSON](t, r)
			if e.ExpiresAt == nil || e.ExpiresAt.Before(start.Add(4*time.Second)) || e.ExpiresAt.After(time.Now().Add(4*time.Second)) {
				t.Errorf("expires_at %v, want 4s after it was written (from %v)", e.ExpiresAt, start)
			}
			if string(e.Metadata) != `{"user": 7}` && string(e.Metadata) != `{"user":7}` {
				t.Errorf("metadata %s, want {\"user\": 7}", e.Metadata)
			}
		}},
		{name: "PutLasting", args: []string{"put", "session/3", "token", "--ttl", "1h"}},
	})

	// Poll the entry written last: each statectl run takes a while on a busy
	// machine, so session/2 expires measurably later than session/1, and once
	// session/2 is gone session/1 must be gone too.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := statectl(t, nil, "--dsn", dsn, "get", "session/2")
		if r.code == exitNotFound {
			break
		}
		if r.code != exitOK || time.Now().After(deadline) {
			t.Fatalf("get of an entry with a 4s TTL: exit %d, stderr %q, %v after writing it", r.code, r.stderr, time.Since(start))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if time.Since(start) < 4*time.Second {
		t.Errorf("entry expired after %v, before its 4s TTL", time.Since(start))
	}

	runSteps(t, dsn, []step{
		{name: "EarlierExpiredToo", args: []string{"get", "session/1"}, code: exitNotFound},
		{name: "ListSkipsExpired", args: []string{"list", "--prefix", "session/"}, stdout: "session/3\n"},
		{name: "Count", args: []string{"count"}, stdout: "1\n"},
		{name: "Cleanup", args: []string{"--json", "cleanup"}, stdout: `{"deleted":2}` + "\n"},
		{name: "CleanupAgain", args: []string{"cleanup"}, stdout: "deleted 0 expired entries\n"},
		{name: "LastingStays", args: []string{"get", "session/3"}, stdout: "token\n"},
	})
}

func TestCheckpoints(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	var first, second string
	runSteps(t, dsn, []step{
		{name: "ListEmpty", args: []string{"checkpoint", "list"}, stdout: "no checkpoints\n"},
		{name: "ListEmptyJSON", args: []string{"--json", "checkpoint", "list"}, stdout: `{"checkpoints":[]}` + "\n"},
		{name: "PutA", args: []string{"put", "a", "1"}},
		{name: "PutB", args: []string{"put", "b", "2"}},
		{name: "Create", args: []string{"--json", "checkpoint", "create"}, check: func(t *testing.T, r result) {
			first = decodeJSON[map[string]string](t, r)["id"]
		}},
		{name: "PutC", args: []string{"put", "c", "3"}},
		{name: "CreateWithMetadata", args: []string{"checkpoint", "create", "--metadata", `{"reason":"deploy"}`}, check: func(t *testing.T, r result) {
			second = strings.TrimSpace(r.stdout)
		}},
	})
	if first == "" || second == "" || first == second {
		t.Fatalf("checkpoint ids %q and %q", first, second)
	}

	runSteps(t, dsn, []step{
		{name: "ListJSON", args: []string{"checkpoint", "list", "--json"}, check: func(t *testing.T, r result) {
			got := decodeJSON[struct {
				Checkpoints []checkpointJSON `json:"checkpoints"`
			}](t, r).Checkpoints
			if len(got) != 2 {
				t.Fatalf("checkpoints %+v, want 2", got)
			}
			// Newest first.
			if got[0].ID != second || got[0].Rows != 3 || got[0].Bytes != 6 || !strings.Contains(string(got[0].Metadata), `"deploy"`) {
				t.Errorf("newest checkpoint %+v, want %s with 3 rows, 6 bytes and the deploy metadata", got[0], second)
			}
			if got[1].ID != first || got[1].Rows != 2 || string(got[1].Metadata) != "null" || got[1].CreatedAt.IsZero() {
				t.Errorf("oldest checkpoint %+v, want %s with 2 rows and no metadata", got[1], first)
			}
		}},
		{name: "ListHuman", args: []string{"checkpoint", "list"}, contains: []string{"ID", "ROWS", first, second, `{"reason": "deploy"}`}},
		{name: "Modify", args: []string{"put", "a", "changed"}},
		{name: "DeleteB", args: []string{"delete", "b"}},
		{name: "PutD", args: []string{"put", "d", "4"}},
		{name: "ModifiedList", args: []string{"list"}, stdout: "a\nc\nd\n"},
		{name: "Restore", args: []string{"checkpoint", "restore", first, "--yes"}, stdout: "restored checkpoint " + first + ": 2 entries written\n"},
		{name: "RestoredA", args: []string{"get", "a"}, stdout: "1\n"},
		{name: "RestoredB", args: []string{"get", "b"}, stdout: "2\n"},
		{name: "RestoredWithoutC", args: []string{"get", "c"}, code: exitNotFound},
		{name: "RestoredWithoutD", args: []string{"get", "d"}, code: exitNotFound},
		{name: "RestoredList", args: []string{"list"}, stdout: "a\nb\n"},
		{name: "RestoreSecond", args: []string{"--json", "checkpoint", "restore", "--yes", second}, stdout: `{"restored":"` + second + `","entries":3}` + "\n"},
		{name: "RestoredC", args: []string{"get", "c"}, stdout: "3\n"},
		{name: "Delete", args: []string{"checkpoint", "delete", first}, stdout: "deleted checkpoint " + first + "\n"},
		{name: "RestoreDeleted", args: []string{"checkpoint", "restore", first, "--yes"}, code: exitNotFound, stderrHas: "checkpoint not found"},
		{name: "DeleteDeleted", args: []string{"checkpoint", "delete", first}, code: exitNotFound, stderrHas: "checkpoint not found"},
		{name: "RestoreUnknown", args: []string{"checkpoint", "restore", "--yes", "00000000-0000-0000-0000-000000000000"}, code: exitNotFound},
		{name: "OneLeft", args: []string{"--json", "checkpoint", "list"}, check: func(t *testing.T, r result) {
			got := decodeJSON[struct {
				Checkpoints []checkpointJSON `json:"checkpoints"`
			}](t, r).Checkpoints
			if len(got) != 1 || got[0].ID != second {
				t.Errorf("checkpoints %+v, want only %s", got, second)
			}
		}},
		{name: "DeleteJSON", args: []string{"--json", "checkpoint", "delete", second}, stdout: `{"deleted":"` + second + `"}` + "\n"},
	})
}

func TestMaintenance(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	runSteps(t, dsn, []step{
		{name: "PutA", args: []string{"put", "a", "12345"}},
		{name: "PutB", args: []string{"put", "b", "67890"}},
		{name: "Checkpoint", args: []string{"checkpoint", "create"}},
		{name: "Health", args: []string{"health"}, stdout: "ok: schema public is at version 10\n"},
		{name: "HealthJSON", args: []string{"--json", "health"}, stdout: `{"status":"ok","schema":"public","version":10}` + "\n"},
		{name: "Vacuum", args: []string{"vacuum"}, stdout: "vacuumed and analyzed the tables of schema public\n"},
		{name: "VacuumJSON", args: []string{"vacuum", "--json"}, stdout: `{"vacuumed":"public"}` + "\n"},
		{name: "Cleanup", args: []string{"cleanup"}, stdout: "deleted 0 expired entries\n"},
		{name: "StatsJSON", args: []string{"--json", "stats"}, check: func(t *testing.T, r result) {
			got := decodeJSON[statsDoc](t, r)
			if got.Schema != "public" || got.Entries != 2 || got.Checkpoints != 1 {
				t.Errorf("stats %+v, want 2 entries and 1 checkpoint in public", got)
			}
			// Vacuum ran ANALYZE, so the estimate is known.
			if got.CountEstimate != 2 {
				t.Errorf("count estimate %d after vacuum, want 2", got.CountEstimate)
			}
			if got.TableBytes <= 0 || got.IndexBytes <= 0 || got.TotalBytes < got.TableBytes+got.IndexBytes || got.CheckpointBytes <= 0 {
				t.Errorf("sizes %+v, want positive table, index and checkpoint sizes, total at least table+index", got)
			}
		}},
		{name: "StatsHuman", args: []string{"stats"}, contains: []string{"entries           2 (exact", "checkpoints       1 (", "total bytes"}},
	})
}

// otherDatabase returns dsn with its database name replaced.
func otherDatabase(t *testing.T, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func base64Std(b []byte) string {
	return codecBase64.encode(b)
}
