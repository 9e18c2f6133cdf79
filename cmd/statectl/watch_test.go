package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

type eventJSON struct {
	Revision int64     `json:"revision"`
	Kind     string    `json:"kind"`
	Key      string    `json:"key"`
	Version  int64     `json:"version"`
	Value    *string   `json:"value"`
	Encoding string    `json:"encoding"`
	Time     time.Time `json:"time"`
}

// decodeLines parses one JSON object per line.
func decodeLines(t *testing.T, out string) []eventJSON {
	t.Helper()
	var evs []eventJSON
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var ev eventJSON
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestWatch(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	runSteps(t, dsn, []step{
		{name: "put", args: []string{"put", "app/a", "1"}},
		{name: "put again", args: []string{"put", "app/a", "two"}},
		{name: "other prefix", args: []string{"put", "other", "x"}},
		{name: "delete", args: []string{"delete", "app/a"}},
		{
			name:   "history",
			args:   []string{"watch", "--prefix", "app/", "--from", "1", "--limit", "3"},
			stdout: "1 put app/a v1\n2 put app/a v2\n4 delete app/a v2\n",
		},
		{
			name:   "with values",
			args:   []string{"watch", "--from", "2", "--limit", "2", "--values"},
			stdout: "2 put app/a v2 \"two\"\n3 put other v1 \"x\"\n",
		},
		{
			name: "json",
			args: []string{"watch", "--prefix", "app/", "--from", "1", "--limit", "3", "--values", "--json"},
			check: func(t *testing.T, r result) {
				evs := decodeLines(t, r.stdout)
				if len(evs) != 3 {
					t.Fatalf("%d lines, want 3: %q", len(evs), r.stdout)
				}
				if evs[1].Kind != "put" || evs[1].Key != "app/a" || evs[1].Version != 2 || evs[1].Value == nil || *evs[1].Value != "two" || evs[1].Encoding != "text" || evs[1].Time.IsZero() {
					t.Errorf("second event %+v", evs[1])
				}
				if evs[2].Kind != "delete" || evs[2].Revision != 4 || evs[2].Value != nil {
					t.Errorf("third event %+v", evs[2])
				}
			},
		},
		{
			name:   "hex",
			args:   []string{"watch", "--hex", "--prefix", "6f", "--from", "1", "--limit", "1"},
			stdout: "3 put 6f74686572 v1\n",
		},
		{name: "negative from", args: []string{"watch", "--from", "-1"}, code: exitUsage, stderrHas: "--from"},
		{name: "argument", args: []string{"watch", "app/"}, code: exitUsage, stderrHas: "unexpected argument"},
		{name: "feed status", args: []string{"feed", "status", "--json"}, check: func(t *testing.T, r result) {
			var st struct {
				Enabled   bool  `json:"enabled"`
				Revision  int64 `json:"revision"`
				Compacted int64 `json:"compacted"`
				LogBytes  int64 `json:"log_bytes"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.Enabled || st.Revision != 4 || st.LogBytes <= 0 {
				t.Fatalf("feed status %q: %+v, %v", r.stdout, st, err)
			}
		}},
		{name: "compact", args: []string{"feed", "compact", "--to", "2"}, contains: []string{"deleted 2 changes", "compacted up to  2"}},
		{name: "compacted", args: []string{"watch", "--from", "1"}, code: exitFailure, stderrHas: "compacted"},
		{name: "compact without --to", args: []string{"feed", "compact"}, code: exitUsage, stderrHas: "--to"},
		{name: "feed off", args: []string{"feed", "off"}, contains: []string{"feed             off"}},
		{name: "watch while off", args: []string{"watch", "--from", "3"}, code: exitFailure, stderrHas: "change feed is off"},
		{name: "feed on", args: []string{"feed", "on"}, contains: []string{"feed             on"}},
	})
}

// TestWatchLive runs statectl watch as an operator would, while the store
// is written: it prints the new change and exits after --limit.
func TestWatchLive(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	s, err := state.Open(context.Background(), func() state.Config {
		c := state.DefaultConfig(dsn)
		c.SkipMigrations = true
		return c
	}())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--dsn", dsn, "watch", "--prefix", "live/", "--limit", "1", "--json")
	cmd.Env = os.Environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Write until the watch, which starts after the current revision, has
	// seen a write and exited.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("statectl watch: %v\nstderr: %s", err, stderr.String())
			}
			evs := decodeLines(t, stdout.String())
			if len(evs) != 1 || evs[0].Key != "live/k" || evs[0].Kind != "put" {
				t.Fatalf("output %q", stdout.String())
			}
			return
		case <-tick.C:
			if err := s.Put(ctx, []byte("live/k"), []byte("v")); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("statectl watch did not exit")
		}
	}
}

// TestWatchBinary: watch prints keys and values as get does. A key that is
// not valid UTF-8 switches --json to base64 (saying so in "encoding")
// instead of turning into U+FFFD, --value-encoding applies to values, and
// the human form quotes a key that would not print as itself.
func TestWatchBinary(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	runSteps(t, dsn, []step{
		{name: "put binary key", args: []string{"--hex", "put", "ff00", "6869"}},
		{name: "json", args: []string{"watch", "--from", "1", "--limit", "1", "--values", "--json"}, check: func(t *testing.T, r result) {
			var ev struct {
				Key, Value, Encoding string
			}
			if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Key != "/wA=" || ev.Value != "aGk=" || ev.Encoding != "base64" {
				t.Fatalf("event %q, want the key and value in base64", r.stdout)
			}
		}},
		{name: "value encoding", args: []string{"--value-encoding", "hex", "watch", "--from", "1", "--limit", "1", "--values"}, stdout: "1 put \"\\xff\\x00\" v1 \"6869\"\n"},
	})
}
