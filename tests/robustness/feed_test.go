package robustness

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/pgstate/pgstate/state"
)

// feedWatcher records every event of the store's change feed from a
// revision on, through whatever the fault does to its connection.
type feedWatcher struct {
	mu     sync.Mutex
	events []state.Event
	seenAt []int64 // when each event arrived, on the recorder's clock
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func watchFeed(s *state.Postgres, from int64, rec *recorder) *feedWatcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &feedWatcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for e, err := range s.Watch(ctx, nil, state.FromRevision(from), state.WithValues()) {
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			w.events = append(w.events, e)
			w.seenAt = append(w.seenAt, rec.now())
			w.mu.Unlock()
		}
	}()
	return w
}

// until waits for an event that ok accepts, or for the timeout.
func (w *feedWatcher) until(timeout time.Duration, ok func(state.Event) bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		seen := len(w.events) > 0 && ok(w.events[len(w.events)-1])
		failed := w.err != nil
		w.mu.Unlock()
		if seen || failed {
			return seen
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func (w *feedWatcher) stop() ([]state.Event, []int64, error) {
	w.cancel()
	<-w.done
	return w.events, w.seenAt, w.err
}

// resolveUnknown settles the writes of unknown outcome that put unique
// values, as etcd's robustness tests do with their watch: a write whose
// values the change feed never carried did not commit and is left out; one
// whose values it carried committed before the feed delivered them, which
// bounds its return. Writes that carry no value (deletes) stay unknown. An
// unbounded return makes the check search far more orders; settling them
// keeps it fast after a failover.
func resolveUnknown(history []porcupine.Operation, events []state.Event, seenAt []int64) ([]porcupine.Operation, int) {
	arrived := map[string]int64{}
	for i, e := range events {
		if e.Kind == state.EventPut {
			arrived[string(e.Value)] = seenAt[i]
		}
	}
	out := history[:0:0]
	resolved := 0
	for _, op := range history {
		in := op.Input.(input)
		putsValues := in.kind == opPut || in.kind == opPutTTL || in.kind == opBatchPut ||
			in.kind == opPutIfVersion || in.kind == opPutIfAbsent
		if op.Return != math.MaxInt64 || !putsValues {
			out = append(out, op)
			continue
		}
		var latest int64
		found := 0
		for _, v := range in.values {
			if at, ok := arrived[v]; ok {
				found++
				latest = max(latest, at)
			}
		}
		switch found {
		case 0:
			resolved++ // never committed
		case len(in.values):
			op.Return = max(latest, op.Call)
			out = append(out, op)
			resolved++
		default:
			out = append(out, op) // half a batch: checkFeed reports it
		}
	}
	return out, resolved
}

// checkFeed compares the change feed with the history: every put that
// returned success appears exactly once, one whose outcome is unknown at
// most once, and nothing else; revisions only grow; and each key's events
// carry the versions its writes produced, in order (1 after a creation,
// one more per put).
func checkFeed(history []porcupine.Operation, events []state.Event, extra ...string) []string {
	acked := map[string]bool{}
	unknown := map[string]bool{}
	for _, op := range history {
		in, out := op.Input.(input), op.Output.(output)
		var values []string
		switch in.kind {
		case opPut, opPutTTL, opBatchPut:
			values = in.values
		case opPutIfVersion, opPutIfAbsent:
			if out.ok || out.unknown {
				values = in.values
			}
		}
		for _, v := range values {
			if op.Return == math.MaxInt64 {
				unknown[v] = true
			} else {
				acked[v] = true
			}
		}
	}
	for _, v := range extra {
		acked[v] = true
	}
	var problems []string
	seen := map[string]int{}
	last := map[string]state.Event{}
	var prevRev int64
	for _, e := range events {
		if e.Revision <= prevRev {
			problems = append(problems, fmt.Sprintf("revision %d after %d", e.Revision, prevRev))
		}
		prevRev = e.Revision
		k := string(e.Key)
		before, had := last[k]
		last[k] = e
		if e.Kind != state.EventPut {
			continue
		}
		v := string(e.Value)
		seen[v]++
		if !acked[v] && !unknown[v] {
			problems = append(problems, fmt.Sprintf("event %d puts %q=%q, which no call wrote", e.Revision, k, v))
		}
		want := int64(1)
		if had && before.Kind == state.EventPut {
			want = before.Version + 1
		}
		if e.Version != want {
			problems = append(problems, fmt.Sprintf("event %d puts %q at version %d, want %d", e.Revision, k, e.Version, want))
		}
	}
	for v := range acked {
		if seen[v] != 1 {
			problems = append(problems, fmt.Sprintf("acknowledged write %q appears %d times in the feed", v, seen[v]))
		}
	}
	for v := range unknown {
		if seen[v] > 1 {
			problems = append(problems, fmt.Sprintf("write %q of unknown outcome appears %d times", v, seen[v]))
		}
	}
	return problems
}

// TestCheckFeedCatches shows that checkFeed fails the runs it should: a
// duplicated, a lost, an invented and a misnumbered event.
func TestCheckFeedCatches(t *testing.T) {
	t.Parallel()
	put := func(v string, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: input{kind: opPut, keys: []int{0}, values: []string{v}}, Output: output{}, Return: ret}
	}
	history := []porcupine.Operation{put("a", 1), put("b", 2), put("lost", math.MaxInt64)}
	ev := func(rev, version int64, v string) state.Event {
		return state.Event{Kind: state.EventPut, Key: []byte("k"), Value: []byte(v), Revision: rev, Version: version}
	}
	good := []state.Event{ev(1, 1, "a"), ev(2, 2, "b")}
	if p := checkFeed(history, good); len(p) != 0 {
		t.Fatalf("a correct feed has problems: %v", p)
	}
	bad := map[string][]state.Event{
		"Duplicated":   {ev(1, 1, "a"), ev(2, 2, "b"), ev(3, 3, "b")},
		"Lost":         {ev(1, 1, "a")},
		"Invented":     {ev(1, 1, "a"), ev(2, 2, "b"), ev(3, 3, "nobody")},
		"VersionSkip":  {ev(1, 1, "a"), ev(2, 3, "b")},
		"OutOfOrder":   {ev(2, 1, "a"), ev(1, 2, "b")},
		"UnknownTwice": {ev(1, 1, "a"), ev(2, 2, "b"), ev(3, 3, "lost"), ev(4, 4, "lost")},
	}
	for name, events := range bad {
		if p := checkFeed(history, events); len(p) == 0 {
			t.Errorf("%s: checkFeed found nothing wrong", name)
		}
	}
}
