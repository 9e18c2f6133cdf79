package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// decodeKeys splits data into keys: each key is one length byte (0 to 7,
// so empty keys occur too) followed by that many bytes. Short keys make
// shared prefixes, 0x00 and 0xFF likely.
func decodeKeys(data []byte) [][]byte {
	var keys [][]byte
	for len(data) > 0 && len(keys) < 64 {
		n := min(int(data[0]%8), len(data)-1)
		keys = append(keys, data[1:1+n])
		data = data[1+n:]
	}
	return keys
}

// FuzzMemoryVsPostgres writes arbitrary binary keys to Memory and Postgres
// and compares what ListKeys, Scan, Get and Contains return for an
// arbitrary prefix. One database serves every iteration, cleared in
// between.
func FuzzMemoryVsPostgres(f *testing.F) {
	pg := testdb.Open(f, nil)
	mem := state.NewMemory()
	for _, seed := range [][2][]byte{
		{[]byte("\x01a\x02ab\x03abc\x01b"), []byte("a")},
		{[]byte("\x01\xff\x02\xff\xff\x03\xff\xff\x00\x02\xfe\xff"), []byte("\xff")},
		{[]byte("\x01\x00\x02\x00\x00\x02\x00\xff\x01\x01"), []byte("\x00")},
		{[]byte("\x02a\xff\x03a\xff\xff\x01b"), []byte("a\xff")},
		{[]byte("\x00\x01k"), []byte{}},
		{[]byte("\x01%\x02%a\x01_\x02\\x"), []byte("%")},
	} {
		f.Add(seed[0], seed[1])
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data, prefix []byte) {
		for _, s := range []state.Store{pg, mem} {
			if err := s.Clear(ctx); err != nil {
				t.Fatalf("Clear: %v", err)
			}
		}
		keys := decodeKeys(data)
		for i, k := range keys {
			value := fmt.Appendf(nil, "%d:%x", i, k)
			errPG, errMem := pg.Put(ctx, k, value), mem.Put(ctx, k, value)
			if !sameError(errPG, errMem) {
				t.Fatalf("Put(%x): Postgres %v, Memory %v", k, errPG, errMem)
			}
		}
		listPG, errPG := pg.ListKeys(ctx, prefix)
		listMem, errMem := mem.ListKeys(ctx, prefix)
		if errPG != nil || errMem != nil {
			t.Fatalf("ListKeys(%x): Postgres %v, Memory %v", prefix, errPG, errMem)
		}
		if !equalKeys(listPG, listMem) {
			t.Fatalf("ListKeys(%x) of %x:\nPostgres %x\nMemory   %x", prefix, keys, listPG, listMem)
		}
		for _, k := range listPG {
			if !bytes.HasPrefix(k, prefix) {
				t.Fatalf("ListKeys(%x) returned %x", prefix, k)
			}
		}
		var scanned [][]byte
		for e, err := range pg.Scan(ctx, prefix) {
			if err != nil {
				t.Fatalf("Scan(%x): %v", prefix, err)
			}
			scanned = append(scanned, e.Key)
		}
		if !equalKeys(scanned, listMem) {
			t.Fatalf("Scan(%x) on Postgres = %x, Memory lists %x", prefix, scanned, listMem)
		}
		for _, k := range append(keys, prefix) {
			vPG, okPG, errPG := pg.Get(ctx, k)
			vMem, okMem, errMem := mem.Get(ctx, k)
			if !sameError(errPG, errMem) || okPG != okMem || !bytes.Equal(vPG, vMem) {
				t.Fatalf("Get(%x): Postgres %q %v %v, Memory %q %v %v", k, vPG, okPG, errPG, vMem, okMem, errMem)
			}
			cPG, errPG := pg.Contains(ctx, k)
			cMem, errMem := mem.Contains(ctx, k)
			if !sameError(errPG, errMem) || cPG != cMem {
				t.Fatalf("Contains(%x): Postgres %v %v, Memory %v %v", k, cPG, errPG, cMem, errMem)
			}
		}
		nPG, errPG := pg.Count(ctx)
		nMem, errMem := mem.Count(ctx)
		if errPG != nil || errMem != nil || nPG != nMem {
			t.Fatalf("Count: Postgres %d %v, Memory %d %v", nPG, errPG, nMem, errMem)
		}
	})
}

// sameError reports whether two errors are both nil or match the same
// input sentinel.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	for _, sentinel := range []error{state.ErrEmptyKey, state.ErrKeyTooLarge, state.ErrValueTooLarge} {
		if errors.Is(a, sentinel) != errors.Is(b, sentinel) {
			return false
		}
	}
	return true
}

func equalKeys(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
