// Package tests holds pgstate's integration tests. Every test runs against
// its own PostgreSQL database, cloned from a migrated template.
package tests

import (
	"testing"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
	"github.com/pgstate/pgstate/state/statetest"
)

func TestPostgresConformance(t *testing.T) {
	t.Parallel()
	statetest.RunStore(t, func(t *testing.T) state.Store { return testdb.Open(t, nil) })
}

func TestPostgresConformanceInOtherSchema(t *testing.T) {
	t.Parallel()
	statetest.Run(t, func(t *testing.T) state.Backend {
		return testdb.Open(t, func(c *state.Config) { c.Schema = "tenant_a" })
	})
}
