package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/testserver"
	"wharf.dev/wharf/internal/wire"
)

// tokenWorks reports whether the server accepts a node token.
func tokenWorks(t *testing.T, srv *testserver.Server, c *Credentials) bool {
	t.Helper()
	client, err := kubernetes.NewForConfig(c.RESTConfig(srv.URL, "join-test"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	var he interface{ Status() metav1.Status }
	if errors.As(err, &he) && he.Status().Code == 401 {
		return false
	}
	if err != nil {
		t.Fatalf("list nodes with node token: %v", err)
	}
	return true
}

func TestJoinRefusals(t *testing.T) {
	srv := testserver.Start(t)
	jt, err := wire.ParseJoinToken(srv.JoinToken)
	if err != nil {
		t.Fatal(err)
	}
	otherHash := strings.Repeat("ab", 32)
	tests := []struct {
		name     string
		token    string
		caFile   string
		wantCode int   // an HTTPError with this code
		wantErr  error // or this error
	}{
		{name: "wrong CA hash", token: wire.JoinToken{CAHash: otherHash, Secret: jt.Secret}.String(), wantErr: ErrCAMismatch},
		{name: "CA file not the token's", token: wire.JoinToken{CAHash: otherHash, Secret: jt.Secret}.String(), caFile: filepath.Join(srv.DataDir, "pki", "ca.crt"), wantErr: ErrCAMismatch},
		{name: "wrong secret", token: wire.JoinToken{CAHash: jt.CAHash, Secret: "0123456789abcdef"}.String(), wantCode: 401},
		{name: "not the join secret", token: wire.JoinToken{CAHash: jt.CAHash, Secret: srv.Loopback.BearerToken}.String(), wantCode: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			var opts []JoinOption
			if tt.caFile != "" {
				opts = append(opts, WithCAFile(tt.caFile))
			}
			_, err := Join(context.Background(), srv.URL, tt.token, state, "n1", []string{"127.0.0.1"}, opts...)
			var he *HTTPError
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Join: %v, want %v", err, tt.wantErr)
			case tt.wantCode != 0 && (!errors.As(err, &he) || he.Code != tt.wantCode):
				t.Fatalf("Join: %v, want HTTP %d", err, tt.wantCode)
			}
			if _, err := os.Stat(filepath.Join(state, "agent", tokenFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused join left a token file (stat: %v)", err)
			}
		})
	}
	if _, err := Join(context.Background(), srv.URL, jt.Secret, t.TempDir(), "n1", nil); err == nil {
		t.Error("a bare secret without a CA file joined")
	}
}

func TestJoin(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	state := t.TempDir()
	addrs := []string{"127.0.0.1", "n1.example"}

	first, err := Join(ctx, srv.URL, srv.JoinToken, state, "n1", addrs)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	for _, f := range []string{caFile, tokenFile, servingCertFile, servingKeyFile} {
		st, err := os.Stat(filepath.Join(state, "agent", f))
		if err != nil {
			t.Fatalf("credential file %s: %v", f, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	leaf := first.ServingCert.Leaf
	if leaf.Subject.CommonName != "system:node:n1" || !covers(leaf, addrs) {
		t.Errorf("serving certificate CN %q, IPs %v, names %v: want system:node:n1 covering %v", leaf.Subject.CommonName, leaf.IPAddresses, leaf.DNSNames, addrs)
	}
	if !tokenWorks(t, srv, first) {
		t.Fatal("the node token is refused")
	}

	// A restart reuses the stored credentials.
	again, err := Join(ctx, srv.URL, srv.JoinToken, state, "n1", addrs)
	if err != nil || again.Token != first.Token {
		t.Fatalf("rejoin with stored credentials: token changed (%v)", err)
	}

	// Joining the same node elsewhere replaces its token.
	other, err := Join(ctx, srv.URL, srv.JoinToken, t.TempDir(), "n1", addrs)
	if err != nil || other.Token == first.Token {
		t.Fatalf("second join of n1: %v, same token %v", err, other != nil && other.Token == first.Token)
	}
	if tokenWorks(t, srv, first) {
		t.Error("the replaced token still works")
	}
	if !tokenWorks(t, srv, other) {
		t.Error("the new token is refused")
	}

	// The first state dir's token stopped working: Join gets a new one.
	renewed, err := Join(ctx, srv.URL, srv.JoinToken, state, "n1", addrs)
	if err != nil || renewed.Token == first.Token || !tokenWorks(t, srv, renewed) {
		t.Fatalf("join after the token was replaced: %v", err)
	}

	// Another node name or a new address also means joining again.
	moved, err := Join(ctx, srv.URL, srv.JoinToken, state, "n1", append(addrs, "10.1.2.3"))
	if err != nil || moved.Token == renewed.Token || !covers(moved.ServingCert.Leaf, []string{"10.1.2.3"}) {
		t.Fatalf("join with a new address: %v", err)
	}
}

func TestJoinWithCAFile(t *testing.T) {
	srv := testserver.Start(t)
	jt, _ := wire.ParseJoinToken(srv.JoinToken)
	c, err := Join(context.Background(), srv.URL, jt.Secret, t.TempDir(), "n2", []string{"127.0.0.1"},
		WithCAFile(filepath.Join(srv.DataDir, "pki", "ca.crt")))
	if err != nil {
		t.Fatalf("join with a CA file and a bare secret: %v", err)
	}
	if !tokenWorks(t, srv, c) {
		t.Error("the node token is refused")
	}
}
