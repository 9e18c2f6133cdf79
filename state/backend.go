package state

import (
	"context"
	"encoding/json"
	"iter"
	"time"

	"github.com/google/uuid"
)

// Backend is the key/value contract every store implements. Keys are
// arbitrary bytes (1 to MaxKeySize long) compared bytewise; a nil value is
// stored as an empty one.
type Backend interface {
	// Get returns the value of key; found is false if there is no live entry.
	Get(ctx context.Context, key []byte) (value []byte, found bool, err error)
	// Put stores value under key, replacing any previous entry together with
	// its metadata and expiry.
	Put(ctx context.Context, key, value []byte) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key []byte) error
	// ListKeys returns the live keys that start with prefix, sorted by key
	// bytes. An empty prefix lists every key.
	ListKeys(ctx context.Context, prefix []byte) ([][]byte, error)
	// Clear removes every entry.
	Clear(ctx context.Context) error
	// Count returns the number of live entries.
	Count(ctx context.Context) (int64, error)
	// Contains reports whether key has a live entry.
	Contains(ctx context.Context, key []byte) (bool, error)
}

// Store is the full feature set: the Backend plus metadata, expiry, batches,
// streaming scans and checkpoints. Both Postgres and Memory implement it.
type Store interface {
	Backend
	Ops

	// Transact runs fn atomically: every operation through its handle
	// commits together when fn returns nil, or not at all.
	Transact(ctx context.Context, fn TxFunc) error

	// GetEntry returns the live entry under key with its metadata, times and
	// version.
	GetEntry(ctx context.Context, key []byte) (Entry, bool, error)
	// PutWithMetadata stores value with a JSON metadata document: a
	// json.RawMessage or []byte is used as is (and must be valid JSON), any
	// other value is marshalled.
	PutWithMetadata(ctx context.Context, key, value []byte, metadata any) error
	// PutWithTTL stores value so that it disappears ttl from now, measured by
	// the database's clock, rounded up to a whole microsecond. ttl must be
	// positive; every positive time.Duration is honoured exactly, up to
	// math.MaxInt64 (about 292 years), on every backend.
	PutWithTTL(ctx context.Context, key, value []byte, ttl time.Duration) error
	// FindByMetadata returns the live entries whose metadata contains filter
	// (PostgreSQL's jsonb @> operator), sorted by key.
	FindByMetadata(ctx context.Context, filter any) ([]Entry, error)

	// BatchPut writes every entry atomically. When a key appears more than
	// once, the last occurrence wins.
	BatchPut(ctx context.Context, entries []Entry) error
	// GetMany returns the live values of keys, indexed by string(key);
	// missing keys are absent from the map.
	GetMany(ctx context.Context, keys [][]byte) (map[string][]byte, error)
	// DeleteMany removes keys and returns how many entries existed.
	DeleteMany(ctx context.Context, keys [][]byte) (int64, error)
	// CleanupExpired deletes expired entries and returns how many.
	CleanupExpired(ctx context.Context) (int64, error)

	// Scan iterates over the live entries whose key starts with prefix, in
	// key order, reading them page by page so memory stays bounded. The
	// options of List apply: WithLimit bounds the whole scan.
	Scan(ctx context.Context, prefix []byte, opts ...ListOption) iter.Seq2[Entry, error]

	// CreateCheckpoint snapshots every live entry and returns the snapshot's
	// id.
	CreateCheckpoint(ctx context.Context) (uuid.UUID, error)
	// RestoreCheckpoint atomically replaces every entry with the snapshot's.
	RestoreCheckpoint(ctx context.Context, id uuid.UUID) error
	// ListCheckpoints returns the checkpoints, newest first.
	ListCheckpoints(ctx context.Context) ([]CheckpointInfo, error)
	// DeleteCheckpoint removes a checkpoint.
	DeleteCheckpoint(ctx context.Context, id uuid.UUID) error

	// CreateCheckpointWith snapshots every live entry as CreateCheckpoint
	// does, with a name (CheckpointName) and metadata (CheckpointMetadata),
	// and returns the new checkpoint's description.
	CreateCheckpointWith(ctx context.Context, opts ...CheckpointOption) (CheckpointInfo, error)
	// FindCheckpoint finds a checkpoint by its full id, its name, or a
	// unique prefix of its id (as git and docker accept short ids).
	FindCheckpoint(ctx context.Context, ref string) (CheckpointInfo, error)
	// ListCheckpointEntries returns one page of a checkpoint's entries
	// under prefix, with the options of List, without restoring it.
	ListCheckpointEntries(ctx context.Context, id uuid.UUID, prefix []byte, opts ...ListOption) (Page, error)
	// GetCheckpointEntry returns the entry under key in a checkpoint.
	GetCheckpointEntry(ctx context.Context, id uuid.UUID, key []byte) (Entry, bool, error)
	// RestoreCheckpointCount is RestoreCheckpoint returning how many entries
	// it wrote.
	RestoreCheckpointCount(ctx context.Context, id uuid.UUID) (int64, error)
}

// Entry is one key with its value and attributes. For BatchPut, only Key,
// Value, Metadata and TTL are read.
type Entry struct {
	Key      []byte
	Value    []byte
	Metadata json.RawMessage // nil when the entry has none
	// TTL, when positive, makes a BatchPut entry expire that long after the
	// batch is written, exactly as PutWithTTL does. Never set on entries read
	// back; see ExpiresAt.
	TTL time.Duration

	CreatedAt time.Time // when the key was first written
	UpdatedAt time.Time // when the entry was last written
	ExpiresAt time.Time // zero when the entry does not expire
	// Version is 1 when the key's row is created and grows by exactly one
	// with every later write of the key that commits, so a reader can tell
	// that an entry changed and IfVersion can compare. A write is never
	// applied twice: one whose connection broke after it was sent is not
	// repeated but fails with ErrOutcomeUnknown. A Delete (or the cleanup
	// of an expired entry) removes the row, so the next write starts again
	// at 1; RestoreCheckpoint brings back the versions the checkpoint holds.
	// So the same version can name different writes: compare ModRevision
	// (IfModRevision) to know it is the same one.
	Version int64
	// ModRevision is the store-wide revision of the entry's last write
	// (its put event carries it as ModRevision); CreateRevision is that of
	// the write that created it (or began its life again after it
	// expired). Entry revisions are never reused: a delete and a
	// re-create, or a restore, give new ones. They are numbered apart from
	// the change log's revisions (Event.Revision), whose order a write's
	// own number could not keep. Entries read from a checkpoint have none
	// (0).
	ModRevision    int64
	CreateRevision int64
}

// CheckpointInfo describes one checkpoint.
type CheckpointInfo struct {
	ID        uuid.UUID
	CreatedAt time.Time
	Rows      int64           // entries in the snapshot
	Bytes     int64           // total size of their keys and values
	Metadata  json.RawMessage // nil when the checkpoint has none
	Name      string          // "" when the checkpoint was not given one
}

var (
	_ Store = (*Postgres)(nil)
	_ Store = (*Memory)(nil)
)
