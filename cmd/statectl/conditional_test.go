package main

import (
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
)

func TestConditionalWrites(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	runSteps(t, dsn, []step{
		{name: "PutIfAbsent", args: []string{"put", "lock", "owner-a", "--if-absent"}, stdout: "stored lock (7 bytes, version 1)\n"},
		{name: "PutIfAbsentTaken", args: []string{"put", "lock", "owner-b", "--if-absent"}, code: exitConflict, stderrHas: "at version 1, want 0"},
		{name: "StillFirst", args: []string{"get", "lock"}, stdout: "owner-a\n"},
		{name: "PutIfVersionStale", args: []string{"put", "lock", "owner-c", "--if-version", "5"}, code: exitConflict, stderrHas: "version mismatch"},
		{name: "PutIfVersion", args: []string{"--json", "put", "lock", "owner-c", "--if-version", "1"}, stdout: `{"key":"lock","bytes":7,"version":2}` + "\n"},
		{name: "BothConditions", args: []string{"put", "lock", "x", "--if-version", "2", "--if-absent"}, code: exitUsage, stderrHas: "together"},
		{name: "TTLAndMetadataTogether", args: []string{"--json", "put", "lease", "v", "--ttl", "1h", "--metadata", `{"a":1}`}, stdout: `{"key":"lease","bytes":1,"ttl":"1h0m0s","version":1}` + "\n"},
		{name: "DeleteIfVersionStale", args: []string{"delete", "lock", "--if-version", "1"}, code: exitConflict, stderrHas: "at version 2, want 1"},
		{name: "DeleteIfVersion", args: []string{"delete", "lock", "--if-version", "2"}, stdout: "deleted lock\n"},
		{name: "DeleteIfVersionZero", args: []string{"delete", "lock", "--if-version", "0"}, code: exitUsage, stderrHas: "versions start at 1"},
		{name: "Seed1", args: []string{"put", "job/1", "a"}},
		{name: "Seed2", args: []string{"put", "job/2", "b"}},
		{name: "Seed3", args: []string{"put", "jobs", "c"}},
		{name: "DeletePrefix", args: []string{"delete", "--prefix", "job/"}, stdout: "deleted 2 entries under \"job/\"\n"},
		{name: "DeletePrefixJSON", args: []string{"--json", "delete", "--prefix", "job/"}, stdout: `{"prefix":"job/","deleted":0}` + "\n"},
		{name: "DeletePrefixWithKey", args: []string{"delete", "jobs", "--prefix", "job"}, code: exitUsage},
		{name: "Left", args: []string{"list"}, stdout: "jobs\nlease\n"},
	})
}
