package state

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pgstate/pgstate/gen"
)

// encodeMetadata turns a metadata argument into a JSON document: nil means
// none; json.RawMessage and []byte are used as they are and must be valid
// JSON; anything else is marshalled. A JSON null also means none.
func encodeMetadata(metadata any) (json.RawMessage, error) {
	var raw []byte
	switch m := metadata.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		raw = m
	case []byte:
		raw = m
	default:
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidMetadata, err)
		}
		raw = b
	}
	if raw == nil {
		return nil, nil
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%w: not a valid JSON document", ErrInvalidMetadata)
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	if bytes.Contains(raw, []byte(`\u0000`)) && hasNUL(raw) {
		return nil, fmt.Errorf("%w: a string contains \\u0000, which PostgreSQL's jsonb cannot store", ErrInvalidMetadata)
	}
	return json.RawMessage(raw), nil
}

// hasNUL reports whether a valid JSON document has a NUL character in any
// string or object key. (The text "\u0000" alone does not tell: it may be an
// escaped backslash followed by "u0000".)
func hasNUL(raw []byte) bool {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return false
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			return strings.ContainsRune(v, 0)
		case []any:
			for _, e := range v {
				if walk(e) {
					return true
				}
			}
		case map[string]any:
			for k, e := range v {
				if strings.ContainsRune(k, 0) || walk(e) {
					return true
				}
			}
		}
		return false
	}
	return walk(doc)
}

// PutWithMetadata implements Store.
func (p *Postgres) PutWithMetadata(ctx context.Context, key, value []byte, metadata any) error {
	md, err := encodeMetadata(metadata)
	if err != nil {
		return p.fail(ctx, "put with metadata", err)
	}
	return p.put(ctx, "put with metadata", gen.EntryPutParams{Key: key, Value: nonNil(value), Metadata: md})
}

// GetEntry implements Store.
func (p *Postgres) GetEntry(ctx context.Context, key []byte) (Entry, bool, error) {
	if err := p.checkKey(key); err != nil {
		return Entry{}, false, p.fail(ctx, "get entry", err)
	}
	row, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.StateEntry, error) {
		return p.q.EntryGetFull(ctx, db, key)
	})
	if isNoRows(err) {
		p.stats.gets.Add(1)
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, p.fail(ctx, "get entry", err)
	}
	p.stats.gets.Add(1)
	p.stats.bytesRead.Add(int64(len(row.Value)))
	return entryFromRow(row), true, nil
}

// FindByMetadata implements Store. The query is served by the GIN index on
// metadata.
func (p *Postgres) FindByMetadata(ctx context.Context, filter any) ([]Entry, error) {
	if err := p.usable(); err != nil {
		return nil, p.fail(ctx, "find by metadata", err)
	}
	f, err := encodeMetadata(filter)
	if err != nil {
		return nil, p.fail(ctx, "find by metadata", err)
	}
	if f == nil {
		return nil, p.fail(ctx, "find by metadata", fmt.Errorf("%w: the filter is empty", ErrInvalidMetadata))
	}
	rows, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) ([]gen.StateEntry, error) {
		return p.q.EntriesFindByMetadata(ctx, db, f)
	})
	if err != nil {
		return nil, p.fail(ctx, "find by metadata", err)
	}
	entries := make([]Entry, len(rows))
	for i, row := range rows {
		entries[i] = entryFromRow(row)
		p.stats.bytesRead.Add(int64(len(row.Value)))
	}
	return entries, nil
}

func entryFromRow(row gen.StateEntry) Entry {
	e := Entry{
		Key:       row.Key,
		Value:     nonNil(row.Value),
		Metadata:  row.Metadata,
		CreatedAt: row.CreatedAt,
		UpdatedAt: row.UpdatedAt,
		Version:   row.Version,
	}
	if row.ExpiresAt != nil {
		e.ExpiresAt = *row.ExpiresAt
	}
	return e
}
