package pgcluster

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PgBouncerOptions adjust a PgBouncer before it starts.
type PgBouncerOptions struct {
	// PoolMode is session, transaction or statement. Default transaction.
	PoolMode string
	// PoolSize is default_pool_size: server connections per database and
	// user. Default 4.
	PoolSize int
	// Users may log in (auth_type trust; they must exist in the cluster).
	// "postgres" is always added.
	Users []string
	// Settings are added to the [pgbouncer] section, overriding ours.
	Settings map[string]string
}

// PgBouncer is a running pgbouncer in front of a cluster, stopped when the
// test ends.
type PgBouncer struct {
	// Port is where it listens, on 127.0.0.1.
	Port int

	dir     string
	logFile string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// FindPgBouncer locates the pgbouncer program: $PGBOUNCER, the PATH, or
// Debian's /usr/sbin/pgbouncer.
func FindPgBouncer() (string, error) {
	if p := os.Getenv("PGBOUNCER"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer", nil
	}
	return "", fmt.Errorf("no pgbouncer program found (apt-get install pgbouncer, or set PGBOUNCER)")
}

// StartPgBouncer starts pgbouncer in front of c, every database reachable
// under its own name (a "*" entry), with a configuration and auth file
// written into a private directory. It skips tb when pgbouncer is not
// installed (failing under CI=true).
func StartPgBouncer(tb testing.TB, c *Cluster, opts PgBouncerOptions) *PgBouncer {
	tb.Helper()
	bin, err := FindPgBouncer()
	if err != nil {
		SkipOrFail(tb, "pgcluster: "+err.Error())
	}
	dir, err := os.MkdirTemp("", "pgbouncer-")
	if err != nil {
		tb.Fatalf("pgcluster: temp dir: %v", err)
	}
	b := &PgBouncer{dir: dir, logFile: filepath.Join(dir, "pgbouncer.log"), exited: make(chan struct{})}
	tb.Cleanup(func() {
		b.stop(tb)
		_ = os.RemoveAll(dir)
	})
	if err := c.chown(dir); err != nil {
		tb.Fatalf("pgcluster: %v", err)
	}
	users := append([]string{"postgres"}, opts.Users...)
	var auth strings.Builder
	for _, u := range users {
		fmt.Fprintf(&auth, "%q \"\"\n", u)
	}
	if err := b.write(c, "userlist.txt", auth.String()); err != nil {
		tb.Fatalf("pgcluster: %v", err)
	}
	var startErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("pgcluster: %v", err)
		}
		b.Port = port
		settings := map[string]string{
			"listen_addr":               "127.0.0.1",
			"listen_port":               fmt.Sprint(port),
			"unix_socket_dir":           "",
			"auth_type":                 "trust",
			"auth_file":                 filepath.Join(dir, "userlist.txt"),
			"pool_mode":                 "transaction",
			"default_pool_size":         "4",
			"max_client_conn":           "500",
			"ignore_startup_parameters": "extra_float_digits",
			"logfile":                   b.logFile,
			"pidfile":                   filepath.Join(dir, "pgbouncer.pid"),
			"admin_users":               "postgres",
			"server_login_retry":        "1",
		}
		if opts.PoolMode != "" {
			settings["pool_mode"] = opts.PoolMode
		}
		if opts.PoolSize > 0 {
			settings["default_pool_size"] = fmt.Sprint(opts.PoolSize)
		}
		maps.Copy(settings, opts.Settings)
		ini := fmt.Sprintf("[databases]\n* = host=127.0.0.1 port=%d\n\n[pgbouncer]\n", c.Port) + settingLines(settings)
		if err := b.write(c, "pgbouncer.ini", ini); err != nil {
			tb.Fatalf("pgcluster: %v", err)
		}
		if startErr = b.start(c, bin); startErr == nil {
			return b
		}
	}
	tb.Fatalf("pgcluster: start pgbouncer: %v\nlog:\n%s", startErr, b.log())
	return nil
}

func (b *PgBouncer) write(c *Cluster, name, body string) error {
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return c.chown(path)
}

// start runs pgbouncer in the foreground as the cluster's user (it refuses
// to run as root) and waits until it accepts connections.
func (b *PgBouncer) start(c *Cluster, bin string) error {
	cmd := exec.Command(bin, filepath.Join(b.dir, "pgbouncer.ini"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid)}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port), time.Second)
		if err == nil {
			conn.Close()
			b.cmd, b.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("pgbouncer exited: %v", cmd.ProcessState)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("pgbouncer not listening on %d: %w", b.Port, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (b *PgBouncer) stop(tb testing.TB) {
	if b.cmd == nil {
		return
	}
	if tb.Failed() {
		tb.Logf("pgcluster: pgbouncer log of the failed test:\n%s", b.log())
	}
	_ = b.cmd.Process.Signal(syscall.SIGINT) // immediate shutdown
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

// URL is the TCP URL of database as user through the pooler.
func (b *PgBouncer) URL(user, database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", user, b.Port, database)
}

func (b *PgBouncer) log() string { return logTail(b.logFile, "log") }
