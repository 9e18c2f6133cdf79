package state

import (
	"context"
	"iter"

	"github.com/pgstate/pgstate/gen"
)

// ScanPageSize is how many entries Scan reads per query.
const ScanPageSize = 1000

// Scan implements Store. Each page is one query that continues after the
// last key of the previous page (keyset pagination on the primary key), so
// memory stays at one page whatever the size of the store and no page costs
// more than the first. Entries written during the scan may or may not be
// seen; no entry is seen twice. Breaking out of the loop stops the scan.
func (p *Postgres) Scan(ctx context.Context, prefix []byte, opts ...ListOption) iter.Seq2[Entry, error] {
	if len(opts) > 0 {
		o, err := collectListOptions(opts)
		if err != nil {
			return func(yield func(Entry, error) bool) { yield(Entry{}, p.fail(ctx, "scan", err)) }
		}
		return scanPages(ctx, o, func(ctx context.Context, o listOptions) (Page, error) {
			return p.List(ctx, prefix, func(lo *listOptions) { *lo = o })
		})
	}
	return func(yield func(Entry, error) bool) {
		if err := p.usable(); err != nil {
			yield(Entry{}, p.fail(ctx, "scan", err))
			return
		}
		if len(prefix) > MaxKeySize {
			return
		}
		lower, upper := nonNil(prefix), PrefixEnd(prefix)
		for {
			rows, err := p.scanPage(ctx, lower, upper)
			if err != nil {
				yield(Entry{}, p.fail(ctx, "scan", err))
				return
			}
			for _, row := range rows {
				p.stats.bytesRead.Add(int64(len(row.Value)))
				if !yield(entryFromRow(row), nil) {
					return
				}
			}
			if len(rows) < ScanPageSize {
				return
			}
			// The smallest key after the last one: the last key plus a zero
			// byte.
			last := rows[len(rows)-1].Key
			lower = append(last[:len(last):len(last)], 0)
		}
	}
}

func (p *Postgres) scanPage(ctx context.Context, lower, upper []byte) ([]gen.StateEntry, error) {
	return query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) ([]gen.StateEntry, error) {
		if upper == nil {
			return p.q.EntriesScanFrom(ctx, db, gen.EntriesScanFromParams{Lower: lower, PageSize: ScanPageSize})
		}
		return p.q.EntriesScanRange(ctx, db, gen.EntriesScanRangeParams{Lower: lower, Upper: upper, PageSize: ScanPageSize})
	})
}
