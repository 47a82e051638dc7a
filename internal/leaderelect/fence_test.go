package leaderelect

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"
)

var quiet = slog.New(slog.DiscardHandler)

func TestFence(t *testing.T) {
	const validity = 1500 * time.Millisecond
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		renew  *time.Duration // renewal sent at t0 + this
		revoke bool
	}
	at := func(d time.Duration) step { return step{renew: &d} }
	tests := []struct {
		name    string
		steps   []step
		now     time.Duration // since t0
		method  string
		allowed bool
	}{
		{"never held: write refused", nil, 0, http.MethodPost, false},
		{"never held: read allowed", nil, 0, http.MethodGet, true},
		{"never held: watch (GET) allowed", nil, time.Hour, http.MethodGet, true},
		{"just renewed: write allowed", []step{at(0)}, 0, http.MethodPut, true},
		{"renewed just under validity ago", []step{at(0)}, validity - time.Nanosecond, http.MethodPatch, true},
		{"renewed exactly validity ago", []step{at(0)}, validity, http.MethodPatch, false},
		{"frozen past the lease", []step{at(0)}, 10 * time.Second, http.MethodDelete, false},
		{"revoked after renewal", []step{at(0), {revoke: true}}, time.Millisecond, http.MethodPost, false},
		{"renewed again after revoke", []step{at(0), {revoke: true}, at(time.Second)}, 2 * time.Second, http.MethodPost, true},
		{"late answer of an older renewal does not move it back", []step{at(time.Second), at(0)}, validity + 500*time.Millisecond, http.MethodPost, true},
		{"later renewal extends", []step{at(0), at(time.Second)}, validity + 500*time.Millisecond, http.MethodPost, true},
		{"HEAD allowed when not held", nil, 0, http.MethodHead, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktesting.NewFakePassiveClock(t0)
			refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "refused"})
			f := NewFence(quiet, clk, validity, refused)
			for _, s := range tt.steps {
				if s.revoke {
					f.Revoke()
				} else {
					f.Renewed(t0.Add(*s.renew))
				}
			}
			clk.SetTime(t0.Add(tt.now))
			err := f.Allow(tt.method)
			if got := err == nil; got != tt.allowed {
				t.Fatalf("Allow(%s) = %v, want allowed=%v", tt.method, err, tt.allowed)
			}
			if err != nil && !errors.Is(err, ErrFenced) {
				t.Fatalf("refusal %v is not ErrFenced", err)
			}
			wantCount := 0.0
			if !tt.allowed {
				wantCount = 1
			}
			if got := testutil.ToFloat64(refused); got != wantCount {
				t.Fatalf("refused counter = %v, want %v", got, wantCount)
			}
		})
	}
}

// TestFenceTransport: a refused write never reaches the server, reads do,
// and writes pass again once the lease is renewed.
func TestFenceTransport(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	clk := clocktesting.NewFakePassiveClock(time.Now())
	f := NewFence(quiet, clk, time.Second, nil)
	c := &http.Client{Transport: f.Wrap(http.DefaultTransport)}

	do := func(method string) error {
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/namespaces/default/pods", strings.NewReader("{}"))
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := do(http.MethodPost); !errors.Is(err, ErrFenced) {
		t.Fatalf("POST without the lease: %v, want ErrFenced", err)
	}
	if err := do(http.MethodGet); err != nil {
		t.Fatal(err)
	}
	f.Renewed(clk.Now())
	if err := do(http.MethodPost); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if err := do(http.MethodDelete); !errors.Is(err, ErrFenced) {
		t.Fatalf("DELETE after the lease ran out: %v, want ErrFenced", err)
	}
	if want := []string{"GET", "POST"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("server saw %v, want %v", got, want)
	}
}
