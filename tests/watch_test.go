package tests

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// watchEvents runs a watch in the background and sends what it delivers
// (an event, or the error that ended it) on the returned channel until the
// test ends.
func watchEvents(t *testing.T, w state.Watcher, prefix string, opts ...state.WatchOption) <-chan watchItem {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan watchItem, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range w.Watch(ctx, []byte(prefix), opts...) {
			select {
			case out <- watchItem{ev, err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

type watchItem struct {
	ev  state.Event
	err error
}

// next returns the next event within limit, failing the test on an error or
// a timeout.
func next(t *testing.T, items <-chan watchItem, limit time.Duration) state.Event {
	t.Helper()
	select {
	case it := <-items:
		if it.err != nil {
			t.Fatalf("watch: %v", it.err)
		}
		return it.ev
	case <-time.After(limit):
		t.Fatalf("no event within %v", limit)
	}
	return state.Event{}
}

// nextErr returns the error that ends the watch, skipping events.
func nextErr(t *testing.T, items <-chan watchItem, limit time.Duration) error {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case it := <-items:
			if it.err != nil {
				return it.err
			}
		case <-deadline:
			t.Fatalf("the watch did not fail within %v", limit)
		}
	}
}

// TestWatchGap is the gap problem of sequence-based logs: writer A takes its
// revision first and commits after writer B. The watch must not move past
// A's revision while A is open (it waits for A's transaction to end), and
// must then deliver A's change (commit) or skip the revision (rollback).
func TestWatchGap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		commit bool
	}{
		{"HolderCommits", true},
		{"HolderRollsBack", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testdb.Open(t, nil)
			from, err := s.Revision(bg)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := s.Pool().Begin(bg)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(bg)
			if _, err := tx.Exec(bg, `INSERT INTO state_entries (key, value) VALUES ('gap/a', 'a')`); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(bg, []byte("gap/b"), []byte("b")); err != nil {
				t.Fatal(err)
			}
			items := watchEvents(t, s, "gap/", state.FromRevision(from+1))
			// The watch's reader reads B's change after the hole at A's
			// revision many times over in half a second (it polls every
			// 10 ms), finds A among the writers holding the feed's lock,
			// and waits for it.
			select {
			case it := <-items:
				t.Fatalf("delivered %+v (%v) while A's revision is in flight", it.ev, it.err)
			case <-time.After(500 * time.Millisecond):
			}
			want := []string{"gap/b"}
			if tc.commit {
				err = tx.Commit(bg)
				want = []string{"gap/a", "gap/b"}
			} else {
				err = tx.Rollback(bg)
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var revs []int64
			for range want {
				ev := next(t, items, 30*time.Second)
				got = append(got, string(ev.Key))
				revs = append(revs, ev.Revision)
			}
			if !slices.Equal(got, want) || !slices.IsSorted(revs) {
				t.Fatalf("got %q at revisions %v, want %q in revision order", got, revs, want)
			}
			// Nothing else: the next write is the next event.
			if err := s.Put(bg, []byte("gap/c"), []byte("c")); err != nil {
				t.Fatal(err)
			}
			if ev := next(t, items, 30*time.Second); string(ev.Key) != "gap/c" {
				t.Fatalf("after the gap: %q, want gap/c", ev.Key)
			}
		})
	}
}

// TestWatchSkipsLegacyGapRows: releases before migration 010 wrote gap
// rows (kind 0) where a revision had been lost; an upgraded store's log may
// still hold some, and a watch moves past them without delivering them.
func TestWatchSkipsLegacyGapRows(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	admin := testdb.Conn(t, s.Config().DSN)
	from, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(bg, `INSERT INTO state_changes (kind) VALUES (0), (0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	items := watchEvents(t, s, "", state.FromRevision(from+1))
	if ev := next(t, items, 30*time.Second); string(ev.Key) != "k" || ev.Revision != from+3 {
		t.Fatalf("got %q at revision %d, want k at %d, after two gap rows", ev.Key, ev.Revision, from+3)
	}
}

// TestWatchRetention: changes older than ChangeRetention are compacted in
// the background, and a watch that needs them fails with ErrCompacted.
func TestWatchRetention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cleanup time.Duration
	}{
		// With the cleaner on, its rounds; with it off (DefaultConfig),
		// retention still applies (issue 19: the log stays bounded).
		{"Cleaner", 20 * time.Millisecond},
		{"NoCleaner", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testWatchRetention(t, tc.cleanup)
		})
	}
}

func testWatchRetention(t *testing.T, cleanup time.Duration) {
	s := testdb.Open(t, func(c *state.Config) {
		c.CleanupInterval = cleanup
		c.ChangeRetention = time.Millisecond
	})
	for i := range 5 {
		if err := s.Put(bg, fmt.Appendf(nil, "k%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the cleaner to compact the log", func() bool {
		st, err := s.ChangeFeed(bg)
		if err != nil {
			t.Fatal(err)
		}
		return st.Compacted >= rev
	})
	err = nextErr(t, watchEvents(t, s, "", state.FromRevision(1)), 30*time.Second)
	var ce *state.CompactedError
	if !errors.Is(err, state.ErrCompacted) || !errors.As(err, &ce) || ce.Compacted < rev {
		t.Fatalf("watch from 1: %v, want ErrCompacted up to at least %d", err, rev)
	}
}

// TestWatchFeedSwitch: switched off, the feed records nothing and watches
// fail with ErrChangeFeedOff; switched back on, no watch can resume from
// before the switch, since the writes made meanwhile are missing.
func TestWatchFeedSwitch(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, nil)
	if err := s.Put(bg, []byte("before"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	before, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	running := watchEvents(t, s, "", state.FromRevision(before+1))
	if err := s.SetChangeFeed(bg, false); err != nil {
		t.Fatalf("SetChangeFeed(false): %v", err)
	}
	if err := nextErr(t, running, 30*time.Second); !errors.Is(err, state.ErrChangeFeedOff) {
		t.Fatalf("running watch: %v, want ErrChangeFeedOff", err)
	}
	if err := s.Put(bg, []byte("while-off"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	st, err := s.ChangeFeed(bg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Enabled || st.Revision != before {
		t.Fatalf("feed off: %+v, want disabled at revision %d", st, before)
	}
	if err := s.SetChangeFeed(bg, true); err != nil {
		t.Fatalf("SetChangeFeed(true): %v", err)
	}
	if err := nextErr(t, watchEvents(t, s, "", state.FromRevision(before+1)), 30*time.Second); !errors.Is(err, state.ErrCompacted) {
		t.Fatalf("resuming across the switch: %v, want ErrCompacted", err)
	}
	now, err := s.Revision(bg)
	if err != nil {
		t.Fatal(err)
	}
	// The status operators read names the same revision to resume after.
	if st, err := s.ChangeFeed(bg); err != nil || st.Revision != now {
		t.Fatalf("ChangeFeed after switching on = %+v, %v; want revision %d, as Revision says", st, err, now)
	}
	items := watchEvents(t, s, "", state.FromRevision(now+1))
	if err := s.Put(bg, []byte("after"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, items, 30*time.Second); string(ev.Key) != "after" {
		t.Fatalf("after switching back on: %q, want after", ev.Key)
	}
}
