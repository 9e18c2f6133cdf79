package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/pgstate/pgstate/state"
)

type checkpointDoc struct {
	ID        uuid.UUID       `json:"id"`
	Name      string          `json:"name,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	Rows      int64           `json:"rows"`
	Bytes     int64           `json:"bytes"`
	Metadata  json.RawMessage `json:"metadata"`
}

func newCheckpointDoc(c state.CheckpointInfo) checkpointDoc {
	return checkpointDoc{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt, Rows: c.Rows, Bytes: c.Bytes, Metadata: rawJSON(c.Metadata)}
}

const checkpointUsage = "checkpoint create [--name N] [--metadata JSON] | list | show REF | entries REF [list's flags] | get REF KEY [--raw] | restore REF [--yes] | delete REF"

// checkpointActions are the flags each action takes, beyond the globals.
var checkpointActions = map[string][]string{
	"create":  {"name", "metadata"},
	"list":    nil,
	"show":    nil,
	"entries": {"prefix", "start", "end", "start-after", "limit", "reverse", "values"},
	"get":     {"raw"},
	"restore": {"yes"},
	"delete":  nil,
}

func cmdCheckpoint(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("checkpoint")
	metadata := fs.String("metadata", "", "a JSON document to attach (create)")
	name := fs.String("name", "", "a name for the checkpoint, unique among them (create)")
	raw := fs.Bool("raw", false, "print the value's bytes exactly, without a newline (get)")
	yes := fs.Bool("yes", false, "restore without asking for confirmation (restore)")
	lf := addListFlags(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("checkpoint: missing action: usage is 'statectl %s'", checkpointUsage)
	}
	action, args := args[0], args[1:]
	allowed, known := checkpointActions[action]
	if !known {
		return usagef("checkpoint: unknown action %q: usage is 'statectl %s'", action, checkpointUsage)
	}
	if err := onlyWith(fs, "checkpoint "+action, allowed...); err != nil {
		return err
	}
	switch action {
	case "create":
		if err := wantArgs("checkpoint create", args); err != nil {
			return err
		}
		opts := []state.CheckpointOption{}
		if *metadata != "" {
			if !json.Valid([]byte(*metadata)) {
				return usagef("checkpoint create: --metadata %q is not a valid JSON document", *metadata)
			}
			opts = append(opts, state.CheckpointMetadata(json.RawMessage(*metadata)))
		}
		if isSet(fs, "name") {
			opts = append(opts, state.CheckpointName(*name))
		}
		return a.withStore(ctx, func(s *state.Postgres) error {
			info, err := s.CreateCheckpointWith(ctx, opts...)
			if err != nil {
				return err
			}
			doc := map[string]string{"id": info.ID.String()}
			if info.Name != "" {
				doc["name"] = info.Name
			}
			return a.emit(doc, func(w io.Writer) { fmt.Fprintln(w, info.ID) })
		})
	case "list":
		if err := wantArgs("checkpoint list", args); err != nil {
			return err
		}
		return a.withStore(ctx, func(s *state.Postgres) error { return a.checkpointList(ctx, s) })
	case "get":
		if err := wantArgs("checkpoint get", args, "REF", "KEY"); err != nil {
			return err
		}
	default:
		if err := wantArgs("checkpoint "+action, args, "REF"); err != nil {
			return err
		}
	}
	ref := args[0]
	if err := checkRef(action, ref); err != nil {
		return err
	}
	switch action {
	case "show":
		return a.withCheckpoint(ctx, ref, func(s *state.Postgres, info state.CheckpointInfo) error {
			doc := newCheckpointDoc(info)
			return a.emit(doc, func(w io.Writer) {
				rows := [][]string{{"id", info.ID.String()}}
				if info.Name != "" {
					rows = append(rows, []string{"name", info.Name})
				}
				rows = append(rows, []string{"created", formatTime(info.CreatedAt)},
					[]string{"entries", strconv.FormatInt(info.Rows, 10)},
					[]string{"bytes", strconv.FormatInt(info.Bytes, 10) + " (keys and values)"})
				if info.Metadata != nil {
					rows = append(rows, []string{"metadata", string(info.Metadata)})
				}
				table(w, rows)
			})
		})
	case "entries":
		c, vc, prefix, opts, err := a.listArgs(fs, lf)
		if err != nil {
			return err
		}
		return a.withCheckpoint(ctx, ref, func(s *state.Postgres, info state.CheckpointInfo) error {
			pg, err := s.ListCheckpointEntries(ctx, info.ID, prefix, opts...)
			if err != nil {
				return err
			}
			return a.printPage(pg, c, vc, *lf.values)
		})
	case "get":
		c, key, err := a.keyArg(args[1])
		if err != nil {
			return err
		}
		vc, err := a.valueCodec()
		if err != nil {
			return err
		}
		if *raw && a.g.json {
			return usagef("checkpoint get: --raw and --json exclude each other")
		}
		return a.withCheckpoint(ctx, ref, func(s *state.Postgres, info state.CheckpointInfo) error {
			e, found, err := s.GetCheckpointEntry(ctx, info.ID, key)
			if err != nil {
				return err
			}
			if !found {
				return &notFoundError{msg: fmt.Sprintf("key %s not found in checkpoint %s", strconv.Quote(args[1]), info.ID)}
			}
			return a.printValue(c, vc, e, *raw)
		})
	case "restore":
		what := fmt.Sprintf("replace every entry of schema %s with checkpoint %s", a.g.schema, ref)
		if !*yes && !stdinIsTerminal(a.stdin) {
			// Refused before connecting: nobody can answer.
			return a.confirm("checkpoint restore", false, what)
		}
		return a.withCheckpoint(ctx, ref, func(s *state.Postgres, info state.CheckpointInfo) error {
			what := fmt.Sprintf("replace every entry of schema %s with the %s of checkpoint %s", a.g.schema, plural(info.Rows, "entry", "entries"), describeCheckpoint(info))
			if err := a.confirm("checkpoint restore", *yes, what); err != nil {
				return err
			}
			n, err := s.RestoreCheckpointCount(ctx, info.ID)
			if err != nil {
				return err
			}
			return a.emit(struct {
				Restored uuid.UUID `json:"restored"`
				Entries  int64     `json:"entries"`
			}{info.ID, n}, func(w io.Writer) {
				fmt.Fprintf(w, "restored checkpoint %s: %s written\n", info.ID, plural(n, "entry", "entries"))
			})
		})
	default: // delete
		return a.withCheckpoint(ctx, ref, func(s *state.Postgres, info state.CheckpointInfo) error {
			if err := s.DeleteCheckpoint(ctx, info.ID); err != nil {
				return err
			}
			return a.emit(map[string]string{"deleted": info.ID.String()}, func(w io.Writer) {
				fmt.Fprintf(w, "deleted checkpoint %s\n", info.ID)
			})
		})
	}
}

// checkRef rejects, before connecting, what can be neither an id, a name
// nor an id prefix.
func checkRef(action, ref string) error {
	if ref == "" || strings.IndexFunc(ref, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return usagef("checkpoint %s: %q is not a checkpoint id, name or id prefix (as 'statectl checkpoint list' prints)", action, ref)
	}
	return nil
}

// withCheckpoint resolves ref (a full id, a name or a unique id prefix) and
// runs fn with the checkpoint. An ambiguous prefix is a usage error: a
// longer prefix fixes it.
func (a *app) withCheckpoint(ctx context.Context, ref string, fn func(*state.Postgres, state.CheckpointInfo) error) error {
	return a.withStore(ctx, func(s *state.Postgres) error {
		info, err := s.FindCheckpoint(ctx, ref)
		var amb *state.AmbiguousCheckpointError
		if errors.As(err, &amb) {
			ids := make([]string, len(amb.Matches))
			for i, id := range amb.Matches {
				ids[i] = id.String()
			}
			more := ""
			if amb.More {
				more = ", …"
			}
			return usagef("checkpoint: %q is ambiguous: it starts %s%s; give more of the id", ref, strings.Join(ids, ", "), more)
		}
		if err != nil {
			return err
		}
		return fn(s, info)
	})
}

func describeCheckpoint(info state.CheckpointInfo) string {
	if info.Name != "" {
		return fmt.Sprintf("%s (%s)", info.ID, info.Name)
	}
	return info.ID.String()
}

func (a *app) checkpointList(ctx context.Context, s *state.Postgres) error {
	infos, err := s.ListCheckpoints(ctx)
	if err != nil {
		return err
	}
	docs := make([]checkpointDoc, len(infos))
	for i, c := range infos {
		docs[i] = newCheckpointDoc(c)
	}
	return a.emit(struct {
		Checkpoints []checkpointDoc `json:"checkpoints"`
	}{docs}, func(w io.Writer) {
		if len(docs) == 0 {
			fmt.Fprintln(w, "no checkpoints")
			return
		}
		rows := [][]string{{"ID", "NAME", "CREATED", "ROWS", "BYTES", "METADATA"}}
		for _, d := range docs {
			md := ""
			if string(d.Metadata) != "null" {
				md = string(d.Metadata)
			}
			rows = append(rows, []string{d.ID.String(), d.Name, formatTime(d.CreatedAt), strconv.FormatInt(d.Rows, 10), strconv.FormatInt(d.Bytes, 10), md})
		}
		table(w, rows)
	})
}
