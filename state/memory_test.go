package state_test

import (
	"testing"

	"github.com/pgstate/pgstate/state"
	"github.com/pgstate/pgstate/state/statetest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	statetest.RunStore(t, func(t *testing.T) state.Store { return state.NewMemory() })
}
