package state_test

import (
	"bytes"
	"testing"

	"github.com/pgstate/pgstate/state"
)

// FuzzPrefixEnd checks that the range [prefix, PrefixEnd(prefix)) holds
// exactly the keys that start with prefix: the successor never misses a key
// nor adds one.
func FuzzPrefixEnd(f *testing.F) {
	for _, seed := range [][2][]byte{
		{[]byte("abc"), []byte("ab")},
		{[]byte("ab"), []byte("abc")},
		{[]byte("a\xff"), []byte("a")},
		{[]byte("b"), []byte("a\xff")},
		{[]byte("\xff\xff\x00"), []byte("\xff\xff")},
		{[]byte("\xff"), []byte{}},
		{[]byte{}, []byte("\x00")},
		{[]byte("\x00"), []byte("\x00")},
		{[]byte("a\xff\xff"), []byte("a\xfe\xff")},
		{[]byte("b\x00"), []byte("a\xff\xff")},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, key, prefix []byte) {
		saved := bytes.Clone(prefix)
		end := state.PrefixEnd(prefix)
		if !bytes.Equal(prefix, saved) {
			t.Fatalf("PrefixEnd modified its argument: %x became %x", saved, prefix)
		}
		inRange := bytes.Compare(key, prefix) >= 0 && (end == nil || bytes.Compare(key, end) < 0)
		if has := bytes.HasPrefix(key, prefix); has != inRange {
			t.Fatalf("key %x, prefix %x, end %x: HasPrefix = %v but in range = %v", key, prefix, end, has, inRange)
		}
		if end == nil {
			if len(bytes.TrimLeft(prefix, "\xff")) != 0 {
				t.Fatalf("PrefixEnd(%x) = nil, but the prefix has a byte below 0xFF", prefix)
			}
			return
		}
		if bytes.Compare(end, prefix) <= 0 {
			t.Fatalf("PrefixEnd(%x) = %x is not above the prefix", prefix, end)
		}
		if len(end) > 0 {
			end[len(end)-1]++
			if !bytes.Equal(prefix, saved) {
				t.Fatalf("PrefixEnd(%x) shares memory with its argument", saved)
			}
		}
	})
}
