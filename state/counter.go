package state

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/gen"
)

// ErrNotInteger: Increment found a value that is not a decimal integer in
// int64's range (the text Increment itself writes, such as "42" or "-7"),
// and changed nothing.
var ErrNotInteger = errors.New("value is not an integer")

// counterText is the value Increment accepts: what strconv.FormatInt
// writes, leading zeros allowed. The SQL tests the same pattern.
var counterText = regexp.MustCompile(`^-?[0-9]{1,19}$`)

// Increment adds delta (which may be negative) to the integer under key and
// returns the new value, in one statement (redis INCRBY). Counters are
// stored as decimal text, so Get returns "42". A missing or expired key
// counts from 0; a live entry keeps its expiry and metadata. A value that is
// not an integer, or a sum outside int64, fails with ErrNotInteger and
// changes nothing. Like every write whose connection breaks after it was
// sent, it is not retried: it fails with ErrOutcomeUnknown.
func (p *Postgres) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	if err := p.checkKey(key); err != nil {
		return 0, p.fail(ctx, "increment", err)
	}
	row, err := query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (gen.EntryIncrementRow, error) {
		return p.q.EntryIncrement(ctx, db, gen.EntryIncrementParams{Key: key, Delta: delta})
	})
	var pgErr *pgconn.PgError
	switch {
	case isNoRows(err):
		return 0, p.fail(ctx, "increment", fmt.Errorf("%w: key %q", ErrNotInteger, key))
	case errors.As(err, &pgErr) && pgErr.Code == "22003":
		return 0, p.fail(ctx, "increment", fmt.Errorf("%w: key %q plus %d leaves int64's range", ErrNotInteger, key, delta))
	case err != nil:
		return 0, p.fail(ctx, "increment", err)
	}
	p.stats.puts.Add(1)
	return row.Value, nil
}

// Increment implements Ops.
func (t *PostgresTx) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	return t.p.Increment(t.bind(ctx), key, delta)
}

// Increment implements Ops with the semantics of Postgres.Increment.
func (m *Memory) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return 0, memFail("increment", err)
	}
	if err := checkKey(key); err != nil {
		return 0, memFail("increment", err)
	}
	now := m.Now()
	old, live := m.liveEntry(key, now)
	var n int64
	if live {
		if !counterText.Match(old.value) {
			return 0, memFail("increment", fmt.Errorf("%w: key %q", ErrNotInteger, key))
		}
		cur, err := strconv.ParseInt(string(old.value), 10, 64)
		sum := cur + delta
		if err != nil || (delta > 0 && sum < cur) || (delta < 0 && sum > cur) {
			return 0, memFail("increment", fmt.Errorf("%w: key %q plus %d leaves int64's range", ErrNotInteger, key, delta))
		}
		n = sum
	} else {
		n = delta
	}
	e := m.next(Entry{Key: key, Value: []byte(strconv.FormatInt(n, 10))}, now)
	if live {
		e.expiresAt, e.metadata = old.expiresAt, old.metadata
	}
	m.logPut(string(key), e, now)
	return n, nil
}
