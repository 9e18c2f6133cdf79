package state

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pgstate/pgstate/gen"
)

// A WriteOption adjusts one PutEntry or DeleteEntry call. Every per-call
// choice of a write is an option of this one family, so they combine freely:
//
//	store.PutEntry(ctx, key, value, state.WithTTL(time.Hour), state.IfVersion(e.Version))
type WriteOption func(*writeOptions)

type writeOptions struct {
	ttl          time.Duration
	expiresAt    time.Time
	metadata     json.RawMessage
	hasMetadata  bool
	conditional  bool
	expected     int64
	byRevision   bool // expected is a mod revision (IfModRevision), not a version
	keepTTL      bool
	keepMetadata bool
	prev         bool
	err          error
}

func (o *writeOptions) invalid(err error) {
	if o.err == nil {
		o.err = err
	}
}

// WithTTL makes the entry expire ttl from now, by the database's clock. Zero
// means no expiry (the default); a negative ttl is ErrInvalidTTL.
func WithTTL(ttl time.Duration) WriteOption {
	return func(o *writeOptions) {
		if ttl < 0 {
			o.invalid(fmt.Errorf("%w: %v, want 0 (none) or a positive duration", ErrInvalidTTL, ttl))
		}
		o.ttl = ttl
	}
}

// WithExpiresAt makes the entry expire at t exactly, as the database's
// clock tells time: what an export recorded as ExpiresAt, for instance. A
// time already past stores an entry nobody can see (cleanup removes it).
func WithExpiresAt(t time.Time) WriteOption {
	return func(o *writeOptions) {
		if t.IsZero() {
			o.invalid(fmt.Errorf("%w: WithExpiresAt of the zero time; leave the option out for no expiry", ErrInvalidOption))
		}
		o.expiresAt = t
	}
}

// WithMetadata attaches a JSON document, as PutWithMetadata does.
func WithMetadata(metadata any) WriteOption {
	return func(o *writeOptions) {
		md, err := encodeMetadata(metadata)
		if err != nil {
			o.invalid(err)
		}
		o.metadata, o.hasMetadata = md, true
	}
}

// IfVersion makes the write happen only if the key's live entry is at
// version v; otherwise it writes nothing and fails with ErrVersionMismatch.
// Version 0 means "no live entry", so IfVersion(0) is IfAbsent.
func IfVersion(v int64) WriteOption {
	return func(o *writeOptions) {
		if v < 0 {
			o.invalid(fmt.Errorf("%w: IfVersion(%d), versions are never negative", ErrInvalidOption, v))
		}
		if o.conditional && o.byRevision {
			o.invalid(fmt.Errorf("%w: IfVersion and IfModRevision together", ErrInvalidOption))
		}
		o.conditional, o.expected = true, v
	}
}

// IfModRevision makes the write happen only if the key's live entry was
// last written at revision rev (Entry.ModRevision, WriteResult.Revision, a
// put event's ModRevision); otherwise it writes nothing and fails with
// ErrVersionMismatch. IfModRevision(0) means "no live entry". Unlike a
// version, a revision is never reused, so the condition cannot hold for
// another incarnation of the key: not after the key was deleted and written
// again, nor after a checkpoint was restored. Use it for compare-and-swap
// that must not suffer ABA (a lock taken over by someone else, then freed
// and taken again); IfVersion is enough where only "did it change since I
// read it, without a delete in between" matters, and its numbers are
// small and per key.
func IfModRevision(rev int64) WriteOption {
	return func(o *writeOptions) {
		if rev < 0 {
			o.invalid(fmt.Errorf("%w: IfModRevision(%d), revisions are never negative", ErrInvalidOption, rev))
		}
		if o.conditional && !o.byRevision {
			o.invalid(fmt.Errorf("%w: IfVersion and IfModRevision together", ErrInvalidOption))
		}
		o.conditional, o.expected, o.byRevision = true, rev, true
	}
}

// IfAbsent makes a put happen only if the key has no live entry (first
// write wins); an expired entry counts as absent.
func IfAbsent() WriteOption { return IfVersion(0) }

// KeepTTL keeps the expiry of the live entry being replaced (redis KEEPTTL)
// instead of clearing it. A new entry gets no expiry.
func KeepTTL() WriteOption { return func(o *writeOptions) { o.keepTTL = true } }

// KeepMetadata keeps the metadata of the live entry being replaced instead
// of clearing it.
func KeepMetadata() WriteOption { return func(o *writeOptions) { o.keepMetadata = true } }

// WithPrevEntry makes the result carry the live entry the write replaced or
// deleted (etcd's WithPrevKV).
func WithPrevEntry() WriteOption { return func(o *writeOptions) { o.prev = true } }

func collectWriteOptions(opts []WriteOption, isDelete bool) (writeOptions, error) {
	var o writeOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	switch {
	case o.err != nil:
	case (o.ttl != 0 || !o.expiresAt.IsZero()) && o.keepTTL:
		o.err = fmt.Errorf("%w: an expiry (WithTTL, WithExpiresAt) and KeepTTL together", ErrInvalidOption)
	case o.ttl != 0 && !o.expiresAt.IsZero():
		o.err = fmt.Errorf("%w: WithTTL and WithExpiresAt together", ErrInvalidOption)
	case o.hasMetadata && o.keepMetadata:
		o.err = fmt.Errorf("%w: WithMetadata and KeepMetadata together", ErrInvalidOption)
	case isDelete && (o.ttl != 0 || !o.expiresAt.IsZero() || o.hasMetadata || o.keepTTL || o.keepMetadata):
		o.err = fmt.Errorf("%w: a delete takes only IfVersion, IfModRevision and WithPrevEntry", ErrInvalidOption)
	case isDelete && o.conditional && o.expected == 0:
		o.err = fmt.Errorf("%w: a delete cannot require the key to be absent", ErrInvalidOption)
	}
	return o, o.err
}

// WriteResult tells what a PutEntry or DeleteEntry did.
type WriteResult struct {
	// Version is the entry's version after a put; 0 after a delete.
	Version int64
	// Revision is the entry's new ModRevision after a put (its put event
	// carries it as ModRevision), for IfModRevision; 0 after a delete.
	Revision int64
	// Existed reports whether the key had a live entry before the call.
	Existed bool
	// Prev is that entry, with WithPrevEntry; nil otherwise or when there
	// was none.
	Prev *Entry
}

// VersionMismatchError is the error of a conditional write whose condition
// did not hold. It matches ErrVersionMismatch.
type VersionMismatchError struct {
	Key      []byte
	Expected int64 // the version (or mod revision) the caller required (0: absent)
	Current  int64 // the live version (or mod revision) found (0: absent)
	// Revision marks a condition on the mod revision (IfModRevision):
	// Expected and Current are revisions, not versions.
	Revision bool
}

func (e *VersionMismatchError) Error() string {
	what := "version"
	if e.Revision {
		what = "mod revision"
	}
	return fmt.Sprintf("%v: key %q is at %s %d, want %d", ErrVersionMismatch, e.Key, what, e.Current, e.Expected)
}

// Is makes errors.Is(err, ErrVersionMismatch) true.
func (e *VersionMismatchError) Is(target error) bool { return target == ErrVersionMismatch }

func mismatch(key []byte, expected, current int64) error {
	return &VersionMismatchError{Key: bytes.Clone(key), Expected: expected, Current: current}
}

// mismatchOf is the error of o's failed condition, given the live entry's
// version and mod revision (0, 0: absent).
func (o writeOptions) mismatchOf(key []byte, version, revision int64) error {
	if o.byRevision {
		return &VersionMismatchError{Key: bytes.Clone(key), Expected: o.expected, Current: revision, Revision: true}
	}
	return mismatch(key, o.expected, version)
}

// current is what o's condition compares: the version or the mod revision.
func (o writeOptions) current(version, revision int64) int64 {
	if o.byRevision {
		return revision
	}
	return version
}

func (o writeOptions) params(key, value []byte) (gen.EntryWriteParams, error) {
	arg := gen.EntryWriteParams{
		Key:          key,
		Value:        nonNil(value),
		Metadata:     o.metadata,
		Conditional:  o.conditional,
		Expected:     o.expected,
		ByRevision:   o.byRevision,
		KeepMetadata: o.keepMetadata,
		KeepTtl:      o.keepTTL,
		WantPrev:     o.prev,
	}
	if o.ttl > 0 {
		micros, err := ttlMicros(o.ttl)
		if err != nil {
			return arg, err
		}
		arg.TtlMicros = &micros
	}
	if !o.expiresAt.IsZero() {
		arg.ExpiresAt = &o.expiresAt
	}
	return arg, nil
}

// prevEntry builds WriteResult.Prev from the columns both conditional
// statements return.
func prevEntry(key []byte, want, existed bool, version, modRev, createRev int64, value []byte, md json.RawMessage, created, updated, expires *time.Time) *Entry {
	if !want || !existed {
		return nil
	}
	e := &Entry{Key: bytes.Clone(key), Value: nonNil(value), Metadata: md, Version: version, ModRevision: modRev, CreateRevision: createRev}
	if created != nil {
		e.CreatedAt = *created
	}
	if updated != nil {
		e.UpdatedAt = *updated
	}
	if expires != nil {
		e.ExpiresAt = *expires
	}
	return e
}

// PutEntry writes value under key with options: TTL and metadata together,
// conditions on the current version (IfVersion, IfAbsent), keeping the TTL
// or metadata of the entry it replaces, and returning that entry. It is one
// statement. A failed condition writes nothing and returns a
// *VersionMismatchError. Like every write, a put whose connection breaks
// after it was sent is not retried: it fails with ErrOutcomeUnknown.
func (p *Postgres) PutEntry(ctx context.Context, key, value []byte, opts ...WriteOption) (WriteResult, error) {
	o, err := collectWriteOptions(opts, false)
	if err == nil {
		err = p.checkWrite(key, value)
	}
	if err != nil {
		return WriteResult{}, p.fail(ctx, "put entry", err)
	}
	arg, err := o.params(key, value)
	if err != nil {
		return WriteResult{}, p.fail(ctx, "put entry", err)
	}
	var row gen.EntryWriteRow
	for range maxStaleConditions {
		row, err = query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (gen.EntryWriteRow, error) {
			return p.q.EntryWrite(ctx, db, arg)
		})
		if err != nil {
			return WriteResult{}, p.fail(ctx, "put entry", err)
		}
		// A condition that failed although the version the statement saw
		// matches means the row was inserted by a transaction that
		// committed after the statement's snapshot was taken (the insert
		// then met the row's lock). Nothing was written, so the statement
		// can run again and see that row.
		if row.Version != 0 || o.current(row.CurrentVersion, row.CurrentRevision) != o.expected {
			break
		}
	}
	if row.Version == 0 {
		return WriteResult{}, p.fail(ctx, "put entry", o.mismatchOf(key, row.CurrentVersion, row.CurrentRevision))
	}
	p.stats.puts.Add(1)
	p.stats.bytesWritten.Add(int64(len(key) + len(value)))
	return WriteResult{
		Version:  row.Version,
		Revision: row.Revision,
		Existed:  row.Existed,
		Prev:     prevEntry(key, o.prev, row.Existed, row.CurrentVersion, row.CurrentRevision, row.PrevCreateRevision, row.PrevValue, row.PrevMetadata, row.PrevCreatedAt, row.PrevUpdatedAt, row.PrevExpiresAt),
	}, nil
}

// DeleteEntry deletes key with options (IfVersion, WithPrevEntry) and says
// whether a live entry existed. Like PutEntry it is one statement, never
// retried after it was sent.
func (p *Postgres) DeleteEntry(ctx context.Context, key []byte, opts ...WriteOption) (WriteResult, error) {
	o, err := collectWriteOptions(opts, true)
	if err == nil {
		err = p.checkKey(key)
	}
	if err != nil {
		return WriteResult{}, p.fail(ctx, "delete entry", err)
	}
	arg := gen.EntryDeleteIfParams{Key: key, Conditional: o.conditional, Expected: o.expected, ByRevision: o.byRevision, WantPrev: o.prev}
	row, err := query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (gen.EntryDeleteIfRow, error) {
		return p.q.EntryDeleteIf(ctx, db, arg)
	})
	if err != nil {
		return WriteResult{}, p.fail(ctx, "delete entry", err)
	}
	if o.conditional && !row.Deleted {
		return WriteResult{}, p.fail(ctx, "delete entry", o.mismatchOf(key, row.CurrentVersion, row.CurrentRevision))
	}
	p.stats.deletes.Add(1)
	return WriteResult{
		Existed: row.Existed,
		Prev:    prevEntry(key, o.prev, row.Existed, row.CurrentVersion, row.CurrentRevision, row.PrevCreateRevision, row.PrevValue, row.PrevMetadata, row.PrevCreatedAt, row.PrevUpdatedAt, row.PrevExpiresAt),
	}, nil
}

// maxStaleConditions bounds how often PutEntry runs its statement again
// after a condition failed on a row newer than the statement's snapshot;
// each rerun needs another insert of the same key to commit in between.
const maxStaleConditions = 8

// DeletePrefix deletes every entry whose key starts with prefix, in one
// statement, and returns how many live entries it removed (etcd's range
// delete). An empty prefix deletes everything.
func (p *Postgres) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "delete prefix", err)
	}
	if len(prefix) > MaxKeySize {
		return 0, nil
	}
	lower, upper := nonNil(prefix), PrefixEnd(prefix)
	n, err := query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return deleteRange(ctx, p.q, db, lower, upper)
	})
	if err != nil {
		return 0, p.fail(ctx, "delete prefix", err)
	}
	p.stats.deletes.Add(1)
	return n, nil
}

// CountPrefix counts the live entries whose key starts with prefix without
// reading them.
func (p *Postgres) CountPrefix(ctx context.Context, prefix []byte) (int64, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "count prefix", err)
	}
	if len(prefix) > MaxKeySize {
		return 0, nil
	}
	lower, upper := nonNil(prefix), PrefixEnd(prefix)
	n, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return countRange(ctx, p.q, db, lower, upper)
	})
	if err != nil {
		return 0, p.fail(ctx, "count prefix", err)
	}
	return n, nil
}

// deleteRange and countRange pick the statement for [lower, upper): a
// prefix without a successor has no upper bound.
func deleteRange(ctx context.Context, q *gen.Queries, db gen.DBTX, lower, upper []byte) (int64, error) {
	if upper == nil {
		return q.EntriesDeleteFrom(ctx, db, lower)
	}
	return q.EntriesDeleteRange(ctx, db, gen.EntriesDeleteRangeParams{Lower: lower, Upper: upper})
}

func countRange(ctx context.Context, q *gen.Queries, db gen.DBTX, lower, upper []byte) (int64, error) {
	if upper == nil {
		return q.EntriesCountFrom(ctx, db, lower)
	}
	return q.EntriesCountRange(ctx, db, gen.EntriesCountRangeParams{Lower: lower, Upper: upper})
}
