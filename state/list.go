package state

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/pgstate/pgstate/gen"
)

// A ListOption adjusts one List, FindByMetadataPage or Scan call: how many
// entries, from where, in which direction, over which keys. Like
// WriteOption and WatchOption, every choice is an option of this one
// family, so they combine freely:
//
//	page, err := store.List(ctx, []byte("user/"), state.WithLimit(100), state.StartAfter(last))
type ListOption func(*listOptions)

type listOptions struct {
	limit      int
	after      []byte
	hasAfter   bool
	reverse    bool
	start, end []byte
	hasRange   bool
	keysOnly   bool
	err        error
}

func (o *listOptions) invalid(err error) {
	if o.err == nil {
		o.err = err
	}
}

// WithLimit returns at most n entries (etcd's WithLimit, redis SCAN's
// COUNT). n must be positive; without it every match is returned (Scan
// reads them page by page).
func WithLimit(n int) ListOption {
	return func(o *listOptions) {
		if n <= 0 {
			o.invalid(fmt.Errorf("%w: WithLimit(%d), want a positive limit", ErrInvalidOption, n))
		}
		o.limit = n
	}
}

// StartAfter resumes a listing after key: the next page starts with the
// first key after it in the listing's direction. Pass the last key of the
// previous page (Page.Next), as with a redis SCAN cursor.
func StartAfter(key []byte) ListOption {
	return func(o *listOptions) { o.after, o.hasAfter = bytes.Clone(key), true }
}

// Reverse lists in descending key order.
func Reverse() ListOption { return func(o *listOptions) { o.reverse = true } }

// Range restricts the listing to the keys in [start, end), on top of the
// prefix (pass an empty prefix for a pure range). A nil or empty end means
// no upper bound.
func Range(start, end []byte) ListOption {
	return func(o *listOptions) {
		o.start, o.end, o.hasRange = bytes.Clone(start), bytes.Clone(end), true
	}
}

// KeysOnly leaves Entry.Value empty: a listing of keys (with versions,
// times and metadata) that never reads large values.
func KeysOnly() ListOption { return func(o *listOptions) { o.keysOnly = true } }

func collectListOptions(opts []ListOption) (listOptions, error) {
	var o listOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o, o.err
}

// Page is one page of a listing.
type Page struct {
	// Entries are in key order (descending with Reverse).
	Entries []Entry
	// More reports that the listing goes on after the last entry: call
	// again with StartAfter(page.Next()).
	More bool
}

// Keys returns the keys of the page's entries.
func (pg Page) Keys() [][]byte {
	keys := make([][]byte, len(pg.Entries))
	for i, e := range pg.Entries {
		keys[i] = e.Key
	}
	return keys
}

// Next is the key to pass to StartAfter for the following page: the last
// key of this one, or nil for an empty page.
func (pg Page) Next() []byte {
	if len(pg.Entries) == 0 {
		return nil
	}
	return pg.Entries[len(pg.Entries)-1].Key
}

// endOfKeys is greater than every key: keys are at most MaxKeySize bytes,
// so each is smaller than (or a prefix of) MaxKeySize+1 bytes of 0xFF. It
// stands for "no upper bound" so that the bound stays an index condition.
var endOfKeys = bytes.Repeat([]byte{0xFF}, MaxKeySize+1)

// bounds turns the prefix and options into one key range [lower, upper);
// empty reports that no key can match.
func (o listOptions) bounds(prefix []byte) (lower, upper []byte, empty bool) {
	lower, upper = nonNil(bytes.Clone(prefix)), PrefixEnd(prefix)
	if upper == nil {
		upper = endOfKeys
	}
	if len(prefix) > MaxKeySize {
		return nil, nil, true
	}
	if o.hasRange {
		if bytes.Compare(o.start, lower) > 0 {
			lower = o.start
		}
		if len(o.end) > 0 && bytes.Compare(o.end, upper) < 0 {
			upper = o.end
		}
	}
	if o.hasAfter {
		if o.reverse {
			if bytes.Compare(o.after, upper) < 0 {
				upper = o.after
			}
		} else if next := append(bytes.Clone(o.after), 0); bytes.Compare(next, lower) > 0 {
			lower = next
		}
	}
	return lower, upper, bytes.Compare(lower, upper) >= 0
}

// rowLimit asks for one row more than the limit, which tells whether
// there are more.
func (o listOptions) rowLimit() *int64 {
	if o.limit <= 0 {
		return nil
	}
	n := int64(o.limit) + 1
	return &n
}

// page cuts the extra row off.
func (o listOptions) page(entries []Entry) Page {
	if o.limit > 0 && len(entries) > o.limit {
		return Page{Entries: entries[:o.limit], More: true}
	}
	return Page{Entries: entries}
}

// List returns the live entries whose key starts with prefix, in key order,
// one page at a time: WithLimit, StartAfter, Reverse, Range and KeysOnly
// shape the page. It is one statement over the primary key, so a page
// costs the same wherever it starts.
func (p *Postgres) List(ctx context.Context, prefix []byte, opts ...ListOption) (Page, error) {
	o, err := collectListOptions(opts)
	if err == nil {
		err = p.usable()
	}
	if err != nil {
		return Page{}, p.fail(ctx, "list", err)
	}
	lower, upper, empty := o.bounds(prefix)
	if empty {
		return Page{Entries: []Entry{}}, nil
	}
	entries, err := p.listRange(ctx, o, lower, upper, o.rowLimit())
	if err != nil {
		return Page{}, p.fail(ctx, "list", err)
	}
	return o.page(entries), nil
}

func (p *Postgres) listRange(ctx context.Context, o listOptions, lower, upper []byte, limit *int64) ([]Entry, error) {
	rows, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) ([]gen.EntriesListAscRow, error) {
		if o.reverse {
			rows, err := p.q.EntriesListDesc(ctx, db, gen.EntriesListDescParams{WithValues: !o.keysOnly, Lower: lower, Upper: upper, RowLimit: limit})
			out := make([]gen.EntriesListAscRow, len(rows))
			for i, r := range rows {
				out[i] = gen.EntriesListAscRow(r)
			}
			return out, err
		}
		return p.q.EntriesListAsc(ctx, db, gen.EntriesListAscParams{WithValues: !o.keysOnly, Lower: lower, Upper: upper, RowLimit: limit})
	})
	if err != nil {
		return nil, err
	}
	entries := make([]Entry, len(rows))
	for i, r := range rows {
		entries[i] = entryFromRow(gen.StateEntry(r))
		p.stats.bytesRead.Add(int64(len(r.Value)))
	}
	return entries, nil
}

// FindByMetadataPage is FindByMetadata one page at a time, with the
// options of List; the prefix narrows the keys searched.
func (p *Postgres) FindByMetadataPage(ctx context.Context, prefix []byte, filter any, opts ...ListOption) (Page, error) {
	o, err := collectListOptions(opts)
	if err == nil {
		err = p.usable()
	}
	if err != nil {
		return Page{}, p.fail(ctx, "find by metadata", err)
	}
	f, err := encodeMetadata(filter)
	if err == nil && f == nil {
		err = fmt.Errorf("%w: the filter is empty", ErrInvalidMetadata)
	}
	if err != nil {
		return Page{}, p.fail(ctx, "find by metadata", err)
	}
	lower, upper, empty := o.bounds(prefix)
	if empty {
		return Page{Entries: []Entry{}}, nil
	}
	rows, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) ([]gen.StateEntry, error) {
		if o.reverse {
			return p.q.EntriesFindByMetadataDesc(ctx, db, gen.EntriesFindByMetadataDescParams{Filter: f, Lower: lower, Upper: upper, RowLimit: o.rowLimit()})
		}
		return p.q.EntriesFindByMetadataAsc(ctx, db, gen.EntriesFindByMetadataAscParams{Filter: f, Lower: lower, Upper: upper, RowLimit: o.rowLimit()})
	})
	if err != nil {
		return Page{}, p.fail(ctx, "find by metadata", err)
	}
	entries := make([]Entry, len(rows))
	for i, r := range rows {
		entries[i] = entryFromRow(r)
		if o.keysOnly {
			entries[i].Value = []byte{}
		}
		p.stats.bytesRead.Add(int64(len(r.Value)))
	}
	return o.page(entries), nil
}

// scanPages runs a Scan with options through list, one page of at most
// ScanPageSize entries at a time, resuming after the last key.
func scanPages(ctx context.Context, o listOptions, list func(ctx context.Context, o listOptions) (Page, error)) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		left := o.limit
		for {
			po := o
			po.limit = ScanPageSize
			if left > 0 {
				po.limit = min(left, ScanPageSize)
			}
			pg, err := list(ctx, po)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range pg.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if left > 0 {
				left -= len(pg.Entries)
			}
			if !pg.More || left < 0 || o.limit > 0 && left == 0 {
				return
			}
			o.after, o.hasAfter = pg.Next(), true
		}
	}
}

// List implements Ops with the semantics of Postgres.List.
func (m *Memory) List(ctx context.Context, prefix []byte, opts ...ListOption) (Page, error) {
	o, err := collectListOptions(opts)
	if err != nil {
		return Page{}, memFail("list", err)
	}
	return m.listWhere(ctx, "list", prefix, o, func(memEntry) bool { return true })
}

// FindByMetadataPage implements Ops with the semantics of
// Postgres.FindByMetadataPage.
func (m *Memory) FindByMetadataPage(ctx context.Context, prefix []byte, filter any, opts ...ListOption) (Page, error) {
	o, err := collectListOptions(opts)
	if err != nil {
		return Page{}, memFail("find by metadata", err)
	}
	match, err := metadataMatcher(filter)
	if err != nil {
		return Page{}, memFail("find by metadata", err)
	}
	return m.listWhere(ctx, "find by metadata", prefix, o, match)
}

// metadataMatcher validates a FindByMetadata filter and returns the test,
// jsonb's @>, that an entry's metadata must pass.
func metadataMatcher(filter any) (func(memEntry) bool, error) {
	f, err := encodeMetadata(filter)
	if err == nil && f == nil {
		err = fmt.Errorf("%w: the filter is empty", ErrInvalidMetadata)
	}
	if err != nil {
		return nil, err
	}
	want, err := decodeJSONB(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMetadata, err)
	}
	return func(e memEntry) bool {
		if e.metadata == nil {
			return false
		}
		have, err := decodeJSONB(e.metadata)
		return err == nil && jsonContains(have, want, true)
	}, nil
}

func (m *Memory) listWhere(ctx context.Context, op string, prefix []byte, o listOptions, match func(memEntry) bool) (Page, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return Page{}, memFail(op, err)
	}
	now := m.Now()
	return memPage(m.entries, prefix, o, func(e memEntry) bool { return e.live(now) && match(e) }), nil
}

// memPage is one page of the entries of src under prefix that keep
// accepts, in the order, bounds and size o asks for: the listing both the
// memory store and its checkpoints share.
func memPage(src map[string]memEntry, prefix []byte, o listOptions, keep func(memEntry) bool) Page {
	lower, upper, empty := o.bounds(prefix)
	entries := []Entry{}
	if empty {
		return Page{Entries: entries}
	}
	for k, e := range src {
		kb := []byte(k)
		if bytes.Compare(kb, lower) >= 0 && bytes.Compare(kb, upper) < 0 && keep(e) {
			entry := e.toEntry(k)
			if o.keysOnly {
				entry.Value = []byte{}
			}
			entries = append(entries, entry)
		}
	}
	sortEntries(entries, o.reverse)
	return o.page(entries)
}

func sortEntries(entries []Entry, reverse bool) {
	cmp := func(a, b Entry) int { return bytes.Compare(a.Key, b.Key) }
	if reverse {
		cmp = func(a, b Entry) int { return bytes.Compare(b.Key, a.Key) }
	}
	slices.SortFunc(entries, cmp)
}

// List implements Ops.
func (t *PostgresTx) List(ctx context.Context, prefix []byte, opts ...ListOption) (Page, error) {
	return t.p.List(t.bind(ctx), prefix, opts...)
}

// FindByMetadataPage implements Ops.
func (t *PostgresTx) FindByMetadataPage(ctx context.Context, prefix []byte, filter any, opts ...ListOption) (Page, error) {
	return t.p.FindByMetadataPage(t.bind(ctx), prefix, filter, opts...)
}
