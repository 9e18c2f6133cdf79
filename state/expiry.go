package state

import (
	"cmp"
	"context"
	"time"

	"github.com/pgstate/pgstate/gen"
)

// NoTTL is what TTL reports for a live entry that never expires.
const NoTTL time.Duration = -1

// Expire makes the live entry under key expire ttl from now, by the
// database's clock, without rewriting its value (redis EXPIRE; use it to
// extend a session, "touch"). It is one statement and a write: the version
// grows by one. found is false, and nothing changes, when the key has no
// live entry. ttl must be positive.
func (p *Postgres) Expire(ctx context.Context, key []byte, ttl time.Duration) (found bool, err error) {
	micros, err := ttlMicros(ttl)
	if err == nil {
		err = p.checkKey(key)
	}
	if err != nil {
		return false, p.fail(ctx, "expire", err)
	}
	_, err = query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return p.q.EntryExpire(ctx, db, gen.EntryExpireParams{TtlMicros: micros, Key: key})
	})
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, p.fail(ctx, "expire", err)
	}
	return true, nil
}

// Persist removes the expiry of the live entry under key (redis PERSIST),
// in one statement. removed is false when the key has no live entry or it
// had no expiry; then nothing changes.
func (p *Postgres) Persist(ctx context.Context, key []byte) (removed bool, err error) {
	if err := p.checkKey(key); err != nil {
		return false, p.fail(ctx, "persist", err)
	}
	_, err = query(ctx, p, onceOnly, func(ctx context.Context, db gen.DBTX) (int64, error) {
		return p.q.EntryPersist(ctx, db, key)
	})
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, p.fail(ctx, "persist", err)
	}
	return true, nil
}

// TTL returns how long the live entry under key has left, measured on the
// database's clock (redis TTL): NoTTL when it never expires, and found
// false when there is no live entry.
func (p *Postgres) TTL(ctx context.Context, key []byte) (remaining time.Duration, found bool, err error) {
	if err := p.checkKey(key); err != nil {
		return 0, false, p.fail(ctx, "ttl", err)
	}
	row, err := query(ctx, p, idempotent, func(ctx context.Context, db gen.DBTX) (gen.EntryTTLGetRow, error) {
		return p.q.EntryTTLGet(ctx, db, key)
	})
	if isNoRows(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, p.fail(ctx, "ttl", err)
	}
	if row.ExpiresAt == nil {
		return NoTTL, true, nil
	}
	return row.ExpiresAt.Sub(row.Now), true, nil
}

// Expire implements Ops.
func (t *PostgresTx) Expire(ctx context.Context, key []byte, ttl time.Duration) (bool, error) {
	return t.p.Expire(t.bind(ctx), key, ttl)
}

// Persist implements Ops.
func (t *PostgresTx) Persist(ctx context.Context, key []byte) (bool, error) {
	return t.p.Persist(t.bind(ctx), key)
}

// TTL implements Ops.
func (t *PostgresTx) TTL(ctx context.Context, key []byte) (time.Duration, bool, error) {
	return t.p.TTL(t.bind(ctx), key)
}

// Expire implements Ops with the semantics of Postgres.Expire.
func (m *Memory) Expire(ctx context.Context, key []byte, ttl time.Duration) (bool, error) {
	if _, err := ttlMicros(ttl); err != nil {
		return false, memFail("expire", err)
	}
	return m.rewriteExpiry(ctx, "expire", key, func(e *memEntry, now time.Time) bool {
		e.expiresAt = expiryAfter(now, ttl)
		return true
	})
}

// Persist implements Ops with the semantics of Postgres.Persist.
func (m *Memory) Persist(ctx context.Context, key []byte) (bool, error) {
	return m.rewriteExpiry(ctx, "persist", key, func(e *memEntry, _ time.Time) bool {
		if e.expiresAt.IsZero() {
			return false
		}
		e.expiresAt = time.Time{}
		return true
	})
}

func (m *Memory) rewriteExpiry(ctx context.Context, op string, key []byte, change func(*memEntry, time.Time) bool) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return false, memFail(op, err)
	}
	if err := checkKey(key); err != nil {
		return false, memFail(op, err)
	}
	now := m.Now()
	e, ok := m.liveEntry(key, now)
	if !ok || !change(&e, now) {
		return false, nil
	}
	e.updatedAt = now
	e.version++
	e.createRevision = cmp.Or(e.createRevision, e.modRevision)
	m.logPut(string(key), e, now)
	return true, nil
}

// TTL implements Ops with the semantics of Postgres.TTL.
func (m *Memory) TTL(ctx context.Context, key []byte) (time.Duration, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.ready(ctx); err != nil {
		return 0, false, memFail("ttl", err)
	}
	if err := checkKey(key); err != nil {
		return 0, false, memFail("ttl", err)
	}
	now := m.Now()
	e, ok := m.liveEntry(key, now)
	switch {
	case !ok:
		return 0, false, nil
	case e.expiresAt.IsZero():
		return NoTTL, true, nil
	}
	return e.expiresAt.Sub(now), true, nil
}
