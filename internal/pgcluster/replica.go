package pgcluster

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// NewStandby starts a streaming standby of primary on another free port: a
// pg_basebackup -R copy of it (standby.signal, primary_conninfo), stopped
// and removed when the test ends. opts.Settings are appended to the copied
// postgresql.conf; opts.HBA and opts.Files are ignored. The primary must
// allow replication connections from 127.0.0.1, as initdb's default
// pg_hba.conf does, and wal_level must be replica or logical (the default).
func NewStandby(tb testing.TB, primary *Cluster, opts Options) *Cluster {
	tb.Helper()
	if _, err := os.Stat(filepath.Join(primary.binDir, "pg_basebackup")); err != nil {
		SkipOrFail(tb, fmt.Sprintf("pgcluster: no pg_basebackup next to %s/initdb: %v", primary.binDir, err))
	}
	c := &Cluster{tb: tb, binDir: primary.binDir, uid: primary.uid, gid: primary.gid, asUser: primary.asUser}
	c.makeDir("pgcluster-standby-")
	if err := c.run("pg_basebackup", "-D", c.dataDir, "-h", "127.0.0.1", "-p", fmt.Sprint(primary.Port),
		"-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
		tb.Fatalf("pgcluster: %v", err)
	}
	// -R wrote primary_conninfo into postgresql.auto.conf, which also holds
	// the primary's port: keep everything but the port.
	auto, err := os.ReadFile(filepath.Join(c.dataDir, "postgresql.auto.conf"))
	if err != nil {
		tb.Fatalf("pgcluster: %v", err)
	}
	for _, line := range strings.Split(string(auto), "\n") {
		if line != "" && !strings.HasPrefix(strings.TrimSpace(line), "port") {
			c.autoConf += line + "\n"
		}
	}
	conf := map[string]string{"unix_socket_directories": "'" + c.dir + "'"}
	maps.Copy(conf, opts.Settings)
	if err := c.appendFile("postgresql.conf", "\n# pgcluster standby\n"+settingLines(conf)); err != nil {
		tb.Fatalf("pgcluster: %v", err)
	}
	_ = os.Remove(filepath.Join(c.dataDir, "postmaster.pid"))
	if err := c.startOnFreePort(); err != nil {
		tb.Fatalf("pgcluster: start standby: %v\nserver log:\n%s", err, c.serverLog())
	}
	return c
}

// Promote turns a standby into a primary (pg_ctl promote, waiting until it
// accepts writes).
func (c *Cluster) Promote() error {
	if err := c.pgCtl("promote"); err != nil {
		return fmt.Errorf("pgcluster: promote: %w", err)
	}
	return nil
}

// Kill stops the server in immediate mode: every process exits at once
// without a checkpoint, as in a crash or a power cut (the WAL already
// flushed survives).
func (c *Cluster) Kill() error {
	if err := c.pgCtl("stop", "-m", "immediate"); err != nil {
		return fmt.Errorf("pgcluster: kill: %w", err)
	}
	return nil
}
