// Package pgcluster starts a throwaway PostgreSQL cluster for one test: a
// fresh initdb in a temporary directory, listening on 127.0.0.1 on a free
// port, stopped and removed when the test ends. Tests that break the server
// on purpose (restarts, killed backends, TLS-only access) use it so that the
// shared server is never touched.
//
// The cluster is skipped, not failed, when the test runs with -short or when
// no PostgreSQL binaries can be found, except under CI (CI=true), where
// missing binaries are a failure: a CI job must never pass by skipping.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Options adjust a cluster before its first start.
type Options struct {
	// Settings are appended to postgresql.conf, after the cluster's own
	// (listen address, port, socket directory), so they may override them.
	// Values are written as they are: quote strings ('on', 'server.crt').
	Settings map[string]string
	// HBA, when not nil, replaces pg_hba.conf. A "local all all trust" line
	// is always kept first so that the test can administer the cluster over
	// its Unix socket whatever the TCP rules say.
	HBA []string
	// Files are written into the data directory (mode 0600, owned by the
	// server's user) before the first start: certificates and keys named by
	// ssl_cert_file, ssl_key_file and ssl_ca_file, for example.
	Files map[string][]byte
}

// Cluster is one running throwaway server.
type Cluster struct {
	// Port is the TCP port the server listens on, on 127.0.0.1.
	Port int

	tb      testing.TB
	binDir  string
	dir     string // owned by the server's user; holds data/ and the socket
	dataDir string
	logFile string
	asUser  []string // command prefix that runs a program as the server's user
	uid     int
	gid     int
	// autoConf is kept in postgresql.auto.conf after the port: a standby's
	// primary_conninfo, written there by pg_basebackup -R.
	autoConf string
}

// stopTimeout bounds pg_ctl's waits (start, stop, restart), in seconds.
const stopTimeout = 60

// New starts a cluster for tb and registers its removal with tb.Cleanup. It
// skips tb under -short or when PostgreSQL is not installed (failing instead
// when CI is set), and fails tb if the cluster cannot start.
func New(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("pgcluster: throwaway PostgreSQL clusters are not started under -short")
	}
	binDir, err := FindBinDir()
	if err != nil {
		skipOrFail(tb, os.Getenv("CI"), fmt.Sprintf("pgcluster: %v", err))
	}
	c := &Cluster{tb: tb, binDir: binDir, uid: -1, gid: -1}
	if err := c.prepareUser(); err != nil {
		tb.Fatalf("pgcluster: %v", err)
	}
	c.makeDir("pgcluster-")
	if err := c.initdb(opts); err != nil {
		tb.Fatalf("pgcluster: %v", err)
	}
	if err := c.startOnFreePort(); err != nil {
		tb.Fatalf("pgcluster: start: %v\nserver log:\n%s", err, c.serverLog())
	}
	return c
}

// makeDir creates the cluster's private directory (data/ and the server
// log inside), owned by the server's user and removed with the cluster when
// the test ends.
func (c *Cluster) makeDir(prefix string) {
	c.tb.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		c.tb.Fatalf("pgcluster: temp dir: %v", err)
	}
	c.dir = dir
	c.dataDir = filepath.Join(dir, "data")
	c.logFile = filepath.Join(dir, "server.log")
	c.tb.Cleanup(c.remove)
	if err := c.chown(dir); err != nil {
		c.tb.Fatalf("pgcluster: %v", err)
	}
}

// startOnFreePort starts the server on a free port. The port is only free
// when it is picked; another process may take it before the server binds
// it, so a failed start tries another one.
func (c *Cluster) startOnFreePort() error {
	var err error
	for range 3 {
		if err = c.configurePort(); err != nil {
			return err
		}
		if err = c.pgCtl("start", "-l", c.logFile); err == nil {
			return nil
		}
	}
	return err
}

// skipOrFail skips tb with reason, or fails it when ci says the run is a CI
// job, where a skipped fault test would hide that nothing was tested.
func skipOrFail(tb testing.TB, ci, reason string) {
	tb.Helper()
	if isCI(ci) {
		tb.Fatalf("%s (CI is set: a CI run must have PostgreSQL installed)", reason)
		return
	}
	tb.Skip(reason)
}

func isCI(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// FindBinDir locates the PostgreSQL server programs: $PG_BINDIR, the
// directory pg_config reports, or the newest /usr/lib/postgresql/*/bin, in
// that order.
func FindBinDir() (string, error) {
	usable := func(dir string) bool {
		for _, prog := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, prog)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		if usable(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("PG_BINDIR=%s holds no initdb, pg_ctl and postgres", dir)
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			if dir := strings.TrimSpace(string(out)); usable(dir) {
				return dir, nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, dir := range append(dirs, "/usr/local/pgsql/bin", "/opt/homebrew/bin", "/usr/local/bin", "/usr/bin") {
		if usable(dir) {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries found (install PostgreSQL or set PG_BINDIR)")
}

// ExtensionAvailable reports whether the server programs FindBinDir picks
// come with the extension name installed (its control file in the share
// directory pg_config reports, or Debian's /usr/share/postgresql/<major>).
// Tests that preload an extension check it before starting a cluster.
func ExtensionAvailable(name string) (bool, error) {
	binDir, err := FindBinDir()
	if err != nil {
		return false, err
	}
	var shareDirs []string
	if out, err := exec.Command(filepath.Join(binDir, "pg_config"), "--sharedir").Output(); err == nil {
		shareDirs = append(shareDirs, strings.TrimSpace(string(out)))
	}
	if major := majorOf(binDir); major > 0 {
		shareDirs = append(shareDirs, fmt.Sprintf("/usr/share/postgresql/%d", major))
	}
	for _, dir := range shareDirs {
		if _, err := os.Stat(filepath.Join(dir, "extension", name+".control")); err == nil {
			return true, nil
		}
	}
	return false, nil
}

// SkipOrFail skips tb with reason, or fails it under CI (CI=true), where a
// test must never pass by skipping.
func SkipOrFail(tb testing.TB, reason string) {
	tb.Helper()
	skipOrFail(tb, os.Getenv("CI"), reason)
}

// majorOf extracts the version from /usr/lib/postgresql/<major>/bin.
func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// prepareUser decides who runs the server: initdb and postgres refuse to
// run as root, so root hands them to the "postgres" account.
func (c *Cluster) prepareUser() error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs a \"postgres\" OS user to run the server: %w", err)
	}
	c.uid, _ = strconv.Atoi(u.Uid)
	c.gid, _ = strconv.Atoi(u.Gid)
	c.asUser = []string{"runuser", "-u", "postgres", "--"}
	return nil
}

func (c *Cluster) chown(path string) error {
	if c.uid < 0 {
		return nil
	}
	if err := os.Chown(path, c.uid, c.gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// run executes a server program as the server's user and returns its
// combined output in the error.
func (c *Cluster) run(prog string, args ...string) error {
	argv := append(append(append([]string{}, c.asUser...), filepath.Join(c.binDir, prog)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", prog, strings.Join(args, " "), err, out.String())
	}
	return nil
}

func (c *Cluster) initdb(opts Options) error {
	if err := c.run("initdb", "-D", c.dataDir, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"); err != nil {
		return err
	}
	for name, body := range opts.Files {
		if err := c.WriteFile(name, body); err != nil {
			return err
		}
	}
	if opts.HBA != nil {
		hba := "local all all trust\n" + strings.Join(opts.HBA, "\n") + "\n"
		if err := c.WriteFile("pg_hba.conf", []byte(hba)); err != nil {
			return err
		}
	}
	// Small enough that several clusters fit next to the shared server.
	conf := map[string]string{
		"listen_addresses":        "'127.0.0.1'",
		"unix_socket_directories": "'" + c.dir + "'",
		"max_connections":         "60",
		"shared_buffers":          "'32MB'",
		"logging_collector":       "off",
		"log_min_messages":        "warning",
	}
	maps.Copy(conf, opts.Settings)
	return c.appendFile("postgresql.conf", "\n# pgcluster\n"+settingLines(conf))
}

// settingLines renders settings as "key = value" lines, sorted by key.
func settingLines(settings map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	return b.String()
}

// configurePort picks a free port and records it in postgresql.auto.conf,
// which is read after postgresql.conf.
func (c *Cluster) configurePort() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c.Port = port
	return c.WriteFile("postgresql.auto.conf", []byte(fmt.Sprintf("port = %d\n%s", port, c.autoConf)))
}

// Cluster ports come from below Linux's default ephemeral range (32768 and
// up): the kernel gives ports from that range to outgoing connections, and
// the tests open thousands, so a port picked there could be taken by one of
// them while a cluster is stopped for a restart. The range also stays clear
// of scripts/with-postgres.sh, which counts up from 25432.
const (
	portMin = 26000
	portMax = 32000
)

func freePort() (int, error) {
	var err error
	for range 100 {
		port := portMin + rand.IntN(portMax-portMin)
		var l net.Listener
		if l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("find a free port in %d..%d: %w", portMin, portMax-1, err)
}

// WriteFile writes name inside the data directory (mode 0600, owned by the
// server's user). Settings that name files, such as ssl_cert_file, pick up
// the new content after Reload.
func (c *Cluster) WriteFile(name string, body []byte) error {
	path := filepath.Join(c.dataDir, name)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return c.chown(path)
}

func (c *Cluster) appendFile(name, text string) error {
	f, err := os.OpenFile(filepath.Join(c.dataDir, name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (c *Cluster) pgCtl(action string, args ...string) error {
	return c.run("pg_ctl", append([]string{action, "-D", c.dataDir, "-w", "-t", strconv.Itoa(stopTimeout)}, args...)...)
}

// DSN is the URL of the cluster's "postgres" database for the superuser
// "postgres" over TCP, without TLS.
func (c *Cluster) DSN() string { return c.URL("postgres", "postgres") }

// URL is the TCP URL of database as user, without TLS settings: add
// sslmode and the other TLS parameters (or set them in state.Config).
func (c *Cluster) URL(user, database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s", user, c.Port, database)
}

// SocketDSN reaches database as the superuser over the Unix socket, which
// pg_hba always trusts: the way in for administration when TCP requires TLS.
func (c *Cluster) SocketDSN(database string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", c.dir, c.Port, database)
}

// Dir returns a directory private to the cluster, removed with it; the test
// may keep its own files there (client certificates, for example).
func (c *Cluster) Dir() string { return c.dir }

// Stop shuts the server down in fast mode: sessions are terminated, open
// transactions rolled back, and everything committed is flushed.
func (c *Cluster) Stop() error {
	if err := c.pgCtl("stop", "-m", "fast"); err != nil {
		return fmt.Errorf("pgcluster: stop: %w", err)
	}
	return nil
}

// Start starts a stopped server on the same port.
func (c *Cluster) Start() error {
	if err := c.pgCtl("start", "-l", c.logFile); err != nil {
		return fmt.Errorf("pgcluster: start: %w\nserver log:\n%s", err, c.serverLog())
	}
	return nil
}

// Restart is pg_ctl restart -m fast: a fast shutdown followed by a start.
func (c *Cluster) Restart() error {
	if err := c.pgCtl("restart", "-m", "fast", "-l", c.logFile); err != nil {
		return fmt.Errorf("pgcluster: restart: %w\nserver log:\n%s", err, c.serverLog())
	}
	return nil
}

// Reload makes the server reread its configuration files and certificates.
func (c *Cluster) Reload() error {
	if err := c.run("pg_ctl", "reload", "-D", c.dataDir); err != nil {
		return fmt.Errorf("pgcluster: reload: %w", err)
	}
	return nil
}

// WaitReady waits until the server accepts connections or ctx ends.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.Port), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: not ready: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *Cluster) serverLog() string { return logTail(c.logFile, "server log") }

// logTail returns the end of the log at path, or why there is none.
func logTail(path, what string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no %s: %v)", what, err)
	}
	const tail = 4000
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return string(b)
}

// remove stops the server without waiting for clients and deletes the
// cluster's files. On a failed test the server log goes to the test output
// first.
func (c *Cluster) remove() {
	if c.tb.Failed() {
		c.tb.Logf("pgcluster: server log of the failed test:\n%s", c.serverLog())
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "postmaster.pid")); err == nil {
		if err := c.pgCtl("stop", "-m", "immediate"); err != nil {
			c.tb.Logf("pgcluster: %v", err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		c.tb.Logf("pgcluster: remove %s: %v", c.dir, err)
	}
}
