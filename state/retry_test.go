package state

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestTransientClassification(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code}) }
	// A session the server ended and said so (57P01-57P03, class 08) had
	// its statement aborted: every operation may run again. A connection
	// that just broke leaves a write's outcome unknown: only reads retry.
	tests := []struct {
		name          string
		err           error
		idempotent    bool
		onceOnlyRetry bool
	}{
		{"SerializationFailure", pg("40001"), true, true},
		{"Deadlock", pg("40P01"), true, true},
		{"AdminShutdown", pg("57P01"), true, true},
		{"CrashShutdown", pg("57P02"), true, true},
		{"CannotConnectNow", pg("57P03"), true, true},
		{"ConnectionFailure", pg("08006"), true, true},
		{"UniqueViolation", pg("23505"), false, false},
		{"SyntaxError", pg("42601"), false, false},
		{"QueryCanceled", pg("57014"), false, false},
		{"UnexpectedEOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true, false},
		{"Canceled", context.Canceled, false, false},
		{"DeadlineExceeded", fmt.Errorf("x: %w", context.DeadlineExceeded), false, false},
		{"Other", errors.New("something else"), false, false},
		// A write whose reply was lost is never repeated; a transaction
		// that lost its connection before COMMIT was rolled back.
		{"OutcomeUnknown", fmt.Errorf("%w: %w", ErrOutcomeUnknown, io.ErrUnexpectedEOF), false, false},
		{"AbortedTransaction", &abortedTx{io.ErrUnexpectedEOF}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := transient(tc.err, idempotent); got != tc.idempotent {
				t.Fatalf("transient(idempotent) = %v, want %v", got, tc.idempotent)
			}
			if got := transient(tc.err, onceOnly); got != tc.onceOnlyRetry {
				t.Fatalf("transient(onceOnly) = %v, want %v", got, tc.onceOnlyRetry)
			}
		})
	}
}

func TestInterpretError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"UndefinedTable", &pgconn.PgError{Code: "42P01"}, ErrSchemaOutdated},
		{"InsufficientPrivilege", &pgconn.PgError{Code: "42501"}, ErrPermissionDenied},
		{"KeyLengthCheck", &pgconn.PgError{Code: "23514", ConstraintName: "state_entries_key_length"}, ErrKeyTooLarge},
		{"IndexRowTooLarge", &pgconn.PgError{Code: "54000"}, ErrKeyTooLarge},
		{"AdminShutdown", &pgconn.PgError{Code: "57P01"}, ErrUnavailable},
		{"EOF", io.EOF, ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := interpretError(tc.err)
			if !errors.Is(got, tc.want) {
				t.Fatalf("interpretError = %v, want %v", got, tc.want)
			}
			// The driver's error stays reachable.
			var pgErr *pgconn.PgError
			if _, isPg := tc.err.(*pgconn.PgError); isPg && !errors.As(got, &pgErr) {
				t.Fatal("the *pgconn.PgError was lost")
			}
		})
	}
	if interpretError(nil) != nil {
		t.Fatal("interpretError(nil) != nil")
	}
	if err := interpretError(context.Canceled); err != context.Canceled {
		t.Fatalf("context.Canceled became %v", err)
	}
}

func TestCertificateErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	certErr := fmt.Errorf("connect: %w", x509.UnknownAuthorityError{})
	hostErr := fmt.Errorf("connect: %w", x509.HostnameError{Host: "db"})
	for _, e := range []error{certErr, hostErr} {
		if transient(e, idempotent) || lostConnection(e) {
			t.Fatalf("%v is treated as transient", e)
		}
	}
}
