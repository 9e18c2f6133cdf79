// Command vetdb (re)creates a database and migrates it, so that `sqlc vet`
// can prepare every query against the real schema. It prints the new
// database's URL. With -drop it drops the database again, which
// `make check-generated` does whether or not the vet passed, so that it
// leaves nothing behind.
//
//	go run ./internal/cmd/vetdb <server-url> <database-name>
//	go run ./internal/cmd/vetdb -drop <server-url> <database-name>
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/schema"
)

func main() {
	args, drop := os.Args[1:], false
	if len(args) > 0 && args[0] == "-drop" {
		args, drop = args[1:], true
	}
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: vetdb [-drop] <server-url> <database-name>")
		os.Exit(2)
	}
	run := run
	if drop {
		run = dropDatabase
	}
	if err := run(args[0], args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "vetdb:", err)
		os.Exit(1)
	}
}

func run(serverURL, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	db := pgx.Identifier{name}.Sanitize()
	// Database names cannot be parameters.
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return err
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return err
	}
	u.Path = "/" + name
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := schema.Migrate(ctx, conn, "public"); err != nil {
		return err
	}
	fmt.Println(u.String())
	return nil
}

// dropDatabase drops the database name, if it exists, closing its
// connections.
func dropDatabase(serverURL, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	// Database names cannot be parameters.
	_, err = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}
