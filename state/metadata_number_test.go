package state

import (
	"encoding/json"
	"math/big"
	"testing"
)

// FuzzNumbersEqual checks numbersEqual, which Memory's FindByMetadata uses
// to compare JSON numbers as jsonb does, against exact rational arithmetic.
func FuzzNumbersEqual(f *testing.F) {
	for _, seed := range [][2]string{
		{"12345678901234568", "12345678901234567"},
		{"12345678901234568", "1.2345678901234568e16"},
		{"1", "1.0"},
		{"-0", "0"},
		{"-0.0e5", "0"},
		{"100", "1e2"},
		{"0.1", "1e-1"},
		{"1e400", "10e399"},
		{"1e-400", "0"},
		{"-1.5", "-15e-1"},
		{"-1", "1"},
		{"0.000", "0e-3"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !isJSONNumber(a) || !isJSONNumber(b) {
			return
		}
		da, errA := parseDecimal([]byte(a))
		db, errB := parseDecimal([]byte(b))
		if errA != nil || errB != nil || abs(da.point) > 2000 || abs(db.point) > 2000 {
			return // out of numeric's range, or too costly for big.Rat
		}
		ra, okA := new(big.Rat).SetString(a)
		rb, okB := new(big.Rat).SetString(b)
		if !okA || !okB {
			t.Skip("big.Rat cannot parse it")
		}
		if got, want := numbersEqual(json.Number(a), json.Number(b)), ra.Cmp(rb) == 0; got != want {
			t.Fatalf("numbersEqual(%s, %s) = %v, want %v", a, b, got, want)
		}
	})
}

func isJSONNumber(s string) bool {
	if s == "" || !(s[0] == '-' || '0' <= s[0] && s[0] <= '9') || !json.Valid([]byte(s)) {
		return false
	}
	return numberLen([]byte(s)) == len(s)
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// TestParseDecimalLimits pins the numbers at the edges of PostgreSQL's
// numeric, each checked in psql against jsonb.
func TestParseDecimalLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		number string
		ok     bool
	}{
		{"1e131071", true}, {"99999e131067", true}, {"10e131070", true},
		{"1e131072", false}, {"100e131070", false},
		{"1e-16383", true}, {"0e-16383", true}, {"0.5e-16382", true},
		{"1e-16384", false}, {"0e-16384", false}, {"0.5e-16383", false},
		{"0e999999", true}, {"0.000e1073741822", true},
		{"0e1073741823", false}, {"0e-1073741823", false}, {"1e2147483647", false},
		{"0e99999999999999999999", false}, {"1e0000000000000000000005", true},
		{"1e400", true}, {"1e-400", true}, {"-0", true},
	} {
		_, err := parseDecimal([]byte(tc.number))
		if (err == nil) != tc.ok {
			t.Errorf("parseDecimal(%s) = %v, want ok %v", tc.number, err, tc.ok)
		}
	}
}
