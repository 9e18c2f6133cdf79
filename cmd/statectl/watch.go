package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/pgstate/pgstate/state"
)

// eventDoc is the JSON form of one change event, one per line.
type eventDoc struct {
	Revision int64   `json:"revision"`
	Kind     string  `json:"kind"`
	Key      string  `json:"key"`
	Version  int64   `json:"version"`
	Value    *string `json:"value,omitempty"`
	Encoding string  `json:"encoding"`
	// ValueEncoding is set when values are encoded otherwise than keys, as
	// in get's document.
	ValueEncoding string    `json:"value_encoding,omitempty"`
	Time          time.Time `json:"time"`
}

// cmdWatch prints the changes under a prefix as they happen, one line per
// event, until interrupted or --limit events.
func cmdWatch(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("watch")
	prefixArg := fs.String("prefix", "", "watch only keys starting with this")
	from := fs.Int64("from", 0, "start at this revision (default: after the current one)")
	values := fs.Bool("values", false, "print the value of each put")
	limit := fs.Int("limit", 0, "exit after this many events (default: run until interrupted)")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("watch", args); err != nil {
		return err
	}
	if *from < 0 {
		return usagef("watch: --from %d: want a revision of 1 or more", *from)
	}
	if *limit < 0 {
		return usagef("watch: --limit %d: want 0 (no limit) or more", *limit)
	}
	c, err := a.codec()
	if err != nil {
		return err
	}
	vc, err := a.valueCodec()
	if err != nil {
		return err
	}
	prefix, err := c.decode("--prefix", *prefixArg)
	if err != nil {
		return err
	}
	var opts []state.WatchOption
	if *from > 0 {
		opts = append(opts, state.FromRevision(*from))
	}
	if *values {
		opts = append(opts, state.WithValues())
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		n := 0
		for ev, err := range s.Watch(ctx, prefix, opts...) {
			if err != nil {
				return err
			}
			if err := a.printEvent(c, vc, ev, *values); err != nil {
				return err
			}
			n++
			if *limit > 0 && n == *limit {
				return nil
			}
		}
		// The watch only ends without an error when interrupted.
		return nil
	})
}

// printEvent prints one event as get prints an entry: with --json one
// document a line (non-UTF-8 text in base64, see jsonCodecs), otherwise a
// line whose key is quoted when it would not print as itself.
func (a *app) printEvent(c, vc codec, ev state.Event, values bool) error {
	withValue := values && ev.Kind == state.EventPut
	jc, jvc := jsonCodecs(c, vc, ev.Key, ev.Value)
	doc := eventDoc{
		Revision: ev.Revision,
		Kind:     ev.Kind.String(),
		Key:      jc.encode(ev.Key),
		Version:  ev.Version,
		Encoding: jc.String(),
		Time:     ev.Time,
	}
	if withValue {
		v := jvc.encode(ev.Value)
		doc.Value = &v
	}
	if withValue && jvc != jc {
		doc.ValueEncoding = jvc.String()
	}
	return a.emit(doc, func(w io.Writer) {
		line := fmt.Sprintf("%d %s %s v%d", ev.Revision, doc.Kind, c.show(ev.Key), ev.Version)
		if withValue {
			line += " " + strconv.Quote(vc.encode(ev.Value))
		}
		fmt.Fprintln(w, line)
	})
}

// cmdFeed shows the change feed's state, switches it on or off, or compacts
// its log.
func cmdFeed(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("feed")
	to := fs.Int64("to", 0, "compact: delete the log up to this revision")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return wantArgs("feed", args, "status|on|off|compact")
	}
	action := args[0]
	switch action {
	case "status", "on", "off":
		if err := onlyWith(fs, action); err != nil {
			return err
		}
	case "compact":
		if *to < 1 {
			return usagef("feed compact: --to REV is required (a revision of 1 or more)")
		}
	default:
		return usagef("feed: unknown action %q: want status, on, off or compact", action)
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		var deleted int64
		switch action {
		case "on", "off":
			if err := s.SetChangeFeed(ctx, action == "on"); err != nil {
				return err
			}
		case "compact":
			if deleted, err = s.CompactChanges(ctx, *to); err != nil {
				return err
			}
		}
		st, err := s.ChangeFeed(ctx)
		if err != nil {
			return err
		}
		doc := struct {
			Enabled   bool  `json:"enabled"`
			Revision  int64 `json:"revision"`
			Compacted int64 `json:"compacted"`
			LogBytes  int64 `json:"log_bytes"`
			Deleted   int64 `json:"deleted,omitempty"`
		}{st.Enabled, st.Revision, st.Compacted, st.LogBytes, deleted}
		return a.emit(doc, func(w io.Writer) {
			onOff := "on"
			if !doc.Enabled {
				onOff = "off"
			}
			if action == "compact" {
				fmt.Fprintf(w, "deleted %s\n", plural(deleted, "change", "changes"))
			}
			table(w, [][]string{
				{"feed", onOff},
				{"revision", strconv.FormatInt(doc.Revision, 10)},
				{"compacted up to", strconv.FormatInt(doc.Compacted, 10)},
				{"log size", plural(doc.LogBytes, "byte", "bytes")},
			})
		})
	})
}
