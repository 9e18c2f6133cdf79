package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/state"
)

// usageError is a mistake on the command line; its message says how to fix
// it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// notFoundError is the answer "there is no such thing", which scripts test
// for with exit code 1.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }

// connectError is a failure to reach or log in to the server from the
// migrate commands, which connect without the state package.
type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// errHelpShown ends a command that printed its help on request.
var errHelpShown = errors.New("help shown")

// inputErrors are the state package's rejections of an argument: the fix is
// on the command line, so they count as usage errors.
var inputErrors = []error{
	state.ErrInvalidConfig,
	state.ErrInvalidSchemaName,
	state.ErrEmptyKey,
	state.ErrKeyTooLarge,
	state.ErrValueTooLarge,
	state.ErrInvalidTTL,
	state.ErrInvalidMetadata,
	state.ErrInvalidOption,
	state.ErrNotInteger,
}

func exitCode(err error) int {
	var ue *usageError
	var nf *notFoundError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &nf), errors.Is(err, state.ErrCheckpointNotFound):
		return exitNotFound
	case errors.Is(err, state.ErrVersionMismatch):
		return exitConflict
	}
	for _, target := range inputErrors {
		if errors.Is(err, target) {
			return exitUsage
		}
	}
	return exitFailure
}

// describe renders err as the one line printed after "statectl: ", adding
// what to do when the error itself does not say.
func describe(err error) string {
	msg := err.Error()
	// Server messages can span lines (DETAIL, HINT); operators grep logs by
	// line. pgx reports each connection attempt on a line of its own, and
	// sslmode=prefer makes two identical ones (with and without TLS): say
	// each once.
	var lines []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.Join(strings.Fields(line), " ")
		if line != "" && !slices.Contains(lines, line) {
			lines = append(lines, line)
		}
	}
	msg = strings.Join(lines, " ")
	if h := hint(err, msg); h != "" {
		msg += "; " + h
	}
	return msg
}

func hint(err error, msg string) string {
	var ce *connectError
	var pgConnect *pgconn.ConnectError
	switch {
	case errors.Is(err, state.ErrUnavailable):
		return "check that PostgreSQL is running and that --dsn or DATABASE_URL points to it"
	case errors.As(err, &ce), errors.As(err, &pgConnect):
		// The server answered but refused: a wrong database, user or
		// password rather than a server that is down.
		return "check the host, database, user and password in --dsn or DATABASE_URL"
	case errors.Is(err, state.ErrSchemaOutdated):
		if strings.Contains(msg, "migrate up") {
			return ""
		}
		return "run 'statectl migrate up' with the same --dsn and --schema"
	case errors.Is(err, state.ErrSchemaTooNew):
		return "use the statectl of the pgstate release that migrated this schema"
	case errors.Is(err, state.ErrPermissionDenied):
		return "connect as a role with the privileges listed in the README's roles and grants"
	case errors.Is(err, context.DeadlineExceeded):
		return "the server did not answer in time; check its load and the network"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return ""
}
