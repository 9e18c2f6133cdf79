package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/pgstate/pgstate/state"
)

type checkpointDoc struct {
	ID        uuid.UUID       `json:"id"`
	CreatedAt time.Time       `json:"created_at"`
	Rows      int64           `json:"rows"`
	Bytes     int64           `json:"bytes"`
	Metadata  json.RawMessage `json:"metadata"`
}

const checkpointUsage = "checkpoint create [--metadata JSON] | list | restore ID | delete ID"

func cmdCheckpoint(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("checkpoint")
	metadata := fs.String("metadata", "", "a JSON document to attach (create)")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return usagef("checkpoint: missing action: usage is 'statectl %s'", checkpointUsage)
	}
	action, args := args[0], args[1:]
	switch action {
	case "create":
		if err := wantArgs("checkpoint create", args); err != nil {
			return err
		}
		var md json.RawMessage
		if *metadata != "" {
			if !json.Valid([]byte(*metadata)) {
				return usagef("checkpoint create: --metadata %q is not a valid JSON document", *metadata)
			}
			md = json.RawMessage(*metadata)
		}
		return a.withStore(ctx, func(s *state.Postgres) error { return a.checkpointCreate(ctx, s, md) })
	case "list":
		if err := onlyWith(fs, "checkpoint list"); err != nil {
			return err
		}
		if err := wantArgs("checkpoint list", args); err != nil {
			return err
		}
		return a.withStore(ctx, func(s *state.Postgres) error { return a.checkpointList(ctx, s) })
	case "restore", "delete":
		if err := onlyWith(fs, "checkpoint "+action); err != nil {
			return err
		}
		if err := wantArgs("checkpoint "+action, args, "ID"); err != nil {
			return err
		}
		id, err := uuid.Parse(args[0])
		if err != nil {
			return usagef("checkpoint %s: %q is not a checkpoint id (a UUID, as 'statectl checkpoint list' prints)", action, args[0])
		}
		return a.withStore(ctx, func(s *state.Postgres) error {
			if action == "restore" {
				err = s.RestoreCheckpoint(ctx, id)
			} else {
				err = s.DeleteCheckpoint(ctx, id)
			}
			if err != nil {
				return err
			}
			verb := map[string]string{"restore": "restored", "delete": "deleted"}[action]
			return a.emit(map[string]string{verb: id.String()}, func(w io.Writer) {
				fmt.Fprintf(w, "%s checkpoint %s\n", verb, id)
			})
		})
	}
	return usagef("checkpoint: unknown action %q: usage is 'statectl %s'", action, checkpointUsage)
}

func (a *app) checkpointCreate(ctx context.Context, s *state.Postgres, md json.RawMessage) error {
	var id uuid.UUID
	var err error
	if md != nil {
		id, err = s.CreateCheckpointWithMetadata(ctx, md)
	} else {
		id, err = s.CreateCheckpoint(ctx)
	}
	if err != nil {
		return err
	}
	return a.emit(map[string]string{"id": id.String()}, func(w io.Writer) { fmt.Fprintln(w, id) })
}

func (a *app) checkpointList(ctx context.Context, s *state.Postgres) error {
	infos, err := s.ListCheckpoints(ctx)
	if err != nil {
		return err
	}
	docs := make([]checkpointDoc, len(infos))
	for i, c := range infos {
		docs[i] = checkpointDoc{ID: c.ID, CreatedAt: c.CreatedAt, Rows: c.Rows, Bytes: c.Bytes, Metadata: rawJSON(c.Metadata)}
	}
	return a.emit(struct {
		Checkpoints []checkpointDoc `json:"checkpoints"`
	}{docs}, func(w io.Writer) {
		if len(docs) == 0 {
			fmt.Fprintln(w, "no checkpoints")
			return
		}
		rows := [][]string{{"ID", "CREATED", "ROWS", "BYTES", "METADATA"}}
		for _, d := range docs {
			md := ""
			if string(d.Metadata) != "null" {
				md = string(d.Metadata)
			}
			rows = append(rows, []string{d.ID.String(), formatTime(d.CreatedAt), strconv.FormatInt(d.Rows, 10), strconv.FormatInt(d.Bytes, 10), md})
		}
		table(w, rows)
	})
}
