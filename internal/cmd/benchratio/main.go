// Command benchratio reads `go test -bench` output (several -count runs of
// the bench package), takes the median of every benchmark and metric, and
// prints the library's ratios to each baseline (raw: the same SQL through
// pgx; floor: what an expert would hand-write for the job) with their
// spread, and the performance targets of issues 4 and 11 with PASS or MISS.
//
// The spread is taken over rounds: go test -count=N runs every sub-benchmark
// of a benchmark once per round, one after the other, so the i-th sample of
// X/lib and the i-th of X/floor ran side by side. Their ratio per round
// cancels what drifts between rounds (the machine's other load), and the
// range of those ratios shows how far one run can be trusted.
//
//	go test ./bench -run '^$' -bench . -count 5 | tee bench.out
//	go run ./internal/cmd/benchratio bench.out
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	strict := flag.Bool("strict", false, "exit with status 1 if a target is missed")
	flag.Parse()
	var in io.Reader = os.Stdin
	if flag.NArg() > 0 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	}
	res, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	printRatios(os.Stdout, res)
	fmt.Println()
	missed := printTargets(os.Stdout, res)
	if *strict && missed > 0 {
		os.Exit(1)
	}
}

// results holds every sample of every benchmark: name → unit → values, and
// the names in the order they first appeared.
type results struct {
	order   []string
	samples map[string]map[string][]float64
}

// procSuffix is the -GOMAXPROCS suffix go test appends to names, and
// repeatSuffix the #NN it gives a sub-benchmark run again under the same
// name (a round of bench's -rounds).
var (
	procSuffix   = regexp.MustCompile(`-\d+$`)
	repeatSuffix = regexp.MustCompile(`#\d+(/|$)`)
)

// parse reads benchmark lines: a name, an iteration count, then value/unit
// pairs. Everything else (goos:, PASS, logs) is skipped.
func parse(r io.Reader) (*results, error) {
	res := &results{samples: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") || len(fields)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(fields[0], "Benchmark"), "")
		name = repeatSuffix.ReplaceAllString(name, "$1")
		units, ok := res.samples[name]
		if !ok {
			units = map[string][]float64{}
			res.samples[name] = units
			res.order = append(res.order, name)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: bad value %q for %s", fields[0], fields[i], fields[i+1])
			}
			units[fields[i+1]] = append(units[fields[i+1]], v)
		}
	}
	return res, sc.Err()
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// get returns the median of name's unit and whether there was any sample.
func (r *results) get(name, unit string) (float64, bool) {
	xs := r.samples[name][unit]
	return median(xs), len(xs) > 0
}

func (r *results) runs(name string) int {
	return len(r.samples[name]["ns/op"])
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func human(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2fs", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2fms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1fµs", ns/1e3)
	}
	return fmt.Sprintf("%.0fns", ns)
}

// baselines are the sibling names a library benchmark is compared with:
// raw sends the library's own SQL, floor (copy for BatchPut of new keys) is
// the expert's hand-written statement for the job.
var baselines = []string{"raw", "floor", "copy", "raw-timeout", "put-each"}

// paired returns, round by round, a's value of unit divided by b's.
func (r *results) paired(a, b, unit string) []float64 {
	xs, ys := r.samples[a][unit], r.samples[b][unit]
	n := min(len(xs), len(ys))
	out := make([]float64, 0, n)
	for i := range n {
		if ys[i] != 0 {
			out = append(out, xs[i]/ys[i])
		}
	}
	return out
}

// quantile is the q-quantile of xs by linear interpolation.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[lo]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}

// spread formats the interquartile range and the extremes of per-round
// ratios: "1.02–1.07 (0.98–1.12)".
func spread(xs []float64) string {
	if len(xs) < 2 {
		return "-"
	}
	return fmt.Sprintf("%.2f–%.2f (%.2f–%.2f)", quantile(xs, 0.25), quantile(xs, 0.75), slices.Min(xs), slices.Max(xs))
}

func printRatios(w io.Writer, r *results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "benchmark\tbaseline\truns\tlib ns/op\tbase ns/op\tns ratio\tper-round p25–p75 (min–max)\tlib allocs\tbase allocs\tlib B/op\tbase B/op\tB ratio\t")
	for _, name := range r.order {
		base, ok := strings.CutSuffix(name, "/lib")
		if !ok {
			continue
		}
		for _, b := range baselines {
			other := base + "/" + b
			if _, ok := r.samples[other]; !ok {
				continue
			}
			ln, _ := r.get(name, "ns/op")
			bn, _ := r.get(other, "ns/op")
			la, _ := r.get(name, "allocs/op")
			ba, _ := r.get(other, "allocs/op")
			lb, _ := r.get(name, "B/op")
			bb, _ := r.get(other, "B/op")
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t\n",
				base, b, min(r.runs(name), r.runs(other)), human(ln), human(bn), ratio(ln, bn),
				spread(r.paired(name, other, "ns/op")), la, ba, lb, bb, ratio(lb, bb))
		}
	}
	tw.Flush()
}

// target is one line of issue 4's list: check returns the measured figure as
// text and whether it meets the goal; ok is false when data is missing.
type target struct {
	goal  string
	check func(r *results) (measured string, pass, ok bool)
}

// latency: lib ns/op ≤ limit × raw ns/op.
func latency(name string, limit float64) target {
	return latencyVs(name, "raw", limit)
}

// latencyVs: lib ns/op ≤ limit × baseline ns/op, judged on the medians;
// the per-round spread is shown beside them.
func latencyVs(name, baseline string, limit float64) target {
	return target{
		goal: fmt.Sprintf("%s ≤ %.2f× %s latency", name, limit, baseline),
		check: func(r *results) (string, bool, bool) {
			l, ok1 := r.get(name+"/lib", "ns/op")
			b, ok2 := r.get(name+"/"+baseline, "ns/op")
			if !ok1 || !ok2 || b == 0 {
				return "", false, false
			}
			return fmt.Sprintf("%.3f× (%s vs %s; rounds %s)", l/b, human(l), human(b), spread(r.paired(name+"/lib", name+"/"+baseline, "ns/op"))), l/b <= limit, true
		},
	}
}

// allocs: lib allocs/op ≤ raw allocs/op + extra.
func allocs(name string, extra float64) target {
	return target{
		goal: fmt.Sprintf("%s allocs ≤ raw + %.0f", name, extra),
		check: func(r *results) (string, bool, bool) {
			l, ok1 := r.get(name+"/lib", "allocs/op")
			b, ok2 := r.get(name+"/raw", "allocs/op")
			if !ok1 || !ok2 {
				return "", false, false
			}
			return fmt.Sprintf("%.0f vs %.0f (+%.0f)", l, b, l-b), l <= b+extra, true
		},
	}
}

// throughput: lib ops/s ≥ limit × raw ops/s.
func throughput(name string, limit float64) target {
	return target{
		goal: fmt.Sprintf("%s ≥ %.2f× raw throughput", name, limit),
		check: func(r *results) (string, bool, bool) {
			l, ok1 := r.get(name+"/lib", "ops/s")
			b, ok2 := r.get(name+"/raw", "ops/s")
			if !ok1 || !ok2 || b == 0 {
				return "", false, false
			}
			return fmt.Sprintf("%.3f× (%.0f vs %.0f ops/s)", l/b, l, b), l/b >= limit, true
		},
	}
}

// rate: lib is at least limit × as fast as baseline (time ratio base/lib).
func rate(name, baseline string, limit float64) target {
	return target{
		goal: fmt.Sprintf("%s ≥ %.2f× the rate of %s", name, limit, baseline),
		check: func(r *results) (string, bool, bool) {
			l, ok1 := r.get(name+"/lib", "ns/op")
			b, ok2 := r.get(name+"/"+baseline, "ns/op")
			if !ok1 || !ok2 || l == 0 {
				return "", false, false
			}
			inv := r.paired(name+"/"+baseline, name+"/lib", "ns/op")
			return fmt.Sprintf("%.3f× (%s vs %s; rounds %s)", b/l, human(l), human(b), spread(inv)), b/l >= limit, true
		},
	}
}

// overPutEach: BatchPut of size n per entry is ≥ limit × faster than one Put
// per entry (measured on 1,000 entries).
func overPutEach(n int, limit float64) target {
	name := fmt.Sprintf("BatchPut/%d", n)
	return target{
		goal: fmt.Sprintf("%s ≥ %.0f× faster per entry than one Put per entry", name, limit),
		check: func(r *results) (string, bool, bool) {
			l, ok1 := r.get(name+"/lib", "ns/op")
			p, ok2 := r.get("BatchPut/1000/put-each", "ns/op")
			if !ok1 || !ok2 || l == 0 {
				return "", false, false
			}
			perBatch, perPut := l/float64(n), p/1000
			return fmt.Sprintf("%.1f× (%s vs %s per entry)", perPut/perBatch, human(perBatch), human(perPut)), perPut/perBatch >= limit, true
		},
	}
}

func metricIs(name, unit string, want float64, goal string) target {
	return target{
		goal: goal,
		check: func(r *results) (string, bool, bool) {
			v, ok := r.get(name, unit)
			if !ok {
				return "", false, false
			}
			return fmt.Sprintf("%s = %.0f", unit, v), v == want, true
		},
	}
}

// memoryFlat: lib B/op at the large size is at most twice that at the small.
func memoryFlat(small, large string) target {
	return target{
		goal: fmt.Sprintf("%s client memory independent of size (B/op ≤ 2× %s)", large, small),
		check: func(r *results) (string, bool, bool) {
			s, ok1 := r.get(small+"/lib", "B/op")
			l, ok2 := r.get(large+"/lib", "B/op")
			if !ok1 || !ok2 {
				return "", false, false
			}
			return fmt.Sprintf("%.0f vs %.0f B/op", l, s), l <= 2*s, true
		},
	}
}

var targets = []target{
	latency("Get", 1.10), allocs("Get", 4),
	latency("Put", 1.10), allocs("Put", 4),
	latency("Delete", 1.10), allocs("Delete", 4),
	latency("Contains", 1.10), allocs("Contains", 4),
	throughput("ConcurrentGet", 0.90),
	throughput("ConcurrentPut", 0.90),
	rate("BatchPut/10000", "copy", 0.5),
	rate("BatchPut/100000", "copy", 0.5),
	overPutEach(10_000, 20),
	overPutEach(100_000, 20),
	latency("ListKeys", 1.15),
	latency("GetMany", 1.15),
	metricIs("FindByMetadata/lib", "gin-index", 1, "FindByMetadata uses the GIN index"),
	latency("CreateCheckpoint/150000", 1.2),
	memoryFlat("CreateCheckpoint/100", "CreateCheckpoint/150000"),
	latency("RestoreCheckpoint/100", 1.5),
	latency("RestoreCheckpoint/150000", 1.5),
	rate("CleanupExpired/100000", "raw", 0.5),
	// issue 11: against the floor.
	latencyVs("CreateCheckpoint/150000", "floor", 1.2),
	latencyVs("DeleteCheckpoint/150000", "floor", 1.2),
	latencyVs("CheckpointRetention/150000", "floor", 1.2),
	latencyVs("BatchPut/1000", "copy", 1.3),
	latencyVs("BatchPut/10000", "copy", 1.15),
	latencyVs("BatchPut/100000", "copy", 1.15),
	rate("CleanupExpired/100000", "floor", 0.8),
}

// printTargets prints every target and returns how many were missed.
func printTargets(w io.Writer, r *results) int {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasured (medians)\tresult")
	missed := 0
	for _, t := range targets {
		measured, pass, ok := t.check(r)
		verdict := "PASS"
		switch {
		case !ok:
			measured, verdict = "no data", "-"
		case !pass:
			verdict = "MISS"
			missed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.goal, measured, verdict)
	}
	tw.Flush()
	return missed
}
