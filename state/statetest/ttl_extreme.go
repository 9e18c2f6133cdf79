package statetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/pgstate/pgstate/state"
)

// testTTLExtreme checks that a TTL expires exactly that long after the
// write, rounded up to a whole microsecond, on every write path and up to
// the longest time.Duration (about 292 years): no TTL wraps into the past,
// and none turns into "never".
func testTTLExtreme(t *testing.T, s state.Store) {
	ttls := []struct {
		name string
		ttl  time.Duration
	}{
		{"MaxInt64", math.MaxInt64},
		{"MaxInt64WholeMicros", math.MaxInt64 / time.Microsecond * time.Microsecond},
		// Above 2^53 microseconds a float8 multiplication drops the last one.
		{"OddMicrosAbove2Pow53", (1<<53 + 1) * time.Microsecond},
		{"HourAndANanosecond", time.Hour + time.Nanosecond},
	}
	writes := []struct {
		name  string
		write func(key []byte, ttl time.Duration) error
	}{
		{"PutWithTTL", func(key []byte, ttl time.Duration) error {
			return s.PutWithTTL(ctx(), key, []byte("v"), ttl)
		}},
		{"BatchPut", func(key []byte, ttl time.Duration) error {
			return s.BatchPut(ctx(), []state.Entry{{Key: key, Value: []byte("v"), TTL: ttl}})
		}},
		// Large enough for Postgres's COPY path.
		{"BatchPutLarge", func(key []byte, ttl time.Duration) error {
			batch := make([]state.Entry, 1000)
			for i := range batch {
				batch[i] = state.Entry{Key: fmt.Appendf(nil, "%s/%04d", key, i), Value: []byte("v"), TTL: ttl}
			}
			batch[len(batch)-1].Key = key
			return s.BatchPut(ctx(), batch)
		}},
	}
	for _, w := range writes {
		for _, tc := range ttls {
			key := []byte("ttl/" + w.name + "/" + tc.name)
			if err := w.write(key, tc.ttl); err != nil {
				t.Fatalf("%s with TTL %v: %v", w.name, tc.ttl, err)
			}
			e, ok, err := s.GetEntry(ctx(), key)
			if err != nil || !ok {
				t.Fatalf("%s with TTL %v: GetEntry right after = %v, %v; want the entry", w.name, tc.ttl, ok, err)
			}
			if want := addRoundedUp(e.UpdatedAt, tc.ttl); !e.ExpiresAt.Equal(want) {
				t.Errorf("%s with TTL %v: written at %v, expires at %v; want %v", w.name, tc.ttl,
					e.UpdatedAt, e.ExpiresAt, want)
			}
		}
	}
}

// addRoundedUp returns t plus d rounded up to a whole microsecond, without
// overflowing a time.Duration.
func addRoundedUp(t time.Time, d time.Duration) time.Time {
	micros := int64(d / time.Microsecond)
	if d%time.Microsecond != 0 {
		micros++
	}
	return t.Add(time.Duration(micros/1e6) * time.Second).Add(time.Duration(micros%1e6) * time.Microsecond)
}
