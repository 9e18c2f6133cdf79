package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

func TestStatsCounters(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, nil)
	ops := []func() error{
		func() error { return p.Put(bg, []byte("k1"), []byte("12345")) },       // 1 put, 7 bytes
		func() error { return p.Put(bg, []byte("k2"), []byte("abc")) },         // 1 put, 5 bytes
		func() error { _, _, err := p.Get(bg, []byte("k1")); return err },      // 1 get, 5 bytes read
		func() error { _, _, err := p.Get(bg, []byte("missing")); return err }, // 1 get
		func() error { _, err := p.Contains(bg, []byte("k2")); return err },    // 1 get
		func() error { return p.Delete(bg, []byte("k2")) },                     // 1 delete
		func() error {
			return p.BatchPut(bg, []state.Entry{{Key: []byte("a")}, {Key: []byte("b"), Value: []byte("xy")}})
		}, // 2 puts, 4 bytes
		func() error { _, err := p.CreateCheckpoint(bg); return err }, // 1 transaction
	}
	for i, op := range ops {
		if err := op(); err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if err := p.Put(bg, nil, nil); !errors.Is(err, state.ErrEmptyKey) {
		t.Fatal(err)
	}
	s := p.Stats()
	want := state.Stats{Gets: 3, Puts: 4, Deletes: 1, BytesRead: 5, BytesWritten: 16, Transactions: 1, Errors: 1}
	got := state.Stats{Gets: s.Gets, Puts: s.Puts, Deletes: s.Deletes, BytesRead: s.BytesRead, BytesWritten: s.BytesWritten, Transactions: s.Transactions, Errors: s.Errors}
	if got != want {
		t.Fatalf("counters = %+v\nwant %+v", got, want)
	}
	if s.Queries < 8 || s.Retries != 0 {
		t.Fatalf("Queries = %d, Retries = %d", s.Queries, s.Retries)
	}
	if s.TotalConns < 1 || s.MaxConns != p.Config().MaxConns || s.AcquireCount < 8 || s.IdleConns+s.AcquiredConns != s.TotalConns {
		t.Fatalf("pool figures: %+v", s)
	}
}

func TestHealthCheck(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, nil)
	if err := p.HealthCheck(bg); err != nil {
		t.Fatalf("HealthCheck on a fresh store: %v", err)
	}
	// Someone rolls the schema back under the running store.
	conn := testdb.Conn(t, p.Config().DSN)
	if err := schema.MigrateTo(bg, conn, "public", latest(t)-1); err != nil {
		t.Fatal(err)
	}
	if err := p.HealthCheck(bg); !errors.Is(err, state.ErrSchemaOutdated) {
		t.Fatalf("HealthCheck after a rollback = %v, want ErrSchemaOutdated", err)
	}
	if err := schema.Migrate(bg, conn, "public"); err != nil {
		t.Fatal(err)
	}
	if err := p.HealthCheck(bg); err != nil {
		t.Fatalf("HealthCheck after migrating again: %v", err)
	}
	p.Close()
	if err := p.HealthCheck(bg); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("HealthCheck after Close = %v, want ErrClosed", err)
	}
}

func TestTableStatsAndVacuum(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, nil)
	// An automatic ANALYZE would make the first estimate below non-empty.
	conn := testdb.Conn(t, p.Config().DSN)
	if _, err := conn.Exec(bg, `ALTER TABLE state_entries SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	var entries []state.Entry
	for i := range 200 {
		entries = append(entries, state.Entry{Key: []byte{byte(i), 1}, Value: bytes.Repeat([]byte("x"), 100)})
	}
	if err := p.BatchPut(bg, entries); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateCheckpoint(bg); err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for i := range 100 {
		keys = append(keys, []byte{byte(i), 1})
	}
	if n, err := p.DeleteMany(bg, keys); err != nil || n != 100 {
		t.Fatalf("DeleteMany = %d, %v", n, err)
	}
	if est, err := p.CountEstimate(bg); err != nil || est != -1 {
		t.Fatalf("CountEstimate before any ANALYZE = %d, %v; want -1", est, err)
	}
	// A session publishes its row counts at most once a second; counts
	// still held back when VACUUM runs would be added on top of VACUUM's
	// figures afterwards. Closing the pool's sessions makes them publish
	// everything now.
	p.Pool().Reset()
	waitFor(t, 30*time.Second, "the writes' row counts to be published", func() bool {
		return queryInt(t, conn, `SELECT n_tup_ins * 1000 + n_tup_del FROM pg_stat_user_tables WHERE relid = 'state_entries'::regclass`) == 200*1000+100
	})
	if err := p.Vacuum(bg); err != nil {
		t.Fatalf("Vacuum: %v", err)
	}
	if est, err := p.CountEstimate(bg); err != nil || est != 100 {
		t.Fatalf("CountEstimate after Vacuum = %d, %v; want 100", est, err)
	}
	var ts state.TableStats
	waitFor(t, 30*time.Second, "100 live and 0 dead rows after Vacuum", func() bool {
		var err error
		ts, err = p.TableStats(bg)
		if err != nil {
			t.Fatal(err)
		}
		return ts.LiveRows == 100 && ts.DeadRows == 0
	})
	if ts.TableBytes < 8192 || ts.IndexBytes < 8192 || ts.TotalBytes < ts.TableBytes+ts.IndexBytes || ts.CheckpointBytes < 8192 {
		t.Fatalf("TableStats = %+v", ts)
	}
}

// TestRetriesInjectedTransientErrors makes the database fail the first
// writes with a serialization failure (SQLSTATE 40001) from a trigger, the
// way a real conflict would, and checks what is retried and what is not.
func TestRetriesInjectedTransientErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		code        string
		failures    int
		maxRetries  int
		wantErr     bool
		wantRetries int64
	}{
		{"SerializationFailureRetried", "40001", 2, 3, false, 2},
		{"DeadlockRetried", "40P01", 1, 3, false, 1},
		{"RetriesExhausted", "40001", 5, 2, true, 2},
		{"RetriesDisabled", "40001", 1, 0, true, 0},
		{"PermanentErrorNotRetried", "P0001", 1, 3, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := testdb.Open(t, func(c *state.Config) {
				c.MaxRetries = tc.maxRetries
				c.RetryBackoff = time.Millisecond
			})
			conn := testdb.Conn(t, p.Config().DSN)
			_, err := conn.Exec(bg, `
				-- nextval is not rolled back with the failed statement.
				CREATE SEQUENCE attempts;
				CREATE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN
					IF nextval('attempts') <= `+itoa(tc.failures)+` THEN
						RAISE EXCEPTION 'injected failure' USING ERRCODE = '`+tc.code+`';
					END IF;
					RETURN NEW;
				END $$;
				CREATE TRIGGER inject_failure BEFORE INSERT ON state_entries
					FOR EACH ROW EXECUTE FUNCTION inject_failure();`)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Put(bg, []byte("k"), []byte("v"))
			if tc.wantErr {
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != tc.code {
					t.Fatalf("Put = %v, want SQLSTATE %s", err, tc.code)
				}
				if ok, _ := p.Contains(bg, []byte("k")); ok {
					t.Fatal("a failed Put left an entry")
				}
			} else if err != nil {
				t.Fatalf("Put = %v, want success after retries", err)
			}
			if got := p.Stats().Retries; got != tc.wantRetries {
				t.Fatalf("Retries = %d, want %d", got, tc.wantRetries)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestNoRetryAfterTheCallerGivesUp checks that a retryable failure is not
// retried once the caller's context is done.
func TestNoRetryAfterTheCallerGivesUp(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, func(c *state.Config) {
		c.MaxRetries = 10
		c.RetryBackoff = 200 * time.Millisecond
	})
	conn := testdb.Conn(t, p.Config().DSN)
	if _, err := conn.Exec(bg, `
		CREATE FUNCTION always_fail() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$;
		CREATE TRIGGER always_fail BEFORE INSERT ON state_entries FOR EACH ROW EXECUTE FUNCTION always_fail();`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Put(ctx, []byte("k"), []byte("v"))
	if err == nil {
		t.Fatal("Put succeeded")
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("Put took %v with a 300ms deadline", elapsed)
	}
	// Ten retries with a 200ms base backoff sleep for seconds; the deadline
	// must have stopped them early.
	if r := p.Stats().Retries; r >= int64(p.Config().MaxRetries) {
		t.Fatalf("%d retries within a 300ms deadline and 200ms base backoff", r)
	}
}

// TestQueryTimeoutBoundsOperations blocks operations on locks held by
// another transaction and checks that QueryTimeout cuts each one off, both
// for a context that never ends (the connection's watchdog bounds the
// statement) and for one that could end but has no deadline (a context
// deadline does), and that the store works normally afterwards.
func TestQueryTimeoutBoundsOperations(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	p := testdb.Open(t, func(c *state.Config) { c.QueryTimeout = timeout })
	if err := p.Put(bg, []byte("locked"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	cancellable, cancel := context.WithCancel(bg)
	defer cancel()
	ops := []struct {
		name string
		lock string
		op   func(ctx context.Context) error
	}{
		{"PutOnLockedRow", `SELECT 1 FROM state_entries WHERE key = 'locked' FOR UPDATE`,
			func(ctx context.Context) error { return p.Put(ctx, []byte("locked"), []byte("w")) }},
		{"DeleteOnLockedRow", `SELECT 1 FROM state_entries WHERE key = 'locked' FOR UPDATE`,
			func(ctx context.Context) error { return p.Delete(ctx, []byte("locked")) }},
		{"GetOnLockedTable", `LOCK TABLE state_entries IN ACCESS EXCLUSIVE MODE`,
			func(ctx context.Context) error { _, _, err := p.Get(ctx, []byte("locked")); return err }},
		{"ContainsOnLockedTable", `LOCK TABLE state_entries IN ACCESS EXCLUSIVE MODE`,
			func(ctx context.Context) error { _, err := p.Contains(ctx, []byte("locked")); return err }},
		{"CountOnLockedTable", `LOCK TABLE state_entries IN ACCESS EXCLUSIVE MODE`,
			func(ctx context.Context) error { _, err := p.Count(ctx); return err }},
	}
	conn := testdb.Conn(t, p.Config().DSN)
	for _, tc := range ops {
		for _, c := range []struct {
			name string
			ctx  context.Context
		}{{"Background", bg}, {"Cancellable", cancellable}} {
			t.Run(tc.name+"/"+c.name, func(t *testing.T) {
				tx, err := conn.Begin(bg)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback(bg)
				if _, err := tx.Exec(bg, tc.lock); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				err = tc.op(c.ctx)
				elapsed := time.Since(start)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("got %v, want context.DeadlineExceeded", err)
				}
				if elapsed < timeout-50*time.Millisecond || elapsed > 3*time.Second {
					t.Fatalf("gave up after %v with QueryTimeout %v", elapsed, timeout)
				}
				if err := tx.Rollback(bg); err != nil {
					t.Fatal(err)
				}
				// Nothing the cut-off call sent was applied, and the store
				// works normally.
				if v, _, err := p.Get(bg, []byte("locked")); err != nil || string(v) != "v" {
					t.Fatalf("Get after the timeout = %q, %v", v, err)
				}
			})
		}
	}
	// No server session is left waiting on a lock.
	if n := queryInt(t, conn, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`); n != 0 {
		t.Fatalf("%d sessions still wait on a lock", n)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStatementLogging(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := testdb.Open(t, func(c *state.Config) { c.Logger = logger })
	if err := p.Put(bg, []byte("secret-key"), []byte("secret-value")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Get(bg, []byte("secret-key")); err != nil {
		t.Fatal(err)
	}
	type record struct {
		Level, Msg, Query, Error string
		Rows                     *int64
		Duration                 *int64
	}
	var recs []record
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	names := map[string]record{}
	for _, r := range recs {
		names[r.Query] = r
	}
	for _, q := range []string{"EntryPut", "EntryGet"} {
		r, ok := names[q]
		if !ok || r.Level != "DEBUG" || r.Duration == nil || r.Rows == nil {
			t.Fatalf("no complete DEBUG record for %s in %s", q, buf.String())
		}
	}
	if strings.Contains(buf.String(), "secret") {
		t.Fatalf("keys or values were logged: %s", buf.String())
	}
}

// TestFailedStatementLogsNoData: a failed statement is logged with its
// SQLSTATE, not with the server's message, which may quote a stored value
// ("value "9999999999999999999" is out of range for type bigint"); the
// Increment itself fails with ErrNotInteger.
func TestFailedStatementLogsNoData(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := testdb.Open(t, func(c *state.Config) { c.Logger = logger })
	const stored = "9999999999999999999" // 19 digits, beyond int64
	if err := p.Put(bg, []byte("n"), []byte(stored)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Increment(bg, []byte("n"), 1); !errors.Is(err, state.ErrNotInteger) {
		t.Fatalf("Increment of %s: %v, want ErrNotInteger", stored, err)
	}
	out := buf.String()
	if strings.Contains(out, stored) {
		t.Fatalf("the stored value reached the log: %s", out)
	}
	if !strings.Contains(out, `"sqlstate":"22003"`) {
		t.Fatalf("the failed statement's SQLSTATE is not in the log: %s", out)
	}
}

func TestOpenRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: reaching the network would fail differently.
	base := state.DefaultConfig("postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	tests := []struct {
		name   string
		mutate func(*state.Config)
	}{
		{"EmptyDSN", func(c *state.Config) { c.DSN = "" }},
		{"ZeroMaxConns", func(c *state.Config) { c.MaxConns = 0 }},
		{"MinAboveMax", func(c *state.Config) { c.MinConns = 5; c.MaxConns = 4 }},
		{"NegativeMinConns", func(c *state.Config) { c.MinConns = -1 }},
		{"ZeroConnectTimeout", func(c *state.Config) { c.ConnectTimeout = 0 }},
		{"NegativeQueryTimeout", func(c *state.Config) { c.QueryTimeout = -time.Second }},
		{"UnknownSSLMode", func(c *state.Config) { c.SSLMode = "sometimes" }},
		{"NegativeRetries", func(c *state.Config) { c.MaxRetries = -1 }},
		{"RetriesWithoutBackoff", func(c *state.Config) { c.RetryBackoff = 0 }},
		{"NegativeCleanupInterval", func(c *state.Config) { c.CleanupInterval = -time.Second }},
		{"ZeroCleanupBatch", func(c *state.Config) { c.CleanupBatchSize = 0 }},
		{"NegativeRetention", func(c *state.Config) { c.CheckpointRetention = -1 }},
		{"ValueLimitAboveBytea", func(c *state.Config) { c.MaxValueSize = 1 << 30 }},
		{"BadSchema", func(c *state.Config) { c.Schema = "no way" }},
		{"UnparsableDSN", func(c *state.Config) { c.DSN = "postgres://[::1" }},
		{"UnknownDSNParameter", func(c *state.Config) { c.DSN = "host=127.0.0.1 port=notaport" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tc.mutate(&cfg)
			start := time.Now()
			p, err := state.Open(bg, cfg)
			if p != nil {
				p.Close()
			}
			if !errors.Is(err, state.ErrInvalidConfig) {
				t.Fatalf("Open = %v, want ErrInvalidConfig", err)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("Open spent %v before rejecting the config", time.Since(start))
			}
		})
	}
}

func TestOpenReportsUnreachableDatabase(t *testing.T) {
	t.Parallel()
	cfg := state.DefaultConfig("postgres://nobody@127.0.0.1:1/none")
	cfg.ConnectTimeout = time.Second
	_, err := state.Open(bg, cfg)
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Open on a closed port = %v, want ErrUnavailable", err)
	}
}

func TestUseAfterClose(t *testing.T) {
	t.Parallel()
	p := testdb.Open(t, nil)
	if err := p.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close() // a second Close is harmless
	if err := p.Put(bg, []byte("k"), []byte("w")); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Put after Close = %v", err)
	}
	if _, _, err := p.Get(bg, []byte("k")); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
	if _, err := p.ListKeys(bg, nil); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("ListKeys after Close = %v", err)
	}
	for _, err := range p.Scan(bg, nil) {
		if !errors.Is(err, state.ErrClosed) {
			t.Fatalf("Scan after Close = %v", err)
		}
	}
	conn := testdb.Conn(t, p.Config().DSN)
	var v []byte
	if err := conn.QueryRow(bg, `SELECT value FROM state_entries WHERE key = 'k'`).Scan(&v); err != nil || string(v) != "v" {
		t.Fatalf("stored value = %q, %v", v, err)
	}
}
