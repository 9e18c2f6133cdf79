package tests

import (
	"testing"
	"time"

	"github.com/pgstate/pgstate/internal/testdb"
	"github.com/pgstate/pgstate/state"
)

// proxiedStore opens a store on the database at dsn through a new proxy
// that can lose the server's replies, for the tests of unknown outcomes.
func proxiedStore(t *testing.T, dsn string) (*tcpProxy, *state.Postgres) {
	t.Helper()
	proxy, proxied := proxiedDSN(t, dsn)
	cfg := testdb.Config(t)
	cfg.DSN = proxied
	cfg.QueryTimeout = 10 * time.Second
	return proxy, testdb.OpenConfig(t, cfg)
}
