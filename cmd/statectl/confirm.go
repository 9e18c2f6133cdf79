package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/gen"
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

// liveEntries counts the store's live entries, for migrate down's question;
// a schema without the entries table holds none. It connects with the
// store's schema as search_path, as the store does, so the generated query
// runs unchanged.
func (a *app) liveEntries(ctx context.Context) (int64, error) {
	cc, schemaName, err := a.connConfig()
	if err != nil {
		return 0, err
	}
	cc.RuntimeParams["search_path"] = pgx.Identifier{schemaName}.Sanitize()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return 0, &connectError{err: err}
	}
	defer closeConn(conn)
	n, err := gen.New().EntriesCount(ctx, conn)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count the entries of schema %s: %w", schemaName, err)
	}
	return n, nil
}
