package state

import (
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/schema"
)

// Config holds every setting of a store. Start from DefaultConfig and change
// what you need; Open validates the whole struct and rejects anything it
// cannot honour with ErrInvalidConfig.
type Config struct {
	// DSN is a PostgreSQL connection string, URL ("postgres://…") or
	// keyword/value ("host=… dbname=…") form. Settings below override the
	// same settings in the DSN.
	DSN string

	// Schema is the PostgreSQL schema that holds the store's tables. Each
	// schema is an independent store. Default "public".
	Schema string

	// MinConns and MaxConns size the connection pool (pgxpool MinConns and
	// MaxConns). Defaults 2 and 10.
	MinConns int32
	MaxConns int32

	// ConnectTimeout bounds establishing one connection, including TLS and
	// authentication. Default 30s.
	ConnectTimeout time.Duration

	// QueryTimeout bounds every operation whose context has no earlier
	// deadline, retries included. At most about 24.8 days (PostgreSQL's
	// statement_timeout limit). Default 60s.
	QueryTimeout time.Duration

	// SSLMode is one of disable, allow, prefer, require, verify-ca,
	// verify-full. Empty keeps the DSN's setting (libpq's default is prefer).
	SSLMode string
	// SSLCert and SSLKey are the paths of a client certificate and its key.
	SSLCert string
	SSLKey  string
	// SSLRootCert is the path of the CA certificate(s) used to verify the
	// server with verify-ca and verify-full.
	SSLRootCert string

	// MaxRetries is how many times an operation is retried after a transient
	// failure (serialization failure, deadlock, lost connection, server
	// restarting). 0 disables retries. Default 3.
	MaxRetries int
	// RetryBackoff is the base delay before the first retry; each further
	// retry doubles it, with full jitter. Default 100ms.
	RetryBackoff time.Duration

	// Logger, when set, receives one record per SQL statement (name,
	// duration, rows, error) at LogLevel; failed statements are logged at
	// Warn. Keys and values are never logged.
	Logger *slog.Logger
	// LogLevel is the level of statement records. Default slog.LevelDebug.
	LogLevel slog.Level
	// Tracer, when set, is a pgx tracer of the application's (its own, or
	// otelpgstate's) that sees every statement next to the Logger's; any
	// of pgx's tracer interfaces it also implements (batch, copy, connect…)
	// are called too (pgx's multitracer).
	Tracer pgx.QueryTracer

	// CleanupInterval, when positive, starts a background cleaner that
	// deletes expired entries at this interval. Among all processes sharing
	// a store only one cleans at a time. Default 0 (off).
	CleanupInterval time.Duration
	// CleanupBatchSize is the most rows one cleanup statement deletes, 1 to
	// math.MaxInt32. Default 10000.
	CleanupBatchSize int

	// CheckpointRetention, when positive, keeps only the newest N
	// checkpoints: CreateCheckpoint deletes older ones. At most
	// math.MaxInt32. Default 0 (keep all).
	CheckpointRetention int

	// ChangeRetention is how long the change log keeps a change: older
	// ones are deleted in the background, by the cleaner's rounds when
	// CleanupInterval is set and otherwise every tenth of the retention (at
	// least every 10 minutes), after which a watch cannot resume from them
	// (ErrCompacted). Every process of the store may do it; the deletes are
	// idempotent. 0 keeps every change until CompactChanges. Default 24h.
	ChangeRetention time.Duration

	// MaxValueSize is the largest value accepted, in bytes. Default 64 MiB;
	// PostgreSQL itself caps a bytea at 1 GiB.
	MaxValueSize int

	// Migrations are the application's own migration sets, applied in
	// Schema after pgstate's and under the same lock (see schema.Set). With
	// SkipMigrations Open only checks that each is at its latest version.
	Migrations []schema.Set

	// SkipMigrations stops Open from applying migrations; it then only checks
	// that the schema is at the version this release expects. Use it when
	// the application's role may not change the schema.
	SkipMigrations bool

	// QueryExecMode is how pgx sends statements. The default,
	// pgx.QueryExecModeCacheStatement, prepares each statement once per
	// connection and then runs it in one round trip; it needs the server
	// session to keep its prepared statements, which a transaction-mode
	// pooler (PgBouncer 1.18) does not. Behind one use
	// pgx.QueryExecModeExec (one round trip, text parameters) or
	// pgx.QueryExecModeSimpleProtocol (parameters interpolated by pgx).
	// CacheDescribe and DescribeExec are for direct connections only: they
	// describe a statement in a round trip of its own, which a pooler may
	// send to another server session, outside the transaction that sets
	// search_path.
	QueryExecMode pgx.QueryExecMode

	// TransactionPooler says that DSN reaches PostgreSQL through a pooler in
	// transaction mode (PgBouncer pool_mode = transaction): each transaction
	// may run on another server session, one that other clients (other
	// schemas, other programs) used before. The store then relies on no
	// session state: search_path and statement_timeout, otherwise set once
	// per connection, are set for each transaction (set_config(…, true)),
	// sent in the same round trip as the statement. It needs QueryExecMode
	// Exec or SimpleProtocol.
	TransactionPooler bool
	// DirectDSN, with TransactionPooler, reaches the same database without
	// the pooler. Open applies pending migrations over it, because the
	// migrator holds a session-level advisory lock. Empty: Open applies
	// none and only checks the schema version (as with SkipMigrations).
	DirectDSN string

	// Replicas are DSNs of streaming standbys of the primary that DSN
	// reaches. Reads (Get, Contains, ListKeys, Count, CountEstimate) go to
	// one of them only when asked: per call with ReadFromReplica or
	// ReadFromReplicaAfter, or for every call with ReplicaReads. Writes,
	// conditional writes, transactions, checkpoints and every other call
	// always go to the primary, and so does a read when no replica is
	// healthy. See replica.go for the guarantee of each read mode.
	Replicas []string
	// ReplicaReads sends every eligible read to a replica unless its context
	// says ReadFromPrimary. Default false: reads go to the primary.
	ReplicaReads bool
	// ReplicaMaxLag: a replica whose replay lag exceeds it serves no reads
	// until it catches up. Default 5s.
	ReplicaMaxLag time.Duration
	// ReplicaCheckInterval is how often each replica's health and replay lag
	// are measured. Default 1s.
	ReplicaCheckInterval time.Duration
	// ReplicaWaitTimeout bounds how long a ReadFromReplicaAfter read waits
	// for a replica to replay the position it names before it reads from
	// the primary instead. Default 500ms.
	ReplicaWaitTimeout time.Duration
}

// DefaultConfig returns the configuration Open uses for dsn when nothing else
// is changed.
func DefaultConfig(dsn string) Config {
	return Config{
		DSN:              dsn,
		Schema:           "public",
		MinConns:         2,
		MaxConns:         10,
		ConnectTimeout:   30 * time.Second,
		QueryTimeout:     60 * time.Second,
		MaxRetries:       3,
		RetryBackoff:     100 * time.Millisecond,
		LogLevel:         slog.LevelDebug,
		CleanupBatchSize: 10000,
		ChangeRetention:  24 * time.Hour,
		MaxValueSize:     DefaultMaxValueSize,
		QueryExecMode:    pgx.QueryExecModeCacheStatement,

		ReplicaMaxLag:        5 * time.Second,
		ReplicaCheckInterval: time.Second,
		ReplicaWaitTimeout:   500 * time.Millisecond,
	}
}

// cancelGrace is how long a cancelled statement's connection waits for the
// server to acknowledge the cancel request before it is closed.
const cancelGrace = 2 * time.Second

// maxQueryTimeout is the longest QueryTimeout: the server's
// statement_timeout is QueryTimeout + cancelGrace in milliseconds, and
// PostgreSQL holds it in an int (about 24.8 days).
const maxQueryTimeout = math.MaxInt32*time.Millisecond - cancelGrace

var sslModes = map[string]bool{
	"disable": true, "allow": true, "prefer": true,
	"require": true, "verify-ca": true, "verify-full": true,
}

// validate checks every field; it is the reason no setting is silently
// ignored.
func (c Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.DSN == "":
		return bad("DSN is empty")
	case c.MinConns < 0:
		return bad("MinConns is %d, want 0 or more", c.MinConns)
	case c.MaxConns < 1:
		return bad("MaxConns is %d, want at least 1", c.MaxConns)
	case c.MinConns > c.MaxConns:
		return bad("MinConns (%d) exceeds MaxConns (%d)", c.MinConns, c.MaxConns)
	case c.ConnectTimeout <= 0:
		return bad("ConnectTimeout is %v, want a positive duration", c.ConnectTimeout)
	case c.QueryTimeout <= 0:
		return bad("QueryTimeout is %v, want a positive duration", c.QueryTimeout)
	case c.QueryTimeout > maxQueryTimeout:
		return bad("QueryTimeout is %v, want at most %v (PostgreSQL's statement_timeout limit less %v)", c.QueryTimeout, maxQueryTimeout, cancelGrace)
	case c.ConnectTimeout > math.MaxInt64-c.QueryTimeout:
		return bad("ConnectTimeout is %v, want at most %v so that ConnectTimeout + QueryTimeout fits a time.Duration", c.ConnectTimeout, time.Duration(math.MaxInt64-c.QueryTimeout))
	case c.SSLMode != "" && !sslModes[c.SSLMode]:
		return bad("SSLMode %q is not one of disable, allow, prefer, require, verify-ca, verify-full", c.SSLMode)
	case c.MaxRetries < 0:
		return bad("MaxRetries is %d, want 0 or more", c.MaxRetries)
	case c.MaxRetries > 0 && c.RetryBackoff <= 0:
		return bad("RetryBackoff is %v, want a positive duration when MaxRetries > 0", c.RetryBackoff)
	case c.CleanupInterval < 0:
		return bad("CleanupInterval is %v, want 0 (off) or a positive duration", c.CleanupInterval)
	case c.CleanupBatchSize < 1 || c.CleanupBatchSize > math.MaxInt32:
		return bad("CleanupBatchSize is %d, want 1 to %d (the LIMIT of one statement, an int32)", c.CleanupBatchSize, math.MaxInt32)
	case c.ChangeRetention < 0:
		return bad("ChangeRetention is %v, want 0 (keep all) or a positive duration", c.ChangeRetention)
	case c.CheckpointRetention < 0 || c.CheckpointRetention > math.MaxInt32:
		return bad("CheckpointRetention is %d, want 0 (keep all) to %d (an int32 in SQL)", c.CheckpointRetention, math.MaxInt32)
	case c.MaxValueSize < 0 || c.MaxValueSize > 1<<30-1:
		return bad("MaxValueSize is %d, want 0 to %d (PostgreSQL's bytea limit)", c.MaxValueSize, 1<<30-1)
	}
	if err := c.validateDeployment(); err != nil {
		return err
	}
	if err := schema.ValidateName(c.Schema); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := schema.ValidateSets(c.Migrations); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// poolConfig turns the settings into a pgxpool configuration.
func (c Config) poolConfig() (*pgxpool.Config, error) {
	dsn, err := c.dsnWithTLS()
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the DSN, password included.
		return nil, fmt.Errorf("%w: cannot parse DSN: %s", ErrInvalidConfig, redactParseError(err))
	}
	pc.MinConns = c.MinConns
	pc.MaxConns = c.MaxConns
	pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	pc.ConnConfig.DefaultQueryExecMode = c.execMode()
	quoted, _ := schema.QuoteName(c.Schema) // validated above
	// Every generated query names its tables unqualified; the pool's
	// search_path makes them the tables of this store's schema. Behind a
	// transaction pooler it is set per transaction instead (pooler.go).
	if !c.TransactionPooler {
		pc.ConnConfig.RuntimeParams["search_path"] = quoted
	}
	// A statement whose client gave up must stop on the server too, or a
	// timed-out write could still commit later (for example once a lock it
	// waited for is released). Cancelling the context sends a cancel request,
	// and the connection is not used again (cancel.go).
	guardCancels(pc)
	// The server enforces the same bound by itself (a little later, so that
	// normally the client's own deadline fires first), for a client that dies
	// or is cut off mid-statement.
	if pc.ConnConfig.RuntimeParams["statement_timeout"] == "" && !c.TransactionPooler {
		pc.ConnConfig.RuntimeParams["statement_timeout"] = c.statementTimeout()
	}
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = "pgstate"
	}
	pc.ConnConfig.Tracer = c.tracer(pc.ConnConfig.Tracer)
	return pc, nil
}

// statementTimeout is the server's bound on a statement, in milliseconds:
// QueryTimeout, and cancelGrace for the client's cancel request to arrive
// first.
func (c Config) statementTimeout() string {
	return strconv.FormatInt((c.QueryTimeout + cancelGrace).Milliseconds(), 10)
}

// dsnWithTLS writes the SSL settings into the DSN, where pgx builds its TLS
// configuration from them exactly as libpq would.
func (c Config) dsnWithTLS() (string, error) {
	settings := [][2]string{
		{"sslmode", c.SSLMode},
		{"sslcert", c.SSLCert},
		{"sslkey", c.SSLKey},
		{"sslrootcert", c.SSLRootCert},
	}
	if strings.HasPrefix(c.DSN, "postgres://") || strings.HasPrefix(c.DSN, "postgresql://") {
		u, err := url.Parse(c.DSN)
		if err != nil {
			return "", fmt.Errorf("%w: cannot parse DSN URL: %s", ErrInvalidConfig, redactParseError(err))
		}
		q := u.Query()
		for _, kv := range settings {
			if kv[1] != "" {
				q.Set(kv[0], kv[1])
			}
		}
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	var b strings.Builder
	b.WriteString(c.DSN)
	for _, kv := range settings {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s='%s'", kv[0], strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kv[1]))
		}
	}
	return b.String(), nil
}

// redactParseError keeps the reason of a parse error without the DSN itself.
func redactParseError(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}
