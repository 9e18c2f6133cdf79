package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pgstate/pgstate/schema"
)

// helpWidth is the terminal width every help line fits in.
const helpWidth = 80

// commandDetails adds, for commands with actions, one line per action to
// the command's own help.
var commandDetails = map[string][]string{
	"migrate": {
		"migrate up [--to N]            apply pending migrations (of every set)",
		"migrate down [--to N] [--yes]  roll back one version, or to N; asks first",
		"                               when the store holds entries",
		"migrate status                 the version of pgstate's and each --app set",
	},
	"checkpoint": {
		"checkpoint create [--name N] [--metadata JSON]",
		"checkpoint list",
		"checkpoint show REF",
		"checkpoint entries REF [list's flags]   read without restoring",
		"checkpoint get REF KEY [--raw]",
		"checkpoint restore REF [--yes]          asks first; prints entries written",
		"checkpoint delete REF",
		"REF is a full id, a name, or a unique prefix of the id (as 'git' takes",
		"short ids); an ambiguous prefix lists the ids it matches.",
	},
	"feed": {
		"feed status | on | off | compact --to REV",
	},
	"export": {
		"Each line is one JSON object: key and value in standard base64, the",
		"metadata document, and expires_at (RFC 3339) for an entry that expires.",
	},
	"completion": {
		"source <(statectl completion bash)   in ~/.bashrc",
		"source <(statectl completion zsh)    in ~/.zshrc",
	},
	"import": {
		"Reads export's lines from FILE or stdin and writes them in batches of",
		"1000 (each batch atomic), replacing existing keys. Entries whose",
		"expires_at has passed are skipped. Versions and times start afresh.",
	},
}

// commandActions are the words that may follow a command, for completion.
var commandActions = map[string][]string{
	"migrate":    {"up", "down", "status"},
	"checkpoint": {"create", "list", "show", "entries", "get", "restore", "delete"},
	"feed":       {"status", "on", "off", "compact"},
	"schema":     {"export"},
	"completion": {"bash", "zsh"},
}

// globalFlags are the flags flagSet adds to every command.
var globalFlags = map[string]bool{"dsn": true, "schema": true, "json": true, "hex": true, "base64": true, "key-encoding": true, "value-encoding": true}

func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func cmdHelp(ctx context.Context, a *app, args []string) error {
	switch len(args) {
	case 0:
		a.printUsage(a.stdout)
		return nil
	case 1:
		c, ok := findCommand(args[0])
		if !ok {
			return unknownCommand(args[0])
		}
		if c.name == "help" {
			a.printCommandHelp(a.stdout, c, nil)
			return nil
		}
		fs := a.commandFlags(ctx, c)
		a.printCommandHelp(a.stdout, c, fs)
		return nil
	}
	return usagef("help: unexpected argument %q: usage is 'statectl help [COMMAND]'", args[1])
}

// commandFlags returns the flag set c defines, by asking c for its help
// with the output thrown away: the command table stays the one place where
// flags are declared.
func (a *app) commandFlags(ctx context.Context, c command) *flag.FlagSet {
	probe := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, g: a.g}
	_ = c.run(ctx, probe, []string{"--help"})
	return probe.helpFS
}

// printCommandHelp prints one command's usage, summary, actions and flags.
func (a *app) printCommandHelp(w io.Writer, c command, fs *flag.FlagSet) {
	var b strings.Builder
	writeWrapped(&b, "Usage: statectl "+c.usage, "         ")
	b.WriteString("\n")
	writeWrapped(&b, strings.ToUpper(c.summary[:1])+c.summary[1:]+".", "")
	if d := commandDetails[c.name]; len(d) > 0 {
		b.WriteString("\n")
		for _, line := range d {
			b.WriteString("  " + line + "\n")
		}
	}
	var own []*flag.Flag
	if fs != nil {
		fs.VisitAll(func(f *flag.Flag) {
			if !globalFlags[f.Name] {
				own = append(own, f)
			}
		})
	}
	if len(own) > 0 {
		b.WriteString("\nFlags:\n")
		for _, f := range own {
			name, usage := flag.UnquoteUsage(f)
			if short, ok := map[string]string{"string": "TEXT", "int": "N", "int64": "N", "duration": "D", "value": "VALUE"}[name]; ok {
				name = short
			}
			left := "  --" + f.Name
			if name != "" {
				left += " " + name
			}
			if def := f.DefValue; def != "" && def != "0" && def != "false" && def != "-1" {
				usage += " (default " + def + ")"
			}
			const col = 26
			if utf8.RuneCountInString(left) >= col-1 {
				b.WriteString(left + "\n")
				writeWrapped(&b, strings.Repeat(" ", col)+usage, strings.Repeat(" ", col))
				continue
			}
			writeWrapped(&b, left+strings.Repeat(" ", col-utf8.RuneCountInString(left))+usage, strings.Repeat(" ", col))
		}
	}
	if c.name != "help" && c.name != "completion" && c.name != "schema" {
		b.WriteString("\n")
		writeWrapped(&b, "Global flags: --dsn, --schema, --json, --hex, --base64, --key-encoding, --value-encoding (see 'statectl help').", "")
	}
	io.WriteString(w, b.String())
}

// writeWrapped writes text as lines of at most helpWidth characters,
// continuing on lines that start with indent.
func writeWrapped(b *strings.Builder, text, indent string) {
	line := ""
	for _, word := range strings.Split(text, " ") {
		switch {
		case line == "" || strings.TrimSpace(line) == "":
			line += word
			if word == "" {
				line += " "
			}
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > helpWidth:
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = indent + word
		default:
			line += " " + word
		}
	}
	b.WriteString(strings.TrimRight(line, " ") + "\n")
}

// unknownCommand suggests the command name was meant, when one is close.
func unknownCommand(name string) error {
	if s := suggest(name); s != "" {
		return usagef("unknown command %q: did you mean %q? run 'statectl help' for the list of commands", name, s)
	}
	return usagef("unknown command %q: run 'statectl help' for the list of commands", name)
}

// suggest returns the command nearest to name: within two edits (a typo, a
// swapped pair of letters), or the only one name starts.
func suggest(name string) string {
	best, bestDist := "", 3
	var prefixed []string
	for _, c := range commands {
		if d := editDistance(strings.ToLower(name), c.name); d < bestDist {
			best, bestDist = c.name, d
		}
		if len(name) >= 2 && strings.HasPrefix(c.name, strings.ToLower(name)) {
			prefixed = append(prefixed, c.name)
		}
	}
	if best == "" && len(prefixed) == 1 {
		return prefixed[0]
	}
	if len(name) <= 2 && bestDist > 1 {
		// Two edits turn any two letters into many commands.
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent letters.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// version describes this build: the module version (a tag when installed
// with go install …@vX, "(devel)" from a checkout), the commit when the
// build recorded one, the schema version it migrates to and the Go release.
func version() string {
	v, rev := "(devel)", ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
			if s.Key == "vcs.modified" && s.Value == "true" && rev != "" {
				rev += "+dirty"
			}
		}
	}
	latest, _ := schema.Latest()
	return fmt.Sprintf("statectl %s%s (schema version %d, %s)", v, rev, latest, runtime.Version())
}

func commandNames() []string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	slices.Sort(names)
	return names
}
