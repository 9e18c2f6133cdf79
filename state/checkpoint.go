package state

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/gen"
)

// CreateCheckpoint implements Store.
func (p *Postgres) CreateCheckpoint(ctx context.Context) (uuid.UUID, error) {
	return p.CreateCheckpointWithMetadata(ctx, nil)
}

// CreateCheckpointWithMetadata snapshots every live entry, attaching a JSON
// metadata document (see PutWithMetadata for what metadata may be). The copy
// is one INSERT … SELECT inside the database, so no entry travels to the
// client and the snapshot is consistent. With Config.CheckpointRetention set
// to N, the same transaction keeps the new checkpoint and the N-1 newest
// others and deletes the rest: the checkpoint just made is never among them,
// whatever the clocks say or the order in which concurrent ones commit.
func (p *Postgres) CreateCheckpointWithMetadata(ctx context.Context, metadata any) (uuid.UUID, error) {
	info, err := p.createCheckpoint(ctx, metadata, "")
	return info.ID, err
}

// createCheckpoint is CreateCheckpointWithMetadata with a name (checked by
// the caller; "" for none), returning the new checkpoint's header.
func (p *Postgres) createCheckpoint(ctx context.Context, metadata any, name string) (CheckpointInfo, error) {
	if err := p.usable(); err != nil {
		return CheckpointInfo{}, p.fail(ctx, "create checkpoint", err)
	}
	md, err := encodeMetadata(metadata)
	if err != nil {
		return CheckpointInfo{}, p.fail(ctx, "create checkpoint", err)
	}
	// Version 7: ids sort by creation time.
	id, err := uuid.NewV7()
	if err != nil {
		return CheckpointInfo{}, p.fail(ctx, "create checkpoint", err)
	}
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	var header gen.StateCheckpoint
	err = p.inTx(ctx, onceOnly, func(tx pgx.Tx) error {
		p.stats.queries.Add(1)
		var err error
		if header, err = p.q.CheckpointCreate(ctx, tx, gen.CheckpointCreateParams{ID: id, Metadata: md, Name: name}); err != nil {
			return err
		}
		if p.cfg.CheckpointRetention > 0 {
			p.stats.queries.Add(1)
			if _, err := p.q.CheckpointsDeleteBeyond(ctx, tx, gen.CheckpointsDeleteBeyondParams{ID: id, Keep: int32(p.cfg.CheckpointRetention)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return CheckpointInfo{}, p.fail(ctx, createOp(name), err)
	}
	return checkpointInfo(header), nil
}

// RestoreCheckpoint implements Store. In one transaction it locks out writers
// (readers go on seeing the current entries), deletes every entry and copies
// the checkpoint's entries back, with their original times and versions.
// Readers see either the state before or the restored state, never a mix.
// The transaction is READ COMMITTED whatever the server's default, so the
// delete sees every row committed while the restore waited for its lock.
func (p *Postgres) RestoreCheckpoint(ctx context.Context, id uuid.UUID) error {
	_, err := p.RestoreCheckpointCount(ctx, id)
	return err
}

// RestoreCheckpointCount is RestoreCheckpoint returning how many entries it
// wrote back.
func (p *Postgres) RestoreCheckpointCount(ctx context.Context, id uuid.UUID) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "restore checkpoint", err)
	}
	if id == uuid.Nil {
		return 0, p.fail(ctx, "restore checkpoint", fmt.Errorf("%w: the nil id", ErrCheckpointNotFound))
	}
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	var written int64
	err := p.inTx(ctx, onceOnly, func(tx pgx.Tx) error {
		p.stats.queries.Add(4)
		if _, err := p.q.CheckpointLockShared(ctx, tx, id); err != nil {
			if isNoRows(err) {
				// The operation's name already carries the id.
				return ErrCheckpointNotFound
			}
			return err
		}
		if err := p.q.EntriesLockForRestore(ctx, tx); err != nil {
			return err
		}
		if _, err := p.q.EntriesDeleteAll(ctx, tx); err != nil {
			return err
		}
		var err error
		written, err = p.q.EntriesRestoreFromCheckpoint(ctx, tx, id)
		return err
	})
	if err != nil {
		return 0, p.fail(ctx, fmt.Sprintf("restore checkpoint %s", id), err)
	}
	return written, nil
}

// ListCheckpoints implements Store.
func (p *Postgres) ListCheckpoints(ctx context.Context) ([]CheckpointInfo, error) {
	if err := p.usable(); err != nil {
		return nil, p.fail(ctx, "list checkpoints", err)
	}
	rows, err := query(ctx, p, idempotent, p.q.CheckpointsList)
	if err != nil {
		return nil, p.fail(ctx, "list checkpoints", err)
	}
	out := make([]CheckpointInfo, len(rows))
	for i, r := range rows {
		out[i] = checkpointInfo(r)
	}
	return out, nil
}

// DeleteCheckpoint implements Store.
func (p *Postgres) DeleteCheckpoint(ctx context.Context, id uuid.UUID) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "delete checkpoint", err)
	}
	n, err := query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return p.q.CheckpointDelete(ctx, db, id)
	})
	if err != nil {
		return p.fail(ctx, fmt.Sprintf("delete checkpoint %s", id), err)
	}
	if n == 0 {
		return p.fail(ctx, fmt.Sprintf("delete checkpoint %s", id), ErrCheckpointNotFound)
	}
	return nil
}

// txOptions pins every transaction of the store to READ COMMITTED, whatever
// default_transaction_isolation the server, database or role sets: the
// transactions rely on each statement seeing what committed before it
// started. RestoreCheckpoint, for one, takes its table lock before it
// deletes; under REPEATABLE READ its snapshot would date from before the
// lock, so a row committed while it waited would survive the delete and
// collide with the copy back.
var txOptions = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// inTx runs fn in a transaction, retrying the whole transaction on transient
// failures as mode allows.
func (p *Postgres) inTx(ctx context.Context, mode retryMode, fn func(pgx.Tx) error) error {
	if tx := boundTx(ctx); tx != nil {
		// Inside Transact: a savepoint of that transaction.
		p.stats.queries.Add(1)
		return pgx.BeginFunc(ctx, tx, fn)
	}
	var err error
	for attempt := 0; ; attempt++ {
		p.stats.transactions.Add(1)
		err = p.runTx(ctx, txOptions, fn)
		if !p.shouldRetry(ctx, mode, err, attempt) {
			return err
		}
	}
}
