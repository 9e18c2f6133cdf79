package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pgstate/pgstate/internal/testdb"
)

// The tests of this file each failed before the fix of one of issue 12's
// defects.

// silentServer accepts TCP connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestSilentServer: defect 1, a connect timeout is "unavailable", with the
// advice for a server that does not answer, within the DSN's timeout.
func TestSilentServer(t *testing.T) {
	t.Parallel()
	dsn := "postgres://postgres@" + silentServer(t) + "/none?sslmode=disable&connect_timeout=1"
	for _, args := range [][]string{{"count"}, {"migrate", "status"}} {
		start := time.Now()
		r := statectl(t, nil, append([]string{"--dsn", dsn}, args...)...)
		checkResult(t, step{name: strings.Join(args, " "), code: exitFailure, stderrHas: "check that PostgreSQL is running"}, r)
		if strings.Contains(r.stderr, "check the host") {
			t.Errorf("%s: stderr %q blames the credentials of a server that did not answer", args, r.stderr)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("%s took %v with connect_timeout=1", args, d)
		}
	}
}

// TestMigrateDownNegativeTarget: defect 2, -1 is not "one version".
func TestMigrateDownNegativeTarget(t *testing.T) {
	t.Parallel()
	for _, to := range []string{"-1", "-2"} {
		r := statectl(t, nil, "--dsn", unreachable, "migrate", "down", "--to", to)
		checkResult(t, step{name: "down --to " + to, code: exitUsage, stderrHas: "--to " + to + " is outside 0.."}, r)
	}
}

// TestErrorsSayThingsOnce: defect 3, no repeated text, and usage and flag
// names as the help writes them.
func TestErrorsSayThingsOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		has     string
		hasNot  string
		onceOf  string
		wantExt int
	}{
		{"FlagNeedsArgument", []string{"--dsn"}, "flag needs an argument: --dsn", "statectl: statectl:", "", exitUsage},
		{"ListUsage", []string{"--dsn", unreachable, "list", "x"}, "usage is 'statectl list [--prefix P]", "list '", "", exitUsage},
		{"DoubleDashFlagName", []string{"--dsn", unreachable, "put", "k", "v", "--ttl", "soon"}, "for flag --ttl", " -ttl", "", exitUsage},
		{"PreferTriesOnce", []string{"--dsn", "postgres://postgres@127.0.0.1:1/none?connect_timeout=5", "count"}, "connection refused", "", "connection refused", exitFailure},
		{"PreferTriesOnceMigrate", []string{"--dsn", "postgres://postgres@127.0.0.1:1/none?connect_timeout=5", "migrate", "status"}, "connection refused", "", "connection refused", exitFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := statectl(t, nil, tc.args...)
			checkResult(t, step{name: tc.name, code: tc.wantExt, stderrHas: tc.has}, r)
			if tc.hasNot != "" && strings.Contains(r.stderr, tc.hasNot) {
				t.Errorf("stderr %q contains %q", r.stderr, tc.hasNot)
			}
			if tc.onceOf != "" && strings.Count(r.stderr, tc.onceOf) != 1 {
				t.Errorf("stderr %q says %q %d times", r.stderr, tc.onceOf, strings.Count(r.stderr, tc.onceOf))
			}
		})
	}
}

// TestByteExactOutput: defect 4, raw output, escaped binary keys, base64
// in JSON instead of replaced bytes, and a text key with a binary value.
func TestByteExactOutput(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	blob := make([]byte, 1000)
	rand.Read(blob)
	blob[999] = '\n'
	runSteps(t, dsn, []step{
		{name: "PutBlob", args: []string{"put", "blob"}, stdin: string(blob)},
		{name: "GetRaw", args: []string{"get", "--raw", "blob"}, check: func(t *testing.T, r result) {
			if r.stdout != string(blob) {
				t.Errorf("get --raw printed %d bytes, want the %d bytes put", len(r.stdout), len(blob))
			}
		}},
		{name: "GetJSONBinaryValue", args: []string{"--json", "get", "blob"}, check: func(t *testing.T, r result) {
			e := decodeJSON[entryJSON](t, r)
			got, err := base64.StdEncoding.DecodeString(e.Value)
			if e.Encoding != "base64" || err != nil || !bytes.Equal(got, blob) {
				t.Errorf("--json get of a binary value: encoding %q, value decodes to %d bytes (%v); want base64 of the value", e.Encoding, len(got), err)
			}
		}},
		{name: "PutBinaryKey", args: []string{"--hex", "put", "6b00ff", "00"}},
		{name: "ListEscapes", args: []string{"list"}, check: func(t *testing.T, r result) {
			if !utf8.ValidString(r.stdout) || !strings.Contains(r.stdout, `"k\x00\xff"`) {
				t.Errorf("list printed %q, want the binary key quoted with escapes", r.stdout)
			}
		}},
		{name: "ListJSONBinaryKey", args: []string{"--json", "list"}, check: func(t *testing.T, r result) {
			got := decodeJSON[keysJSON](t, r)
			if got.Encoding != "base64" || len(got.Keys) != 2 || got.Keys[1] != base64Std([]byte("k\x00\xff")) {
				t.Errorf("--json list %+v, want base64 keys", got)
			}
		}},
		{name: "TextKeyHexValue", args: []string{"put", "config/bin", "--value-encoding", "hex", "00ff10"}, stdout: "stored config/bin (3 bytes, version 1)\n"},
		{name: "GetTextKeyHexValue", args: []string{"get", "config/bin", "--value-encoding", "hex"}, stdout: "00ff10\n"},
		{name: "BadValueEncoding", args: []string{"get", "config/bin", "--value-encoding", "rot13"}, code: exitUsage, stderrHas: "text, hex or base64"},
	})
}

// countingReader serves n zero bytes and counts what was read.
type countingReader struct {
	left int64
	read atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left))
	clear(p[:n])
	r.left -= int64(n)
	r.read.Add(int64(n))
	return n, nil
}

// TestPutStdinStopsAtLimit: defect 5, put stops reading at the limit, and
// --max-value-size moves it.
func TestPutStdinStopsAtLimit(t *testing.T) {
	t.Parallel()
	const limit = 64 << 20
	src := &countingReader{left: limit + 32<<20}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--dsn", unreachable, "put", "big")
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	cmd.Stdin = src
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != exitUsage || !strings.Contains(stderr.String(), "value too large") {
		t.Fatalf("put of 96 MiB: %v, stderr %q; want exit 2, value too large", err, stderr.String())
	}
	// The pipe and the copying goroutine hold at most a few buffers more.
	if n := src.read.Load(); n > limit+4<<20 {
		t.Errorf("statectl read %d bytes of stdin, want it to stop near the %d byte limit", n, limit)
	}

	dsn := testdb.DSN(t)
	runSteps(t, dsn, []step{
		{name: "LowerLimit", args: []string{"put", "k", "--max-value-size", "10"}, stdin: "eleven byte", code: exitUsage, stderrHas: "--max-value-size"},
		{name: "WithinLimit", args: []string{"put", "k", "--max-value-size", "11"}, stdin: "eleven byte", stdout: "stored k (11 bytes, version 1)\n"},
	})
}

// TestStatsExplained: defect 6, the sizes add up and every figure says
// what it counts.
func TestStatsExplained(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	big := make([]byte, 200<<10)
	rand.Read(big)
	runSteps(t, dsn, []step{
		{name: "PutBig", args: []string{"put", "big"}, stdin: string(big)},
		{name: "PutSmall", args: []string{"put", "small", "v"}},
		{name: "StatsJSON", args: []string{"--json", "stats"}, check: func(t *testing.T, r result) {
			var doc map[string]int64
			if err := json.Unmarshal([]byte(strings.Replace(r.stdout, `"schema":"public",`, "", 1)), &doc); err != nil {
				t.Fatalf("stats output %q: %v", r.stdout, err)
			}
			if doc["toast_bytes"] <= 0 || doc["table_bytes"]+doc["toast_bytes"]+doc["index_bytes"] != doc["total_bytes"] {
				t.Errorf("stats %v: want a TOAST size and table + toast + index = total", doc)
			}
			if _, ok := doc["checkpoint_data_bytes"]; !ok {
				t.Errorf("stats %v: want checkpoint_data_bytes beside the tables' disk size", doc)
			}
		}},
		{name: "StatsHuman", args: []string{"stats"}, check: func(t *testing.T, r result) {
			for _, want := range []string{"toast bytes", "not yet reclaimed", "exact", "estimate", "on disk"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stats output lacks %q:\n%s", want, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "(reclaimed by vacuum)") {
				t.Errorf("stats output still says dead rows are reclaimed:\n%s", r.stdout)
			}
		}},
	})
}

// TestMistypedSchema: defect 7, a schema that does not exist is said to be
// missing, and the advice is not to create it.
func TestMistypedSchema(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	r := statectl(t, nil, "--dsn", dsn, "--schema", "pubilc", "count")
	checkResult(t, step{name: "typo", code: exitFailure, stderrHas: `schema "pubilc" does not exist`}, r)
	if strings.Contains(r.stderr, "run 'statectl migrate up'") {
		t.Errorf("stderr %q advises creating the mistyped schema", r.stderr)
	}
}
