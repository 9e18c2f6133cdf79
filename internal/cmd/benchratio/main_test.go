package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/pgstate/pgstate/bench
cpu: AMD EPYC
BenchmarkGet/lib-2          	     300	    198065 ns/op	    1488 B/op	      20 allocs/op
BenchmarkGet/raw-2          	     300	    165315 ns/op	     576 B/op	       9 allocs/op
BenchmarkGet/lib#01-2       	     300	    100000 ns/op	    1488 B/op	      20 allocs/op
BenchmarkGet/raw#01-2       	     300	    100000 ns/op	     576 B/op	       9 allocs/op
BenchmarkGet/lib#02-2       	     300	    104000 ns/op	    1488 B/op	      20 allocs/op
BenchmarkGet/raw-2          	     300	    100000 ns/op	     576 B/op	       9 allocs/op
    entries_bench_test.go:12: seeded entries in 1s
BenchmarkFindByMetadata/lib-2         	     300	    861487 ns/op	         1.000 gin-index	  114424 B/op	     736 allocs/op
BenchmarkConcurrentGet/lib-2          	     300	    226652 ns/op	      4412 ops/s	    3123 B/op	      26 allocs/op
BenchmarkConcurrentGet/raw-2          	     300	    184487 ns/op	      5000 ops/s	    2245 B/op	      15 allocs/op
BenchmarkBatchPut/10000/lib-2             	       3	 580089928 ns/op	     58009 ns/entry	11550234 B/op	   40096 allocs/op
BenchmarkBatchPut/10000#01/copy-2            	       3	 116449170 ns/op	     11645 ns/entry	 1867410 B/op	   30056 allocs/op
BenchmarkBatchPut/1000/put-each-2         	       3	2993520651 ns/op	   2993521 ns/entry	 1138050 B/op	   16012 allocs/op
BenchmarkNoise broken line
PASS
ok  	github.com/pgstate/pgstate/bench	25.710s
`

func TestParse(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.runs("Get/lib"); got != 3 {
		t.Fatalf("Get/lib runs = %d, want 3", got)
	}
	if got, _ := r.get("Get/lib", "ns/op"); got != 104000 {
		t.Fatalf("median ns/op = %v, want 104000", got)
	}
	if got, _ := r.get("FindByMetadata/lib", "gin-index"); got != 1 {
		t.Fatalf("gin-index = %v", got)
	}
	if got, _ := r.get("BatchPut/10000/lib", "ns/entry"); got != 58009 {
		t.Fatalf("ns/entry = %v", got)
	}
	if _, ok := r.samples["Noise"]; ok {
		t.Fatal("parsed a line that is not a result")
	}
	want := []string{"Get/lib", "Get/raw", "FindByMetadata/lib", "ConcurrentGet/lib", "ConcurrentGet/raw",
		"BatchPut/10000/lib", "BatchPut/10000/copy", "BatchPut/1000/put-each"}
	if strings.Join(r.order, ",") != strings.Join(want, ",") {
		t.Fatalf("order = %v", r.order)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"Empty", nil, 0},
		{"Odd", []float64{5, 1, 3}, 3},
		{"Even", []float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := median(tc.in); got != tc.want {
				t.Fatalf("median(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		target   target
		pass, ok bool
	}{
		{"LatencyPasses", latency("Get", 1.10), true, true},
		{"AllocsMiss", allocs("Get", 4), false, true},
		{"ThroughputMiss", throughput("ConcurrentGet", 0.90), false, true},
		{"CopyRateMiss", rate("BatchPut/10000", "copy", 0.5), false, true},
		{"PutEachPass", overPutEach(10_000, 20), true, true},
		{"GIN", metricIs("FindByMetadata/lib", "gin-index", 1, ""), true, true},
		{"NoData", latency("Put", 1.10), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, pass, ok := tc.target.check(r)
			if pass != tc.pass || ok != tc.ok {
				t.Fatalf("%s: pass=%v ok=%v (%s), want pass=%v ok=%v", tc.target.goal, pass, ok, m, tc.pass, tc.ok)
			}
		})
	}
}

func TestPairedSpread(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	// Rounds: 198065/165315, 100000/100000, 104000/100000.
	got := r.paired("Get/lib", "Get/raw", "ns/op")
	if len(got) != 3 || got[1] != 1 || got[2] != 1.04 {
		t.Fatalf("paired = %v", got)
	}
	if q := quantile([]float64{1, 2, 3, 4}, 0.25); q != 1.75 {
		t.Fatalf("p25 = %v, want 1.75", q)
	}
	if s := spread(got); s != "1.02–1.12 (1.00–1.20)" {
		t.Fatalf("spread = %q", s)
	}
}
