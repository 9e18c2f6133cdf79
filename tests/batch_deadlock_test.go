package tests

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// TestBatchPutOverlappingNoDeadlock runs concurrent BatchPuts over the same
// keys, each batch in its own random order, with retries off: BatchPut locks
// rows in key order, so no two batches can wait for each other in a cycle
// and none may fail with a deadlock (40P01). Small batches take the
// one-statement upsert; large ones take COPY, which on a conflict falls back
// to the upsert in the same transaction.
func TestBatchPutOverlappingNoDeadlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		keys, batches int
		freshKeys     bool // each round writes new keys: COPY races COPY
	}{
		{"Upsert", 40, 60, false},
		{"CopyNewKeys", 1200, 6, true},
		{"CopyFallbackUpsert", 1200, 6, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const writers = 4
			s := testdb.Open(t, func(c *state.Config) {
				c.MaxRetries = 0
				c.MaxConns = writers
			})
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for round := range tc.batches {
						prefix := "k"
						if tc.freshKeys {
							prefix = fmt.Sprintf("r%d", round)
						}
						batch := make([]state.Entry, tc.keys)
						for i, k := range rng.Perm(tc.keys) {
							batch[i] = state.Entry{Key: fmt.Appendf(nil, "%s/%05d", prefix, k), Value: fmt.Appendf(nil, "w%d", w)}
						}
						if err := s.BatchPut(bg, batch); err != nil {
							errs <- fmt.Errorf("writer %d, round %d: %w", w, round, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "40P01" {
					t.Errorf("deadlock: %v", err)
					continue
				}
				t.Error(err)
			}
		})
	}
}
