package state

import (
	"bytes"
	"testing"
)

func TestPrefixEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		prefix []byte
		want   []byte
	}{
		{"Empty", nil, nil},
		{"ZeroLength", []byte{}, nil},
		{"Letter", []byte("a"), []byte("b")},
		{"Word", []byte("user/"), []byte("user0")},
		{"Zero", []byte{0x00}, []byte{0x01}},
		{"TrailingFF", []byte{'a', 0xff}, []byte("b")},
		{"TrailingFFs", []byte{'a', 0xff, 0xff, 0xff}, []byte("b")},
		{"InnerFF", []byte{0xff, 'a'}, []byte{0xff, 'b'}},
		{"FE", []byte{0xfe}, []byte{0xff}},
		{"FEFF", []byte{0xfe, 0xff}, []byte{0xff}},
		{"AllFF", []byte{0xff}, nil},
		{"AllFFs", []byte{0xff, 0xff, 0xff}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			orig := bytes.Clone(tc.prefix)
			got := PrefixEnd(tc.prefix)
			if !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Fatalf("PrefixEnd(%x) = %x, want %x", tc.prefix, got, tc.want)
			}
			if !bytes.Equal(tc.prefix, orig) {
				t.Fatalf("PrefixEnd modified its argument: %x", tc.prefix)
			}
		})
	}
}
