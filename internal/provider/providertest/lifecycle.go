package providertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"wharf.dev/wharf/internal/provider"
)

// lifecycle: create, create again, list, power off, power on, delete.
func (s *suite) lifecycle(t *testing.T, ctx context.Context) {
	p := s.newProvider(t)
	c := newCluster(t)
	spec := s.spec(c, c.Name+"-node-1")
	h := s.create(t, ctx, p, spec)
	var first Report
	if !s.opts.NoProcesses {
		first = s.report(t, ctx, h)
		s.checkReport(t, h, first, 1)
	}

	again, err := p.CreateHost(ctx, spec)
	if err != nil {
		t.Fatalf("CreateHost again: %v", err)
	}
	if diff := cmp.Diff(h, again); diff != "" {
		t.Errorf("CreateHost again returned another host (-first +again):\n%s", diff)
	}
	if !s.opts.NoProcesses {
		if rep := s.report(t, ctx, h); rep.PID != first.PID || rep.Starts != 1 {
			t.Errorf("CreateHost again started a process: pid %d (was %d), %d starts", rep.PID, first.PID, rep.Starts)
		}
	}
	s.expectHosts(t, ctx, p, c, h)

	if err := p.PowerOff(ctx, c, spec.Name); err != nil {
		t.Fatalf("PowerOff: %v", err)
	}
	off := h
	off.Running = false
	s.expectHosts(t, ctx, p, c, off)
	if !s.opts.NoProcesses {
		s.unreachable(t, ctx, h)
	}
	if s.opts.HostOff != nil {
		s.opts.HostOff(t, h)
	}
	if err := p.PowerOff(ctx, c, spec.Name); err != nil {
		t.Errorf("PowerOff of a host that is off: %v", err)
	}

	on, err := p.CreateHost(ctx, spec)
	if err != nil {
		t.Fatalf("CreateHost after PowerOff: %v", err)
	}
	if diff := cmp.Diff(h, on); diff != "" {
		t.Errorf("CreateHost after PowerOff (-before +after):\n%s", diff)
	}
	if !s.opts.NoProcesses {
		// Two starts on the same state dir: the state survived.
		rep := s.report(t, ctx, h)
		s.checkReport(t, h, rep, 2)
		if rep.PID == first.PID {
			t.Errorf("the process after PowerOff has the pid of the first one (%d)", rep.PID)
		}
	}

	if err := p.DeleteHost(ctx, c, spec.Name); err != nil {
		t.Fatalf("DeleteHost: %v", err)
	}
	s.expectHosts(t, ctx, p, c)
	// No reachability check here: the address has no host any more, and
	// a connection fails only when ARP gives up, seconds later.
	if s.opts.HostGone != nil {
		s.opts.HostGone(t, h)
	}
	if err := p.DeleteHost(ctx, c, spec.Name); err != nil {
		t.Errorf("DeleteHost of a deleted host: %v", err)
	}
}

// checkReport checks what the helper says about its arguments and files.
func (s *suite) checkReport(t *testing.T, h provider.Host, rep Report, starts int) {
	t.Helper()
	if rep.Name != h.Name || rep.Starts != starts {
		t.Errorf("host %s: helper says name %q, %d starts; want %q, %d", h.Name, rep.Name, rep.Starts, h.Name, starts)
	}
	if rep.StateDir != h.StateDir {
		t.Errorf("host %s: $(STATE_DIR) expanded to %q, want %q", h.Name, rep.StateDir, h.StateDir)
	}
	if want := "<" + h.Address + "|" + h.StateDir + ">"; !slices.Contains(rep.Args, want) {
		t.Errorf("host %s: args %q lack %q ($(HOST_IP) and $(STATE_DIR) inside an argument)", h.Name, rep.Args, want)
	}
	for _, f := range testFiles {
		sum := sha256.Sum256(fileContent(h.Cluster, h.Name, f))
		want := FileInfo{Mode: 0o600, SHA256: hex.EncodeToString(sum[:])}
		if got := rep.Files[f]; got != want {
			t.Errorf("host %s: file %s: got %+v, want mode 0600 and the spec's content", h.Name, f, got)
		}
	}
}

// expectHosts checks ListHosts of a cluster.
func (s *suite) expectHosts(t *testing.T, ctx context.Context, p provider.Provider, c provider.ClusterRef, want ...provider.Host) {
	t.Helper()
	got, err := p.ListHosts(ctx, c)
	if err != nil {
		t.Fatalf("ListHosts: %v", err)
	}
	slices.SortFunc(got, func(a, b provider.Host) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(want, func(a, b provider.Host) int { return strings.Compare(a.Name, b.Name) })
	if diff := cmp.Diff(want, got, cmpEmpty); diff != "" {
		t.Errorf("ListHosts of cluster %s (-want +got):\n%s", c.Name, diff)
	}
}

// cmpEmpty equates nil and empty lists.
var cmpEmpty = cmp.FilterValues(func(a, b []provider.Host) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

// missing: hosts that were never made.
func (s *suite) missing(t *testing.T, ctx context.Context) {
	p := s.newProvider(t)
	c := newCluster(t)
	s.expectHosts(t, ctx, p, c)
	if err := p.DeleteHost(ctx, c, c.Name+"-node-1"); err != nil {
		t.Errorf("DeleteHost of a missing host: %v, want nil", err)
	}
	if err := p.PowerOff(ctx, c, c.Name+"-node-1"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("PowerOff of a missing host: %v, want ErrNotFound", err)
	}
	if p.ServiceAddress() == "" {
		t.Errorf("ServiceAddress is empty")
	}
}
