package state

import (
	"context"
	"maps"
)

// Transact implements Store. The memory store runs transactions one at a
// time, holding its lock for the whole of fn, which is serializable by
// construction; fn runs once and sees a private copy of the entries that
// replaces the store's when fn returns nil. fn must use tx, not the store:
// calling the store itself from inside fn waits for the lock fn holds.
func (m *Memory) Transact(ctx context.Context, fn TxFunc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.ready(ctx); err != nil {
		return memFail("transact", err)
	}
	tx := &Memory{
		entries:      maps.Clone(m.entries),
		MaxValueSize: m.MaxValueSize,
		Now:          m.Now,
		feed:         m.feed.txFeed(),
		revisions:    m.revisions,
	}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	m.entries = tx.entries
	m.feed.commit(tx.feed)
	return nil
}
