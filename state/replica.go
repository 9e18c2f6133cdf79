package state

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgstate/pgstate/gen"
)

// Read modes. A read goes to the primary unless its context (or
// Config.ReplicaReads) asks for a replica; what it may then observe:
//
//   - Primary (the default, or ReadFromPrimary): every write acknowledged
//     before the read began, by any client (read committed).
//   - ReadFromReplica: a state the primary had at most ReplicaMaxLag ago
//     (as last measured, every ReplicaCheckInterval): reads may miss recent
//     writes, the caller's own included, and two reads may go to replicas at
//     different points, so a later read may see an older state.
//   - ReadFromReplicaAfter(pos): everything the primary had committed when
//     pos was read (WALPosition), and so the caller's own writes made before
//     that (read-your-writes), on whichever replica serves it. A replica
//     that has not replayed pos within ReplicaWaitTimeout leaves the read to
//     the primary, which has it.
//
// In every mode a replica that fails (stopped, unreachable, a query
// cancelled by recovery) costs a retry on the primary, not an error.

// WALPosition is a position in the primary's write-ahead log (a pg_lsn).
type WALPosition uint64

// String formats p as PostgreSQL does, "16/B374D848".
func (p WALPosition) String() string {
	return fmt.Sprintf("%X/%X", uint64(p)>>32, uint32(p))
}

// ParseWALPosition reads a position in PostgreSQL's "16/B374D848" form.
func ParseWALPosition(s string) (WALPosition, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("parse WAL position %q: %w", s, err)
	}
	return WALPosition(uint64(hi)<<32 | uint64(lo)), nil
}

type readModeKey struct{}

type readMode struct {
	replica bool
	after   WALPosition // with replica: the position the replica must have replayed
}

// ReadFromReplica returns a context whose reads (Get, Contains, ListKeys,
// Count, CountEstimate and Read) may be served by a replica: see the read
// modes above for what they may miss.
func ReadFromReplica(ctx context.Context) context.Context {
	return context.WithValue(ctx, readModeKey{}, readMode{replica: true})
}

// ReadFromReplicaAfter is ReadFromReplica for reads that must see
// everything committed on the primary before pos, such as the caller's own
// writes when pos was read by WALPosition after them.
func ReadFromReplicaAfter(ctx context.Context, pos WALPosition) context.Context {
	return context.WithValue(ctx, readModeKey{}, readMode{replica: true, after: pos})
}

// ReadFromPrimary returns a context whose reads go to the primary even when
// Config.ReplicaReads is set.
func ReadFromPrimary(ctx context.Context) context.Context {
	return context.WithValue(ctx, readModeKey{}, readMode{})
}

// WALPosition returns the primary's current WAL position: every write
// acknowledged before the call is at or before it. Pass it to
// ReadFromReplicaAfter for read-your-writes on a replica.
func (p *Postgres) WALPosition(ctx context.Context) (WALPosition, error) {
	if err := p.usable(); err != nil {
		return 0, p.fail(ctx, "wal position", err)
	}
	s, err := query(ctx, p, idempotent, p.q.WalPositionGet)
	if err == nil {
		var pos WALPosition
		if pos, err = ParseWALPosition(s); err == nil {
			return pos, nil
		}
	}
	return 0, p.fail(ctx, "wal position", err)
}

// ReplicaStats describes one replica at the moment of Stats.
type ReplicaStats struct {
	Addr      string        // host:port from its DSN
	Healthy   bool          // serves reads: reachable, in recovery, lag within ReplicaMaxLag
	Lag       time.Duration // replay lag: age of the newest replayed commit while WAL is waiting to be replayed, else 0
	LagBytes  int64         // WAL bytes the primary has that the replica has not replayed
	Reads     int64         // reads it served
	Failures  int64         // reads it failed, which the primary then served
	LastError string        // why it is unhealthy, empty when healthy
	CheckedAt time.Time     // when health and lag were last measured
}

// replicaSet routes reads to replicas and measures them in the background.
type replicaSet struct {
	p         *Postgres
	list      []*replica
	next      atomic.Uint32
	fallbacks atomic.Int64 // replica reads the primary served
	checks    *periodic
}

type replica struct {
	addr string
	pool *pgxpool.Pool

	mu        sync.Mutex
	healthy   bool
	lag       time.Duration
	lagBytes  int64
	replayed  WALPosition
	lastErr   string
	checkedAt time.Time

	reads, failures atomic.Int64
}

// openReplicas creates a pool per replica (connecting lazily), measures
// each once, bounded by ConnectTimeout, and starts the background checks.
// A replica that cannot be reached does not fail Open: it serves no reads
// until a check finds it healthy.
func openReplicas(ctx context.Context, p *Postgres) (*replicaSet, error) {
	if len(p.cfg.Replicas) == 0 {
		return nil, nil
	}
	rs := &replicaSet{p: p}
	for i, dsn := range p.cfg.Replicas {
		rc := p.cfg
		rc.DSN = dsn
		pc, err := rc.poolConfig()
		if err != nil {
			rs.closePools()
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
		pc.MinConns = 0
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			rs.closePools()
			return nil, fmt.Errorf("replica %d: %w", i, interpretError(err))
		}
		addr := net.JoinHostPort(pc.ConnConfig.Host, strconv.Itoa(int(pc.ConnConfig.Port)))
		rs.list = append(rs.list, &replica{addr: addr, pool: pool, lastErr: "not checked yet"})
	}
	first, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	rs.check(first)
	cancel()
	rs.checks = startPeriodic(p.cfg.ReplicaCheckInterval, func(ctx context.Context) {
		cctx, cancel := context.WithTimeout(ctx, max(p.cfg.ReplicaCheckInterval, time.Second))
		rs.check(cctx)
		cancel()
	})
	return rs, nil
}

func (rs *replicaSet) closePools() {
	for _, r := range rs.list {
		r.pool.Close()
	}
}

func (rs *replicaSet) close() {
	if rs == nil {
		return
	}
	rs.checks.stop()
	rs.closePools()
}

// check measures every replica at once, against the primary's position.
func (rs *replicaSet) check(ctx context.Context) {
	var primary WALPosition
	if s, err := rs.p.q.WalPositionGet(ctx, rs.p.pool); err == nil {
		primary, _ = ParseWALPosition(s)
	}
	var wg sync.WaitGroup
	for _, r := range rs.list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.check(ctx, rs.p, primary)
		}()
	}
	wg.Wait()
}

func (r *replica) check(ctx context.Context, p *Postgres, primary WALPosition) {
	st, err := p.q.ReplicaStatusGet(ctx, r.pool)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checkedAt = time.Now()
	switch {
	case err != nil:
		r.healthy, r.lastErr = false, interpretError(err).Error()
		return
	case !st.InRecovery:
		// Promoted, or pointed at a primary by mistake: its data may have
		// left the primary's timeline.
		r.healthy, r.lastErr = false, "not in recovery: not a standby"
		return
	}
	r.lag = time.Duration(st.LagMicros) * time.Microsecond
	if pos, err := ParseWALPosition(st.ReplayPosition); err == nil {
		r.replayed = max(r.replayed, pos)
		if primary > pos {
			r.lagBytes = int64(primary - pos)
		} else {
			r.lagBytes = 0
		}
	}
	if r.lag > p.cfg.ReplicaMaxLag {
		r.healthy, r.lastErr = false, fmt.Sprintf("replay lag %v exceeds ReplicaMaxLag %v", r.lag, p.cfg.ReplicaMaxLag)
		return
	}
	r.healthy, r.lastErr = true, ""
}

// markFailed takes a replica out of rotation until the next check finds it
// healthy again.
func (r *replica) markFailed(err error) {
	r.failures.Add(1)
	r.mu.Lock()
	r.healthy, r.lastErr = false, err.Error()
	r.mu.Unlock()
}

func (r *replica) state() (healthy bool, replayed WALPosition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.healthy, r.replayed
}

// pick returns the healthy replicas in round-robin order, those already
// known to have replayed after first.
func (rs *replicaSet) pick(after WALPosition) []*replica {
	n := len(rs.list)
	start := int(rs.next.Add(1)) % n
	var ready, waiting []*replica
	for i := range n {
		r := rs.list[(start+i)%n]
		healthy, replayed := r.state()
		switch {
		case !healthy:
		case replayed >= after:
			ready = append(ready, r)
		default:
			waiting = append(waiting, r)
		}
	}
	return append(ready, waiting...)
}

// ReplicaStats returns each replica's health, replay lag and counters, in
// the order of Config.Replicas; nil without replicas. Like Stats it does not
// touch the database: the figures are those of the last check.
func (p *Postgres) ReplicaStats() []ReplicaStats {
	return p.replicas.stats()
}

// summary is what Stats shows of the replicas.
func (rs *replicaSet) summary() (healthy int32, maxLag time.Duration, reads, fallbacks int64) {
	for _, r := range rs.stats() {
		if r.Healthy {
			healthy++
			maxLag = max(maxLag, r.Lag)
		}
		reads += r.Reads
	}
	if rs != nil {
		fallbacks = rs.fallbacks.Load()
	}
	return healthy, maxLag, reads, fallbacks
}

func (rs *replicaSet) stats() []ReplicaStats {
	if rs == nil {
		return nil
	}
	out := make([]ReplicaStats, len(rs.list))
	for i, r := range rs.list {
		r.mu.Lock()
		out[i] = ReplicaStats{
			Addr: r.addr, Healthy: r.healthy, Lag: r.lag, LagBytes: r.lagBytes,
			LastError: r.lastErr, CheckedAt: r.checkedAt,
		}
		r.mu.Unlock()
		out[i].Reads = r.reads.Load()
		out[i].Failures = r.failures.Load()
	}
	return out
}

// wantsReplica returns the read mode of ctx: per call, else the store's.
func (p *Postgres) wantsReplica(ctx context.Context) (readMode, bool) {
	if p.replicas == nil || boundTx(ctx) != nil {
		// Inside Transact every read belongs to the transaction.
		return readMode{}, false
	}
	if m, ok := ctx.Value(readModeKey{}).(readMode); ok {
		return m, m.replica
	}
	return readMode{replica: true}, p.cfg.ReplicaReads
}

// errNotReplayed makes a replica that has not replayed a read's position in
// time pass the read on.
var errNotReplayed = errors.New("replica has not replayed the position in time")

// onReplica runs fn on a connection of a healthy replica that satisfies
// mode, trying each in turn. ok is false when none could serve the read
// (the caller then reads from the primary); err is then nil unless ctx
// ended, which ends the read.
func (p *Postgres) onReplica(ctx context.Context, mode readMode, fn func(context.Context, *pgxpool.Conn) error) (ok bool, err error) {
	for _, r := range p.replicas.pick(mode.after) {
		err := r.serve(ctx, p, mode, fn)
		if err == nil {
			r.reads.Add(1)
			return true, nil
		}
		if ctx.Err() != nil {
			return false, err
		}
		if !errors.Is(err, errNotReplayed) {
			r.markFailed(err)
		}
	}
	p.replicas.fallbacks.Add(1)
	return false, nil
}

func (r *replica) serve(ctx context.Context, p *Postgres, mode readMode, fn func(context.Context, *pgxpool.Conn) error) error {
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, replayed := r.state(); mode.after > replayed {
		if err := r.waitReplayed(ctx, p, conn, mode.after); err != nil {
			return err
		}
	}
	return fn(ctx, conn)
}

// waitReplayed polls the replica until it has replayed pos, at most
// ReplicaWaitTimeout. Replay never goes back, so a statement that starts
// afterwards on the same server sees everything up to pos.
func (r *replica) waitReplayed(ctx context.Context, p *Postgres, conn *pgxpool.Conn, pos WALPosition) error {
	deadline := time.Now().Add(p.cfg.ReplicaWaitTimeout)
	delay := 500 * time.Microsecond
	for {
		p.stats.queries.Add(1)
		done, err := p.q.ReplicaReplayedAtLeast(ctx, conn, pos.String())
		if err != nil {
			return err
		}
		if done {
			r.mu.Lock()
			r.replayed = max(r.replayed, pos)
			r.mu.Unlock()
			return nil
		}
		if time.Now().Add(delay).After(deadline) {
			return errNotReplayed
		}
		if !sleepCtx(ctx, delay) {
			return ctx.Err()
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// readQuery is query for statements that only read: with a replica read
// mode it runs on a replica, and on the primary when no replica can serve
// it.
func readQuery[T any](ctx context.Context, p *Postgres, run func(context.Context, gen.DBTX) (T, error)) (T, error) {
	if mode, ok := p.wantsReplica(ctx); ok {
		var out T
		var noRows error
		served, err := p.onReplica(ctx, mode, func(ctx context.Context, conn *pgxpool.Conn) error {
			p.stats.queries.Add(1)
			var err error
			out, err = run(ctx, p.sessionless(conn))
			if isNoRows(err) {
				// An answer, not a failure of the replica.
				noRows, err = err, nil
			}
			return err
		})
		if served {
			return out, noRows
		}
		if err != nil {
			return out, err
		}
	}
	return query(ctx, p, idempotent, run)
}

// Read runs fn on a connection chosen as a read of ctx's read mode is: a
// replica's when ctx (or Config.ReplicaReads) asks for one and one can
// serve it, else the primary's. fn must only read; it may be called again,
// on the primary, when it fails on a replica. Behind a transaction pooler
// the connection's search_path is not the store's schema: qualify names.
func (p *Postgres) Read(ctx context.Context, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	if err := p.usable(); err != nil {
		return p.fail(ctx, "read", err)
	}
	if mode, ok := p.wantsReplica(ctx); ok {
		served, err := p.onReplica(ctx, mode, func(ctx context.Context, c *pgxpool.Conn) error {
			return fn(ctx, c.Conn())
		})
		if err != nil {
			return p.fail(ctx, "read", err)
		}
		if served {
			return nil
		}
	}
	ctx, cancel := p.withTimeout(ctx)
	defer cancel()
	c, err := p.pool.Acquire(ctx)
	if err != nil {
		return p.fail(ctx, "read", err)
	}
	defer c.Release()
	if err := fn(ctx, c.Conn()); err != nil {
		return p.fail(ctx, "read", err)
	}
	return nil
}
