package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// checkWidth fails the test for any line wider than 80 columns.
func checkWidth(t *testing.T, what, out string) {
	t.Helper()
	for i, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > helpWidth {
			t.Errorf("%s: line %d has %d columns: %q", what, i+1, n, line)
		}
	}
}

func TestHelpFits80Columns(t *testing.T) {
	t.Parallel()
	r := statectl(t, nil, "help")
	if r.code != exitOK || !strings.Contains(r.stdout, "Commands:") {
		t.Fatalf("help: exit %d, %q", r.code, r.stdout)
	}
	checkWidth(t, "help", r.stdout)
	for _, c := range commands {
		if !strings.Contains(r.stdout, "  "+c.name+" ") {
			t.Errorf("help does not list %s", c.name)
		}
	}
}

// TestCommandHelp checks, for every command, that "help CMD" and
// "CMD --help" print the same text: the command's usage line first, each of
// its own flags, within 80 columns.
func TestCommandHelp(t *testing.T) {
	t.Parallel()
	a := &app{}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			viaHelp := statectl(t, nil, "help", c.name)
			if viaHelp.code != exitOK || !strings.HasPrefix(viaHelp.stdout, "Usage: statectl "+c.name) {
				t.Fatalf("help %s: exit %d, stdout %q, stderr %q", c.name, viaHelp.code, viaHelp.stdout, viaHelp.stderr)
			}
			checkWidth(t, "help "+c.name, viaHelp.stdout)
			if c.name != "help" {
				viaFlag := statectl(t, nil, c.name, "--help")
				if viaFlag.code != exitOK || viaFlag.stdout != viaHelp.stdout {
					t.Fatalf("%s --help: exit %d, stdout %q; want help %s's %q", c.name, viaFlag.code, viaFlag.stdout, c.name, viaHelp.stdout)
				}
				if short := statectl(t, nil, c.name, "-h"); short.stdout != viaHelp.stdout {
					t.Errorf("%s -h differs from help %s", c.name, c.name)
				}
			}
			fs := a.commandFlags(context.Background(), c)
			if fs == nil {
				if c.name != "help" {
					t.Fatalf("no flag set captured for %s", c.name)
				}
				return
			}
			fs.VisitAll(func(f *flag.Flag) {
				if !globalFlags[f.Name] && !strings.Contains(viaHelp.stdout, "  --"+f.Name+" ") && !strings.Contains(viaHelp.stdout, "  --"+f.Name+"\n") {
					t.Errorf("help %s does not describe --%s:\n%s", c.name, f.Name, viaHelp.stdout)
				}
			})
		})
	}
	r := statectl(t, nil, "help", "lsit")
	if r.code != exitUsage || !strings.Contains(r.stderr, `did you mean "list"?`) {
		t.Errorf("help lsit: exit %d, %q", r.code, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"--version", "-version"} {
		r := statectl(t, nil, flag)
		if r.code != exitOK || !strings.HasPrefix(r.stdout, "statectl ") || !strings.Contains(r.stdout, "(schema version 10, go") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", flag, r.code, r.stdout, r.stderr)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ typed, want string }{
		{"lsit", "list"}, {"chekpoint", "checkpoint"}, {"checkpiont", "checkpoint"}, {"improt", "import"},
		{"Get", "get"}, {"migrat", "migrate"}, {"compl", "completion"}, {"stat", "stats"},
		{"frobnicate", ""}, {"xy", ""},
	} {
		r := statectl(t, nil, "--dsn", unreachable, tc.typed)
		if r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "`+tc.typed+`"`) {
			t.Errorf("%s: exit %d, stderr %q", tc.typed, r.code, r.stderr)
		}
		suggestion := `did you mean "` + tc.want + `"?`
		if tc.want == "" && strings.Contains(r.stderr, "did you mean") || tc.want != "" && !strings.Contains(r.stderr, suggestion) {
			t.Errorf("%s: stderr %q, want the suggestion %q", tc.typed, r.stderr, tc.want)
		}
	}
}

// TestExportImport round-trips binary keys and values, metadata and expiry
// through export and import, into another store.
func TestExportImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := testdb.Open(t, nil)
	dst := testdb.Open(t, nil)
	entries := []state.Entry{
		{Key: []byte{0x00, 0xff, 0x10}, Value: []byte{0xde, 0xad, 0x00, 0xbe, 0xef}},
		{Key: []byte("user/\xc3\x28"), Value: []byte("not utf-8 key"), Metadata: json.RawMessage(`{"team":"ops","n":[1,2.5,null]}`)},
		{Key: []byte("user/2"), Value: []byte{}, TTL: time.Hour},
		{Key: []byte("user/3"), Value: []byte("line1\nline2\"\\"), Metadata: json.RawMessage(`{"a":{"b":"\u00e9"}}`), TTL: 90 * time.Minute},
		{Key: []byte("other"), Value: bytes.Repeat([]byte{1, 2, 3}, 10000)},
	}
	if err := src.BatchPut(ctx, entries); err != nil {
		t.Fatal(err)
	}
	if err := src.PutWithTTL(ctx, []byte("gone"), []byte("x"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	srcDSN, dstDSN := src.Config().DSN, dst.Config().DSN

	r := statectl(t, nil, "--dsn", srcDSN, "export")
	if r.code != exitOK {
		t.Fatalf("export: exit %d, %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(entries) {
		t.Fatalf("export printed %d lines, want %d (the expired entry left out):\n%s", len(lines), len(entries), r.stdout)
	}
	var first exportLine
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Key != base64.StdEncoding.EncodeToString([]byte{0x00, 0xff, 0x10}) {
		t.Fatalf("first line %s: %+v, %v; want the smallest key in base64", lines[0], first, err)
	}

	file := filepath.Join(t.TempDir(), "dump.jsonl")
	r = statectl(t, nil, "--dsn", srcDSN, "export", "--output", file)
	if r.code != exitOK || r.stdout != "exported 5 entries to "+file+"\n" {
		t.Fatalf("export --output: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(file); string(b) != strings.Join(lines, "\n")+"\n" {
		t.Fatalf("the file differs from stdout's export")
	}
	r = statectl(t, nil, "--dsn", dstDSN, "import", file)
	if r.code != exitOK || r.stdout != "imported 5 entries\n" {
		t.Fatalf("import: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range entries {
		got, found, err := dst.GetEntry(ctx, want.Key)
		if err != nil || !found || !bytes.Equal(got.Value, want.Value) {
			t.Fatalf("imported %q: %x, %v, %v; want %x", want.Key, got.Value, found, err, want.Value)
		}
		orig, _, _ := src.GetEntry(ctx, want.Key)
		if !jsonSame(t, got.Metadata, orig.Metadata) {
			t.Errorf("imported %q metadata %s, want %s", want.Key, got.Metadata, orig.Metadata)
		}
		if !got.ExpiresAt.Equal(orig.ExpiresAt) {
			t.Errorf("imported %q expires %v, want %v", want.Key, got.ExpiresAt, orig.ExpiresAt)
		}
	}
	// Exporting the copy gives the same lines, but for the instant of
	// expiry, which import can only set relative to its own clock.
	r = statectl(t, nil, "--dsn", dstDSN, "export")
	again := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(again) != len(lines) {
		t.Fatalf("re-export: %d lines, want %d", len(again), len(lines))
	}
	for i := range lines {
		var a, b exportLine
		json.Unmarshal([]byte(lines[i]), &a)
		json.Unmarshal([]byte(again[i]), &b)
		if a.Key != b.Key || a.Value != b.Value || !jsonSame(t, a.Metadata, b.Metadata) || (a.ExpiresAt == nil) != (b.ExpiresAt == nil) || a.ExpiresAt != nil && !a.ExpiresAt.Equal(*b.ExpiresAt) {
			t.Errorf("line %d: %s, re-exported %s", i, lines[i], again[i])
		}
	}

	// A prefix on either side; stdin as input; expired lines skipped.
	r = statectl(t, nil, "--dsn", srcDSN, "export", "--prefix", "user/")
	if n := strings.Count(r.stdout, "\n"); r.code != exitOK || n != 3 {
		t.Fatalf("export --prefix user/: exit %d, %d lines", r.code, n)
	}
	third := testdb.Open(t, nil)
	past := `{"key":"` + base64.StdEncoding.EncodeToString([]byte("old")) + `","value":"","expires_at":"2001-01-01T00:00:00Z"}` + "\n"
	r = statectl(t, []byte(strings.Join(lines, "\n")+"\n"+past), "--dsn", third.Config().DSN, "--json", "import", "--prefix", "user/")
	if r.code != exitOK || r.stdout != `{"expired":0,"imported":3,"outside_prefix":3}`+"\n" {
		t.Fatalf("import --prefix from stdin: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r = statectl(t, []byte(past), "--dsn", third.Config().DSN, "import")
	if r.code != exitOK || r.stdout != "imported 0 entries; skipped 1 already expired\n" {
		t.Fatalf("import of an expired line: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	// Bad input is a usage error naming the entry.
	for _, bad := range []string{`{"key":"!!","value":""}`, `{"key":"AA==","value":"","extra":1}`, `not json`} {
		r = statectl(t, []byte(lines[0]+"\n"+bad+"\n"), "--dsn", third.Config().DSN, "import")
		if r.code != exitUsage || !strings.Contains(r.stderr, "import: entry 2:") || !strings.Contains(r.stderr, "1 entry was imported before it") {
			t.Errorf("import of %q: exit %d, stderr %q", bad, r.code, r.stderr)
		}
	}
}

func jsonSame(t *testing.T, a, b []byte) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

// TestMigrateDownConfirmation: rolling back a store that holds entries
// needs --yes (or a terminal's yes); an empty one does not.
func TestMigrateDownConfirmation(t *testing.T) {
	t.Parallel()
	dsn := testdb.EmptyDSN(t)
	runSteps(t, dsn, []step{
		{name: "Up", args: []string{"migrate", "up"}},
		{name: "DownEmpty", args: []string{"migrate", "down"}, stdout: "migrated schema public from version 10 to 9\n"},
		{name: "UpAgain", args: []string{"migrate", "up"}},
		{name: "Put", args: []string{"put", "k", "v"}},
		{name: "DownRefused", args: []string{"migrate", "down", "--to", "0"}, code: exitUsage,
			stderrHas: "migrate down would roll schema public back from version 10 to 0 while it holds 1 entry; stdin is not a terminal to confirm it: pass --yes"},
		{name: "Unchanged", args: []string{"get", "k"}, stdout: "v\n"},
		{name: "DownYes", args: []string{"migrate", "down", "--to", "0", "--yes"}, stdout: "migrated schema public from version 10 to 0\n"},
		{name: "YesOnStatus", args: []string{"migrate", "status", "--yes"}, code: exitUsage, stderrHas: "--yes does not apply"},
	})
}

// TestCompletion runs the bash script in bash as bash's completion would,
// and checks the zsh script wraps the same function.
func TestCompletion(t *testing.T) {
	t.Parallel()
	r := statectl(t, nil, "completion", "bash")
	if r.code != exitOK || !strings.Contains(r.stdout, "complete -o default -F _statectl statectl") {
		t.Fatalf("completion bash: exit %d, %q", r.code, r.stderr)
	}
	script := filepath.Join(t.TempDir(), "statectl.bash")
	if err := os.WriteFile(script, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	complete := func(words ...string) []string {
		t.Helper()
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		cmd := "source " + script + "; COMP_WORDS=(statectl " + strings.Join(quoted, " ") + "); COMP_CWORD=" + strconv.Itoa(len(words)) + "; _statectl; printf '%s\\n' \"${COMPREPLY[@]}\""
		out, err := exec.Command(bash, "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		var got []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if sc.Text() != "" {
				got = append(got, sc.Text())
			}
		}
		return got
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"chec"}, []string{"checkpoint"}},
		{[]string{"--dsn", "postgres://x", "ex"}, []string{"expire", "export"}},
		{[]string{"checkpoint", "re"}, []string{"restore"}},
		{[]string{"checkpoint", "--y"}, []string{"--yes"}},
		{[]string{"migrate", "d"}, []string{"down"}},
		{[]string{"--json", "get", "--r"}, []string{"--raw"}},
		{[]string{"help", "imp"}, []string{"import"}},
		{[]string{"completion", ""}, []string{"bash", "zsh"}},
		{[]string{"--vers"}, []string{"--version"}},
	} {
		got := complete(tc.words...)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("completing %q: %q, want %q among them", tc.words, got, w)
			}
		}
		if len(tc.want) == 1 && len(got) != 1 {
			t.Errorf("completing %q: %q, want only %q", tc.words, got, tc.want)
		}
	}
	z := statectl(t, nil, "completion", "zsh")
	if z.code != exitOK || !strings.HasPrefix(z.stdout, "#compdef statectl\n") || !strings.Contains(z.stdout, "bashcompinit") || !strings.HasSuffix(z.stdout, r.stdout) {
		t.Errorf("completion zsh: exit %d, %q", z.code, z.stdout)
	}
	if bad := statectl(t, nil, "completion", "fish"); bad.code != exitUsage || !strings.Contains(bad.stderr, `unknown shell "fish"`) {
		t.Errorf("completion fish: exit %d, %q", bad.code, bad.stderr)
	}
}
