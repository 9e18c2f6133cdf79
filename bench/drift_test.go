package bench

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/gen"
	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// sqlRecorder is a pgx tracer that keeps the text of every statement sent.
type sqlRecorder struct {
	mu   sync.Mutex
	sent []string
}

func (r *sqlRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	r.sent = append(r.sent, data.SQL)
	r.mu.Unlock()
	return ctx
}

func (r *sqlRecorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *sqlRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.sent
	r.sent = nil
	return out
}

// nameRecorder is a slog handler that keeps the "query" attribute of the
// library's statement log records: the sqlc name of each statement it ran.
type nameRecorder struct {
	mu    sync.Mutex
	names []string
}

func (h *nameRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *nameRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *nameRecorder) WithGroup(string) slog.Handler            { return h }
func (h *nameRecorder) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "query" {
			h.mu.Lock()
			h.names = append(h.names, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *nameRecorder) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.names
	h.names = nil
	return out
}

// queryNameOf reads the sqlc name from a statement's header comment.
func queryNameOf(sql string) string {
	line, _, _ := strings.Cut(sql, "\n")
	name, _, _ := strings.Cut(strings.TrimPrefix(line, "-- name: "), " ")
	return name
}

// TestRawSQLMatchesGenerated keeps the baselines honest in two steps: each
// library operation runs the generated statement of that name (seen through
// the library's own statement log), and that generated statement, captured by
// a tracer on the wire, is byte for byte the raw copy the baseline sends.
func TestRawSQLMatchesGenerated(t *testing.T) {
	ctx := context.Background()
	names := &nameRecorder{}
	lib := testdb.Open(t, func(c *state.Config) {
		c.Logger = slog.New(names)
		c.MaxRetries = 0
	})
	rec := &sqlRecorder{}
	pc := lib.Pool().Config()
	pc.ConnConfig.Tracer = rec
	traced, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer traced.Close()
	q := gen.New()
	k := []byte("k")
	micros := int64(time.Hour / time.Microsecond)
	if err := lib.Put(ctx, k, value); err != nil {
		t.Fatal(err)
	}
	ckpt, err := lib.CreateCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		raw  string
		lib  func() error
		gen  func(db gen.DBTX) error
	}{
		{"Get", rawEntryGet,
			func() error { _, _, err := lib.Get(ctx, k); return err },
			func(db gen.DBTX) error { _, err := q.EntryGet(ctx, db, k); return err }},
		{"Put", rawEntryPut,
			func() error { return lib.Put(ctx, k, value) },
			func(db gen.DBTX) error { return q.EntryPut(ctx, db, gen.EntryPutParams{Key: k, Value: value}) }},
		{"PutWithTTL", rawEntryPut,
			func() error { return lib.PutWithTTL(ctx, k, value, time.Hour) },
			func(db gen.DBTX) error {
				return q.EntryPut(ctx, db, gen.EntryPutParams{Key: k, Value: value, TtlMicros: &micros})
			}},
		{"Delete", rawEntryDelete,
			func() error { return lib.Delete(ctx, []byte("gone")) },
			func(db gen.DBTX) error { _, err := q.EntryDelete(ctx, db, []byte("gone")); return err }},
		{"Contains", rawEntryExists,
			func() error { _, err := lib.Contains(ctx, k); return err },
			func(db gen.DBTX) error { _, err := q.EntryExists(ctx, db, k); return err }},
		{"Count", rawEntriesCount,
			func() error { _, err := lib.Count(ctx); return err },
			func(db gen.DBTX) error { _, err := q.EntriesCount(ctx, db); return err }},
		{"GetMany", rawEntriesGetMany,
			func() error { _, err := lib.GetMany(ctx, [][]byte{k}); return err },
			func(db gen.DBTX) error { _, err := q.EntriesGetMany(ctx, db, [][]byte{k}); return err }},
		{"BatchPut", rawEntriesUpsertMany,
			func() error { return lib.BatchPut(ctx, []state.Entry{{Key: k, Value: value}}) },
			func(db gen.DBTX) error {
				_, err := q.EntriesUpsertMany(ctx, db, gen.EntriesUpsertManyParams{
					Keys: [][]byte{k}, Values: [][]byte{value}, Metadata: []json.RawMessage{nil}, TtlMicros: []int64{0},
				})
				return err
			}},
		{"ListKeys", rawEntryKeysListRange,
			func() error { _, err := lib.ListKeys(ctx, []byte("k")); return err },
			func(db gen.DBTX) error {
				_, err := q.EntryKeysListRange(ctx, db, gen.EntryKeysListRangeParams{Lower: []byte("k"), Upper: []byte("l")})
				return err
			}},
		{"FindByMetadata", rawEntriesFindByMetadata,
			func() error { _, err := lib.FindByMetadata(ctx, json.RawMessage(`{"a":1}`)); return err },
			func(db gen.DBTX) error {
				_, err := q.EntriesFindByMetadata(ctx, db, json.RawMessage(`{"a":1}`))
				return err
			}},
		{"Scan", rawEntriesScanFrom,
			func() error {
				for _, err := range lib.Scan(ctx, nil) {
					return err
				}
				return nil
			},
			func(db gen.DBTX) error {
				_, err := q.EntriesScanFrom(ctx, db, gen.EntriesScanFromParams{Lower: []byte{}, PageSize: state.ScanPageSize})
				return err
			}},
		{"CreateCheckpoint", rawCheckpointCreate,
			func() error { _, err := lib.CreateCheckpoint(ctx); return err },
			func(db gen.DBTX) error {
				_, err := q.CheckpointCreate(ctx, db, gen.CheckpointCreateParams{ID: uuid.New()})
				return err
			}},
		{"RestoreCheckpoint/Lock", rawCheckpointLockShared,
			func() error { return lib.RestoreCheckpoint(ctx, ckpt) },
			func(db gen.DBTX) error { _, err := q.CheckpointLockShared(ctx, db, ckpt); return err }},
		{"RestoreCheckpoint/LockEntries", rawEntriesLockForRestore,
			func() error { return lib.RestoreCheckpoint(ctx, ckpt) },
			func(db gen.DBTX) error {
				return pgx.BeginFunc(ctx, traced, func(tx pgx.Tx) error { return q.EntriesLockForRestore(ctx, tx) })
			}},
		{"RestoreCheckpoint/DeleteAll", rawEntriesDeleteAll,
			func() error { return lib.RestoreCheckpoint(ctx, ckpt) },
			func(db gen.DBTX) error {
				return pgx.BeginFunc(ctx, traced, func(tx pgx.Tx) error { _, err := q.EntriesDeleteAll(ctx, tx); return err })
			}},
		{"RestoreCheckpoint/Copy", rawEntriesRestoreFromCheckpoint,
			func() error { return lib.RestoreCheckpoint(ctx, ckpt) },
			func(db gen.DBTX) error {
				return pgx.BeginFunc(ctx, traced, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, "DELETE FROM state_entries"); err != nil {
						return err
					}
					_, err := q.EntriesRestoreFromCheckpoint(ctx, tx, ckpt)
					return err
				})
			}},
		{"DeleteCheckpoint", rawCheckpointDelete,
			func() error {
				id, err := lib.CreateCheckpoint(ctx)
				if err != nil {
					return err
				}
				return lib.DeleteCheckpoint(ctx, id)
			},
			func(db gen.DBTX) error { _, err := q.CheckpointDelete(ctx, db, uuid.New()); return err }},
		{"CleanupExpired", rawEntriesDeleteExpiredBatch,
			func() error { _, err := lib.CleanupExpired(ctx); return err },
			func(db gen.DBTX) error { _, err := q.EntriesDeleteExpiredBatch(ctx, db, 5000); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := queryNameOf(tc.raw)
			names.take()
			if err := tc.lib(); err != nil {
				t.Fatal(err)
			}
			if ran := names.take(); !slices.Contains(ran, want) {
				t.Fatalf("the library ran %v, not %s", ran, want)
			}
			rec.take()
			if err := tc.gen(traced); err != nil {
				t.Fatal(err)
			}
			var sent string
			for _, s := range rec.take() {
				if queryNameOf(s) == want {
					sent = s
				}
			}
			if sent != tc.raw {
				t.Fatalf("the raw copy of %s differs from the generated statement:\ngenerated:\n%s\nraw:\n%s", want, sent, tc.raw)
			}
		})
	}
}
