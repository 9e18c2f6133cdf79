package main

import (
	"math"
	"strings"
	"testing"
)

// Two processes: Put over three rounds (the repeat mark on the leaf), and
// BatchPut/1000 over two (the mark on the parent), the second process
// numbering its rounds from 0 again.
const out = `goos: linux
pkg: github.com/pgstate/pgstate/bench
BenchmarkPut/lib-2          	     400	    110000 ns/op	     277 B/op	       5 allocs/op
BenchmarkPut/lib-feed-off-2 	     400	    100000 ns/op	     277 B/op	       5 allocs/op
BenchmarkPut/raw-2          	     400	    100000 ns/op	     245 B/op	       5 allocs/op
BenchmarkPut/floor-2        	     400	    100000 ns/op	     235 B/op	       5 allocs/op
BenchmarkPut/lib-feed-off#01-2  	     400	    200000 ns/op
BenchmarkPut/raw#01-2           	     400	    200000 ns/op
BenchmarkPut/floor#01-2         	     400	    200000 ns/op
BenchmarkPut/lib#01-2           	     400	    240000 ns/op
BenchmarkPut/lib#02-2           	     400	    120000 ns/op
BenchmarkPut/lib-feed-off#02-2  	     400	    100000 ns/op
BenchmarkPut/floor#02-2         	     400	    100000 ns/op
PASS
goos: linux
BenchmarkBatchPut/1000/lib-2          	  20	   2000000 ns/op	 2000 ns/entry
BenchmarkBatchPut/1000/lib-feed-off-2 	  20	   1500000 ns/op	 1500 ns/entry
BenchmarkBatchPut/1000/copy-2         	  20	   1000000 ns/op	 1000 ns/entry
BenchmarkBatchPut/1000#01/copy-2      	  20	   3000000 ns/op	 3000 ns/entry
BenchmarkBatchPut/1000#01/lib-2       	  20	   3000000 ns/op	 3000 ns/entry
BenchmarkBatchPut/1000#01/lib-feed-off-2 	  20	   3000000 ns/op	 3000 ns/entry
ok  	github.com/pgstate/pgstate/bench	5.2s
`

func TestPerRoundPairsByRound(t *testing.T) {
	s, err := parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	// Round 2 of Put has no raw sample, so lib/raw pairs two rounds.
	if got := s.perRound("Put/lib", "Put/raw"); len(got) != 2 || got[0] != 1.1 || got[1] != 1.2 {
		t.Errorf("Put lib/raw per round = %v, want [1.1 1.2]", got)
	}
	if got := s.perRound("Put/lib", "Put/floor"); len(got) != 3 || got[2] != 1.2 {
		t.Errorf("Put lib/floor per round = %v, want 3 rounds ending 1.2", got)
	}
	if got := s.perRound("BatchPut/1000/lib-feed-off", "BatchPut/1000/copy"); len(got) != 2 || got[0] != 1.5 || got[1] != 1 {
		t.Errorf("BatchPut/1000 off/copy per round = %v, want [1.5 1]", got)
	}
	if got := s.perRound("Put/lib", "BatchPut/1000/copy"); len(got) != 0 {
		t.Errorf("samples of two processes paired: %v", got)
	}
}

func TestMedianCI(t *testing.T) {
	if _, _, ok := medianCI([]float64{1, 2, 3, 4, 5}); ok {
		t.Error("5 values gave an interval; none reaches 95 %")
	}
	xs := make([]float64, 30)
	for i := range xs {
		xs[i] = float64(30 - i) // 30 … 1, unsorted on purpose
	}
	// n = 30: ranks 10 and 21 (coverage 95.7 %).
	if lo, hi, ok := medianCI(xs); !ok || lo != 10 || hi != 21 {
		t.Errorf("medianCI of 1…30 = %v, %v, %v; want 10, 21", lo, hi, ok)
	}
	if p := binomHalf(4, 2); math.Abs(p-0.375) > 1e-12 {
		t.Errorf("P(B(4,½) = 2) = %v, want 0.375", p)
	}
}

func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		r    ratio
		want string
	}{
		{ratio{measured: true, p50: 1.05, ciOK: true, ciLo: 1.02, ciHi: 1.08}, "met (resolved)"},
		{ratio{measured: true, p50: 1.08, ciOK: true, ciLo: 1.04, ciHi: 1.13}, "met (within noise: 95 % CI straddles the limit)"},
		{ratio{measured: true, p50: 1.20, ciOK: true, ciLo: 1.15, ciHi: 1.25}, "NOT met (resolved)"},
		{ratio{measured: true, p50: 1.20}, "NOT met (too few rounds to resolve)"},
		{ratio{}, "no data"},
	} {
		if got := verdict(c.r, 1.10); got != c.want {
			t.Errorf("verdict(%+v) = %q, want %q", c.r, got, c.want)
		}
	}
}

func TestMedianLatencyPreferred(t *testing.T) {
	const in = `goos: linux
BenchmarkDelete/lib-2    	 400	 500000 ns/op	 300000 p50-ns
BenchmarkDelete/floor-2  	 400	 250000 ns/op	 200000 p50-ns
BenchmarkDelete/raw-2    	 400	 250000 ns/op
`
	s, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if u := s.unitOf("Delete/lib", "Delete/floor"); u != "p50-ns" {
		t.Errorf("lib vs floor compared in %s, want p50-ns", u)
	}
	if got := s.perRound("Delete/lib", "Delete/floor"); len(got) != 1 || got[0] != 1.5 {
		t.Errorf("lib/floor = %v, want [1.5] (p50-ns)", got)
	}
	// raw has no p50-ns: ns/op for both.
	if got := s.perRound("Delete/lib", "Delete/raw"); len(got) != 1 || got[0] != 2 {
		t.Errorf("lib/raw = %v, want [2] (ns/op)", got)
	}
}
