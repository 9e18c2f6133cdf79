// Command feedratio reads the output of `make bench` (bench.out) and prints,
// for every write benchmark that measures the library with its change feed
// on (X/lib) and switched off (X/lib-feed-off), three ratios, each as the
// median of its per-round values with their spread: lib/raw (the Go layer),
// feed-on/floor and feed-off/floor (the design, against an expert's
// statement on a table without the feed's triggers), and feed-on/feed-off
// (what the feed costs). Then issue 19's targets and whether each is met.
//
// A ratio is taken within each round, between samples that ran one after
// the other in the same process, so load that drifts between rounds
// cancels. It compares the median latency of one op (p50-ns) where both
// sides report it (Put, Delete), ns/op otherwise (the batches, whose
// rounds are a few ops each); the rounds' ratios are then summarised by their median (p50),
// interquartile range and extremes, and the median's 95 % confidence
// interval (distribution-free, from order statistics). A difference is
// resolved when that interval is narrower than it.
//
//	go run ./bench/feedratio bench.out
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: feedratio [bench.out]")
		flag.PrintDefaults()
	}
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
	s, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	report(os.Stdout, s)
}

// sample is one sub-benchmark's result in one round of one process: its
// value of every unit (ns/op, p50-ns, B/op…).
type sample struct {
	proc, round int
	values      map[string]float64
}

// samples holds every sample by benchmark name (the -GOMAXPROCS and #NN
// suffixes removed), and the names in the order they first appeared.
type samples struct {
	order []string
	by    map[string][]sample
}

var (
	gomaxprocs = regexp.MustCompile(`-\d+$`)
	repeat     = regexp.MustCompile(`#(\d+)(/|$)`)
)

// parse reads `go test -bench` output. Each process (a "goos:" header)
// numbers its rounds from 0; go test marks the n-th repeat of a name with
// #0n, on the leaf (Put/lib#02) or on a parent (BatchPut/1000#02/lib), so
// the round of a line is the sum of its #NN.
func parse(r io.Reader) (*samples, error) {
	s := &samples{by: map[string][]sample{}}
	proc := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "goos:") {
			proc++
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue
		}
		name := gomaxprocs.ReplaceAllString(strings.TrimPrefix(fields[0], "Benchmark"), "")
		round := 0
		for _, m := range repeat.FindAllStringSubmatch(name, -1) {
			n, _ := strconv.Atoi(m[1])
			round += n
		}
		name = repeat.ReplaceAllString(name, "$2")
		x := sample{proc: proc, round: round, values: map[string]float64{}}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: bad value %q for %s", fields[0], fields[i], fields[i+1])
			}
			x.values[fields[i+1]] = v
		}
		if _, ok := s.by[name]; !ok {
			s.order = append(s.order, name)
		}
		s.by[name] = append(s.by[name], x)
	}
	return s, sc.Err()
}

// unitOf is the unit a and b are compared in: the median latency of one op
// (p50-ns) where both report it, ns/op otherwise.
func (s *samples) unitOf(a, b string) string {
	for _, name := range []string{a, b} {
		if len(s.by[name]) == 0 {
			return "ns/op"
		}
		for _, x := range s.by[name] {
			if _, ok := x.values["p50-ns"]; !ok {
				return "ns/op"
			}
		}
	}
	return "p50-ns"
}

// perRound returns a's value divided by b's, in unitOf(a, b), for every
// round both ran in.
func (s *samples) perRound(a, b string) []float64 {
	unit := s.unitOf(a, b)
	type at struct{ proc, round int }
	den := map[at]float64{}
	for _, x := range s.by[b] {
		den[at{x.proc, x.round}] = x.values[unit]
	}
	var out []float64
	for _, x := range s.by[a] {
		if d, ok := den[at{x.proc, x.round}]; ok && d > 0 {
			out = append(out, x.values[unit]/d)
		}
	}
	return out
}

// median of name's values of unit over its rounds.
func (s *samples) median(name, unit string) float64 {
	xs := make([]float64, 0, len(s.by[name]))
	for _, x := range s.by[name] {
		if v, ok := x.values[unit]; ok {
			xs = append(xs, v)
		}
	}
	return quantile(xs, 0.5)
}

// quantile of xs by linear interpolation between order statistics.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
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

// medianCI is a distribution-free confidence interval of at least 95 % for
// the median of xs: [x(j), x(n+1-j)] in sorted order, with the largest j
// for which Binomial(n, ½) falls below j with probability at most 2.5 %.
// ok is false below 6 values, where no such interval exists.
func medianCI(xs []float64) (lo, hi float64, ok bool) {
	n := len(xs)
	j := 0
	tail := 0.0 // P(B ≤ j-1) for B ~ Binomial(n, ½)
	for j < n/2 {
		next := tail + binomHalf(n, j)
		if 2*next > 0.05 {
			break
		}
		tail = next
		j++
	}
	if j == 0 {
		return 0, 0, false
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[j-1], s[n-j], true
}

// binomHalf is P(B = k) for B ~ Binomial(n, ½).
func binomHalf(n, k int) float64 {
	ln, _ := math.Lgamma(float64(n + 1))
	lk, _ := math.Lgamma(float64(k + 1))
	lnk, _ := math.Lgamma(float64(n - k + 1))
	return math.Exp(ln - lk - lnk - float64(n)*math.Ln2)
}

// ratio is one summarised per-round ratio.
type ratio struct {
	rounds         int
	p50, p25, p75  float64
	lo, hi         float64
	ciLo, ciHi     float64
	ciOK, measured bool
}

func summarise(xs []float64) ratio {
	if len(xs) == 0 {
		return ratio{}
	}
	r := ratio{
		rounds: len(xs), measured: true,
		p50: quantile(xs, 0.5), p25: quantile(xs, 0.25), p75: quantile(xs, 0.75),
		lo: slices.Min(xs), hi: slices.Max(xs),
	}
	r.ciLo, r.ciHi, r.ciOK = medianCI(xs)
	return r
}

// cell formats a ratio as "p50 [95 % CI] (p25–p75, min–max)".
func (r ratio) cell() string {
	if !r.measured {
		return "-"
	}
	ci := "-"
	if r.ciOK {
		ci = fmt.Sprintf("%.3f–%.3f", r.ciLo, r.ciHi)
	}
	return fmt.Sprintf("%.3f [%s] (%.2f–%.2f, %.2f–%.2f)", r.p50, ci, r.p25, r.p75, r.lo, r.hi)
}

// floorOf names each write benchmark's floor: copy for BatchPut of new keys,
// floor for the others.
func floorOf(op string) string {
	if strings.HasPrefix(op, "BatchPut/") {
		return "copy"
	}
	return "floor"
}

// target is one of issue 19's limits: X/lib and X/lib-feed-off at most
// limit × X's floor, judged on the median of the per-round ratios.
type target struct {
	op    string
	limit float64
	goal  string
}

var targets = []target{
	{"Put", 1.10, "Put p50 ≤ 1.10× floor"},
	{"Delete", 1.10, "Delete p50 ≤ 1.10× floor"},
	{"BatchPut/1000", 1.30, "BatchPut 1k new keys ≤ 1.30× COPY"},
	{"BatchPut/10000", 1.30, "BatchPut 10k new keys ≤ 1.30× COPY"},
	{"CleanupExpired/50000", 2.00, "CleanupExpired 50k ≤ 2.0× one DELETE"},
}

// verdict says whether r meets limit, and whether the median's confidence
// interval lies on the same side of it (resolved) or straddles it.
func verdict(r ratio, limit float64) string {
	if !r.measured {
		return "no data"
	}
	v := "met"
	if r.p50 > limit {
		v = "NOT met"
	}
	switch {
	case !r.ciOK:
		v += " (too few rounds to resolve)"
	case r.ciHi <= limit || r.ciLo > limit:
		v += " (resolved)"
	default:
		v += " (within noise: 95 % CI straddles the limit)"
	}
	return v
}

func report(w io.Writer, s *samples) {
	var ops []string
	for _, name := range s.order {
		op, ok := strings.CutSuffix(name, "/lib-feed-off")
		if ok && len(s.by[op+"/lib"]) > 0 {
			ops = append(ops, op)
		}
	}
	if len(ops) == 0 {
		fmt.Fprintln(w, "feedratio: no benchmark with both X/lib and X/lib-feed-off")
		return
	}
	fmt.Fprintln(w, "Change feed: lib (feed on), lib-feed-off, raw and the floor (a table without the feed's triggers).")
	fmt.Fprintln(w, "Each ratio: median of the per-round ratios [its 95 % CI] (p25–p75, min–max).")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "operation\tunit\trounds\tfloor\tfeed on\tfeed off\tlib/raw\tfeed-on/floor\tfeed-off/floor\tfeed-on/feed-off")
	for _, op := range ops {
		fl := op + "/" + floorOf(op)
		unit := s.unitOf(op+"/lib", fl)
		onFloor := summarise(s.perRound(op+"/lib", fl))
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", op, unit, onFloor.rounds,
			human(s.median(fl, unit)), human(s.median(op+"/lib", unit)), human(s.median(op+"/lib-feed-off", unit)),
			summarise(s.perRound(op+"/lib", op+"/raw")).cell(),
			onFloor.cell(),
			summarise(s.perRound(op+"/lib-feed-off", fl)).cell(),
			summarise(s.perRound(op+"/lib", op+"/lib-feed-off")).cell())
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target (issue 19)\tfeed on: p50 [95 % CI]\tresult\tfeed off: p50 [95 % CI]\tresult")
	for _, t := range targets {
		fl := t.op + "/" + floorOf(t.op)
		on := summarise(s.perRound(t.op+"/lib", fl))
		off := summarise(s.perRound(t.op+"/lib-feed-off", fl))
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.goal, short(on), verdict(on, t.limit), short(off), verdict(off, t.limit))
	}
	tw.Flush()
}

func short(r ratio) string {
	switch {
	case !r.measured:
		return "-"
	case !r.ciOK:
		return fmt.Sprintf("%.3f", r.p50)
	}
	return fmt.Sprintf("%.3f [%.3f–%.3f]", r.p50, r.ciLo, r.ciHi)
}

func human(ns float64) string {
	switch {
	case math.IsNaN(ns):
		return "-"
	case ns >= 1e9:
		return fmt.Sprintf("%.2fs", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2fms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.0fµs", ns/1e3)
	}
	return fmt.Sprintf("%.0fns", ns)
}
