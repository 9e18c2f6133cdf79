package main

import (
	"strings"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
)

func TestExpiryAndCounters(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	runSteps(t, dsn, []step{
		{name: "Put", args: []string{"put", "session", "token"}},
		{name: "TTLNone", args: []string{"ttl", "session"}, stdout: "no expiry\n"},
		{name: "Expire", args: []string{"expire", "session", "1h"}, stdout: "session expires in 1h0m0s\n"},
		{name: "TTL", args: []string{"ttl", "session"}, check: func(t *testing.T, r result) {
			// Compared as durations: as strings, "59m59.99s" sorts after
			// "59m59.999s".
			if d, err := time.ParseDuration(strings.TrimSpace(r.stdout)); err != nil || d < 59*time.Minute || d >= time.Hour {
				t.Errorf("ttl printed %q, want just under an hour", r.stdout)
			}
		}},
		{name: "ValueKept", args: []string{"get", "session"}, stdout: "token\n"},
		{name: "Persist", args: []string{"persist", "session"}, stdout: "session no longer expires\n"},
		{name: "PersistAgain", args: []string{"--json", "persist", "session"}, stdout: `{"key":"session","removed":false}` + "\n"},
		{name: "ExpireMissing", args: []string{"expire", "nope", "1h"}, code: exitNotFound},
		{name: "TTLMissing", args: []string{"ttl", "nope"}, code: exitNotFound},
		{name: "ExpireBadDuration", args: []string{"expire", "session", "0s"}, code: exitUsage, stderrHas: "positive"},
		{name: "Incr", args: []string{"incr", "hits"}, stdout: "1\n"},
		{name: "IncrBy", args: []string{"--json", "incr", "hits", "41"}, stdout: `{"value":42}` + "\n"},
		{name: "Decr", args: []string{"incr", "hits", "--", "-50"}, stdout: "-8\n"},
		{name: "IncrText", args: []string{"incr", "session"}, code: exitUsage, stderrHas: "value is not an integer"},
		{name: "IncrBadN", args: []string{"incr", "hits", "x"}, code: exitUsage, stderrHas: "not an integer"},
	})
}
