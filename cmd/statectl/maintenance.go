package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/pgstate/pgstate/schema"
	"github.com/pgstate/pgstate/state"
)

func cmdCleanup(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("cleanup")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("cleanup", args); err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		n, err := s.CleanupExpired(ctx)
		if err != nil {
			return err
		}
		return a.emit(struct {
			Deleted int64 `json:"deleted"`
		}{n}, func(w io.Writer) {
			fmt.Fprintf(w, "deleted %s\n", plural(n, "expired entry", "expired entries"))
		})
	})
}

func cmdVacuum(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("vacuum")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("vacuum", args); err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		if err := s.Vacuum(ctx); err != nil {
			return err
		}
		return a.emit(map[string]string{"vacuumed": a.g.schema}, func(w io.Writer) {
			fmt.Fprintf(w, "vacuumed and analyzed the tables of schema %s\n", a.g.schema)
		})
	})
}

// statsDoc holds what the database knows about the store. The process
// counters of state.Stats are left out: for a command that runs one
// statement they describe statectl, not the store.
type statsDoc struct {
	Schema              string `json:"schema"`
	Entries             int64  `json:"entries"`
	CountEstimate       int64  `json:"count_estimate"`
	LiveRows            int64  `json:"live_rows"`
	DeadRows            int64  `json:"dead_rows"`
	TableBytes          int64  `json:"table_bytes"`
	ToastBytes          int64  `json:"toast_bytes"`
	IndexBytes          int64  `json:"index_bytes"`
	TotalBytes          int64  `json:"total_bytes"`
	Checkpoints         int    `json:"checkpoints"`
	CheckpointDataBytes int64  `json:"checkpoint_data_bytes"`
	CheckpointBytes     int64  `json:"checkpoint_bytes"`
}

func cmdStats(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("stats")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("stats", args); err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		doc := statsDoc{Schema: a.g.schema}
		var err error
		if doc.Entries, err = s.Count(ctx); err != nil {
			return err
		}
		if doc.CountEstimate, err = s.CountEstimate(ctx); err != nil {
			return err
		}
		ts, err := s.TableStats(ctx)
		if err != nil {
			return err
		}
		doc.LiveRows, doc.DeadRows = ts.LiveRows, ts.DeadRows
		doc.TableBytes, doc.ToastBytes, doc.IndexBytes, doc.TotalBytes = ts.TableBytes, ts.ToastBytes, ts.IndexBytes, ts.TotalBytes
		doc.CheckpointBytes = ts.CheckpointBytes
		cps, err := s.ListCheckpoints(ctx)
		if err != nil {
			return err
		}
		doc.Checkpoints = len(cps)
		for _, c := range cps {
			doc.CheckpointDataBytes += c.Bytes
		}
		return a.emit(doc, func(w io.Writer) {
			n := func(v int64) string { return strconv.FormatInt(v, 10) }
			table(w, [][]string{
				{"schema", doc.Schema},
				{"entries", n(doc.Entries) + " (exact count of live entries)"},
				{"count estimate", n(doc.CountEstimate) + " (planner estimate as of the last ANALYZE; -1 before the first)"},
				{"live rows", n(doc.LiveRows) + " (statistics estimate, may lag; counts expired rows)"},
				{"dead rows", n(doc.DeadRows) + " (not yet reclaimed; vacuum reclaims them)"},
				{"table bytes", n(doc.TableBytes) + " (heap)"},
				{"toast bytes", n(doc.ToastBytes) + " (large values stored apart)"},
				{"index bytes", n(doc.IndexBytes)},
				{"total bytes", n(doc.TotalBytes) + " (table + toast + index)"},
				{"checkpoints", strconv.Itoa(doc.Checkpoints) + " (" + plural(doc.CheckpointDataBytes, "byte", "bytes") + " of keys and values)"},
				{"checkpoint bytes", n(doc.CheckpointBytes) + " (on disk, allocated even when empty)"},
			})
		})
	})
}

func cmdHealth(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("health")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("health", args); err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		if err := s.HealthCheck(ctx); err != nil {
			return err
		}
		// HealthCheck has just verified that the schema is at this version.
		v, err := schema.Latest()
		if err != nil {
			return err
		}
		return a.emit(struct {
			Status  string `json:"status"`
			Schema  string `json:"schema"`
			Version int32  `json:"version"`
		}{"ok", a.g.schema, v}, func(w io.Writer) {
			fmt.Fprintf(w, "ok: %s\n", describeVersion(a.g.schema, v))
		})
	})
}
