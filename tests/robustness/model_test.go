package robustness

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The history is split into groups of keys: a single-key operation touches
// one key of one group, a multi-key operation (GetMany, DeleteMany,
// BatchPut, DeletePrefix, Transact) keys of one group only. Groups never
// interact, so porcupine checks each group's history on its own.
const (
	groups       = 8
	keysPerGroup = 3
)

func keyName(group, key int) []byte { return fmt.Appendf(nil, "g%d/k%d", group, key) }
func groupPrefix(group int) []byte  { return fmt.Appendf(nil, "g%d/", group) }

type opKind int

const (
	opGet opKind = iota
	opGetEntry
	opPut
	opPutTTL
	opDelete
	opPutIfVersion
	opPutIfAbsent
	opDeleteIfVersion
	opGetMany
	opDeleteMany
	opBatchPut
	opDeletePrefix
	opTransact
	opKinds
)

var opNames = [...]string{"Get", "GetEntry", "Put", "PutWithTTL", "Delete", "PutIfVersion", "PutIfAbsent",
	"DeleteIfVersion", "GetMany", "DeleteMany", "BatchPut", "DeletePrefix", "Transact"}

func (k opKind) String() string { return opNames[k] }

// isRead marks operations that change nothing: a failed read is left out of
// the history, a failed write may or may not have taken effect.
func (k opKind) isRead() bool { return k == opGet || k == opGetEntry || k == opGetMany }

// input is one call. keys index into the group; values go with them for
// writes. Transact reads keys[0] and writes keys[1] := values[0] + "|" +
// the value it read.
type input struct {
	kind    opKind
	group   int
	keys    []int
	values  []string
	version int64 // the condition of PutIfVersion and DeleteIfVersion
}

// output is what the call returned. unknown marks a failed write.
type output struct {
	unknown bool
	found   bool
	value   string
	version int64
	ok      bool  // a conditional write's condition held
	current int64 // the version a failed condition reported
	count   int64
	values  map[int]string // GetMany
	written string         // what a Transact wrote
}

type slot struct {
	present bool
	value   string
	version int64
}

// groupState is comparable, so porcupine's default equality works on it.
type groupState [keysPerGroup]slot

func (s groupState) liveVersion(k int) int64 {
	if s[k].present {
		return s[k].version
	}
	return 0
}

// put is the effect of any unconditional write of value: a key that exists
// gets the next version, a new one version 1.
func (s groupState) put(k int, value string) groupState {
	v := int64(1)
	if s[k].present {
		v = s[k].version + 1
	}
	s[k] = slot{present: true, value: value, version: v}
	return s
}

func (s groupState) del(k int) groupState {
	s[k] = slot{}
	return s
}

func step(st any, in any, out any) (bool, any) {
	s := st.(groupState)
	i := in.(input)
	o := out.(output)
	switch i.kind {
	case opGet:
		k := i.keys[0]
		return o.found == s[k].present && o.value == s[k].value, s
	case opGetEntry:
		k := i.keys[0]
		return o.found == s[k].present && o.value == s[k].value && o.version == s[k].version, s
	case opGetMany:
		for _, k := range i.keys {
			v, ok := o.values[k]
			if ok != s[k].present || v != s[k].value {
				return false, s
			}
		}
		return true, s
	case opPut, opPutTTL:
		return true, s.put(i.keys[0], i.values[0])
	case opDelete:
		return true, s.del(i.keys[0])
	case opPutIfVersion, opPutIfAbsent:
		k := i.keys[0]
		cur := s.liveVersion(k)
		next := s.put(k, i.values[0])
		switch {
		case o.unknown:
			if cur == i.version {
				return true, next
			}
			return true, s
		case o.ok:
			return cur == i.version && o.version == next[k].version, next
		default:
			return cur != i.version && o.current == cur, s
		}
	case opDeleteIfVersion:
		k := i.keys[0]
		cur := s.liveVersion(k)
		switch {
		case o.unknown:
			if cur == i.version {
				return true, s.del(k)
			}
			return true, s
		case o.ok:
			return cur == i.version, s.del(k)
		default:
			return cur != i.version && o.current == cur, s
		}
	case opBatchPut:
		next := s
		for j, k := range i.keys {
			next = next.put(k, i.values[j])
		}
		return true, next
	}
	panic(fmt.Sprintf("unknown operation %v", i.kind))
}

// transactValue is what a Transact writes, derived from what it read, so a
// read inside the transaction that saw the wrong state shows in the data.
func transactValue(tag string, read slot) string {
	if !read.present {
		return tag + "|none"
	}
	return tag + "|" + read.value
}

func describeOp(in any, out any) string {
	i := in.(input)
	o := out.(output)
	var b strings.Builder
	fmt.Fprintf(&b, "%v(g%d", i.kind, i.group)
	for j, k := range i.keys {
		fmt.Fprintf(&b, " k%d", k)
		if j < len(i.values) && i.kind != opTransact {
			fmt.Fprintf(&b, "=%s", i.values[j])
		}
	}
	if i.kind == opPutIfVersion || i.kind == opDeleteIfVersion {
		fmt.Fprintf(&b, " if v%d", i.version)
	}
	b.WriteString(") -> ")
	switch {
	case o.unknown:
		b.WriteString("unknown")
	case i.kind == opGet || i.kind == opTransact:
		fmt.Fprintf(&b, "%q found=%t", o.value, o.found)
	case i.kind == opGetEntry:
		fmt.Fprintf(&b, "%q v%d found=%t", o.value, o.version, o.found)
	case i.kind == opGetMany:
		keys := slices.Sorted(maps.Keys(o.values))
		for _, k := range keys {
			fmt.Fprintf(&b, "k%d=%s ", k, o.values[k])
		}
	case i.kind == opPutIfVersion || i.kind == opPutIfAbsent || i.kind == opDeleteIfVersion:
		if o.ok {
			fmt.Fprintf(&b, "ok v%d", o.version)
		} else {
			fmt.Fprintf(&b, "mismatch current v%d", o.current)
		}
	case i.kind == opDeleteMany || i.kind == opDeletePrefix:
		fmt.Fprintf(&b, "%d", o.count)
	default:
		b.WriteString("ok")
	}
	return b.String()
}

func describeState(st any) string {
	s := st.(groupState)
	var parts []string
	for k, sl := range s {
		if sl.present {
			parts = append(parts, fmt.Sprintf("k%d=%s@v%d", k, sl.value, sl.version))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func hashState(st any) uint64 {
	h := fnv.New64a()
	fmt.Fprint(h, st.(groupState))
	return h.Sum64()
}

var storeModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		parts := make([][]porcupine.Operation, groups)
		for _, op := range history {
			g := op.Input.(input).group
			parts[g] = append(parts[g], op)
		}
		return slices.DeleteFunc(parts, func(p []porcupine.Operation) bool { return len(p) == 0 })
	},
	Init:              func() any { return groupState{} },
	Step:              step,
	Hash:              hashState,
	DescribeOperation: describeOp,
	DescribeState:     describeState,
}

// TestModelCatches shows that the model refuses histories no store may
// produce: a stale read, a version that skips, a condition that held on
// the wrong version.
func TestModelCatches(t *testing.T) {
	t.Parallel()
	op := func(client int, call, ret int64, in input, out output) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
	}
	put := input{kind: opPut, keys: []int{0}, values: []string{"a"}}
	get := input{kind: opGetEntry, keys: []int{0}}
	cases := map[string][]porcupine.Operation{
		"StaleRead": {
			op(0, 0, 1, put, output{}),
			op(1, 2, 3, get, output{}),
		},
		"VersionSkips": {
			op(0, 0, 1, put, output{}),
			op(1, 2, 3, get, output{found: true, value: "a", version: 2}),
		},
		"ConditionOnWrongVersion": {
			op(0, 0, 1, put, output{}),
			op(1, 2, 3, input{kind: opPutIfVersion, keys: []int{0}, values: []string{"b"}, version: 5}, output{ok: true, version: 6}),
		},
	}
	for name, history := range cases {
		if porcupine.CheckOperations(storeModel, history) {
			t.Errorf("%s: the model accepted it", name)
		}
	}
	ok := []porcupine.Operation{
		op(0, 0, 1, put, output{}),
		op(1, 2, 3, get, output{found: true, value: "a", version: 1}),
	}
	if !porcupine.CheckOperations(storeModel, ok) {
		t.Error("the model refused a correct history")
	}
}
