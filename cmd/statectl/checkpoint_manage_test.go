package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
)

// TestCheckpointManage covers names, short ids, reading a checkpoint
// without restoring it, restore's count and its confirmation.
func TestCheckpointManage(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	var named, other string
	runSteps(t, dsn, []step{
		{name: "PutA", args: []string{"put", "user/1", "one"}},
		{name: "PutB", args: []string{"--hex", "put", "757365722f32", "00ff"}},
		{name: "PutC", args: []string{"put", "order/1", "o", "--metadata", `{"n":1}`}},
		{name: "CreateNamed", args: []string{"--json", "checkpoint", "create", "--name", "before-upgrade"}, check: func(t *testing.T, r result) {
			doc := decodeJSON[map[string]string](t, r)
			if named = doc["id"]; named == "" || doc["name"] != "before-upgrade" {
				t.Fatalf("create --name printed %v", doc)
			}
		}},
		{name: "NameTaken", args: []string{"checkpoint", "create", "--name", "before-upgrade"}, code: exitFailure, stderrHas: "checkpoint name in use"},
		{name: "CreateOther", args: []string{"checkpoint", "create"}, check: func(t *testing.T, r result) { other = strings.TrimSpace(r.stdout) }},
		{name: "ListShowsName", args: []string{"checkpoint", "list"}, contains: []string{"NAME", "before-upgrade"}},
		{name: "NameOnWrongAction", args: []string{"checkpoint", "list", "--name", "x"}, code: exitUsage, stderrHas: "--name does not apply"},
		{name: "ShowByName", args: []string{"--json", "checkpoint", "show", "before-upgrade"}, check: func(t *testing.T, r result) {
			got := decodeJSON[checkpointJSON](t, r)
			if got.ID != named || got.Rows != 3 {
				t.Fatalf("show before-upgrade = %+v, want %s with 3 rows", got, named)
			}
		}},
		{name: "ShowHuman", args: []string{"checkpoint", "show", "before-upgrade"}, contains: []string{"name", "before-upgrade", "entries", "3"}},
		{name: "ShowUnknown", args: []string{"checkpoint", "show", "nope"}, code: exitNotFound, stderrHas: `no checkpoint is named "nope"`},
		// Reading a checkpoint without restoring it.
		{name: "Entries", args: []string{"checkpoint", "entries", "before-upgrade"}, stdout: "order/1\nuser/1\nuser/2\n"},
		{name: "EntriesPrefixValues", args: []string{"--value-encoding", "hex", "checkpoint", "entries", "before-upgrade", "--prefix", "user/", "--values"}, contains: []string{"user/1", "6f6e65", "user/2", "00ff"}},
		// A global flag after the action applies as before it.
		{name: "EntriesEncodingAfterAction", args: []string{"checkpoint", "entries", "before-upgrade", "--prefix", "user/", "--values", "--value-encoding", "hex"}, contains: []string{"user/1", "6f6e65", "user/2", "00ff"}},
		{name: "EntriesPaged", args: []string{"--json", "checkpoint", "entries", "before-upgrade", "--limit", "2"}, stdout: `{"keys":["order/1","user/1"],"encoding":"text","more":true,"next":"user/1"}` + "\n"},
		{name: "Get", args: []string{"checkpoint", "get", "before-upgrade", "user/1"}, stdout: "one\n"},
		{name: "GetMissingKey", args: []string{"checkpoint", "get", "before-upgrade", "user/9"}, code: exitNotFound, stderrHas: `key "user/9" not found in checkpoint`},
		{name: "Modify", args: []string{"put", "user/1", "changed"}},
		{name: "DeleteC", args: []string{"delete", "order/1"}},
		{name: "GetUnchanged", args: []string{"--json", "checkpoint", "get", "before-upgrade", "user/1"}, check: func(t *testing.T, r result) {
			got := decodeJSON[entryJSON](t, r)
			if got.Value != "one" || got.Version != 1 {
				t.Fatalf("checkpoint get = %+v, want one at version 1", got)
			}
		}},
		{name: "LiveChanged", args: []string{"get", "user/1"}, stdout: "changed\n"},
		// A restore asks first; without a terminal and --yes it refuses
		// and changes nothing.
		{name: "RestoreUnconfirmed", args: []string{"checkpoint", "restore", "before-upgrade"}, code: exitUsage, stderrHas: "pass --yes"},
		{name: "StillChanged", args: []string{"get", "user/1"}, stdout: "changed\n"},
	})
	if named == "" || other == "" {
		t.Fatal("no checkpoint ids")
	}
	// Short ids: the shortest prefix that only one id starts with works;
	// one both start with is an ambiguous usage error naming both.
	hex := func(id string) string { return strings.ReplaceAll(id, "-", "") }
	common := 0
	for common < 32 && hex(named)[common] == hex(other)[common] {
		common++
	}
	short := hex(named)[:common+1]
	steps := []step{
		{name: "RestoreByName", args: []string{"checkpoint", "restore", "before-upgrade", "--yes"}, stdout: "restored checkpoint " + named + ": 3 entries written\n"},
		{name: "Restored", args: []string{"list", "--values"}, contains: []string{"order/1", "one"}},
		{name: "ShowShort", args: []string{"--json", "checkpoint", "show", short}, check: func(t *testing.T, r result) {
			if got := decodeJSON[checkpointJSON](t, r); got.ID != named {
				t.Fatalf("show %s = %s, want %s", short, got.ID, named)
			}
		}},
		{name: "RestoreShortJSON", args: []string{"--json", "checkpoint", "restore", "--yes", short}, stdout: `{"restored":"` + named + `","entries":3}` + "\n"},
		{name: "DeleteShort", args: []string{"checkpoint", "delete", hex(other)[:common+1]}, stdout: "deleted checkpoint " + other + "\n"},
	}
	if common > 0 {
		steps = append([]step{{name: "Ambiguous", args: []string{"checkpoint", "show", hex(named)[:common]}, code: exitUsage,
			check: func(t *testing.T, r result) {
				for _, want := range []string{"is ambiguous", named, other, "give more of the id"} {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("stderr %q lacks %q", r.stderr, want)
					}
				}
			}}}, steps...)
	}
	runSteps(t, dsn, steps)
}

// TestConfirmPrompt checks the answer a terminal user gives; the binary
// tests cannot offer a terminal.
func TestConfirmPrompt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		answer string
		ok     bool
	}{{"y\n", true}, {"YES\n", true}, {"n\n", false}, {"\n", false}, {"", false}, {"sure\n", false}} {
		var prompt bytes.Buffer
		err := askYes(strings.NewReader(tc.answer), &prompt, "checkpoint restore", "replace every entry")
		if (err == nil) != tc.ok {
			t.Errorf("answer %q: %v, want ok=%v", tc.answer, err, tc.ok)
		}
		if !strings.Contains(prompt.String(), "checkpoint restore will replace every entry. Continue? [y/N]") {
			t.Errorf("prompt %q", prompt.String())
		}
		if err != nil && exitCode(err) != exitUsage {
			t.Errorf("a refusal exits %d, want %d", exitCode(err), exitUsage)
		}
	}
}
