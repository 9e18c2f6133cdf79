package state

import (
	"context"
	"fmt"

	"github.com/pgstate/pgstate/gen"
)

// sqlVacuum is written here rather than in queries/ because sqlc cannot
// compile VACUUM. The names are unqualified: the pool's search_path makes
// them this store's tables.
const sqlVacuum = `VACUUM (ANALYZE) state_entries, state_checkpoints, state_checkpoint_entries`

// Vacuum runs VACUUM ANALYZE on the store's tables: it reclaims the space of
// deleted and overwritten rows for reuse and refreshes planner statistics
// (and CountEstimate). Autovacuum does the same on its own schedule. The
// roles PostgreSQL lets vacuum the tables may: a superuser, the tables' owner
// and the database's owner. PostgreSQL merely warns and skips the tables for
// anyone else, so Vacuum checks first and returns ErrPermissionDenied rather
// than succeed without doing anything.
func (p *Postgres) Vacuum(ctx context.Context) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "vacuum", err)
	}
	allowed, err := query(ctx, p, idempotent, p.q.StoreVacuumAllowed)
	if err != nil {
		return p.fail(ctx, "vacuum", err)
	}
	if !allowed {
		return p.fail(ctx, "vacuum", fmt.Errorf("%w: only a superuser, the owner of the store's tables or the database's owner may vacuum them (autovacuum still does)", ErrPermissionDenied))
	}
	err = exec(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) error {
		_, err := db.Exec(ctx, sqlVacuum)
		return err
	})
	if err != nil {
		return p.fail(ctx, "vacuum", err)
	}
	return nil
}

// HealthCheck verifies that the database answers and that the store's schema
// is at the version this release expects. A connection that turns out to be
// dead is replaced and the check repeated (as MaxRetries allows), so a
// healthy server behind stale pooled connections passes.
func (p *Postgres) HealthCheck(ctx context.Context) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "health check", err)
	}
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	var err error
	for attempt := 0; ; attempt++ {
		p.stats.queries.Add(2)
		err = p.checkVersion(ctx)
		if !p.shouldRetry(ctx, idempotent, err, attempt) {
			break
		}
	}
	if err != nil {
		return p.fail(ctx, "health check", err)
	}
	return nil
}

func (p *Postgres) checkVersion(ctx context.Context) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := checkSchemaVersion(ctx, conn.Conn(), p.cfg.Schema); err != nil {
		return err
	}
	return checkSetVersions(ctx, conn.Conn(), p.cfg.Schema, p.cfg.Migrations)
}

// TableStats describes the store's tables on disk.
type TableStats struct {
	LiveRows        int64 // rows as of the statistics collector's last report
	DeadRows        int64 // deleted or overwritten rows not yet vacuumed
	TableBytes      int64 // heap of state_entries, with its free-space and visibility maps
	ToastBytes      int64 // its TOAST table: values too large for the heap
	IndexBytes      int64 // size of its indexes
	TotalBytes      int64 // TableBytes + ToastBytes + IndexBytes
	CheckpointBytes int64 // disk space of the checkpoint tables, allocated even when empty
}

// TableStats reads the size and row figures of the store's tables.
func (p *Postgres) TableStats(ctx context.Context) (TableStats, error) {
	if err := p.usable(); err != nil {
		return TableStats{}, p.fail(ctx, "table stats", err)
	}
	row, err := query(ctx, p, idempotent, p.q.TableSizes)
	if err != nil {
		return TableStats{}, p.fail(ctx, "table stats", err)
	}
	return TableStats{
		LiveRows:        row.LiveRows,
		DeadRows:        row.DeadRows,
		TableBytes:      row.TableBytes,
		ToastBytes:      row.ToastBytes,
		IndexBytes:      row.IndexBytes,
		TotalBytes:      row.TotalBytes,
		CheckpointBytes: row.CheckpointBytes,
	}, nil
}
