package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pgstate/pgstate/gen"
)

// encodeMetadata turns a metadata argument into a JSON document: nil means
// none; json.RawMessage and []byte are used as they are and must be valid
// JSON; anything else is marshalled. A JSON null also means none. Both
// backends call it before writing anything, so that they accept exactly the
// documents PostgreSQL's jsonb accepts (see checkJSONB).
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
	if err := checkJSONB(raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMetadata, err)
	}
	return json.RawMessage(raw), nil
}

// checkJSONB rejects the valid JSON documents that PostgreSQL's jsonb
// refuses: bytes that are not UTF-8 (22021), a \u0000 escape (22P05), an
// unpaired surrogate escape (22P02) and a number outside the range of
// numeric (22003). raw must be valid JSON.
func checkJSONB(raw []byte) error {
	if !utf8.Valid(raw) {
		return errors.New("not valid UTF-8")
	}
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c == '"':
			n, err := checkJSONString(raw[i:])
			if err != nil {
				return err
			}
			i += n
		case c == '-' || '0' <= c && c <= '9':
			n := numberLen(raw[i:])
			if _, err := parseDecimal(raw[i : i+n]); err != nil {
				return err
			}
			i += n
		default:
			i++
		}
	}
	return nil
}

var (
	errLoneHigh = errors.New("a \\u escape of a high surrogate is not followed by one of a low surrogate, which jsonb refuses")
	errLoneLow  = errors.New("a \\u escape of a low surrogate does not follow one of a high surrogate, which jsonb refuses")
	errNUL      = errors.New("a string contains \\u0000, which PostgreSQL's jsonb cannot store")
)

// checkJSONString checks the escapes of the JSON string at the start of s
// and returns its length, quotes included. Go's decoder would turn an
// unpaired surrogate into U+FFFD; jsonb refuses it.
func checkJSONString(s []byte) (int, error) {
	pendingHigh := false // the previous character was a high surrogate escape
	for i := 1; i < len(s); i++ {
		if s[i] == '"' {
			if pendingHigh {
				return 0, errLoneHigh
			}
			return i + 1, nil
		}
		if s[i] != '\\' || s[i+1] != 'u' {
			if pendingHigh {
				return 0, errLoneHigh
			}
			if s[i] == '\\' {
				i++ // the escaped character, which may be a quote
			}
			continue
		}
		r, _ := strconv.ParseUint(string(s[i+2:i+6]), 16, 32)
		i += 5
		switch {
		case r == 0:
			return 0, errNUL
		case 0xD800 <= r && r <= 0xDBFF:
			if pendingHigh {
				return 0, errLoneHigh
			}
			pendingHigh = true
		case 0xDC00 <= r && r <= 0xDFFF:
			if !pendingHigh {
				return 0, errLoneLow
			}
			pendingHigh = false
		case pendingHigh:
			return 0, errLoneHigh
		}
	}
	return len(s), nil // not reached: raw is valid JSON
}

// numberLen returns the length of the JSON number at the start of s.
func numberLen(s []byte) int {
	i := 0
	for i < len(s) {
		switch c := s[i]; {
		case '0' <= c && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			i++
		default:
			return i
		}
	}
	return i
}

// PostgreSQL's numeric limits (src/include/utils/numeric.h and
// set_var_from_str): at most 16383 digits after the decimal point as written
// (the display scale, after the exponent is applied), the leading digit at
// most 10^131071 (a weight of 32767 base-10000 digits), and an exponent
// below INT_MAX/2 in magnitude whatever the value.
const (
	numericMaxScale       = 16383
	numericMaxLeadingExp  = 131071
	numericExponentLimit  = 1<<30 - 1 // INT_MAX / 2
	numericMaxExponentLen = 10        // digits of numericExponentLimit
)

// decimal is a JSON number in a canonical form: the value is
// 0.digits × 10^point with neither leading nor trailing zeros in digits, or
// zero when digits is empty (whatever its sign). Two numbers are equal, as
// jsonb compares them, exactly when their decimals are.
type decimal struct {
	neg    bool
	digits string
	point  int64
}

// parseDecimal reads a JSON number token and refuses the ones PostgreSQL's
// numeric cannot hold.
func parseDecimal(tok []byte) (decimal, error) {
	s := string(tok)
	var d decimal
	if strings.HasPrefix(s, "-") {
		d.neg = true
		s = s[1:]
	}
	mantissa, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, fracPart, _ := strings.Cut(mantissa, ".")
	var exp int64
	if hasExp {
		neg := strings.HasPrefix(expText, "-")
		expText = strings.TrimLeft(strings.TrimLeft(expText, "+-"), "0")
		if len(expText) > numericMaxExponentLen {
			return decimal{}, fmt.Errorf("the number %s is outside the range of PostgreSQL's numeric", shortToken(tok))
		}
		if expText != "" {
			exp, _ = strconv.ParseInt(expText, 10, 64)
		}
		if neg {
			exp = -exp
		}
		if exp >= numericExponentLimit || exp <= -numericExponentLimit {
			return decimal{}, fmt.Errorf("the number %s is outside the range of PostgreSQL's numeric", shortToken(tok))
		}
	}
	if scale := int64(len(fracPart)) - exp; scale > numericMaxScale {
		return decimal{}, fmt.Errorf("the number %s has more than %d digits after the decimal point, the most PostgreSQL's numeric holds", shortToken(tok), numericMaxScale)
	}
	digits := intPart + fracPart
	point := int64(len(intPart)) + exp
	trimmed := strings.TrimLeft(digits, "0")
	point -= int64(len(digits) - len(trimmed))
	d.digits = strings.TrimRight(trimmed, "0")
	if d.digits == "" {
		return decimal{}, nil
	}
	if point-1 > numericMaxLeadingExp {
		return decimal{}, fmt.Errorf("the number %s is larger than PostgreSQL's numeric holds", shortToken(tok))
	}
	d.point = point
	return d, nil
}

// shortToken quotes a number in an error message, cut short: it may have
// thousands of digits.
func shortToken(tok []byte) string {
	if len(tok) > 40 {
		return string(tok[:40]) + "…"
	}
	return string(tok)
}

// numbersEqual compares two JSON numbers exactly, as jsonb does (1.0 equals
// 1, 12345678901234568 does not equal 12345678901234567).
func numbersEqual(a, b json.Number) bool {
	da, errA := parseDecimal([]byte(a))
	db, errB := parseDecimal([]byte(b))
	return errA == nil && errB == nil && da == db
}

// decodeJSONB parses a document checked by encodeMetadata the way jsonb
// sees it: numbers stay exact, as json.Number.
func decodeJSONB(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	err := dec.Decode(&doc)
	return doc, err
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

		ModRevision:    row.ModRevision,
		CreateRevision: row.ModRevision,
	}
	if row.CreateRevision != nil {
		e.CreateRevision = *row.CreateRevision
	}
	if row.ExpiresAt != nil {
		e.ExpiresAt = *row.ExpiresAt
	}
	return e
}
