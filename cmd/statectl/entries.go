package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/pgstate/pgstate/state"
)

// entryDoc is the JSON form of one entry.
type entryDoc struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Encoding string `json:"encoding"`
	// ValueEncoding is set when values are encoded otherwise than keys
	// (--value-encoding, --key-encoding).
	ValueEncoding string          `json:"value_encoding,omitempty"`
	Metadata      json.RawMessage `json:"metadata"`
	Version       int64           `json:"version"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	ExpiresAt     *time.Time      `json:"expires_at"`
}

func cmdGet(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("get")
	raw := fs.Bool("raw", false, "print the value's bytes exactly, without a newline")
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
	vc, err := a.valueCodec()
	if err != nil {
		return err
	}
	if *raw && a.g.json {
		return usagef("get: --raw and --json exclude each other")
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		e, found, err := s.GetEntry(ctx, key)
		if err != nil {
			return err
		}
		if !found {
			return a.keyNotFound(args[0])
		}
		return a.printValue(c, vc, e, *raw)
	})
}

// keyNotFound is the answer of get, expire and ttl for a KEY argument with no
// live entry.
func (a *app) keyNotFound(arg string) error {
	return &notFoundError{msg: fmt.Sprintf("key %s not found in schema %s", strconv.Quote(arg), a.g.schema)}
}

// printValue prints what get prints: the value's bytes with --raw, the
// entry with --json, otherwise the value in vc and a newline.
func (a *app) printValue(c, vc codec, e state.Entry, raw bool) error {
	if raw {
		if _, err := a.stdout.Write(e.Value); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	return a.emit(newEntryDoc(c, vc, e), func(w io.Writer) {
		if vc == codecText {
			w.Write(e.Value)
			io.WriteString(w, "\n")
			return
		}
		fmt.Fprintln(w, vc.encode(e.Value))
	})
}

// newEntryDoc is the JSON form of e with keys in c and values in vc; text
// that is not UTF-8 turns into base64 (see codec.forJSON).
func newEntryDoc(c, vc codec, e state.Entry) entryDoc {
	c, vc = jsonCodecs(c, vc, e.Key, e.Value)
	doc := entryDoc{
		Key:       c.encode(e.Key),
		Value:     vc.encode(e.Value),
		Encoding:  c.String(),
		Metadata:  rawJSON(e.Metadata),
		Version:   e.Version,
		CreatedAt: e.CreatedAt,
		UpdatedAt: e.UpdatedAt,
		ExpiresAt: timeOrNil(e.ExpiresAt),
	}
	if vc != c {
		doc.ValueEncoding = vc.String()
	}
	return doc
}

// jsonCodecs are the key and value codecs of one JSON document: text that
// is not valid UTF-8 switches to base64 (see forJSON); when keys and values
// share a codec, they keep sharing it, as the document's one "encoding"
// says.
func jsonCodecs(c, vc codec, key, value []byte) (codec, codec) {
	if c == vc {
		c = c.forJSON(key, value)
		return c, c
	}
	return c.forJSON(key), vc.forJSON(value)
}

func cmdPut(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("put")
	var ttl durationFlag
	fs.Var(&ttl, "ttl", "expire the entry this long after writing it")
	metadata := fs.String("metadata", "", "a JSON document to attach")
	ifVersion := fs.Int64("if-version", -1, "write only if the key is at this version (0: absent)")
	ifAbsent := fs.Bool("if-absent", false, "write only if the key has no live entry")
	maxSize := fs.Int("max-value-size", state.DefaultMaxValueSize, "refuse values larger than this many bytes")
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
	if *maxSize < 0 || *maxSize > maxValueSizeLimit {
		return usagef("put: --max-value-size %d: want 0 to %d bytes", *maxSize, maxValueSizeLimit)
	}
	a.maxValueSize = *maxSize
	vc, err := a.valueCodec()
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
		if value, err = vc.decode("VALUE", args[1]); err != nil {
			return err
		}
	} else {
		if stdinIsTerminal(a.stdin) {
			return usagef("put: missing VALUE: pass it after KEY or pipe it on stdin")
		}
		raw, err := readLimited(a.stdin, stdinLimit(vc, *maxSize))
		if err != nil {
			return err
		}
		if value, err = vc.decodeStdin(raw); err != nil {
			return err
		}
	}
	if len(value) > *maxSize {
		return fmt.Errorf("put: %w: %d bytes, the limit is %d (raise it with --max-value-size)", state.ErrValueTooLarge, len(value), *maxSize)
	}
	opts, err := putOptions(fs, ttl, md, *ifVersion, *ifAbsent)
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		r, err := s.PutEntry(ctx, key, value, opts...)
		if err != nil {
			return err
		}
		doc := struct {
			Key     string `json:"key"`
			Bytes   int    `json:"bytes"`
			TTL     string `json:"ttl,omitempty"`
			Version int64  `json:"version"`
		}{Key: c.forJSON(key).encode(key), Bytes: len(value), Version: r.Version}
		if ttl.set {
			doc.TTL = ttl.d.String()
		}
		return a.emit(doc, func(w io.Writer) {
			if ttl.set {
				fmt.Fprintf(w, "stored %s (%s, version %d), expires in %s\n", c.show(key), plural(int64(len(value)), "byte", "bytes"), r.Version, ttl.d)
				return
			}
			fmt.Fprintf(w, "stored %s (%s, version %d)\n", c.show(key), plural(int64(len(value)), "byte", "bytes"), r.Version)
		})
	})
}

func cmdDelete(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("delete")
	prefixArg := fs.String("prefix", "", "delete every key starting with this (no KEY)")
	ifVersion := fs.Int64("if-version", -1, "delete only if the key is at this version")
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if isSet(fs, "prefix") {
		if err := wantArgs("delete --prefix P", args); err != nil {
			return err
		}
		if isSet(fs, "if-version") {
			return usagef("delete: --if-version applies to one KEY, not to --prefix")
		}
		return deletePrefix(ctx, a, *prefixArg)
	}
	if err := wantArgs("delete", args, "KEY"); err != nil {
		return err
	}
	c, key, err := a.keyArg(args[0])
	if err != nil {
		return err
	}
	var opts []state.WriteOption
	if isSet(fs, "if-version") {
		if *ifVersion < 1 {
			return usagef("delete: --if-version %d: versions start at 1", *ifVersion)
		}
		opts = append(opts, state.IfVersion(*ifVersion))
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		// Deleting a missing key succeeds, as in the library; the output
		// says whether it existed, which an operator wants to know.
		r, err := s.DeleteEntry(ctx, key, opts...)
		if err != nil {
			return err
		}
		doc := struct {
			Key     string `json:"key"`
			Deleted bool   `json:"deleted"`
		}{Key: c.forJSON(key).encode(key), Deleted: r.Existed}
		return a.emit(doc, func(w io.Writer) {
			if doc.Deleted {
				fmt.Fprintf(w, "deleted %s\n", c.show(key))
				return
			}
			fmt.Fprintf(w, "%s did not exist\n", c.show(key))
		})
	})
}

// listFlags are the options list and find share.
type listFlags struct {
	prefix, start, end, after *string
	limit                     *int
	reverse, values           *bool
}

func addListFlags(fs *flag.FlagSet) listFlags {
	return listFlags{
		prefix:  fs.String("prefix", "", "only keys starting with this"),
		start:   fs.String("start", "", "only keys at or after this (with --end: the range [start, end))"),
		end:     fs.String("end", "", "only keys before this"),
		after:   fs.String("start-after", "", "resume after this key (the \"next\" of the previous page)"),
		limit:   fs.Int("limit", 0, "print at most this many (0: all)"),
		reverse: fs.Bool("reverse", false, "descending key order"),
		values:  fs.Bool("values", false, "print values too"),
	}
}

// listArgs returns the key and value codecs the flags chose and the list
// flags decoded with them: what list, find and checkpoint entries read
// before connecting.
func (a *app) listArgs(fs *flag.FlagSet, lf listFlags) (c, vc codec, prefix []byte, opts []state.ListOption, err error) {
	if c, err = a.codec(); err != nil {
		return c, vc, nil, nil, err
	}
	if vc, err = a.valueCodec(); err != nil {
		return c, vc, nil, nil, err
	}
	prefix, opts, err = lf.options(fs, c)
	return c, vc, prefix, opts, err
}

// options decodes the flags into the library's list options.
func (f listFlags) options(fs *flag.FlagSet, c codec) (prefix []byte, opts []state.ListOption, err error) {
	if prefix, err = c.decode("--prefix", *f.prefix); err != nil {
		return nil, nil, err
	}
	if isSet(fs, "start") || isSet(fs, "end") {
		start, err := c.decode("--start", *f.start)
		if err != nil {
			return nil, nil, err
		}
		end, err := c.decode("--end", *f.end)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, state.Range(start, end))
	}
	if isSet(fs, "start-after") {
		after, err := c.decode("--start-after", *f.after)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, state.StartAfter(after))
	}
	if isSet(fs, "limit") {
		if *f.limit <= 0 {
			return nil, nil, usagef("%s: --limit %d: want a positive number", fs.Name(), *f.limit)
		}
		opts = append(opts, state.WithLimit(*f.limit))
	}
	if *f.reverse {
		opts = append(opts, state.Reverse())
	}
	if !*f.values {
		opts = append(opts, state.KeysOnly())
	}
	return prefix, opts, nil
}

func cmdList(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("list")
	lf := addListFlags(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("list", args); err != nil {
		return err
	}
	c, vc, prefix, opts, err := a.listArgs(fs, lf)
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		pg, err := s.List(ctx, prefix, opts...)
		if err != nil {
			return err
		}
		return a.printPage(pg, c, vc, *lf.values)
	})
}

func cmdFind(ctx context.Context, a *app, args []string) error {
	fs := a.flagSet("find")
	metadata := fs.String("metadata", "", "the JSON document the entries' metadata must contain")
	lf := addListFlags(fs)
	args, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("find", args); err != nil {
		return err
	}
	if *metadata == "" || !json.Valid([]byte(*metadata)) {
		return usagef("find: --metadata %q: want a JSON document such as '{\"team\":\"ops\"}'", *metadata)
	}
	c, vc, prefix, opts, err := a.listArgs(fs, lf)
	if err != nil {
		return err
	}
	return a.withStore(ctx, func(s *state.Postgres) error {
		pg, err := s.FindByMetadataPage(ctx, prefix, json.RawMessage(*metadata), opts...)
		if err != nil {
			return err
		}
		return a.printPage(pg, c, vc, *lf.values)
	})
}

// printPage prints a listing: keys (or entries with --values), and when a
// limit cut it short, how to go on.
func (a *app) printPage(pg state.Page, c, vc codec, values bool) error {
	if !values {
		keys := pg.Keys()
		jc := c.forJSON(keys...)
		doc := struct {
			Keys     []string `json:"keys"`
			Encoding string   `json:"encoding"`
			More     bool     `json:"more,omitempty"`
			Next     string   `json:"next,omitempty"`
		}{Keys: make([]string, len(keys)), Encoding: jc.String(), More: pg.More}
		for i, k := range keys {
			doc.Keys[i] = jc.encode(k)
		}
		if pg.More {
			doc.Next = jc.encode(pg.Next())
		}
		return a.emit(doc, func(w io.Writer) {
			for _, k := range keys {
				fmt.Fprintln(w, c.show(k))
			}
			a.moreHint(pg, c)
		})
	}
	doc := struct {
		Entries []entryDoc `json:"entries"`
		More    bool       `json:"more,omitempty"`
		Next    string     `json:"next,omitempty"`
	}{Entries: make([]entryDoc, len(pg.Entries)), More: pg.More}
	for i, e := range pg.Entries {
		doc.Entries[i] = newEntryDoc(c, vc, e)
	}
	if pg.More {
		doc.Next = doc.Entries[len(doc.Entries)-1].Key
	}
	return a.emit(doc, func(w io.Writer) {
		rows := make([][]string, len(pg.Entries))
		for i, e := range pg.Entries {
			rows[i] = []string{c.show(e.Key), vc.show(e.Value)}
		}
		table(w, rows)
		a.moreHint(pg, c)
	})
}

// moreHint tells a human at a terminal, on stderr so that stdout stays the
// listing, that the limit cut the listing short; scripts read "more" and
// "next" from --json.
func (a *app) moreHint(pg state.Page, c codec) {
	if pg.More && stdinIsTerminal(a.stdout) {
		fmt.Fprintf(a.stderr, "statectl: more entries follow: continue with --start-after %s\n", shellQuote(c.encode(pg.Next())))
	}
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '-' || r == '_' || r == '.' || r == ':' || r == '=' || r == '+' ||
			r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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

// maxValueSizeLimit is the largest value PostgreSQL's bytea holds.
const maxValueSizeLimit = 1<<30 - 1

// stdinLimit is how many bytes of stdin can hold a value of at most max
// bytes in encoding c, with room for a trailing newline.
func stdinLimit(c codec, max int) int64 {
	switch c {
	case codecHex:
		return 2*int64(max) + 2
	case codecBase64:
		return int64(base64.StdEncoding.EncodedLen(max)) + 2
	}
	return int64(max)
}

// readLimited reads r to its end, but stops, without reading the rest, as
// soon as it holds more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read the value from stdin: %w", err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("put: %w: stdin holds more than %d bytes (raise the limit with --max-value-size)", state.ErrValueTooLarge, limit)
	}
	return raw, nil
}
