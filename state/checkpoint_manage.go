package state

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/pgstate/pgstate/gen"
)

// MaxCheckpointName is the longest checkpoint name, in characters.
const MaxCheckpointName = 128

// A CheckpointOption adjusts one CreateCheckpointWith call. Like
// WriteOption and ListOption, every choice is an option of this one family:
//
//	info, err := store.CreateCheckpointWith(ctx, state.CheckpointName("before-upgrade"))
type CheckpointOption func(*checkpointOptions)

type checkpointOptions struct {
	name     string
	metadata any
	err      error
}

// CheckpointName names the checkpoint, so that FindCheckpoint (and
// statectl) find it by that name. Names are unique among the checkpoints
// that have one (ErrCheckpointNameTaken otherwise), 1 to MaxCheckpointName
// printable characters, and never a UUID, which would read as an id. A
// checkpoint deleted (or dropped by retention) frees its name.
func CheckpointName(name string) CheckpointOption {
	return func(o *checkpointOptions) {
		if err := checkCheckpointName(name); err != nil && o.err == nil {
			o.err = err
		}
		o.name = name
	}
}

// CheckpointMetadata attaches a JSON document, as CreateCheckpointWithMetadata
// does.
func CheckpointMetadata(metadata any) CheckpointOption {
	return func(o *checkpointOptions) { o.metadata = metadata }
}

func collectCheckpointOptions(opts []CheckpointOption) (checkpointOptions, error) {
	var o checkpointOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o, o.err
}

func checkCheckpointName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: checkpoint name %q %s", ErrInvalidOption, name, why)
	}
	switch {
	case name == "":
		return bad("is empty")
	case !utf8.ValidString(name):
		return bad("is not UTF-8")
	case utf8.RuneCountInString(name) > MaxCheckpointName:
		return bad(fmt.Sprintf("is longer than %d characters", MaxCheckpointName))
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return bad("holds a character that does not print")
	}
	if _, err := uuid.Parse(name); err == nil {
		return bad("is a UUID, which would read as a checkpoint id")
	}
	return nil
}

func createOp(name string) string {
	if name == "" {
		return "create checkpoint"
	}
	return fmt.Sprintf("create checkpoint %q", name)
}

func checkpointInfo(r gen.StateCheckpoint) CheckpointInfo {
	return CheckpointInfo{ID: r.ID, CreatedAt: r.CreatedAt, Rows: r.RowCount, Bytes: r.DataBytes, Metadata: r.Metadata, Name: r.Name}
}

// AmbiguousCheckpointError is FindCheckpoint's answer to a short id that
// more than one checkpoint's id starts with. It matches
// ErrAmbiguousCheckpoint.
type AmbiguousCheckpointError struct {
	Prefix string
	// Matches are some of the ids that start with Prefix, in id order;
	// More reports that there are others.
	Matches []uuid.UUID
	More    bool
}

func (e *AmbiguousCheckpointError) Error() string {
	ids := make([]string, len(e.Matches))
	for i, id := range e.Matches {
		ids[i] = id.String()
	}
	more := ""
	if e.More {
		more = " and more"
	}
	return fmt.Sprintf("%v: %q matches %s%s", ErrAmbiguousCheckpoint, e.Prefix, strings.Join(ids, ", "), more)
}

// Is makes errors.Is(err, ErrAmbiguousCheckpoint) true.
func (e *AmbiguousCheckpointError) Is(target error) bool { return target == ErrAmbiguousCheckpoint }

// ambiguousShown is how many matching ids an AmbiguousCheckpointError lists.
const ambiguousShown = 5

// idRange turns a short id (hex digits, dashes ignored) into the range of
// ids that start with it; ok is false if ref cannot be an id prefix.
func idRange(ref string) (lower, upper uuid.UUID, ok bool) {
	digits := strings.ToLower(strings.ReplaceAll(ref, "-", ""))
	if digits == "" || len(digits) > 32 || strings.Trim(digits, "0123456789abcdef") != "" {
		return uuid.Nil, uuid.Nil, false
	}
	lower, err1 := uuid.Parse(digits + strings.Repeat("0", 32-len(digits)))
	upper, err2 := uuid.Parse(digits + strings.Repeat("f", 32-len(digits)))
	return lower, upper, err1 == nil && err2 == nil
}

// resolveCheckpoint is FindCheckpoint on any store: a full id, else a
// name, else a unique id prefix. byID and byName report found as false
// for no such checkpoint; inRange returns up to limit ids in order.
func resolveCheckpoint(ref string,
	byID func(uuid.UUID) (CheckpointInfo, bool, error),
	byName func(string) (CheckpointInfo, bool, error),
	inRange func(lower, upper uuid.UUID, limit int) ([]CheckpointInfo, error),
) (CheckpointInfo, error) {
	if id, err := uuid.Parse(ref); err == nil {
		info, found, err := byID(id)
		if err == nil && !found {
			err = ErrCheckpointNotFound
		}
		return info, err
	}
	if ref != "" {
		info, found, err := byName(ref)
		if err != nil || found {
			return info, err
		}
	}
	lower, upper, ok := idRange(ref)
	if !ok {
		return CheckpointInfo{}, fmt.Errorf("%w: no checkpoint is named %q, and it is not an id prefix", ErrCheckpointNotFound, ref)
	}
	infos, err := inRange(lower, upper, ambiguousShown+1)
	switch {
	case err != nil:
		return CheckpointInfo{}, err
	case len(infos) == 0:
		return CheckpointInfo{}, fmt.Errorf("%w: no checkpoint is named %q or has an id that starts with it", ErrCheckpointNotFound, ref)
	case len(infos) > 1:
		e := &AmbiguousCheckpointError{Prefix: ref, More: len(infos) > ambiguousShown}
		for _, info := range infos[:min(len(infos), ambiguousShown)] {
			e.Matches = append(e.Matches, info.ID)
		}
		return CheckpointInfo{}, e
	}
	return infos[0], nil
}

// CreateCheckpointWith implements Store: CreateCheckpointWithMetadata with
// a name, returning the new checkpoint's description. Retention
// (Config.CheckpointRetention) applies as it does there.
func (p *Postgres) CreateCheckpointWith(ctx context.Context, opts ...CheckpointOption) (CheckpointInfo, error) {
	o, err := collectCheckpointOptions(opts)
	if err != nil {
		return CheckpointInfo{}, p.fail(ctx, createOp(o.name), err)
	}
	return p.createCheckpoint(ctx, o.metadata, o.name)
}

// FindCheckpoint implements Store. A full id is looked up as it is; any
// other ref is first a name, then a prefix of an id's hex digits (dashes
// may be left out). A prefix that more than one id starts with is an
// *AmbiguousCheckpointError; no match is ErrCheckpointNotFound. Each step
// is one statement on an index.
func (p *Postgres) FindCheckpoint(ctx context.Context, ref string) (CheckpointInfo, error) {
	op := fmt.Sprintf("find checkpoint %q", ref)
	if err := p.usable(); err != nil {
		return CheckpointInfo{}, p.fail(ctx, op, err)
	}
	one := func(row gen.StateCheckpoint, err error) (CheckpointInfo, bool, error) {
		if isNoRows(err) {
			return CheckpointInfo{}, false, nil
		}
		return checkpointInfo(row), err == nil, err
	}
	info, err := resolveCheckpoint(ref,
		func(id uuid.UUID) (CheckpointInfo, bool, error) {
			return one(query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.StateCheckpoint, error) {
				return p.q.CheckpointGet(ctx, db, id)
			}))
		},
		func(name string) (CheckpointInfo, bool, error) {
			return one(query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.StateCheckpoint, error) {
				return p.q.CheckpointGetByName(ctx, db, name)
			}))
		},
		func(lower, upper uuid.UUID, limit int) ([]CheckpointInfo, error) {
			rows, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) ([]gen.StateCheckpoint, error) {
				return p.q.CheckpointsFindByIDRange(ctx, db, gen.CheckpointsFindByIDRangeParams{Lower: lower, Upper: upper, RowLimit: int32(limit)})
			})
			out := make([]CheckpointInfo, len(rows))
			for i, r := range rows {
				out[i] = checkpointInfo(r)
			}
			return out, err
		})
	if err != nil {
		return CheckpointInfo{}, p.fail(ctx, op, err)
	}
	return info, nil
}

// checkpointExists tells an empty answer about a checkpoint from an unknown
// checkpoint.
func (p *Postgres) checkpointExists(ctx context.Context, id uuid.UUID) error {
	_, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.StateCheckpoint, error) {
		return p.q.CheckpointGet(ctx, db, id)
	})
	if isNoRows(err) {
		return ErrCheckpointNotFound
	}
	return err
}

// ListCheckpointEntries implements Store: List over a checkpoint's entries,
// with the same options, without restoring it. Every entry is listed as it
// was copied, including those whose expiry has passed since (they were live
// when the checkpoint was taken; a restore brings them back already
// expired). It is one statement on the checkpoint's primary key, and a
// second to tell an empty page from an unknown checkpoint.
func (p *Postgres) ListCheckpointEntries(ctx context.Context, id uuid.UUID, prefix []byte, opts ...ListOption) (Page, error) {
	op := fmt.Sprintf("list checkpoint %s", id)
	o, err := collectListOptions(opts)
	if err == nil {
		err = p.usable()
	}
	if err != nil {
		return Page{}, p.fail(ctx, op, err)
	}
	lower, upper, empty := o.bounds(prefix)
	var rows []gen.CheckpointEntriesListAscRow
	if !empty {
		rows, err = query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) ([]gen.CheckpointEntriesListAscRow, error) {
			if o.reverse {
				rows, err := p.q.CheckpointEntriesListDesc(ctx, db, gen.CheckpointEntriesListDescParams{
					WithValues: !o.keysOnly, CheckpointID: id, Lower: lower, Upper: upper, RowLimit: o.rowLimit()})
				out := make([]gen.CheckpointEntriesListAscRow, len(rows))
				for i, r := range rows {
					out[i] = gen.CheckpointEntriesListAscRow(r)
				}
				return out, err
			}
			return p.q.CheckpointEntriesListAsc(ctx, db, gen.CheckpointEntriesListAscParams{
				WithValues: !o.keysOnly, CheckpointID: id, Lower: lower, Upper: upper, RowLimit: o.rowLimit()})
		})
	}
	if err == nil && len(rows) == 0 {
		err = p.checkpointExists(ctx, id)
	}
	if err != nil {
		return Page{}, p.fail(ctx, op, err)
	}
	entries := make([]Entry, len(rows))
	for i, r := range rows {
		entries[i] = entryFromRow(gen.StateEntry(r))
		p.stats.bytesRead.Add(int64(len(r.Value)))
	}
	return o.page(entries), nil
}

// GetCheckpointEntry implements Store: the entry under key as the checkpoint
// holds it (see ListCheckpointEntries about expiry). found is false if the
// checkpoint holds no such key; an unknown checkpoint is
// ErrCheckpointNotFound.
func (p *Postgres) GetCheckpointEntry(ctx context.Context, id uuid.UUID, key []byte) (Entry, bool, error) {
	op := fmt.Sprintf("get from checkpoint %s", id)
	if err := p.checkKey(key); err != nil {
		return Entry{}, false, p.fail(ctx, op, err)
	}
	row, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.CheckpointEntryGetRow, error) {
		return p.q.CheckpointEntryGet(ctx, db, gen.CheckpointEntryGetParams{CheckpointID: id, Key: key})
	})
	if isNoRows(err) {
		if err = p.checkpointExists(ctx, id); err == nil {
			return Entry{}, false, nil
		}
	}
	if err != nil {
		return Entry{}, false, p.fail(ctx, op, err)
	}
	p.stats.bytesRead.Add(int64(len(row.Value)))
	return entryFromRow(gen.StateEntry(row)), true, nil
}

// CreateCheckpointWith implements Store.
func (m *Memory) CreateCheckpointWith(ctx context.Context, opts ...CheckpointOption) (CheckpointInfo, error) {
	o, err := collectCheckpointOptions(opts)
	if err != nil {
		return CheckpointInfo{}, memFail(createOp(o.name), err)
	}
	return m.createCheckpoint(ctx, o.metadata, o.name)
}

// FindCheckpoint implements Store with the semantics of
// Postgres.FindCheckpoint.
func (m *Memory) FindCheckpoint(ctx context.Context, ref string) (CheckpointInfo, error) {
	op := fmt.Sprintf("find checkpoint %q", ref)
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return CheckpointInfo{}, memFail(op, err)
	}
	info, err := resolveCheckpoint(ref,
		func(id uuid.UUID) (CheckpointInfo, bool, error) {
			cp, ok := m.checkpoints[id]
			return cp.info, ok, nil
		},
		func(name string) (CheckpointInfo, bool, error) {
			for _, cp := range m.checkpoints {
				if cp.info.Name == name {
					return cp.info, true, nil
				}
			}
			return CheckpointInfo{}, false, nil
		},
		func(lower, upper uuid.UUID, limit int) ([]CheckpointInfo, error) {
			var out []CheckpointInfo
			for id, cp := range m.checkpoints {
				if bytes.Compare(id[:], lower[:]) >= 0 && bytes.Compare(id[:], upper[:]) <= 0 {
					out = append(out, cp.info)
				}
			}
			sortByID(out)
			return out[:min(len(out), limit)], nil
		})
	if err != nil {
		return CheckpointInfo{}, memFail(op, err)
	}
	return info, nil
}

func sortByID(infos []CheckpointInfo) {
	slices.SortFunc(infos, func(a, b CheckpointInfo) int { return bytes.Compare(a.ID[:], b.ID[:]) })
}

// ListCheckpointEntries implements Store with the semantics of
// Postgres.ListCheckpointEntries.
func (m *Memory) ListCheckpointEntries(ctx context.Context, id uuid.UUID, prefix []byte, opts ...ListOption) (Page, error) {
	op := fmt.Sprintf("list checkpoint %s", id)
	o, err := collectListOptions(opts)
	if err != nil {
		return Page{}, memFail(op, err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return Page{}, memFail(op, err)
	}
	cp, ok := m.checkpoints[id]
	if !ok {
		return Page{}, memFail(op, ErrCheckpointNotFound)
	}
	return memPage(cp.entries, prefix, o, func(memEntry) bool { return true }), nil
}

// GetCheckpointEntry implements Store with the semantics of
// Postgres.GetCheckpointEntry.
func (m *Memory) GetCheckpointEntry(ctx context.Context, id uuid.UUID, key []byte) (Entry, bool, error) {
	op := fmt.Sprintf("get from checkpoint %s", id)
	if err := checkKey(key); err != nil {
		return Entry{}, false, memFail(op, err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return Entry{}, false, memFail(op, err)
	}
	cp, ok := m.checkpoints[id]
	if !ok {
		return Entry{}, false, memFail(op, ErrCheckpointNotFound)
	}
	e, ok := cp.entries[string(key)]
	if !ok {
		return Entry{}, false, nil
	}
	return e.toEntry(string(key)), true, nil
}
