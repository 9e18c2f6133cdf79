package state

import (
	"context"
	"time"
)

// A periodic is a background loop that runs a round every interval until
// stopped: the store's cleaner and its replica checks.
type periodic struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startPeriodic runs round every interval in a goroutine of its own; the
// context round gets ends when stop is called.
func startPeriodic(interval time.Duration, round func(ctx context.Context)) *periodic {
	ctx, cancel := context.WithCancel(context.Background())
	pr := &periodic{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(pr.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				round(ctx)
			}
		}
	}()
	return pr
}

// stop ends the loop and waits for a round in progress to return.
func (pr *periodic) stop() {
	pr.cancel()
	<-pr.done
}
