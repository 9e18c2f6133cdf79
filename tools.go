//go:build tools

// Package tools pins the versions of the command-line tools the build uses,
// so that `go run` builds them from the module cache and nothing needs a
// global install.
package tools

import (
	_ "github.com/sqlc-dev/sqlc/cmd/sqlc"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
