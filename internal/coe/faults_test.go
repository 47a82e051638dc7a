package coe

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/pki"
)

// TestPermanentAPIError: a server whose certificate another CA signed is
// recognised at once; a server that is down is not (it may come up).
func TestPermanentAPIError(t *testing.T) {
	// Two clusters' CAs; the server answering has the other's certificate.
	ours, err := pki.EnsureCA(t.TempDir(), "ours")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := pki.EnsureCA(t.TempDir(), "theirs")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := theirs.EnsureServing(t.TempDir(), "serving", []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	other.StartTLS()
	defer other.Close()
	caPEM := ours.CertPEM
	for _, tc := range []struct {
		name      string
		host      string
		permanent bool
	}{
		{"another CA", other.URL, true},
		{"nothing listening", "https://127.0.0.1:1", false},
	} {
		kube := kubernetes.NewForConfigOrDie(&rest.Config{Host: tc.host, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := readyz(ctx, kube, time.Second)
		cancel()
		if err == nil {
			t.Fatalf("%s: readyz succeeded", tc.name)
		}
		if got := permanentAPIError(err); got != tc.permanent {
			t.Errorf("%s: permanentAPIError(%v) = %v, want %v", tc.name, err, got, tc.permanent)
		}
	}
	if faultsOf(errors.New("plain")) != nil {
		t.Error("faultsOf of a plain error")
	}
}
