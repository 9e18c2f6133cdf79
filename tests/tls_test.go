package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgstate/pgstate/internal/pgcluster"
	"github.com/pgstate/pgstate/state"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a server certificate for the given names and addresses and
// returns it and its key, PEM-encoded.
func (ca *testCA) issue(t *testing.T, dnsNames []string, ips []net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	return ca.sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "pgstate test server"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	})
}

// sign completes tmpl (serial, a day of validity, key usage) and signs it
// with a new key, returning the certificate and the key, PEM-encoded.
func (ca *testCA) sign(t *testing.T, tmpl *x509.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber, _ = rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// newTLSCluster starts a cluster with ssl on, serving a certificate from ca
// for localhost and 127.0.0.1, with the given pg_hba.conf lines. With
// clientCA it also trusts ca for client certificates.
func newTLSCluster(t *testing.T, ca *testCA, clientCA bool, hba ...string) *pgcluster.Cluster {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	opts := pgcluster.Options{
		Settings: map[string]string{
			"ssl":           "on",
			"ssl_cert_file": "'server.crt'",
			"ssl_key_file":  "'server.key'",
		},
		HBA:   hba,
		Files: map[string][]byte{"server.crt": certPEM, "server.key": keyPEM},
	}
	if clientCA {
		opts.Settings["ssl_ca_file"] = "'ca.crt'"
		opts.Files["ca.crt"] = ca.pem
	}
	return pgcluster.New(t, opts)
}

// tlsConfig is the configuration of a store reaching c over TCP at host as
// user, with the given sslmode and root certificate. It does not retry, so
// a refused connection fails Open at once.
func tlsConfig(c *pgcluster.Cluster, user, host, database, mode, rootCert string) state.Config {
	cfg := state.DefaultConfig("postgres://" + user + "@" + net.JoinHostPort(host, strconv.Itoa(c.Port)) + "/" + database)
	cfg.SSLMode = mode
	cfg.SSLRootCert = rootCert
	cfg.MinConns, cfg.MaxConns = 0, 2
	cfg.ConnectTimeout = 5 * time.Second
	cfg.MaxRetries = 0
	return cfg
}

func TestTLS(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "pgstate test CA")
	otherCA := newCA(t, "some other CA")
	c := newTLSCluster(t, ca, false,
		"hostssl all all 127.0.0.1/32 trust",
		"hostnossl all all 0.0.0.0/0 reject",
		"hostnossl all all ::/0 reject",
	)
	rightCA := filepath.Join(c.Dir(), "ca.crt")
	wrongCA := filepath.Join(c.Dir(), "other-ca.crt")
	for path, body := range map[string][]byte{rightCA: ca.pem, wrongCA: otherCA.pem} {
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	open := func(host, mode, rootCert string) (*state.Postgres, error) {
		return state.Open(ctx, tlsConfig(c, "postgres", host, "postgres", mode, rootCert))
	}
	roundTrip := func(t *testing.T, s *state.Postgres) {
		t.Helper()
		key := []byte("tls-" + t.Name())
		if err := s.Put(ctx, key, []byte("secret")); err != nil {
			t.Fatalf("Put over TLS: %v", err)
		}
		if v, ok, err := s.Get(ctx, key); err != nil || !ok || string(v) != "secret" {
			t.Fatalf("Get over TLS = %q, %v, %v", v, ok, err)
		}
		var ssl bool
		var version string
		if err := s.Pool().QueryRow(ctx, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &version); err != nil || !ssl {
			t.Fatalf("pg_stat_ssl: ssl = %v, %v", ssl, err)
		}
		t.Logf("connected with %s", version)
	}

	tests := []struct {
		name     string
		host     string
		mode     string
		rootCert string
		refused  func(error) bool
	}{
		{"VerifyFullByIP", "127.0.0.1", "verify-full", rightCA, nil},
		{"VerifyFullByName", "localhost", "verify-full", rightCA, nil},
		{"VerifyCA", "127.0.0.1", "verify-ca", rightCA, nil},
		{"Require", "127.0.0.1", "require", "", nil},
		{"WrongCA", "127.0.0.1", "verify-full", wrongCA, isUnknownAuthority},
		{"WrongCAVerifyCA", "127.0.0.1", "verify-ca", wrongCA, isUnknownAuthority},
		{"DisableRefusedByServer", "127.0.0.1", "disable", "", isHBAReject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := open(tc.host, tc.mode, tc.rootCert)
			if tc.refused == nil {
				if err != nil {
					t.Fatalf("Open(%s, sslmode=%s): %v", tc.host, tc.mode, err)
				}
				defer s.Close()
				roundTrip(t, s)
				return
			}
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s, sslmode=%s) connected, want it refused", tc.host, tc.mode)
			}
			if !tc.refused(err) {
				t.Fatalf("Open(%s, sslmode=%s) = %v, not the expected refusal", tc.host, tc.mode, err)
			}
			t.Logf("refused as expected: %v", err)
		})
	}

	// A certificate for another host name: verify-full must refuse it while
	// verify-ca (same CA, no name check) still connects, which shows that
	// the refusal is the host name check and nothing else.
	otherCert, otherKey := ca.issue(t, []string{"db.example.internal"}, nil)
	if err := c.WriteFile("server.crt", otherCert); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFile("server.key", otherKey); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	// The postmaster reloads asynchronously: wait until it serves the new
	// certificate, which verify-full then refuses.
	waitFor(t, 30*time.Second, "the server to serve the reloaded certificate", func() bool {
		s, err := open("127.0.0.1", "verify-full", rightCA)
		if err == nil {
			s.Close()
		}
		return err != nil
	})
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run("WrongHostName/"+host, func(t *testing.T) {
			s, err := open(host, "verify-full", rightCA)
			if err == nil {
				s.Close()
				t.Fatalf("verify-full to %s accepted a certificate for db.example.internal", host)
			}
			var hostErr x509.HostnameError
			if !errors.As(err, &hostErr) {
				t.Fatalf("verify-full to %s = %v, want a host name error", host, err)
			}
			t.Logf("refused as expected: %v", err)
		})
	}
	t.Run("SameCertVerifyCA", func(t *testing.T) {
		s, err := open("127.0.0.1", "verify-ca", rightCA)
		if err != nil {
			t.Fatalf("verify-ca with the reissued certificate: %v", err)
		}
		defer s.Close()
		roundTrip(t, s)
	})
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

// isHBAReject reports the server's refusal of an unencrypted connection
// (SQLSTATE 28000, from the hostnossl reject line).
func isHBAReject(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "28000"
}
