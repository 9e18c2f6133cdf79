package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
)

type pageJSON struct {
	Keys     []string `json:"keys"`
	Encoding string   `json:"encoding"`
	More     bool     `json:"more"`
	Next     string   `json:"next"`
}

type entriesPageJSON struct {
	Entries []entryJSON `json:"entries"`
	More    bool        `json:"more"`
	Next    string      `json:"next"`
}

func TestListOptions(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	var steps []step
	for _, k := range []string{"a", "k1", "k2", "k3", "k4", "z"} {
		steps = append(steps, step{name: "Put" + k, args: []string{"put", k, "v" + k}})
	}
	steps = append(steps,
		step{name: "Limit", args: []string{"--json", "list", "--prefix", "k", "--limit", "2"}, check: func(t *testing.T, r result) {
			if got := decodeJSON[pageJSON](t, r); strings.Join(got.Keys, ",") != "k1,k2" || !got.More || got.Next != "k2" {
				t.Errorf("page %+v, want k1,k2 with more after k2", got)
			}
		}},
		step{name: "Resume", args: []string{"list", "--prefix", "k", "--limit", "2", "--start-after", "k2"}, stdout: "k3\nk4\n"},
		step{name: "Reverse", args: []string{"list", "--reverse", "--limit", "2"}, stdout: "z\nk4\n"},
		step{name: "Range", args: []string{"list", "--start", "k2", "--end", "k4"}, stdout: "k2\nk3\n"},
		step{name: "Values", args: []string{"list", "--prefix", "k", "--values", "--limit", "1"}, stdout: "k1  vk1\n"},
		step{name: "ValuesJSON", args: []string{"--json", "list", "--values", "--start", "z"}, check: func(t *testing.T, r result) {
			got := decodeJSON[entriesPageJSON](t, r)
			if len(got.Entries) != 1 || got.Entries[0].Key != "z" || got.Entries[0].Value != "vz" || got.More {
				t.Errorf("page %+v, want z with its value", got)
			}
		}},
		step{name: "BadLimit", args: []string{"list", "--limit", "0"}, code: exitUsage, stderrHas: "--limit 0"},
		step{name: "PutMD1", args: []string{"put", "u1", "x", "--metadata", `{"team":"ops"}`}},
		step{name: "PutMD2", args: []string{"put", "u2", "y", "--metadata", `{"team":"dev"}`}},
		step{name: "PutMD3", args: []string{"put", "u3", "z", "--metadata", `{"team":"ops","on":true}`}},
		step{name: "Find", args: []string{"find", "--metadata", `{"team":"ops"}`}, stdout: "u1\nu3\n"},
		step{name: "FindValuesJSON", args: []string{"--json", "find", "--metadata", `{"team":"ops"}`, "--values", "--reverse", "--limit", "1"}, check: func(t *testing.T, r result) {
			got := decodeJSON[entriesPageJSON](t, r)
			var md map[string]any
			if len(got.Entries) != 1 || got.Entries[0].Key != "u3" || !got.More || json.Unmarshal(got.Entries[0].Metadata, &md) != nil || md["on"] != true {
				t.Errorf("page %+v, want u3 with its metadata, more to come", got)
			}
		}},
		step{name: "FindNoMetadata", args: []string{"find"}, code: exitUsage, stderrHas: "--metadata"},
	)
	runSteps(t, dsn, steps)
}
