package controlplane

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/apiserver"
	"wharf.dev/wharf/internal/wire"
)

func TestNodeTokenAuthentication(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Start(ctx, Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", UnsafeNoFsync: true,
		DisableControllers: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	resp, err := s.join(ctx, wire.JoinRequest{NodeName: "n1.example", Addresses: []string{"10.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(token string) *apiserver.User {
		r := httptest.NewRequest("GET", "/api/v1/nodes", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		u, _ := s.authenticateNodeToken(r)
		return u
	}
	tests := []struct {
		name  string
		token string
		want  *apiserver.User
	}{
		{"issued token", resp.Token, &apiserver.User{Name: "system:node:n1.example", Groups: []string{"system:nodes", "system:authenticated"}}},
		{"wrong secret", resp.Token[:len(resp.Token)-4] + "0000", nil},
		{"other node's name", strings.Replace(resp.Token, "n1.example", "n2.example", 1), nil},
		{"no such node", "wharfnode.zz.0123", nil},
		{"not a node token", "abc", nil},
		{"path in the name", "wharfnode.../x.0123", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, auth(tt.token)); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}

	// Rejoining replaces the token; the Secret is the one docs/agent.md names.
	again, err := s.join(ctx, wire.JoinRequest{NodeName: "n1.example"})
	if err != nil {
		t.Fatal(err)
	}
	if auth(resp.Token) != nil || auth(again.Token) == nil {
		t.Error("after rejoining, the old token must fail and the new one work")
	}
	sec, err := s.kube.CoreV1().Secrets("kube-system").Get(ctx, "node-token-n1.example", metav1.GetOptions{})
	if err != nil || sec.Type != wire.NodeTokenSecretType || string(sec.Data["token"]) != again.Token {
		t.Errorf("token Secret: %v, %+v", err, sec)
	}
}

func TestValidateJoin(t *testing.T) {
	tests := []struct {
		req wire.JoinRequest
		ok  bool
	}{
		{wire.JoinRequest{NodeName: "n1", Addresses: []string{"10.0.0.1", "n1.local", "::1"}}, true},
		{wire.JoinRequest{NodeName: "N_1"}, false},
		{wire.JoinRequest{NodeName: ""}, false},
		{wire.JoinRequest{NodeName: "n1", Addresses: []string{"not a host"}}, false},
		{wire.JoinRequest{NodeName: "n1", Addresses: make([]string, maxAddresses+1)}, false},
	}
	for _, tt := range tests {
		if err := validateJoin(tt.req); (err == nil) != tt.ok {
			t.Errorf("validateJoin(%+v) = %v, want ok=%v", tt.req, err, tt.ok)
		}
	}
}
