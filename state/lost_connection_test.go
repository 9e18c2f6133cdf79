package state

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestLostConnection: only a session that is gone may reset the pool; a call
// that timed out or was cancelled is not one, although
// context.DeadlineExceeded is a net.Error.
func TestLostConnection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		lost bool
	}{
		{"AdminShutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"ConnectionFailure", fmt.Errorf("x: %w", &pgconn.PgError{Code: "08006"}), true},
		{"UnexpectedEOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"ClosedSocket", &net.OpError{Op: "read", Err: net.ErrClosed}, true},
		{"DeadlineExceeded", context.DeadlineExceeded, false},
		{"WrappedDeadlineExceeded", fmt.Errorf("%w: waiting for a connection", context.DeadlineExceeded), false},
		{"Canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"WatchdogTimeout", fmt.Errorf("%w: %w", context.DeadlineExceeded, &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}), false},
		{"QueryCanceled", &pgconn.PgError{Code: "57014"}, false},
		{"UniqueViolation", &pgconn.PgError{Code: "23505"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := lostConnection(tc.err); got != tc.lost {
				t.Fatalf("lostConnection(%v) = %v, want %v", tc.err, got, tc.lost)
			}
		})
	}
}

// TestNoBackoffPastTheDeadline: a retry whose backoff would end after the
// operation's deadline is not attempted, and nothing sleeps.
func TestNoBackoffPastTheDeadline(t *testing.T) {
	t.Parallel()
	p := &Postgres{cfg: Config{MaxRetries: 3, RetryBackoff: 10 * time.Second}}
	serialization := &pgconn.PgError{Code: "40001"}
	start := time.Now()
	if p.shouldRetryBefore(context.Background(), start, idempotent, serialization, 0) {
		t.Fatal("retried with no time left")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("gave up after %v, want at once", took)
	}
	if p.stats.retries.Load() != 0 {
		t.Fatal("a retry was counted")
	}
	// With time left and a short backoff, the retry happens.
	p.cfg.RetryBackoff = time.Millisecond
	if !p.shouldRetryBefore(context.Background(), time.Now().Add(time.Minute), idempotent, serialization, 0) {
		t.Fatal("no retry with a minute left and a 1ms backoff")
	}
}
