package state

import (
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a store's counters since Open, and of its
// connection pool at the moment of the call.
type Stats struct {
	Gets         int64 // Get, GetEntry, Contains and keys read by GetMany
	Puts         int64 // entries written, batches included
	Deletes      int64 // Delete, DeleteMany and Clear calls
	BytesRead    int64 // key and value bytes returned to the caller
	BytesWritten int64 // key and value bytes sent to be stored
	Queries      int64 // statements sent, retries included
	Transactions int64 // explicit transactions committed or rolled back
	Retries      int64 // attempts repeated after a transient failure
	Errors       int64 // operations that returned an error
	PoolResets   int64 // times a lost connection emptied the pool

	CleanupRuns  int64 // background cleanup rounds this process ran
	CleanupSkips int64 // rounds skipped because another process was cleaning
	CleanedUp    int64 // expired entries the background cleaner deleted

	AcquiredConns    int32         // connections in use right now
	IdleConns        int32         // connections idle in the pool
	TotalConns       int32         // all open connections
	MaxConns         int32         // the pool's limit
	AcquireCount     int64         // connections handed out since Open
	AcquireWait      time.Duration // total time spent waiting for a connection
	EmptyAcquires    int64         // acquisitions that had to wait or dial
	CanceledAcquires int64         // acquisitions abandoned by their context

	// Replicas (Config.Replicas); each one's figures are in ReplicaStats.
	HealthyReplicas  int32         // replicas serving reads right now
	MaxReplicaLag    time.Duration // the largest replay lag among them, as last measured
	ReplicaReads     int64         // reads the replicas served
	ReplicaFallbacks int64         // reads meant for a replica that the primary served
}

type counters struct {
	gets, puts, deletes     atomic.Int64
	bytesRead, bytesWritten atomic.Int64
	queries, transactions   atomic.Int64
	retries, errors         atomic.Int64
	poolResets              atomic.Int64
	cleanupRuns             atomic.Int64
	cleanupSkips, cleanedUp atomic.Int64
}

// Stats returns the store's counters and pool figures. It does not touch the
// database and is safe to call at any rate.
func (p *Postgres) Stats() Stats {
	s := Stats{
		Gets:         p.stats.gets.Load(),
		Puts:         p.stats.puts.Load(),
		Deletes:      p.stats.deletes.Load(),
		BytesRead:    p.stats.bytesRead.Load(),
		BytesWritten: p.stats.bytesWritten.Load(),
		Queries:      p.stats.queries.Load(),
		Transactions: p.stats.transactions.Load(),
		Retries:      p.stats.retries.Load(),
		Errors:       p.stats.errors.Load(),
		PoolResets:   p.stats.poolResets.Load(),
		CleanupRuns:  p.stats.cleanupRuns.Load(),
		CleanupSkips: p.stats.cleanupSkips.Load(),
		CleanedUp:    p.stats.cleanedUp.Load(),
	}
	ps := p.pool.Stat()
	s.AcquiredConns = ps.AcquiredConns()
	s.IdleConns = ps.IdleConns()
	s.TotalConns = ps.TotalConns()
	s.MaxConns = ps.MaxConns()
	s.AcquireCount = ps.AcquireCount()
	s.AcquireWait = ps.AcquireDuration()
	s.EmptyAcquires = ps.EmptyAcquireCount()
	s.CanceledAcquires = ps.CanceledAcquireCount()
	s.HealthyReplicas, s.MaxReplicaLag, s.ReplicaReads, s.ReplicaFallbacks = p.replicas.summary()
	return s
}
