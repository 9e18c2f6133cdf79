package tests

import (
	"bytes"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpProxy forwards TCP connections to a PostgreSQL server and misbehaves on
// demand, the ways a network does and a server cannot: it goes silent while
// keeping every socket open, it drops every connection, or it loses one
// reply after the server sent it.
type tcpProxy struct {
	ln     net.Listener
	target string

	silent atomic.Bool            // hold all data in both directions, sockets stay open
	down   atomic.Bool            // close every connection, accept new ones only to close them
	cutOn  atomic.Pointer[[]byte] // one shot: drop the connection whose server data contains this
	cut    atomic.Int64           // connections dropped by cutOn
	// holdNew delays the first bytes a newly accepted connection sends to
	// the server by this many nanoseconds, as a slow network or a loaded
	// postmaster delays a cancel request (which comes on a connection of
	// its own).
	holdNew atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// newTCPProxy listens on a free local port and forwards to target
// (host:port); it stops, closing every connection, when the test ends.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// proxiedDSN returns dsn (URL form) pointing at a new proxy in front of its
// server.
func proxiedDSN(t *testing.T, dsn string) (*tcpProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	p := newTCPProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	return p, u.String()
}

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() || !p.track(client) {
			client.Close()
			continue
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil || !p.track(server) {
			if server != nil {
				server.Close()
			}
			p.untrack(client)
			continue
		}
		p.wg.Add(2)
		go p.pipe(server, client, false, time.Duration(p.holdNew.Load()))
		go p.pipe(client, server, true, 0)
	}
}

// pipe copies src to dst until either side closes. fromServer marks the
// direction cutOn watches; hold delays the first bytes forwarded.
func (p *tcpProxy) pipe(dst, src net.Conn, fromServer bool, hold time.Duration) {
	defer p.wg.Done()
	defer p.untrack(dst)
	defer p.untrack(src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if hold > 0 {
				time.Sleep(hold)
				hold = 0
			}
			for p.silent.Load() && !p.isClosed() {
				time.Sleep(5 * time.Millisecond)
			}
			if fromServer {
				if m := p.cutOn.Load(); m != nil && bytes.Contains(buf[:n], *m) && p.cutOn.CompareAndSwap(m, nil) {
					p.cut.Add(1)
					return
				}
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *tcpProxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// closeAll closes every open connection.
func (p *tcpProxy) closeAll() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		p.untrack(c)
	}
}

// setSilent stops (or resumes) forwarding in both directions; the sockets
// stay open, as behind a dead link or a stateful firewall that drops
// packets.
func (p *tcpProxy) setSilent(on bool) { p.silent.Store(on) }

// setDown drops every connection and refuses new ones (or lets them through
// again).
func (p *tcpProxy) setDown(on bool) {
	p.down.Store(on)
	if on {
		p.closeAll()
	}
}

// cutAfterReply arms a one-shot fault: the next data from the server that
// contains marker is not forwarded, and its connection is closed, so the
// client never learns the outcome of a statement the server completed.
func (p *tcpProxy) cutAfterReply(marker string) {
	m := []byte(marker)
	p.cutOn.Store(&m)
}

func (p *tcpProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.closeAll()
	p.wg.Wait()
}
