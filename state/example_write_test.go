package state_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pgstate/pgstate/state"
)

func ExampleMemory_PutEntry() {
	ctx := context.Background()
	store := state.NewMemory()
	key := []byte("leader")

	// First write wins.
	r, err := store.PutEntry(ctx, key, []byte("node-a"), state.IfAbsent(), state.WithTTL(time.Minute))
	fmt.Println("node-a:", r.Version, err)
	_, err = store.PutEntry(ctx, key, []byte("node-b"), state.IfAbsent())
	var vm *state.VersionMismatchError
	fmt.Println("node-b lost:", errors.As(err, &vm), "current version", vm.Current)

	// Renew only if nobody took over since, keeping the expiry, and see what
	// was replaced.
	r, err = store.PutEntry(ctx, key, []byte("node-a"), state.IfVersion(r.Version), state.KeepTTL(), state.WithPrevEntry())
	fmt.Println("renewed:", r.Version, string(r.Prev.Value), err)

	// Delete only the version we hold.
	_, err = store.DeleteEntry(ctx, key, state.IfVersion(1))
	fmt.Println("stale delete:", errors.Is(err, state.ErrVersionMismatch))
	r, err = store.DeleteEntry(ctx, key, state.IfVersion(2))
	fmt.Println("deleted:", r.Existed, err)
	// Output:
	// node-a: 1 <nil>
	// node-b lost: true current version 1
	// renewed: 2 node-a <nil>
	// stale delete: true
	// deleted: true <nil>
}

func ExampleMemory_Transact() {
	ctx := context.Background()
	store := state.NewMemory()
	_ = store.Put(ctx, []byte("account/a"), []byte("100"))
	_ = store.Put(ctx, []byte("account/b"), []byte("0"))

	transfer := func(ctx context.Context, tx state.Ops) error {
		a, _, err := tx.Get(ctx, []byte("account/a"))
		if err != nil {
			return err
		}
		b, _, err := tx.Get(ctx, []byte("account/b"))
		if err != nil {
			return err
		}
		na, _ := strconv.Atoi(string(a))
		nb, _ := strconv.Atoi(string(b))
		if na < 30 {
			return errors.New("insufficient funds")
		}
		if err := tx.Put(ctx, []byte("account/a"), []byte(strconv.Itoa(na-30))); err != nil {
			return err
		}
		return tx.Put(ctx, []byte("account/b"), []byte(strconv.Itoa(nb+30)))
	}
	for range 4 {
		fmt.Println(store.Transact(ctx, transfer))
	}
	values, _ := store.GetMany(ctx, [][]byte{[]byte("account/a"), []byte("account/b")})
	fmt.Println(string(values["account/a"]), string(values["account/b"]))
	// Output:
	// <nil>
	// <nil>
	// <nil>
	// insufficient funds
	// 10 90
}

func ExampleMemory_DeletePrefix() {
	ctx := context.Background()
	store := state.NewMemory()
	for _, k := range []string{"job/1", "job/2", "job/3", "jobs"} {
		_ = store.Put(ctx, []byte(k), []byte("x"))
	}
	n, _ := store.CountPrefix(ctx, []byte("job/"))
	fmt.Println("under job/:", n)
	n, _ = store.DeletePrefix(ctx, []byte("job/"))
	fmt.Println("deleted:", n)
	keys, _ := store.ListKeys(ctx, nil)
	fmt.Printf("left: %s\n", keys)
	// Output:
	// under job/: 3
	// deleted: 3
	// left: [jobs]
}
