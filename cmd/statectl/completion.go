package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// valueFlags are the global flags that take a value: completion skips the
// word after them when it looks for the command.
var valueFlags = []string{"--dsn", "--schema", "--key-encoding", "--value-encoding"}

func cmdCompletion(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("completion")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("completion", args, "SHELL"); err != nil {
		return err
	}
	switch args[0] {
	case "bash":
		io.WriteString(a.stdout, a.bashCompletion(ctx))
	case "zsh":
		// zsh runs the bash function through bashcompinit, so both shells
		// complete the same words.
		io.WriteString(a.stdout, "#compdef statectl\n# zsh completion for statectl; load it with: source <(statectl completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n")
		io.WriteString(a.stdout, a.bashCompletion(ctx))
	default:
		return usagef("completion: unknown shell %q: want bash or zsh", args[0])
	}
	return nil
}

// bashCompletion is a script completing commands, their actions and every
// command's own flags, taken from the flag sets themselves.
func (a *app) bashCompletion(ctx context.Context) string {
	global := map[string]bool{}
	var globals []string
	a.flagSet("statectl").VisitAll(func(f *flag.Flag) { globals = append(globals, "--"+f.Name); global[f.Name] = true })
	sort.Strings(globals)

	var b strings.Builder
	b.WriteString("# bash completion for statectl; load it with: source <(statectl completion bash)\n")
	b.WriteString("_statectl() {\n")
	b.WriteString("    local cur=\"${COMP_WORDS[COMP_CWORD]}\" cmd=\"\" i\n")
	b.WriteString("    for ((i = 1; i < COMP_CWORD; i++)); do\n")
	b.WriteString("        case \"${COMP_WORDS[i]}\" in\n")
	fmt.Fprintf(&b, "            %s) ((i++)) ;;\n", strings.Join(valueFlags, "|"))
	b.WriteString("            -*) ;;\n")
	b.WriteString("            *) cmd=\"${COMP_WORDS[i]}\"; break ;;\n")
	b.WriteString("        esac\n")
	b.WriteString("    done\n")
	b.WriteString("    local words\n")
	b.WriteString("    case \"$cmd\" in\n")
	fmt.Fprintf(&b, "        \"\") words=%q ;;\n", strings.Join(append(append(commandNames(), globals...), "--version"), " "))
	for _, name := range commandNames() {
		words := append([]string(nil), commandActions[name]...)
		if name == "help" {
			words = commandNames()
		} else if c, ok := findCommand(name); ok {
			if fs := a.commandFlags(ctx, c); fs != nil {
				fs.VisitAll(func(f *flag.Flag) {
					if !global[f.Name] {
						words = append(words, "--"+f.Name)
					}
				})
			}
			words = append(words, globals...)
		}
		fmt.Fprintf(&b, "        %s) words=%q ;;\n", name, strings.Join(words, " "))
	}
	b.WriteString("    esac\n")
	b.WriteString("    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n")
	b.WriteString("}\n")
	b.WriteString("complete -o default -F _statectl statectl\n")
	return b.String()
}
