package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// confirm asks before a command destroys data (checkpoint restore, migrate
// down of a store that holds entries), unless --yes was given. Without a
// terminal on stdin nobody can answer, so the command refuses rather than
// guess: scripts pass --yes.
func (a *app) confirm(cmd string, yes bool, what string) error {
	if yes {
		return nil
	}
	if !stdinIsTerminal(a.stdin) {
		return usagef("%s would %s; stdin is not a terminal to confirm it: pass --yes", cmd, what)
	}
	return askYes(a.stdin, a.stderr, cmd, what)
}

// askYes prompts on w and reads one answer from r: only y or yes goes on.
func askYes(r io.Reader, w io.Writer, cmd, what string) error {
	fmt.Fprintf(w, "statectl: %s will %s. Continue? [y/N] ", cmd, what)
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(w)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return usagef("%s: not confirmed; nothing was changed", cmd)
}
