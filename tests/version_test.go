package tests

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// TestVersionStrictlyIncreases checks what Entry.Version documents: 1 when
// the key's row is created, then one more with every write of any kind
// that commits, and exactly one even when the connection broke past the
// commit (provoked here with a proxy that loses the server's reply to a
// committed Put): such a write is not repeated, it fails with
// ErrOutcomeUnknown.
func TestVersionStrictlyIncreases(t *testing.T) {
	t.Parallel()
	proxy, dsn := proxiedDSN(t, testdb.DSN(t))
	cfg := state.DefaultConfig(dsn)
	cfg.MinConns = 0
	cfg.MaxConns = 4
	cfg.QueryTimeout = 10 * time.Second
	cfg.RetryBackoff = time.Millisecond
	p := testdb.OpenConfig(t, cfg)
	key := []byte("k")
	version := func() int64 {
		t.Helper()
		e, ok, err := p.GetEntry(bg, key)
		if err != nil || !ok {
			t.Fatalf("GetEntry = %v, %v", ok, err)
		}
		return e.Version
	}

	writes := []struct {
		name  string
		write func(context.Context) error
	}{
		{"Put", func(ctx context.Context) error { return p.Put(ctx, key, []byte("a")) }},
		{"PutSameValue", func(ctx context.Context) error { return p.Put(ctx, key, []byte("a")) }},
		{"PutWithTTL", func(ctx context.Context) error { return p.PutWithTTL(ctx, key, []byte("b"), time.Hour) }},
		{"PutWithMetadata", func(ctx context.Context) error {
			return p.PutWithMetadata(ctx, key, []byte("c"), map[string]int{"n": 1})
		}},
		{"BatchPut", func(ctx context.Context) error {
			return p.BatchPut(ctx, []state.Entry{{Key: key, Value: []byte("d")}, {Key: []byte("other"), Value: []byte("x")}})
		}},
	}
	last := int64(0)
	for i, w := range writes {
		if err := w.write(bg); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		v := version()
		switch {
		case i == 0 && v != 1:
			t.Fatalf("version after the first write = %d, want 1", v)
		case i > 0 && v != last+1:
			t.Fatalf("version after %s = %d, want %d (one step per write when nothing fails)", w.name, v, last+1)
		}
		last = v
	}

	// Concurrent writers: every write is one step, none is lost, and a
	// reader never sees the version go back.
	const writers, perWriter = 4, 50
	var wg sync.WaitGroup
	stopReader := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		seen := last
		for {
			select {
			case <-stopReader:
				readerDone <- nil
				return
			default:
			}
			e, _, err := p.GetEntry(bg, key)
			if err != nil {
				readerDone <- err
				return
			}
			if e.Version < seen {
				readerDone <- fmt.Errorf("version went back from %d to %d", seen, e.Version)
				return
			}
			seen = e.Version
		}
	}()
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if err := p.Put(bg, key, fmt.Appendf(nil, "w%d-%d", w, i)); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stopReader)
	if err := <-readerDone; err != nil {
		t.Fatalf("reader: %v", err)
	}
	if v := version(); v != last+writers*perWriter {
		t.Fatalf("version after %d concurrent writes = %d, want %d", writers*perWriter, v, last+writers*perWriter)
	}
	last = version()

	// The server commits a Put and its reply is lost. The Put is not
	// repeated (a second attempt would apply it again, after whatever was
	// written in between): it fails with ErrOutcomeUnknown, and the
	// version shows the one write that committed.
	retries := p.Stats().Retries
	proxy.cutAfterReply("INSERT 0 ") // an overwrite updates in place and inserts no row
	err := p.Put(bg, key, []byte("lost-reply"))
	if !errors.Is(err, state.ErrOutcomeUnknown) || !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Put whose reply was lost = %v, want ErrOutcomeUnknown (and ErrUnavailable)", err)
	}
	if n := proxy.cut.Load(); n != 1 {
		t.Fatalf("the proxy cut %d replies, want 1", n)
	}
	if got := p.Stats().Retries - retries; got != 0 {
		t.Fatalf("%d retries after the lost reply, want none", got)
	}
	if v := version(); v != last+1 {
		t.Fatalf("version after the Put whose reply was lost = %d, want %d: it committed once", v, last+1)
	}
	if e, _, err := p.GetEntry(bg, key); err != nil || string(e.Value) != "lost-reply" {
		t.Fatalf("value after the Put whose reply was lost = %q, %v; it committed", e.Value, err)
	}

	// A Delete removes the row: the next write creates it again at 1.
	if err := p.Delete(bg, key); err != nil {
		t.Fatal(err)
	}
	if err := p.Put(bg, key, []byte("again")); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != 1 {
		t.Fatalf("version after Delete and Put = %d, want 1", v)
	}
}

// TestVersionDocMatches keeps Entry.Version's documentation in step with
// TestVersionStrictlyIncreases: one step per committed write, because no
// write is ever applied twice.
func TestVersionDocMatches(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "../state/backend.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Entry" {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			if len(field.Names) == 1 && field.Names[0].Name == "Version" {
				doc = field.Doc.Text() + field.Comment.Text()
			}
		}
		return false
	})
	doc = strings.Join(strings.Fields(doc), " ")
	for _, want := range []string{"by exactly one", "never applied twice"} {
		if !strings.Contains(doc, want) {
			t.Errorf("Entry.Version is documented as %q, which does not say %q", doc, want)
		}
	}
}
