package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/pgstate/pgstate/state"
)

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// putOptions turns put's flags into one PutEntry call's options.
func putOptions(fs *flag.FlagSet, ttl durationFlag, md json.RawMessage, ifVersion int64, ifAbsent bool) ([]state.WriteOption, error) {
	var opts []state.WriteOption
	if ttl.set {
		opts = append(opts, state.WithTTL(ttl.d))
	}
	if md != nil {
		opts = append(opts, state.WithMetadata(md))
	}
	versioned := isSet(fs, "if-version")
	switch {
	case versioned && ifAbsent:
		return nil, usagef("put: --if-version and --if-absent together: use --if-version 0 for absent")
	case versioned && ifVersion < 0:
		return nil, usagef("put: --if-version %d: versions are never negative", ifVersion)
	case versioned:
		opts = append(opts, state.IfVersion(ifVersion))
	case ifAbsent:
		opts = append(opts, state.IfAbsent())
	}
	return opts, nil
}

func deletePrefix(ctx context.Context, a *app, prefixArg string) error {
	c, err := a.codec()
	if err != nil {
		return err
	}
	prefix, err := c.decode("--prefix", prefixArg)
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		n, err := s.DeletePrefix(ctx, prefix)
		if err != nil {
			return err
		}
		doc := struct {
			Prefix  string `json:"prefix"`
			Deleted int64  `json:"deleted"`
		}{Prefix: c.encode(prefix), Deleted: n}
		return a.emit(doc, func(w io.Writer) {
			fmt.Fprintf(w, "deleted %s under %q\n", plural(n, "entry", "entries"), doc.Prefix)
		})
	})
}
