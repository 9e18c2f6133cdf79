package main

import (
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
)

// TestTTLLongest writes with the longest --ttl a duration holds, on both of
// put's paths (PutWithTTL, and BatchPut when --metadata is given too): the
// entry lives for about 292 years rather than expiring at once.
func TestTTLLongest(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	const longest = "2562047h47m16.854775807s" // math.MaxInt64 nanoseconds
	lives := func(t *testing.T, r result) {
		e := decodeJSON[entryJSON](t, r)
		if e.ExpiresAt == nil || e.ExpiresAt.Before(time.Now().AddDate(292, 0, 0)) {
			t.Errorf("expires_at %v, want 292 years from now", e.ExpiresAt)
		}
	}
	runSteps(t, dsn, []step{
		{name: "PutLongestTTL", args: []string{"put", "a", "v", "--ttl", longest}},
		{name: "Lives", args: []string{"--json", "get", "a"}, check: lives},
		{name: "PutLongestTTLAndMetadata", args: []string{"put", "b", "v", "--ttl", longest, "--metadata", `{"m":1}`}},
		{name: "LivesToo", args: []string{"--json", "get", "b"}, check: lives},
		{name: "TTLBeyondDuration", args: []string{"put", "c", "v", "--ttl", "2562048h"}, code: exitUsage,
			stderrHas: "at most " + longest},
		{name: "Count", args: []string{"count"}, stdout: "2\n"},
	})
}

// TestMetadataPostgresRefuses passes metadata that is JSON to Go but that
// jsonb refuses: a usage error (exit 2) like any invalid metadata, not a
// failure (3), and nothing is written.
func TestMetadataPostgresRefuses(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	var steps []step
	for _, tc := range []struct{ name, doc string }{
		{"LoneSurrogate", `{"a":"\ud800"}`},
		{"NumberAboveNumeric", `{"n":1e200000}`},
		{"InvalidUTF8", "{\"a\":\"\xff\"}"},
	} {
		steps = append(steps,
			step{name: "Put" + tc.name, args: []string{"put", "k", "v", "--metadata", tc.doc}, code: exitUsage, stderrHas: "invalid metadata"},
			step{name: "PutWithTTL" + tc.name, args: []string{"put", "k", "v", "--ttl", "1h", "--metadata", tc.doc}, code: exitUsage, stderrHas: "invalid metadata"},
			step{name: "Checkpoint" + tc.name, args: []string{"checkpoint", "create", "--metadata", tc.doc}, code: exitUsage, stderrHas: "invalid metadata"},
		)
	}
	steps = append(steps,
		step{name: "NothingWritten", args: []string{"count"}, stdout: "0\n"},
		step{name: "NoCheckpoint", args: []string{"--json", "checkpoint", "list"}, stdout: `{"checkpoints":[]}` + "\n"},
	)
	runSteps(t, dsn, steps)
}
