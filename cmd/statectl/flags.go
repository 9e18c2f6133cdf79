package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strings"
	"time"
)

// flagSet returns a flag set that also accepts the global flags, so that
// "statectl get --json KEY" works as well as "statectl --json get KEY". The
// globals are bound to the same variables, with their current values as
// defaults, so a later occurrence overrides an earlier one.
func (a *app) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// flag would print its own multi-line message; errors are reported once,
	// in one line, by run.
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.g.dsn, "dsn", a.g.dsn, "PostgreSQL connection string")
	fs.StringVar(&a.g.schema, "schema", a.g.schema, "the store's schema")
	fs.BoolVar(&a.g.json, "json", a.g.json, "JSON output")
	fs.BoolVar(&a.g.hex, "hex", a.g.hex, "hex keys and values")
	fs.BoolVar(&a.g.base64, "base64", a.g.base64, "base64 keys and values")
	fs.StringVar(&a.g.keyEncoding, "key-encoding", a.g.keyEncoding, "keys and prefixes as text, hex or base64")
	fs.StringVar(&a.g.valueEncoding, "value-encoding", a.g.valueEncoding, "values as text, hex or base64")
	return fs
}

// parse parses args with fs, letting flags follow positional arguments
// ("statectl get KEY --json"). Everything after "--" is positional, which is
// how a value starting with "-" is passed.
func (a *app) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				if c, ok := findCommand(fs.Name()); ok {
					a.helpFS = fs
					a.printCommandHelp(a.stdout, c, fs)
					return nil, errHelpShown
				}
			}
			return nil, a.flagError(fs.Name(), err)
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func (a *app) flagError(name string, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		a.printUsage(a.stdout)
		return errHelpShown
	}
	// The flag package names flags with one dash; the help, with two.
	msg := singleDash.ReplaceAllString(err.Error(), "$1--$2")
	if name == "statectl" {
		return usagef("%s: run 'statectl help' for usage", msg)
	}
	return usagef("%s: %s: run 'statectl help %s' for usage", name, msg, strings.Fields(name)[0])
}

// singleDash finds a flag name as the flag package writes it, "-ttl".
var singleDash = regexp.MustCompile(`(^|[\s:])-([a-z][a-z0-9-]*)`)

// wantArgs checks the number of positional arguments.
func wantArgs(cmd string, args []string, names ...string) error {
	if len(args) < len(names) {
		return usagef("%s: missing %s: usage is 'statectl %s'", cmd, names[len(args)], usageOf(cmd, names))
	}
	if len(args) > len(names) {
		return usagef("%s: unexpected argument %q: usage is 'statectl %s'", cmd, args[len(names)], usageOf(cmd, names))
	}
	return nil
}

// usageOf is the usage line of cmd: the command table's for a whole
// command, otherwise cmd followed by the argument names.
func usageOf(cmd string, names []string) string {
	for _, c := range commands {
		if c.name == cmd {
			return c.usage
		}
	}
	return strings.Join(append([]string{cmd}, names...), " ")
}

// onlyWith rejects flags given to an action they do not apply to, rather
// than silently ignoring them.
func onlyWith(fs *flag.FlagSet, action string, allowed ...string) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if globalFlags[f.Name] {
			return
		}
		for _, a := range allowed {
			if f.Name == a {
				return
			}
		}
		if err == nil {
			err = usagef("%s: --%s does not apply to %s", fs.Name(), f.Name, action)
		}
	})
	return err
}

// stdinIsTerminal reports whether r (stdin, or stdout) is a terminal: for
// stdin, reading would wait for someone to type, which for put means the
// value was forgotten.
func stdinIsTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// durationFlag rejects zero, negative and unrepresentable TTLs at parse
// time, so the error is a usage error naming the flag.
type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string { return f.d.String() }

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		// A TTL longer than a time.Duration holds is refused, never
		// wrapped or clamped, as the library would.
		return fmt.Errorf("want a duration such as 30s, 10m or 2h, at most %v", time.Duration(math.MaxInt64))
	}
	if d <= 0 {
		return errors.New("want a positive duration")
	}
	f.d, f.set = d, true
	return nil
}
