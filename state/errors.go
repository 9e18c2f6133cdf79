package state

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/schema"
)

// Errors returned by the store. Check them with errors.Is; the message of the
// returned error adds the detail (which key, which limit).
var (
	// ErrEmptyKey: keys must be at least one byte long.
	ErrEmptyKey = errors.New("empty key")
	// ErrKeyTooLarge: keys are at most MaxKeySize bytes.
	ErrKeyTooLarge = errors.New("key too large")
	// ErrValueTooLarge: values are at most Config.MaxValueSize bytes.
	ErrValueTooLarge = errors.New("value too large")
	// ErrInvalidTTL: a TTL must be positive.
	ErrInvalidTTL = errors.New("invalid TTL")
	// ErrInvalidMetadata: metadata must be a valid JSON document.
	ErrInvalidMetadata = errors.New("invalid metadata")
	// ErrClosed: the store was used after Close.
	ErrClosed = errors.New("store is closed")
	// ErrCheckpointNotFound: no checkpoint has that id (or it was deleted).
	ErrCheckpointNotFound = errors.New("checkpoint not found")
	// ErrCheckpointNameTaken: another checkpoint already has that name.
	ErrCheckpointNameTaken = errors.New("checkpoint name in use")
	// ErrAmbiguousCheckpoint: a short id given to FindCheckpoint is the
	// prefix of more than one checkpoint's id. The error is an
	// *AmbiguousCheckpointError listing them.
	ErrAmbiguousCheckpoint = errors.New("ambiguous checkpoint id prefix")
	// ErrCodec: a Typed view's codec could not encode a value, or decode
	// the bytes stored under a key.
	ErrCodec = errors.New("codec failed")
	// ErrInvalidConfig: Open was given a setting it cannot use.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrInvalidSchemaName: Config.Schema is not a plain identifier.
	ErrInvalidSchemaName = schema.ErrInvalidSchemaName
	// ErrSchemaTooNew: the database was migrated by a newer pgstate release.
	ErrSchemaTooNew = schema.ErrSchemaTooNew
	// ErrSchemaOutdated: the store's tables are missing or older than this
	// release, and Open was told not to migrate (or the migrations were
	// rolled back under a running store).
	ErrSchemaOutdated = errors.New("database schema is not migrated to this release")
	// ErrPermissionDenied: the database role lacks a privilege the operation
	// needs (see the README's roles and grants).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnavailable: the database could not be reached, or the connection
	// broke and the operation could not be retried.
	ErrUnavailable = errors.New("database unavailable")
	// ErrVersionMismatch: a conditional write (IfVersion, IfAbsent) found
	// the key at another version and wrote nothing. The error is a
	// *VersionMismatchError carrying the version it found.
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrOutcomeUnknown: the connection broke after a write that is not
	// safe to repeat (a conditional write, a transaction's COMMIT) was sent,
	// so it may or may not have taken effect. Read the key to find out.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrInvalidOption: write options that contradict each other or do not
	// apply to the call.
	ErrInvalidOption = errors.New("invalid option")
	// ErrCompacted: a watch needs changes that the change log no longer
	// holds (compacted, or written while the feed was off). The error is a
	// *CompactedError carrying the newest revision that is gone.
	ErrCompacted = errors.New("change log compacted")
	// ErrChangeFeedOff: the store's change feed is switched off, so a watch
	// cannot see every change.
	ErrChangeFeedOff = errors.New("change feed is off")
)

// interpretError maps a driver error to the package's sentinels, keeping the
// original in the chain (errors.As still finds a *pgconn.PgError). It is the
// one place that knows SQLSTATE codes.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "23514" && pgErr.ConstraintName == "state_entries_key_length",
			pgErr.Code == "54000":
			return fmt.Errorf("%w: %w", ErrKeyTooLarge, err)
		case pgErr.Code == "23505" && pgErr.ConstraintName == "state_checkpoints_name_key":
			return fmt.Errorf("%w: %w", ErrCheckpointNameTaken, err)
		case pgErr.Code == "42P01", pgErr.Code == "42883", pgErr.Code == "3F000":
			// Undefined table, function or schema: the store is not migrated.
			return fmt.Errorf("%w: %w", ErrSchemaOutdated, err)
		case pgErr.Code == "42501":
			return fmt.Errorf("%w: %w", ErrPermissionDenied, err)
		case pgErr.Code == "22P05", // untranslatable character: jsonb refuses \u0000
			pgErr.Code == "22P02" && pgErr.DataTypeName == "jsonb", pgErr.Code == "22P02" && pgErr.Routine == "json_errsave_error",
			// Defensive: encodeMetadata refuses these first. The JSON
			// parser's routine is json_ereport_error before PostgreSQL 16;
			// metadata is the only text a store sends (22021: not UTF-8),
			// and its numbers the only numeric values (22003).
			pgErr.Code == "22P02" && pgErr.Routine == "json_ereport_error",
			pgErr.Code == "22021",
			pgErr.Code == "22003" && pgErr.Routine == "make_result_opt_error":
			return fmt.Errorf("%w: %w", ErrInvalidMetadata, err)
		case isConnectionClass(pgErr.Code):
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) && errors.Is(err, context.DeadlineExceeded) {
		// pgconn ends a connection attempt at ConnectTimeout with the
		// context error it used for that: the server did not answer, which
		// is unavailability. Callers add the context's own error back when
		// it was theirs that ended (see fail and query).
		return &connectTimeoutError{cause: connectErr}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if isConnectionError(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// connectTimeoutError is a connection attempt that ConnectTimeout ended. It
// matches ErrUnavailable and, through errors.As, the *pgconn.ConnectError,
// but not context.DeadlineExceeded, which is reserved for the caller's
// context and QueryTimeout.
type connectTimeoutError struct{ cause *pgconn.ConnectError }

func (e *connectTimeoutError) Error() string {
	return ErrUnavailable.Error() + ": no answer within the connect timeout: " + e.cause.Error()
}

func (e *connectTimeoutError) Unwrap() error { return ErrUnavailable }

func (e *connectTimeoutError) As(target any) bool {
	if t, ok := target.(**pgconn.ConnectError); ok {
		*t = e.cause
		return true
	}
	return false
}

// isCertificateError reports a server certificate that failed verification
// (wrong CA, wrong host name, expired): a configuration or security problem,
// not an outage.
func isCertificateError(err error) bool {
	var verifyErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var invalidErr x509.CertificateInvalidError
	return errors.As(err, &verifyErr) || errors.As(err, &hostErr) ||
		errors.As(err, &authErr) || errors.As(err, &invalidErr)
}

// isNoRows reports a query that found no row: for the store, an absent key
// or checkpoint rather than a failure.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// isConnectionClass reports SQLSTATEs that mean the session is gone or the
// server is going away: class 08 and 57P01..57P03.
func isConnectionClass(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03":
		return true
	}
	return len(code) == 5 && code[:2] == "08"
}

// isConnectionError reports failures of the connection itself (as opposed
// to errors the server returned), after which the outcome of a statement
// that was sent is unknown. A context that ended is not one, although
// context.DeadlineExceeded is a net.Error and pgx reports a statement it
// stopped for a context as a timeout of the connection.
func isConnectionError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, pgx.ErrTxClosed), errors.Is(err, net.ErrClosed):
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return false
	}
	// pgconn reports a connection it had to close this way.
	return pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed")
}
