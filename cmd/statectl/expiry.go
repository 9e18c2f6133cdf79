package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/pgstate/pgstate/state"
)

func cmdExpire(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("expire")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("expire", args, "KEY", "DURATION"); err != nil {
		return err
	}
	c, key, err := a.keyArg(args[0])
	if err != nil {
		return err
	}
	var ttl durationFlag
	if err := ttl.Set(args[1]); err != nil {
		return usagef("expire: DURATION %q: %v", args[1], err)
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		found, err := s.Expire(ctx, key, ttl.d)
		if err != nil {
			return err
		}
		if !found {
			return a.keyNotFound(args[0])
		}
		return a.emit(map[string]string{"key": c.forJSON(key).encode(key), "ttl": ttl.d.String()}, func(w io.Writer) {
			fmt.Fprintf(w, "%s expires in %s\n", c.show(key), ttl.d)
		})
	})
}

func cmdPersist(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("persist")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("persist", args, "KEY"); err != nil {
		return err
	}
	c, key, err := a.keyArg(args[0])
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		removed, err := s.Persist(ctx, key)
		if err != nil {
			return err
		}
		doc := struct {
			Key     string `json:"key"`
			Removed bool   `json:"removed"`
		}{c.forJSON(key).encode(key), removed}
		return a.emit(doc, func(w io.Writer) {
			if removed {
				fmt.Fprintf(w, "%s no longer expires\n", c.show(key))
				return
			}
			fmt.Fprintf(w, "%s had no expiry (or does not exist)\n", c.show(key))
		})
	})
}

func cmdTTL(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("ttl")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("ttl", args, "KEY"); err != nil {
		return err
	}
	c, key, err := a.keyArg(args[0])
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		left, found, err := s.TTL(ctx, key)
		if err != nil {
			return err
		}
		if !found {
			return a.keyNotFound(args[0])
		}
		doc := struct {
			Key     string  `json:"key"`
			Seconds *string `json:"ttl"`
		}{Key: c.forJSON(key).encode(key)}
		if left != state.NoTTL {
			d := left.Round(time.Millisecond).String()
			doc.Seconds = &d
		}
		return a.emit(doc, func(w io.Writer) {
			if doc.Seconds == nil {
				fmt.Fprintln(w, "no expiry")
				return
			}
			fmt.Fprintln(w, *doc.Seconds)
		})
	})
}

func cmdIncr(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("incr")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(args) != 1 && len(args) != 2 {
		return wantArgs("incr", args, "KEY", "[N]")
	}
	_, key, err := a.keyArg(args[0])
	if err != nil {
		return err
	}
	delta := int64(1)
	if len(args) == 2 {
		if delta, err = strconv.ParseInt(args[1], 10, 64); err != nil {
			return usagef("incr: N %q is not an integer", args[1])
		}
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		n, err := s.Increment(ctx, key, delta)
		if err != nil {
			return err
		}
		return a.emit(struct {
			Value int64 `json:"value"`
		}{n}, func(w io.Writer) { fmt.Fprintln(w, n) })
	})
}
