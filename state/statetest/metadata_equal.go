package statetest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/pgstate/pgstate/state"
)

// invalidMetadata are documents that are JSON to a lenient parser but that
// PostgreSQL's jsonb refuses: every backend must reject them the same way,
// with ErrInvalidMetadata, before writing anything.
var invalidMetadata = []struct {
	name string
	doc  []byte
}{
	{"LoneHighSurrogate", []byte(`{"a":"\ud800"}`)},
	{"LoneLowSurrogate", []byte(`{"a":"\udc00"}`)},
	{"HighSurrogateThenLetter", []byte(`{"a":"\ud800x"}`)},
	{"TwoHighSurrogates", []byte(`{"a":"\ud800\ud800"}`)},
	{"ReversedPair", []byte(`["\ude00\ud83d"]`)},
	{"SurrogateInKey", []byte(`{"\udfff":1}`)},
	{"InvalidUTF8", []byte("{\"a\":\"\xff\"}")},
	{"InvalidUTF8InKey", []byte("{\"\xc3\x28\":1}")},
	{"TruncatedUTF8", []byte("\"\xe6\x97\"")},
	{"EncodedSurrogateUTF8", []byte("\"\xed\xa0\x80\"")},
	{"NumberAboveNumeric", []byte(`{"n":1e131072}`)},
	{"NumberTooManyDecimals", []byte(`{"n":1.5e-16383}`)},
	{"ZeroTooManyDecimals", []byte(`{"n":0e-16384}`)},
	{"ExponentOverflowsInt32", []byte(`{"n":1e2147483648}`)},
	{"ExponentBeyondInt64", []byte(`[0e99999999999999999999]`)},
}

// testMetadataMatchesPostgres checks that what PostgreSQL's jsonb accepts,
// refuses and matches with @> is exactly what every backend does.
func testMetadataMatchesPostgres(t *testing.T, s state.Store) {
	mustPut(t, s, "keep", "v")
	for _, tc := range invalidMetadata {
		t.Run("Reject"+tc.name, func(t *testing.T) {
			if err := s.PutWithMetadata(ctx(), []byte("bad"), []byte("v"), tc.doc); !errors.Is(err, state.ErrInvalidMetadata) {
				t.Errorf("PutWithMetadata(%q) = %v, want ErrInvalidMetadata", tc.doc, err)
			}
			if err := s.BatchPut(ctx(), []state.Entry{{Key: []byte("bad"), Metadata: tc.doc}}); !errors.Is(err, state.ErrInvalidMetadata) {
				t.Errorf("BatchPut(%q) = %v, want ErrInvalidMetadata", tc.doc, err)
			}
			// A superseded duplicate is validated too: the batch is
			// rejected whole, whichever occurrence would be written.
			err := s.BatchPut(ctx(), []state.Entry{
				{Key: []byte("bad"), Metadata: tc.doc},
				{Key: []byte("good"), Value: []byte("v")},
				{Key: []byte("bad"), Metadata: json.RawMessage(`{"ok":true}`)},
			})
			if !errors.Is(err, state.ErrInvalidMetadata) {
				t.Errorf("BatchPut with %q on a superseded duplicate = %v, want ErrInvalidMetadata", tc.doc, err)
			}
			if _, err := s.FindByMetadata(ctx(), tc.doc); !errors.Is(err, state.ErrInvalidMetadata) {
				t.Errorf("FindByMetadata(%q) = %v, want ErrInvalidMetadata", tc.doc, err)
			}
			wantKeys(t, mustList(t, s, nil), []byte("keep"))
		})
	}

	docs := map[string]string{
		"big":     `{"id":12345678901234568}`,
		"huge":    `{"kind":"huge","n":1e400}`,
		"tiny":    `{"t":1e-400}`,
		"widest":  `{"w":9.9e131071,"d":1e-16383,"wz":0e1073741822}`,
		"one":     `{"v":1.0,"list":[1,2.50]}`,
		"zero":    `{"z":-0}`,
		"sci":     `{"s":100}`,
		"pair":    `{"e":"\ud83d\ude00","bs":"\\ud800"}`,
		"topList": `[7,"x"]`,
	}
	for key, doc := range docs {
		if err := s.PutWithMetadata(ctx(), []byte(key), []byte("v"), json.RawMessage(doc)); err != nil {
			t.Fatalf("PutWithMetadata(%s): %v", doc, err)
		}
	}
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{"BigIntegerOneApart", `{"id":12345678901234567}`, nil},
		{"BigIntegerExact", `{"id":12345678901234568}`, []string{"big"}},
		{"BigIntegerScientific", `{"id":1.2345678901234568e16}`, []string{"big"}},
		{"BesideHugeNumber", `{"kind":"huge"}`, []string{"huge"}},
		{"HugeNumber", `{"n":1e400}`, []string{"huge"}},
		{"HugeNumberOtherForm", `{"n":10e399}`, []string{"huge"}},
		{"HugeNumberOtherValue", `{"n":1e401}`, nil},
		{"TinyNumber", `{"t":0.1e-399}`, []string{"tiny"}},
		{"TinyIsNotZero", `{"t":0}`, nil},
		{"WidestNumbers", `{"w":99e131070,"d":0.1e-16382,"wz":0}`, []string{"widest"}},
		{"TrailingZeros", `{"v":1}`, []string{"one"}},
		{"ArrayElementTrailingZeros", `{"list":[2.5]}`, []string{"one"}},
		{"NegativeZero", `{"z":0.0}`, []string{"zero"}},
		{"Exponent", `{"s":1e2}`, []string{"sci"}},
		{"ExponentAndDecimals", `{"s":1000.00e-1}`, []string{"sci"}},
		{"SurrogatePair", `{"e":"😀"}`, []string{"pair"}},
		{"EscapedBackslash", `{"bs":"\\ud800"}`, []string{"pair"}},
		{"TopLevelElement", `7.0`, []string{"topList"}},
		{"NumberIsNotString", `{"s":"100"}`, nil},
	}
	for _, tc := range tests {
		t.Run("Find"+tc.name, func(t *testing.T) {
			found, err := s.FindByMetadata(ctx(), json.RawMessage(tc.filter))
			if err != nil {
				t.Fatalf("FindByMetadata(%s): %v", tc.filter, err)
			}
			var got []string
			for _, e := range found {
				got = append(got, string(e.Key))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("FindByMetadata(%s) = %q, want %q", tc.filter, got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("FindByMetadata(%s) = %q, want %q", tc.filter, got, tc.want)
				}
			}
		})
	}
}
