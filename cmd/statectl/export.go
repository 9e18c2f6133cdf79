package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pgstate/pgstate/state"
)

// exportLine is one entry of export's output and import's input: bytes in
// standard base64 whatever --hex or --base64 say, so that a file round-trips
// exactly.
type exportLine struct {
	Key       string          `json:"key"`
	Value     string          `json:"value"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
}

// importBatch is how many entries one transaction of import writes.
const importBatch = 1000

func cmdExport(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("export")
	prefixArg := fs.String("prefix", "", "export only keys starting with this")
	output := fs.String("output", "", "write to FILE instead of stdout")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("export", args); err != nil {
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
		out := a.stdout
		var f *os.File
		if *output != "" {
			if f, err = os.Create(*output); err != nil {
				return usagef("export: --output: %v", err)
			}
			defer f.Close()
			out = f
		}
		w := bufio.NewWriter(out)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		var n int64
		for e, err := range s.Scan(ctx, prefix) {
			if err != nil {
				return err
			}
			line := exportLine{
				Key:       base64.StdEncoding.EncodeToString(e.Key),
				Value:     base64.StdEncoding.EncodeToString(e.Value),
				Metadata:  e.Metadata,
				ExpiresAt: timeOrNil(e.ExpiresAt.UTC()),
			}
			if err := enc.Encode(line); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			n++
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		if f != nil {
			if err := f.Close(); err != nil {
				return fmt.Errorf("write %s: %w", *output, err)
			}
			return a.emit(map[string]int64{"exported": n}, func(w io.Writer) {
				fmt.Fprintf(w, "exported %s to %s\n", plural(n, "entry", "entries"), *output)
			})
		}
		return nil
	})
}

func cmdImport(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("import")
	prefixArg := fs.String("prefix", "", "import only keys starting with this")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(args) > 1 {
		return wantArgs("import", args, "[FILE]")
	}
	c, err := a.codec()
	if err != nil {
		return err
	}
	prefix, err := c.decode("--prefix", *prefixArg)
	if err != nil {
		return err
	}
	in := a.stdin
	if len(args) == 1 {
		f, err := os.Open(args[0])
		if err != nil {
			return usagef("import: %v", err)
		}
		defer f.Close()
		in = f
	} else if stdinIsTerminal(a.stdin) {
		return usagef("import: missing FILE: pass it, or pipe export's output on stdin")
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		dec := json.NewDecoder(bufio.NewReader(in))
		dec.DisallowUnknownFields()
		var imported, expired, outside int64
		batch := make([]state.Entry, 0, importBatch)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			// One transaction a batch, each entry with its exact expiry
			// (a TTL computed here would move it by the time between export
			// and import, and by any skew between the two clocks).
			err := s.Transact(ctx, func(ctx context.Context, tx state.Ops) error {
				for _, e := range batch {
					var opts []state.WriteOption
					if e.Metadata != nil {
						opts = append(opts, state.WithMetadata(e.Metadata))
					}
					if !e.ExpiresAt.IsZero() {
						opts = append(opts, state.WithExpiresAt(e.ExpiresAt))
					}
					if _, err := tx.PutEntry(ctx, e.Key, e.Value, opts...); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("import: %w (%s imported before this batch)", err, plural(imported, "entry was", "entries were"))
			}
			imported += int64(len(batch))
			batch = batch[:0]
			return nil
		}
		for line := 1; ; line++ {
			var l exportLine
			err := dec.Decode(&l)
			if errors.Is(err, io.EOF) {
				break
			}
			var e state.Entry
			if err == nil {
				e, err = l.entry()
			}
			if err != nil {
				// What came before is written, so that the message is
				// true and the file can be fixed and imported again.
				if ferr := flush(); ferr != nil {
					return ferr
				}
				return usagef("import: entry %d: %v (%s imported before it)", line, err, plural(imported, "entry was", "entries were"))
			}
			if !bytes.HasPrefix(e.Key, prefix) {
				outside++
				continue
			}
			if l.ExpiresAt != nil {
				if !l.ExpiresAt.After(time.Now()) {
					expired++
					continue
				}
				e.ExpiresAt = *l.ExpiresAt
			}
			if batch = append(batch, e); len(batch) == importBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		return a.emit(map[string]int64{"imported": imported, "expired": expired, "outside_prefix": outside}, func(w io.Writer) {
			fmt.Fprintf(w, "imported %s", plural(imported, "entry", "entries"))
			if expired > 0 {
				fmt.Fprintf(w, "; skipped %d already expired", expired)
			}
			if outside > 0 {
				fmt.Fprintf(w, "; skipped %d outside the prefix", outside)
			}
			fmt.Fprintln(w)
		})
	})
}

func (l exportLine) entry() (state.Entry, error) {
	key, err := base64.StdEncoding.DecodeString(l.Key)
	if err != nil {
		return state.Entry{}, fmt.Errorf("key %q is not standard base64", l.Key)
	}
	value, err := base64.StdEncoding.DecodeString(l.Value)
	if err != nil {
		return state.Entry{}, fmt.Errorf("value of key %q is not standard base64", l.Key)
	}
	e := state.Entry{Key: key, Value: value}
	if len(l.Metadata) > 0 && string(l.Metadata) != "null" {
		e.Metadata = l.Metadata
	}
	return e, nil
}
