package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/pgstate/pgstate/state"
)

// entryDoc is the JSON form of one entry.
type entryDoc struct {
	Key       string          `json:"key"`
	Value     string          `json:"value"`
	Encoding  string          `json:"encoding"`
	Metadata  json.RawMessage `json:"metadata"`
	Version   int64           `json:"version"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	ExpiresAt *time.Time      `json:"expires_at"`
}

func cmdGet(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("get")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("get", args, "KEY"); err != nil {
		return err
	}
	c, key, err := a.keyArg(args[0])
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		e, found, err := s.GetEntry(ctx, key)
		if err != nil {
			return err
		}
		if !found {
			return &notFoundError{msg: fmt.Sprintf("key %q not found in schema %s", args[0], a.g.schema)}
		}
		doc := entryDoc{
			Key:       c.encode(e.Key),
			Value:     c.encode(e.Value),
			Encoding:  c.String(),
			Metadata:  rawJSON(e.Metadata),
			Version:   e.Version,
			CreatedAt: e.CreatedAt,
			UpdatedAt: e.UpdatedAt,
			ExpiresAt: timeOrNil(e.ExpiresAt),
		}
		return a.emit(doc, func(w io.Writer) {
			if c == codecText {
				w.Write(e.Value)
				io.WriteString(w, "\n")
				return
			}
			fmt.Fprintln(w, doc.Value)
		})
	})
}

func cmdPut(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("put")
	var ttl durationFlag
	fs.Var(&ttl, "ttl", "expire the entry this long after writing it")
	metadata := fs.String("metadata", "", "a JSON document to attach")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(args) == 0 || len(args) > 2 {
		return wantArgs("put", args, "KEY", "[VALUE]")
	}
	c, key, err := a.keyArg(args[0])
	if err != nil {
		return err
	}
	var md json.RawMessage
	if *metadata != "" {
		if !json.Valid([]byte(*metadata)) {
			return usagef("put: --metadata %q is not a valid JSON document", *metadata)
		}
		md = json.RawMessage(*metadata)
	}
	var value []byte
	if len(args) == 2 {
		if value, err = c.decode("VALUE", args[1]); err != nil {
			return err
		}
	} else {
		if stdinIsTerminal(a.stdin) {
			return usagef("put: missing VALUE: pass it after KEY or pipe it on stdin")
		}
		raw, err := io.ReadAll(a.stdin)
		if err != nil {
			return fmt.Errorf("read the value from stdin: %w", err)
		}
		if value, err = c.decodeStdin(raw); err != nil {
			return err
		}
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		switch {
		case ttl.set && md != nil:
			// Only a batch entry carries both attributes.
			err = s.BatchPut(ctx, []state.Entry{{Key: key, Value: value, Metadata: md, TTL: ttl.d}})
		case ttl.set:
			err = s.PutWithTTL(ctx, key, value, ttl.d)
		case md != nil:
			err = s.PutWithMetadata(ctx, key, value, md)
		default:
			err = s.Put(ctx, key, value)
		}
		if err != nil {
			return err
		}
		doc := struct {
			Key   string `json:"key"`
			Bytes int    `json:"bytes"`
			TTL   string `json:"ttl,omitempty"`
		}{Key: c.encode(key), Bytes: len(value)}
		if ttl.set {
			doc.TTL = ttl.d.String()
		}
		return a.emit(doc, func(w io.Writer) {
			if ttl.set {
				fmt.Fprintf(w, "stored %s (%s), expires in %s\n", doc.Key, plural(int64(len(value)), "byte", "bytes"), ttl.d)
				return
			}
			fmt.Fprintf(w, "stored %s (%s)\n", doc.Key, plural(int64(len(value)), "byte", "bytes"))
		})
	})
}

func cmdDelete(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("delete")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("delete", args, "KEY"); err != nil {
		return err
	}
	c, key, err := a.keyArg(args[0])
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		// DeleteMany rather than Delete: it tells whether the key existed,
		// which an operator wants to know. Deleting a missing key still
		// succeeds, as in the library.
		n, err := s.DeleteMany(ctx, [][]byte{key})
		if err != nil {
			return err
		}
		doc := struct {
			Key     string `json:"key"`
			Deleted bool   `json:"deleted"`
		}{Key: c.encode(key), Deleted: n > 0}
		return a.emit(doc, func(w io.Writer) {
			if doc.Deleted {
				fmt.Fprintf(w, "deleted %s\n", doc.Key)
				return
			}
			fmt.Fprintf(w, "%s did not exist\n", doc.Key)
		})
	})
}

func cmdList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("list")
	prefixArg := fs.String("prefix", "", "list only keys starting with this")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("list", args); err != nil {
		return err
	}
	c, err := a.codec()
	if err != nil {
		return err
	}
	prefix, err := c.decode("--prefix", *prefixArg)
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		keys, err := s.ListKeys(ctx, prefix)
		if err != nil {
			return err
		}
		doc := struct {
			Keys     []string `json:"keys"`
			Encoding string   `json:"encoding"`
		}{Keys: make([]string, len(keys)), Encoding: c.String()}
		for i, k := range keys {
			doc.Keys[i] = c.encode(k)
		}
		return a.emit(doc, func(w io.Writer) {
			for _, k := range doc.Keys {
				fmt.Fprintln(w, k)
			}
		})
	})
}

func cmdCount(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("count")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("count", args); err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		n, err := s.Count(ctx)
		if err != nil {
			return err
		}
		return a.emit(struct {
			Count int64 `json:"count"`
		}{n}, func(w io.Writer) { fmt.Fprintln(w, n) })
	})
}
