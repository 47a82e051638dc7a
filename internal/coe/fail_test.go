package coe

import (
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider/fake"
	"wharf.dev/wharf/internal/testserver"
	"wharf.dev/wharf/internal/wire"
)

// A create that fails half-way says why and where, and delete still
// removes everything it made.
func TestCreateFailures(t *testing.T) {
	tests := []struct {
		name    string
		inject  func(e *testEnv)
		timeout time.Duration
		// reason has these words; faults has this key with these words.
		reason     []string
		fault, why string
	}{{
		name:   "f1",
		inject: func(e *testEnv) { e.prov.FailCreate("f1-master-0", fake.ErrInjected) },
		reason: []string{"master hosts", "injected failure"},
		fault:  "f1-master-0", why: "injected failure",
	}, {
		name:   "f2",
		inject: func(e *testEnv) { e.prov.FailCreate("f2-node-1", fake.ErrInjected) },
		reason: []string{"worker hosts", `"f2-node-1"`, "injected failure"},
		fault:  "f2-node-1", why: "injected failure",
	}, {
		name:    "f3",
		inject:  func(e *testEnv) { e.rt.broken["f3-master-0"] = true },
		timeout: 2 * time.Second,
		reason:  []string{"control plane ready", "timed out after 2s", "not ready"},
		fault:   stepControlPlane, why: "not ready",
	}, {
		name:    "f4",
		inject:  func(e *testEnv) { e.rt.broken["f4-node-0"] = true },
		timeout: 6 * time.Second,
		reason:  []string{"nodes ready", "timed out after 6s", "f4-node-0 NotReady: not registered"},
		fault:   "f4-node-0", why: "NotReady: not registered",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tt.inject(e)
			e.start()
			e.createCluster(tt.name, 2, func(cl *wharfv1.Cluster) {
				if tt.timeout > 0 {
					cl.Spec.CreateTimeout = &metav1.Duration{Duration: tt.timeout}
				}
			})
			cl := e.waitStatus(tt.name, wharfv1.StatusCreateFailed)
			for _, w := range tt.reason {
				if !strings.Contains(cl.Status.StatusReason, w) {
					t.Errorf("statusReason %q lacks %q", cl.Status.StatusReason, w)
				}
			}
			if f := cl.Status.Faults[tt.fault]; !strings.Contains(f, tt.why) {
				t.Errorf("faults %v: want %q with %q", cl.Status.Faults, tt.fault, tt.why)
			}
			if len(e.prov.All()) == 0 {
				t.Errorf("no hosts left behind to clean up: the case tests nothing")
			}
			e.deleteCluster(tt.name)
		})
	}
}

// deleteCluster deletes a cluster and checks that nothing of it is left.
func (e *testEnv) deleteCluster(name string) {
	e.t.Helper()
	cl := e.cluster(name)
	if err := e.wc.Clusters(ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatalf("delete cluster %s: %v", name, err)
	}
	testserver.WaitFor(e.t, "cluster "+name+" gone", waitLong, func() (bool, error) {
		_, err := e.wc.Clusters(ns).Get(e.ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	if left := e.prov.All(); len(left) > 0 {
		e.t.Errorf("hosts left: %+v", left)
	}
	secrets := e.svc.Client.CoreV1().Secrets
	if _, err := secrets(ns).Get(e.ctx, credentialsName(name), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		e.t.Errorf("credentials secret: %v, want NotFound", err)
	}
	if _, err := secrets(wire.NodeTokenNamespace).Get(e.ctx, pullTokenName(cl.UID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		e.t.Errorf("pull token secret: %v, want NotFound", err)
	}
	groups, err := e.wc.NodeGroups(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, g := range groups.Items {
		if g.Spec.Cluster == name {
			e.t.Errorf("node group %s left", g.Name)
		}
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	e.createCluster("d1", 1)
	e.waitStatus("d1", wharfv1.StatusCreateComplete)
	// A user group: its hosts go with the cluster too.
	e.createGroup("d1-extra", "d1", 1, nil, nil)
	testserver.WaitFor(t, "extra group complete", waitLong, func() (bool, error) {
		return e.group("d1-extra").Status.Status == wharfv1.StatusCreateComplete, nil
	})
	if n := len(e.prov.All()); n != 3 {
		t.Fatalf("%d hosts, want 3", n)
	}
	e.deleteCluster("d1")
}

// TestCreateFailsFast: a host whose process dies (the provider says why)
// or a control plane that answers with another CA fails the create with
// that reason long before its timeout.
func TestCreateFailsFast(t *testing.T) {
	tests := []struct {
		name   string
		inject func(e *testEnv)
		step   string
		fault  string
		why    string
	}{{
		name:   "ff1",
		inject: func(e *testEnv) { e.prov.CrashOnStart("ff1-master-0", "killed by the OOM killer (memory limit 8Mi)") },
		step:   "control plane ready", fault: "ff1-master-0", why: "OOM killer",
	}, {
		name:   "ff2",
		inject: func(e *testEnv) { e.prov.CrashOnStart("ff2-node-1", "exited: bind: address already in use") },
		step:   "nodes ready", fault: "ff2-node-1", why: "address already in use",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tt.inject(e)
			e.start()
			// The timeout is far off: only a fast failure passes.
			e.createCluster(tt.name, 2, func(cl *wharfv1.Cluster) {
				cl.Spec.CreateTimeout = &metav1.Duration{Duration: 10 * time.Minute}
			})
			cl := e.waitStatus(tt.name, wharfv1.StatusCreateFailed)
			if !strings.Contains(cl.Status.StatusReason, tt.step) || !strings.Contains(cl.Status.StatusReason, tt.why) {
				t.Errorf("statusReason %q, want the step %q and %q", cl.Status.StatusReason, tt.step, tt.why)
			}
			if f := cl.Status.Faults[tt.fault]; !strings.Contains(f, tt.why) {
				t.Errorf("faults %v: want %q with %q", cl.Status.Faults, tt.fault, tt.why)
			}
			if strings.Contains(cl.Status.StatusReason, "timed out") {
				t.Errorf("statusReason %q: a fault, not a timeout", cl.Status.StatusReason)
			}
		})
	}
}
