// Command vetdb (re)creates a database and migrates it, so that `sqlc vet`
// can prepare every query against the real schema. It prints the new
// database's URL.
//
//	go run ./internal/cmd/vetdb <server-url> <database-name>
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
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: vetdb <server-url> <database-name>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
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
