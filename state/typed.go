package state

import (
	"context"
	"encoding/json"
	"fmt"
)

// A Codec turns values of type T into the bytes a store keeps and back.
// Typed uses JSONCodec unless given another (protobuf, gob, msgpack: any
// type with these two methods).
type Codec[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(data []byte) (T, error)
}

// JSONCodec is the default Codec: encoding/json, so values stay readable
// with statectl and from SQL.
type JSONCodec[T any] struct{}

// Encode implements Codec.
func (JSONCodec[T]) Encode(v T) ([]byte, error) { return json.Marshal(v) }

// Decode implements Codec.
func (JSONCodec[T]) Decode(data []byte) (T, error) {
	var v T
	err := json.Unmarshal(data, &v)
	return v, err
}

// Typed is a view of a store whose values are of one Go type and whose keys
// are strings, so a service reads and writes its own types instead of
// bytes:
//
//	carts := state.NewTyped[Cart](store)
//	err := carts.Put(ctx, "cart/42", Cart{Items: 3})
//	cart, found, err := carts.Get(ctx, "cart/42")
//
// It wraps Ops, so it works on a Store and, unchanged, on the handle a
// Transact function receives: state.NewTyped[Cart](tx). The key and value
// rules, errors and options are the store's. A value the codec cannot
// encode or decode fails with ErrCodec (and the codec's error). A Typed is
// as safe for concurrent use as the store under it.
type Typed[T any] struct {
	ops   Ops
	codec Codec[T]
}

// NewTyped returns a Typed view of ops with values encoded as JSON.
func NewTyped[T any](ops Ops) *Typed[T] {
	return &Typed[T]{ops: ops, codec: JSONCodec[T]{}}
}

// NewTypedCodec returns a Typed view of ops with values encoded by codec.
func NewTypedCodec[T any](ops Ops, codec Codec[T]) *Typed[T] {
	return &Typed[T]{ops: ops, codec: codec}
}

func (t *Typed[T]) encode(op, key string, v T) ([]byte, error) {
	data, err := t.codec.Encode(v)
	if err != nil {
		return nil, fmt.Errorf("pgstate: %s %q: %w: %w", op, key, ErrCodec, err)
	}
	return data, nil
}

func (t *Typed[T]) decode(op string, key []byte, data []byte) (T, error) {
	v, err := t.codec.Decode(data)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("pgstate: %s %q: %w: %w", op, key, ErrCodec, err)
	}
	return v, nil
}

// Get returns the value under key; found is false if there is no live entry.
func (t *Typed[T]) Get(ctx context.Context, key string) (v T, found bool, err error) {
	data, found, err := t.ops.Get(ctx, []byte(key))
	if err != nil || !found {
		return v, false, err
	}
	v, err = t.decode("get", []byte(key), data)
	return v, err == nil, err
}

// Put stores v under key, replacing any previous entry with its metadata
// and expiry, as Store.Put does.
func (t *Typed[T]) Put(ctx context.Context, key string, v T) error {
	data, err := t.encode("put", key, v)
	if err != nil {
		return err
	}
	return t.ops.Put(ctx, []byte(key), data)
}

// PutEntry stores v under key with the write options of Store.PutEntry
// (WithTTL, WithMetadata, IfVersion, IfAbsent, KeepTTL, KeepMetadata,
// WithPrevEntry). The previous entry, with WithPrevEntry, is in the
// result's Prev as bytes; DecodePrev decodes it.
func (t *Typed[T]) PutEntry(ctx context.Context, key string, v T, opts ...WriteOption) (WriteResult, error) {
	data, err := t.encode("put entry", key, v)
	if err != nil {
		return WriteResult{}, err
	}
	return t.ops.PutEntry(ctx, []byte(key), data, opts...)
}

// DecodePrev decodes the previous value a WithPrevEntry write returned;
// ok is false when there was none.
func (t *Typed[T]) DecodePrev(res WriteResult) (v T, ok bool, err error) {
	if res.Prev == nil {
		return v, false, nil
	}
	v, err = t.decode("decode previous", res.Prev.Key, res.Prev.Value)
	return v, err == nil, err
}

// Delete removes key and reports whether it had a live entry. Options are
// those of Store.DeleteEntry (IfVersion).
func (t *Typed[T]) Delete(ctx context.Context, key string, opts ...WriteOption) (existed bool, err error) {
	res, err := t.ops.DeleteEntry(ctx, []byte(key), opts...)
	return res.Existed, err
}

// Item is one entry of a typed listing: the key as a string, the decoded
// value and the entry's attributes (its Value bytes left out).
type Item[T any] struct {
	Key   string
	Value T
	Entry Entry
}

// TypedPage is one page of a typed listing.
type TypedPage[T any] struct {
	Items []Item[T]
	// More reports that the listing goes on: call again with
	// StartAfter([]byte(page.Next())).
	More bool
}

// Next is the key to resume after, "" for an empty page.
func (p TypedPage[T]) Next() string {
	if len(p.Items) == 0 {
		return ""
	}
	return p.Items[len(p.Items)-1].Key
}

// List returns one page of the entries whose key starts with prefix,
// decoded, with the options of Store.List (WithLimit, StartAfter, Reverse,
// Range). With KeysOnly the values are not read and Value is T's zero value.
func (t *Typed[T]) List(ctx context.Context, prefix string, opts ...ListOption) (TypedPage[T], error) {
	page, err := t.ops.List(ctx, []byte(prefix), opts...)
	if err != nil {
		return TypedPage[T]{}, err
	}
	o, _ := collectListOptions(opts)
	out := TypedPage[T]{Items: make([]Item[T], len(page.Entries)), More: page.More}
	for i, e := range page.Entries {
		item := Item[T]{Key: string(e.Key), Entry: e}
		if !o.keysOnly {
			if item.Value, err = t.decode("list", e.Key, e.Value); err != nil {
				return TypedPage[T]{}, err
			}
		}
		item.Entry.Value = nil
		out.Items[i] = item
	}
	return out, nil
}
