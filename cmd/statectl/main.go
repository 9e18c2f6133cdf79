// Command statectl is the operator's command line for a pgstate store: it
// migrates the schema, reads and writes entries, manages checkpoints and
// reports on the store's health and size.
//
// Usage:
//
//	statectl [global flags] COMMAND [flags] [arguments]
//	statectl help COMMAND      (or COMMAND --help): one command's usage and flags
//	statectl --version
//	statectl completion bash   (or zsh): a shell completion script
//
// Global flags (accepted before or after the command):
//
//	--dsn DSN      PostgreSQL connection string (default $DATABASE_URL)
//	--schema NAME  the store's schema (default public)
//	--json         print one JSON document per command, for scripts
//	--hex          keys, prefixes and values are hex on input and output
//	--base64       keys, prefixes and values are standard base64
//
// Without --hex or --base64, keys and values are taken and printed as text;
// binary data, in particular in --json output, needs one of them.
//
// Only the migrate commands change the schema; every other command opens
// the store with Config.SkipMigrations and fails if the schema is not at the
// version this release expects.
//
// Exit codes:
//
//	0  success
//	1  not found: get of a missing key, an unknown checkpoint
//	2  usage error: unknown command, bad flag, missing argument, bad encoding
//	3  any other failure: connection, authentication, database error
//	4  condition failed: put --if-version/--if-absent or delete --if-version
//	   found the key at another version, and wrote nothing
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes, part of the command's documented interface.
const (
	exitOK       = 0
	exitNotFound = 1
	exitUsage    = 2
	exitFailure  = 3
	exitConflict = 4
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globals are the flags every command accepts.
type globals struct {
	dsn    string
	schema string
	json   bool
	hex    bool
	base64 bool
	// keyEncoding and valueEncoding override --hex/--base64 for one side.
	keyEncoding   string
	valueEncoding string
}

// app carries the streams and global settings of one invocation, so that
// run can be driven without a process.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	g      globals
	// maxValueSize is put's --max-value-size, for the store's check too.
	maxValueSize int
	// helpFS is the flag set of the command whose help was shown, for
	// help COMMAND and completion.
	helpFS *flag.FlagSet
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{
		stdin:  stdin,
		stdout: stdout,
		stderr: stderr,
		g:      globals{dsn: os.Getenv("DATABASE_URL"), schema: "public"},
	}
	err := a.dispatch(ctx, args)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelpShown) {
		return exitOK
	}
	fmt.Fprintln(stderr, "statectl: "+describe(err))
	return exitCode(err)
}

// command is one entry of the command table; usage doubles as the help line.
type command struct {
	name    string
	usage   string
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

var commands []command

func init() {
	// Assigned here rather than in the declaration because help refers back
	// to the table.
	commands = []command{
		{"migrate", "migrate up|down|status [--to N] [--app NAME=DIR]... [--set NAME]", "apply, roll back (one version, or to N) or show migrations, pgstate's and the application's", cmdMigrate},
		{"schema", "schema export DIR", "write pgstate's migrations to DIR, for an application's sqlc.yaml", cmdSchema},
		{"get", "get KEY", "print the value of KEY (exit 1 if missing)", cmdGet},
		{"put", "put KEY [VALUE] [--ttl D] [--metadata JSON] [--if-version V|--if-absent]", "store VALUE (or stdin) under KEY", cmdPut},
		{"delete", "delete KEY [--if-version V] | delete --prefix P", "remove KEY, or every key under P", cmdDelete},
		{"list", "list [--prefix P] [--start K] [--end K] [--start-after K] [--limit N] [--reverse] [--values]", "print the keys (and values) under P or in [start, end), sorted", cmdList},
		{"find", "find --metadata JSON [list's flags]", "print the entries whose metadata contains JSON", cmdFind},
		{"expire", "expire KEY DURATION", "make KEY expire DURATION from now, value untouched", cmdExpire},
		{"persist", "persist KEY", "remove KEY's expiry", cmdPersist},
		{"ttl", "ttl KEY", "print how long KEY has left", cmdTTL},
		{"incr", "incr KEY [N]", "add N (default 1) to the integer under KEY", cmdIncr},
		{"count", "count", "print the number of live entries", cmdCount},
		{"checkpoint", "checkpoint create|list|show|entries|get|restore|delete", "manage snapshots of every entry", cmdCheckpoint},
		{"cleanup", "cleanup", "delete expired entries now", cmdCleanup},
		{"vacuum", "vacuum", "VACUUM ANALYZE the store's tables", cmdVacuum},
		{"stats", "stats", "print entry counts and table sizes", cmdStats},
		{"health", "health", "check the connection and the schema version", cmdHealth},
		{"watch", "watch [--prefix P] [--from REV] [--values] [--limit N]", "print each change as it happens, one line (or JSON object) each", cmdWatch},
		{"feed", "feed status|on|off|compact --to REV", "show, switch or compact the change feed", cmdFeed},
		{"export", "export [--prefix P] [--output FILE]", "write the entries (under P) as JSON lines, bytes in base64", cmdExport},
		{"import", "import [--prefix P] [FILE]", "write the entries of export's JSON lines (from stdin without FILE)", cmdImport},
		{"completion", "completion bash|zsh", "print a bash or zsh completion script", cmdCompletion},
		{"help", "help [COMMAND]", "print this help, or COMMAND's usage and flags", cmdHelp},
	}
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	fs := a.flagSet("statectl")
	showVersion := fs.Bool("version", false, "print statectl's version")
	if err := fs.Parse(args); err != nil {
		return a.flagError("statectl", err)
	}
	if *showVersion {
		fmt.Fprintln(a.stdout, version())
		return nil
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("no command: run 'statectl help' for the list of commands")
	}
	name := rest[0]
	if c, ok := findCommand(name); ok {
		return c.run(ctx, a, rest[1:])
	}
	return unknownCommand(name)
}

func (a *app) printUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString(`statectl manages a pgstate store.

Usage:
  statectl [global flags] COMMAND [flags] [arguments]
  statectl help COMMAND   a command's usage and flags (also: COMMAND --help)

Commands:
`)
	for _, c := range commands {
		writeWrapped(&b, fmt.Sprintf("  %-12s%s", c.name, c.summary), strings.Repeat(" ", 14))
	}
	b.WriteString(`
Global flags (before or after the command):
  --dsn DSN      PostgreSQL connection string (default $DATABASE_URL)
  --schema NAME  the store's schema (default public)
  --json         machine-readable output, one JSON document
  --hex          keys, prefixes and values in hex, on input and output
  --base64       keys, prefixes and values in standard base64
  --key-encoding, --value-encoding text|hex|base64
                 the encoding of one side only
  --version      print statectl's version

Without --hex or --base64, get prints the value followed by a newline, and
put reads stdin byte for byte when VALUE is omitted. In --json output keys
and values are strings in the chosen encoding, so binary data needs --hex or
--base64 there.

Exit codes: 0 success, 1 not found, 2 usage error, 3 any other failure
(connection or database error), 4 condition failed (--if-version,
--if-absent: the key is at another version; nothing was written).
`)
	io.WriteString(w, b.String())
}
