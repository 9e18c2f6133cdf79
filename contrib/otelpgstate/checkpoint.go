package otelpgstate

import (
	"context"

	"github.com/google/uuid"

	"github.com/pgstate/pgstate/state"
)

// CreateCheckpointWith implements state.Store.
func (s *Store) CreateCheckpointWith(ctx context.Context, opts ...state.CheckpointOption) (info state.CheckpointInfo, err error) {
	ctx, op := s.in.start(ctx, "create_checkpoint")
	defer func() { op.end(err) }()
	return s.p.CreateCheckpointWith(ctx, opts...)
}

// FindCheckpoint implements state.Store.
func (s *Store) FindCheckpoint(ctx context.Context, ref string) (info state.CheckpointInfo, err error) {
	ctx, op := s.in.start(ctx, "find_checkpoint")
	defer func() { op.end(err) }()
	return s.p.FindCheckpoint(ctx, ref)
}

// ListCheckpointEntries implements state.Store.
func (s *Store) ListCheckpointEntries(ctx context.Context, id uuid.UUID, prefix []byte, opts ...state.ListOption) (page state.Page, err error) {
	ctx, op := s.in.start(ctx, "list_checkpoint_entries")
	defer func() { op.end(err, returned(len(page.Entries))) }()
	return s.p.ListCheckpointEntries(ctx, id, prefix, opts...)
}

// GetCheckpointEntry implements state.Store.
func (s *Store) GetCheckpointEntry(ctx context.Context, id uuid.UUID, key []byte) (e state.Entry, found bool, err error) {
	ctx, op := s.in.start(ctx, "get_checkpoint_entry")
	defer func() { op.end(err) }()
	return s.p.GetCheckpointEntry(ctx, id, key)
}

// RestoreCheckpointCount implements state.Store.
func (s *Store) RestoreCheckpointCount(ctx context.Context, id uuid.UUID) (n int64, err error) {
	ctx, op := s.in.start(ctx, "restore_checkpoint")
	defer func() { op.end(err) }()
	return s.p.RestoreCheckpointCount(ctx, id)
}
