package state

import "fmt"

// MaxKeySize is the largest key, in bytes. PostgreSQL's btree index cannot
// hold entries much larger than a third of a page (about 2.7 kB), and fails
// with an opaque error when asked to; 2048 leaves room for the tuple header.
const MaxKeySize = 2048

// DefaultMaxValueSize is the default for Config.MaxValueSize: 64 MiB.
const DefaultMaxValueSize = 64 << 20

func checkKey(key []byte) error {
	switch {
	case len(key) == 0:
		return ErrEmptyKey
	case len(key) > MaxKeySize:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrKeyTooLarge, len(key), MaxKeySize)
	}
	return nil
}

func checkValue(value []byte, limit int) error {
	if len(value) > limit {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrValueTooLarge, len(value), limit)
	}
	return nil
}

// nonNil turns a nil value into an empty one: the column is NOT NULL and a
// nil slice would be sent as NULL.
func nonNil(value []byte) []byte {
	if value == nil {
		return []byte{}
	}
	return value
}

// PrefixEnd returns the smallest key greater than every key that starts with
// prefix, the exclusive upper bound of a prefix range: trailing 0xFF bytes
// are dropped and the last remaining byte is incremented. It returns nil when
// no such bound exists (an empty prefix, or one made only of 0xFF bytes), in
// which case the range is unbounded above.
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			end := make([]byte, i+1)
			copy(end, prefix[:i+1])
			end[i]++
			return end
		}
	}
	return nil
}
