package tests

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgstate/pgstate/state"
)

// issueClient signs a client certificate whose common name is the database
// role it authenticates, and writes it and its key into dir.
func (ca *testCA) issueClient(t *testing.T, dir, role string) (certPath, keyPath string) {
	t.Helper()
	certPEM, keyPEM := ca.sign(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: role},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	certPath, keyPath = filepath.Join(dir, role+".crt"), filepath.Join(dir, role+".key")
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// TestTLSClientCertificate runs a server that authenticates the store's role
// by client certificate only: Config.SSLCert and SSLKey log in, a missing or
// foreign certificate does not.
func TestTLSClientCertificate(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "pgstate test CA")
	otherCA := newCA(t, "some other CA")
	c := newTLSCluster(t, ca, true,
		"hostssl all certuser 127.0.0.1/32 cert",
		"host all all 0.0.0.0/0 reject",
	)
	ctx := context.Background()
	// The role is created over the local socket, which trusts the superuser.
	admin, err := pgx.Connect(ctx, c.SocketDSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, sql := range []string{`CREATE ROLE certuser LOGIN`, `CREATE DATABASE certdb OWNER certuser`} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	rootCA := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(rootCA, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	goodCert, goodKey := ca.issueClient(t, dir, "certuser")
	foreignCert, foreignKey := otherCA.issueClient(t, t.TempDir(), "certuser")
	open := func(cert, key string) (*state.Postgres, error) {
		cfg := tlsConfig(c, "certuser", "127.0.0.1", "certdb", "verify-full", rootCA)
		cfg.SSLCert, cfg.SSLKey = cert, key
		return state.Open(ctx, cfg)
	}
	t.Run("WithCertificate", func(t *testing.T) {
		s, err := open(goodCert, goodKey)
		if err != nil {
			t.Fatalf("Open with the client certificate: %v", err)
		}
		defer s.Close()
		if err := s.Put(ctx, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		var user string
		if err := s.Pool().QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != "certuser" {
			t.Fatalf("current_user = %q, %v", user, err)
		}
	})
	for _, tc := range []struct{ name, cert, key string }{
		{"WithoutCertificate", "", ""},
		{"ForeignCertificate", foreignCert, foreignKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := open(tc.cert, tc.key)
			if err == nil {
				s.Close()
				t.Fatal("the server accepted the connection")
			}
			// SQLSTATE 28000: the server's certificate authentication said no.
			if !isHBAReject(err) {
				t.Fatalf("Open = %v, want the server's refusal (28000)", err)
			}
			t.Logf("refused as expected: %v", err)
		})
	}
}
