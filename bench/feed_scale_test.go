package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// The benchmarks of issue 19: what the change feed's shared reader (one
// hub per store and process, state/feed_hub.go) costs the server and the
// process as watches are added, and how late their events are
// (BenchmarkWatchLatency, watch_bench_test.go, is one watch with 1 and 8
// writers; BenchmarkWatchFanout here is 1 and 1,000 watches).
//
//	scripts/with-postgres.sh -- go test ./bench -run '^$' \
//	    -bench '^Benchmark(WatchScale|WatchFanout)$' -benchtime 1x -count 3
//
// Each iteration is a whole measurement (an idle window, or a run of
// fanoutWrites writes), so -benchtime 1x is what they are meant for; ns/op
// is then the duration of one measurement and says nothing by itself.
// -rounds N repeats every sub-benchmark N times, sizes interleaved (about
// 3 minutes a round for WatchScale, 50 s for WatchFanout).

const (
	// idleWindow is how long BenchmarkWatchScale watches the server once
	// its watches have settled. A busy backend publishes its counters at
	// most once a second, so the window is long enough for xact_commit to
	// be exact to about 5 %.
	idleWindow = 20 * time.Second
	// idleSettle is how long the watches are left alone after every one
	// of them has had its first event, before memory is read: a watch that
	// started behind the hub delivers it while it is still reading the log
	// itself, and joins the hub a moment later.
	idleSettle = 2 * time.Second
	// statsQuiet is how long the window waits after that: a backend that
	// has gone idle publishes what it still holds only after 10 s
	// (PostgreSQL's PGSTAT_IDLE_INTERVAL), so the start-up statements of
	// the watches, on the store's pool, would otherwise be counted in the
	// window.
	statsQuiet = 11 * time.Second
	// fanoutWrites is how many Puts one BenchmarkWatchFanout iteration
	// makes, at fanoutRate on average.
	fanoutWrites = 2000
	fanoutRate   = 100 // per second
	// userHZ is the unit of utime and stime in /proc/<pid>/stat: fixed at
	// 100 by Linux's ABI, whatever the kernel's own tick.
	userHZ = 100
)

// feedScaleFamily and fanoutFamily are stores of their own, so that the
// backends and counters of their databases are only theirs.
func feedScaleFamily(b *testing.B) *fixture { return family(b, "feedscale", 10, nil) }
func fanoutFamily(b *testing.B) *fixture    { return family(b, "fanout", 10, nil) }

func feedOn(b *testing.B, f *fixture) {
	b.Helper()
	st, err := f.lib.ChangeFeed(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if !st.Enabled {
		setFeed(b, f, true)
	}
}

// BenchmarkWatchScale starts N watches that never get an event after
// their first, lets them settle, then measures for idleWindow:
//
//   - server-xacts/s: transactions committed in the store's database
//     (pg_stat_database.xact_commit; every read of the log is one);
//   - server-cpu-ms/s: CPU time (user+system) of every backend connected
//     to the store's database, from /proc/<pid>/stat, in ms per second
//     (10 is 1 % of a core); feed-cpu-ms/s is the part of the backends
//     whose last statement was a read of the log, the feed's own pool
//     (feed-backends: how many backends that is, idle ones included);
//   - lib-queries/s: statements the store sent (Stats.Queries);
//   - client-cpu-ms/s: CPU time of this whole process;
//   - heap-B/watch: live heap after a GC, with the watches minus
//     without, per watch; stack-B/watch the same for goroutine stacks
//     (StackInuse), goroutines/watch how many goroutines each watch adds
//     (the consumer's own: Watch runs in its caller's goroutine). Only
//     from 1,000 watches on: below, the GC's noise and what the first
//     watch starts (the hub's goroutine, the feed's pool) dominate.
//
// parked-10000 is the consumer's share: 10,000 goroutines blocked in a
// two-case select, as an idle watch's goroutine is, without a watch. What
// idle-10000 costs beyond it is the watch's.
func BenchmarkWatchScale(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		// First, so that it pays for the goroutine descriptors (the
		// runtime keeps them for reuse after their goroutines end): what
		// every goroutine costs, watch or not, is then not counted in
		// idle-N.
		b.Run("parked-10000", func(b *testing.B) {
			for b.Loop() {
				parkedRound(b, 10_000)
			}
		})
		for _, n := range []int{0, 1, 1000, 10_000} {
			b.Run(fmt.Sprintf("idle-%d", n), func(b *testing.B) {
				f := feedScaleFamily(b)
				feedOn(b, f)
				for b.Loop() {
					idleRound(b, f, n)
				}
			})
		}
	})
}

// memSnapshot is the live heap and the goroutine stacks after a GC.
type memSnapshot struct {
	heap, stack uint64
	goroutines  int
}

func readMem() memSnapshot {
	runtime.GC()
	runtime.GC() // the first one may leave finalizer-held objects
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{heap: ms.HeapAlloc, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

func reportMem(b *testing.B, before, after memSnapshot, n int) {
	b.Helper()
	if n < 1000 {
		return
	}
	b.ReportMetric((float64(after.heap)-float64(before.heap))/float64(n), "heap-B/watch")
	b.ReportMetric((float64(after.stack)-float64(before.stack))/float64(n), "stack-B/watch")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/watch")
}

func idleRound(b *testing.B, f *fixture, n int) {
	ctx := context.Background()
	prefix := fmt.Sprintf("idle%d-%d:", n, time.Now().UnixNano())
	ready := []byte(prefix + "ready")

	before := readMem()
	from, err := f.lib.Revision(ctx)
	if err != nil {
		b.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	var (
		started, ended sync.WaitGroup
		failed         atomic.Pointer[error]
	)
	started.Add(n)
	ended.Add(n)
	for range n {
		go func() {
			defer ended.Done()
			first := true
			// From before the ready write: a watch that starts after it
			// still delivers it, by reading the log until it has caught
			// up with the hub.
			for ev, err := range f.lib.Watch(wctx, []byte(prefix), state.FromRevision(from+1)) {
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					break
				}
				if first && string(ev.Key) == string(ready) {
					first = false
					started.Done()
				}
			}
			if first {
				started.Done()
			}
		}()
	}
	b.Cleanup(stop)
	if n > 0 {
		if err := f.lib.Put(ctx, ready, value); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if !waitTimeout(&started, 5*time.Minute) {
			b.Fatalf("%d watches did not all get their first event within 5 minutes", n)
		}
		if p := failed.Load(); p != nil {
			b.Fatalf("watch: %v", *p)
		}
		b.Logf("idle-%d: every watch had its first event %v after the write", n, time.Since(t0).Round(time.Millisecond))
		time.Sleep(idleSettle)
	}
	after := readMem()
	time.Sleep(statsQuiet)

	logLoad(b, "window starts")
	s := openServerSampler(b, f)
	defer s.close()
	w := s.window(b, idleWindow)
	if p := failed.Load(); p != nil {
		b.Fatalf("watch: %v", *p)
	}
	stop()
	if !waitTimeout(&ended, time.Minute) {
		b.Fatal("the watches did not end within a minute of their context")
	}
	time.Sleep(100 * time.Millisecond) // the hub stops at its next poll

	logLoad(b, "window ends")
	w.report(b, true)
	reportMem(b, before, after, n)
}

// parkedRound is the consumer's goroutine without a watch: blocked in a
// select as an idle watch's goroutine is.
func parkedRound(b *testing.B, n int) {
	before := readMem()
	done := make(chan struct{})
	wake := make(chan struct{})
	var ended sync.WaitGroup
	ended.Add(n)
	for range n {
		go func() {
			defer ended.Done()
			select {
			case <-done:
			case <-wake:
			}
		}()
	}
	after := readMem()
	close(done)
	ended.Wait()
	reportMem(b, before, after, n)
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	select {
	case <-c:
		return true
	case <-time.After(d):
		return false
	}
}

// serverSampler reads, from a connection to another database, the
// counters of the store's database and the CPU time of its backends.
type serverSampler struct {
	f     *fixture
	admin *pgx.Conn
}

func openServerSampler(b *testing.B, f *fixture) *serverSampler {
	b.Helper()
	admin, err := pgx.Connect(context.Background(), testdb.BaseURL())
	if err != nil {
		b.Fatal(err)
	}
	return &serverSampler{f: f, admin: admin}
}

func (s *serverSampler) close() { s.admin.Close(context.Background()) }

// serverSample is one reading: xact_commit, and per backend its CPU ticks
// and whether its last statement read the log.
type serverSample struct {
	at      time.Time
	commits int64
	cpu     map[int32]int64
	feed    map[int32]bool
	queries int64 // the store's Stats().Queries
	self    int64 // this process's CPU ticks
}

func (s *serverSampler) sample(b *testing.B) serverSample {
	b.Helper()
	ctx := context.Background()
	r := serverSample{cpu: map[int32]int64{}, feed: map[int32]bool{}}
	if err := s.admin.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = $1`, s.f.name).Scan(&r.commits); err != nil {
		b.Fatal(err)
	}
	rows, err := s.admin.Query(ctx, `SELECT pid, coalesce(query, '') FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`, s.f.name)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var pid int32
		var q string
		if err := rows.Scan(&pid, &q); err != nil {
			b.Fatal(err)
		}
		if t, ok := procTicks(fmt.Sprint(pid)); ok {
			r.cpu[pid] = t
			r.feed[pid] = strings.Contains(q, "state_changes_meta")
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	r.self, _ = procTicks("self")
	r.queries = s.f.lib.Stats().Queries
	r.at = time.Now()
	return r
}

// procTicks returns utime+stime of a process from /proc/<pid>/stat, in
// 1/userHZ s; false where there is no /proc or the process is not ours to
// read.
func procTicks(pid string) (int64, bool) {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: count fields
	// from after its closing parenthesis, where field 3 (state) begins.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(string(raw[i+1:]))
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return utime + stime, true
}

// serverWindow is what changed between two samples.
type serverWindow struct {
	seconds                   float64
	commits, queries          int64
	cpuTicks, feedTicks       int64
	backends, feedBackends    int
	selfTicks                 int64
	cpuMeasured, selfMeasured bool
}

// window samples, waits d and samples again.
func (s *serverSampler) window(b *testing.B, d time.Duration) serverWindow {
	b.Helper()
	a := s.sample(b)
	time.Sleep(d)
	return s.since(b, a)
}

func (s *serverSampler) since(b *testing.B, a serverSample) serverWindow {
	b.Helper()
	z := s.sample(b)
	w := serverWindow{
		seconds:      z.at.Sub(a.at).Seconds(),
		commits:      z.commits - a.commits,
		queries:      z.queries - a.queries,
		selfTicks:    z.self - a.self,
		cpuMeasured:  len(z.cpu) > 0,
		selfMeasured: z.self > 0,
	}
	for pid, t := range z.cpu {
		// A backend that connected during the window counts in full.
		d := t - a.cpu[pid]
		w.cpuTicks += d
		w.backends++
		if z.feed[pid] || a.feed[pid] {
			w.feedTicks += d
			w.feedBackends++
		}
	}
	return w
}

func (w serverWindow) report(b *testing.B, xacts bool) {
	b.Helper()
	if xacts {
		b.ReportMetric(float64(w.commits)/w.seconds, "server-xacts/s")
	}
	b.ReportMetric(float64(w.queries)/w.seconds, "lib-queries/s")
	if w.cpuMeasured {
		ms := func(ticks int64) float64 { return float64(ticks) * 1000 / userHZ / w.seconds }
		b.ReportMetric(ms(w.cpuTicks), "server-cpu-ms/s")
		b.ReportMetric(ms(w.feedTicks), "feed-cpu-ms/s")
		b.ReportMetric(float64(w.feedBackends), "feed-backends")
	}
	if w.selfMeasured {
		b.ReportMetric(float64(w.selfTicks)*1000/userHZ/w.seconds, "client-cpu-ms/s")
	}
}

// BenchmarkWatchFanout measures how late events are with 1 and with 1,000
// watches on the same prefix, every one of which gets every event: one
// writer makes fanoutWrites Puts at fanoutRate a second on average (the gap
// between two is uniform in [0.5, 1.5] of the mean, so that the writes do
// not keep one phase against the reader's poll). A write's latency is
// from just before its Put is called to a watch's consumer having its
// event, so it includes the Put itself (put-*-ms, from the same moment to
// Put returning).
//
//   - p50-ms, p99-ms, max-ms: over every event at every watch;
//   - slowest-*-ms: per event, the watch that had it last;
//   - ack-*-ms: from Put returning to the event (negative: before it);
//   - gc-cycles, gc-pause-ms: this process's garbage collections over the
//     writes, and their stop-the-world pauses in all;
//   - lib-queries/s, server-cpu-ms/s, client-cpu-ms/s: as in
//     BenchmarkWatchScale, over the writes (they include the writes).
//     xact_commit is not reported: over a window this short after the
//     start-up it is off by what the backends publish late.
func BenchmarkWatchFanout(b *testing.B) {
	interleaved(b, func(b *testing.B) {
		for _, n := range []int{1, 1000} {
			b.Run(fmt.Sprintf("watchers-%d", n), func(b *testing.B) {
				f := fanoutFamily(b)
				feedOn(b, f)
				for b.Loop() {
					fanoutRound(b, f, n)
				}
			})
		}
	})
}

func fanoutRound(b *testing.B, f *fixture, n int) {
	ctx := context.Background()
	prefix := fmt.Sprintf("fan%d-%d:", n, time.Now().UnixNano())
	ready := []byte(prefix + "ready")
	writeKey := func(i int) []byte { return key(prefix, i) }
	keyLen := len(writeKey(0))

	from, err := f.lib.Revision(ctx)
	if err != nil {
		b.Fatal(err)
	}
	base := time.Now() // every time below is nanoseconds since base
	since := func() int64 { return int64(time.Since(base)) }
	recv := make([][]int64, n)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		started, received sync.WaitGroup
		failed            atomic.Pointer[error]
	)
	started.Add(n)
	received.Add(n)
	for w := range n {
		recv[w] = make([]int64, fanoutWrites)
		go func() {
			mine := recv[w]
			got := 0
			var err error
			for ev, werr := range f.lib.Watch(wctx, []byte(prefix), state.FromRevision(from+1), state.WithValues()) {
				at := since()
				if werr != nil {
					err = werr
					break
				}
				if len(ev.Key) != keyLen {
					if string(ev.Key) == string(ready) {
						started.Done()
					}
					continue
				}
				i, perr := strconv.Atoi(string(ev.Key[len(prefix):]))
				if perr != nil || i >= fanoutWrites || mine[i] != 0 {
					err = fmt.Errorf("unexpected event %q", ev.Key)
					break
				}
				mine[i] = at
				if got++; got == fanoutWrites {
					break
				}
			}
			if err == nil && got < fanoutWrites && wctx.Err() == nil {
				err = errors.New("the watch ended early")
			}
			if err != nil {
				failed.CompareAndSwap(nil, &err)
				if got == 0 {
					started.Done()
				}
			}
			received.Done()
		}()
	}
	if err := f.lib.Put(ctx, ready, value); err != nil {
		b.Fatal(err)
	}
	if !waitTimeout(&started, 2*time.Minute) {
		b.Fatalf("%d watches did not all get their first event within 2 minutes", n)
	}
	if p := failed.Load(); p != nil {
		b.Fatalf("watch: %v", *p)
	}
	time.Sleep(idleSettle)

	logLoad(b, "writes start")
	s := openServerSampler(b, f)
	defer s.close()
	sample := s.sample(b)
	var gcBefore, gcAfter runtime.MemStats
	runtime.ReadMemStats(&gcBefore)
	called := make([]int64, fanoutWrites)
	returned := make([]int64, fanoutWrites)
	mean := time.Second / fanoutRate
	next := time.Now()
	start := next
	for i := range fanoutWrites {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		called[i] = since()
		if err := f.lib.Put(ctx, writeKey(i), value); err != nil {
			b.Fatal(err)
		}
		returned[i] = since()
		next = next.Add(mean/2 + rand.N(mean))
	}
	rate := float64(fanoutWrites) / time.Since(start).Seconds()
	if !waitTimeout(&received, time.Minute) {
		b.Fatal("the watches did not get every event within a minute of the last write")
	}
	runtime.ReadMemStats(&gcAfter)
	w := s.since(b, sample)
	logLoad(b, "writes end")
	if p := failed.Load(); p != nil {
		b.Fatalf("watch: %v", *p)
	}
	stop()

	all := make([]float64, 0, n*fanoutWrites)
	slowest := make([]float64, fanoutWrites)
	afterPut := make([]float64, 0, n*fanoutWrites)
	put := make([]float64, fanoutWrites)
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	for i := range fanoutWrites {
		put[i] = ms(returned[i] - called[i])
		for _, mine := range recv {
			l := ms(mine[i] - called[i])
			all = append(all, l)
			slowest[i] = max(slowest[i], l)
			afterPut = append(afterPut, ms(mine[i]-returned[i]))
		}
	}
	report := func(name string, xs []float64) {
		slices.Sort(xs)
		b.ReportMetric(percentile(xs, 50), name+"p50-ms")
		b.ReportMetric(percentile(xs, 99), name+"p99-ms")
		b.ReportMetric(xs[len(xs)-1], name+"max-ms")
	}
	report("", all)
	if n > 1 {
		report("slowest-", slowest)
	}
	report("put-", put)
	// From Put returning instead (negative: the event came first), as
	// BenchmarkWatchLatency measures.
	report("ack-", afterPut)
	b.ReportMetric(rate, "writes/s")
	b.ReportMetric(float64(gcAfter.NumGC-gcBefore.NumGC), "gc-cycles")
	b.ReportMetric(float64(gcAfter.PauseTotalNs-gcBefore.PauseTotalNs)/1e6, "gc-pause-ms")
	w.report(b, false)
}

// percentile is the nearest-rank p-th percentile of sorted xs.
func percentile(xs []float64, p float64) float64 {
	i := int(math.Ceil(float64(len(xs))*p/100)) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// logLoad logs the machine's load average, to read the figures by: the
// benchmarks share the machine with the server and whatever else runs.
func logLoad(b *testing.B, when string) {
	b.Helper()
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("%s: load average %s", when, strings.Join(strings.Fields(string(raw))[:3], " "))
	}
}
