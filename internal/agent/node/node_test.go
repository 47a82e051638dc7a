package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	critesting "k8s.io/cri-api/pkg/apis/testing"
	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)

// harness is a Manager on a fake clientset, a fake runtime and a fake
// clock; the test calls sync and renewLease itself, so nothing is timed.
type harness struct {
	m       *Manager
	client  *fake.Clientset
	clock   *clocktesting.FakeClock
	rt      *critesting.FakeRuntimeService
	netErr  error
	netRuns []string
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{client: fake.NewClientset(objs...), clock: clocktesting.NewFakeClock(t0), rt: critesting.NewFakeRuntimeService()}
	// The fake clientset gives objects no UID; the lease's owner needs one.
	h.client.PrependReactor("create", "nodes", func(a clienttesting.Action) (bool, runtime.Object, error) {
		a.(clienttesting.CreateAction).GetObject().(*corev1.Node).UID = "uid-n1"
		return false, nil, nil
	})
	h.m = New(Config{
		NodeName: "n1", NodeIP: "10.0.0.5", Port: 10250, Version: "v1.33.0-wharf",
		System: SystemInfo{KernelVersion: "6.1.0", OSImage: "Debian GNU/Linux 12 (bookworm)", MachineID: "m", BootID: "b",
			CPUs: 4, MemoryBytes: 8 << 30, EphemeralStorageBytes: 100 << 30},
		Client: h.client, Runtime: h.rt, Clock: h.clock,
		Network: func(_ context.Context, cidr string) error { h.netRuns = append(h.netRuns, cidr); return h.netErr },
	})
	return h
}

func (h *harness) node(t *testing.T) *corev1.Node {
	t.Helper()
	n, err := h.client.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// writes counts the node writes (create, update, status update) so far.
func (h *harness) writes() int {
	n := 0
	for _, a := range h.client.Actions() {
		if a.GetResource().Resource == "nodes" && (a.GetVerb() == "create" || a.GetVerb() == "update") {
			n++
		}
	}
	return n
}

func ready(n *corev1.Node) corev1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c
		}
	}
	return corev1.NodeCondition{}
}

// assignCIDR does what the node IPAM controller does.
func (h *harness) assignCIDR(t *testing.T, cidr string) {
	t.Helper()
	n := h.node(t)
	n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
	if _, err := h.client.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.m.seenCIDR.Store(cidr) // as the watch would
}

func TestRegister(t *testing.T) {
	h := newHarness(t)
	if err := h.m.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := h.node(t)
	wantLabels := map[string]string{
		"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux", "kubernetes.io/arch": n.Labels["kubernetes.io/arch"],
		"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": n.Labels["kubernetes.io/arch"],
	}
	if diff := cmp.Diff(wantLabels, n.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	s := n.Status
	got := map[string]string{
		"cpu": s.Capacity.Cpu().String(), "memory": s.Capacity.Memory().String(), "pods": s.Capacity.Pods().String(),
		"storage": s.Capacity.StorageEphemeral().String(), "allocatable pods": s.Allocatable.Pods().String(),
		"runtime": s.NodeInfo.ContainerRuntimeVersion, "kubelet": s.NodeInfo.KubeletVersion, "os image": s.NodeInfo.OSImage,
		"kernel": s.NodeInfo.KernelVersion,
	}
	want := map[string]string{
		"cpu": "4", "memory": "8Gi", "pods": "110", "storage": "100Gi", "allocatable pods": "110",
		"runtime": "fakeRuntime://0.1.0", "kubelet": "v1.33.0-wharf", "os image": "Debian GNU/Linux 12 (bookworm)",
		"kernel": "6.1.0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	wantAddrs := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.5"}, {Type: corev1.NodeHostName, Address: "n1"}}
	if diff := cmp.Diff(wantAddrs, s.Addresses); diff != "" {
		t.Errorf("addresses (-want +got):\n%s", diff)
	}
	if s.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("agent port %d, want 10250", s.DaemonEndpoints.KubeletEndpoint.Port)
	}
	if len(s.Conditions) != 4 {
		t.Errorf("conditions %v, want MemoryPressure, DiskPressure, PIDPressure, Ready", s.Conditions)
	}
}

func TestReadyReasons(t *testing.T) {
	tests := []struct {
		name       string
		runtimeErr error
		podCIDR    string
		netErr     error
		want       corev1.ConditionStatus
		wantMsg    string
	}{
		{name: "runtime down", runtimeErr: errors.New("connection refused"), podCIDR: "10.244.1.0/24", want: corev1.ConditionFalse, wantMsg: "container runtime is down: connection refused"},
		{name: "no pod CIDR yet", want: corev1.ConditionFalse, wantMsg: "network not ready: waiting for the control plane to assign a pod CIDR"},
		{name: "CNI config failed", podCIDR: "10.244.1.0/24", netErr: errors.New("disk full"), want: corev1.ConditionFalse, wantMsg: "network not ready: disk full"},
		{name: "ready", podCIDR: "10.244.1.0/24", want: corev1.ConditionTrue, wantMsg: "wharf agent is posting ready status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if err := h.m.sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tt.podCIDR != "" {
				h.assignCIDR(t, tt.podCIDR)
			}
			h.netErr = tt.netErr
			if tt.runtimeErr != nil {
				h.rt.InjectError("Version", tt.runtimeErr)
			}
			if err := h.m.sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			c := ready(h.node(t))
			if c.Status != tt.want || c.Message != tt.wantMsg {
				t.Errorf("Ready = %s %q, want %s %q", c.Status, c.Message, tt.want, tt.wantMsg)
			}
			if tt.podCIDR != "" && !cmp.Equal(h.netRuns, []string{tt.podCIDR}) {
				t.Errorf("network configured for %v, want once for %s", h.netRuns, tt.podCIDR)
			}
		})
	}
}

func TestHeartbeatCadence(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	sync := func() {
		t.Helper()
		if err := h.m.sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sync() // registers
	base := h.writes()
	// Unchanged status: no write until the heartbeat is due.
	for range 9 {
		h.clock.Step(time.Second)
		sync()
	}
	if got := h.writes() - base; got != 0 {
		t.Fatalf("%d writes within the heartbeat interval, want 0", got)
	}
	h.clock.Step(time.Second)
	sync()
	if got := h.writes() - base; got != 1 {
		t.Fatalf("%d writes at the heartbeat, want 1", got)
	}
	hb := ready(h.node(t)).LastHeartbeatTime.Time
	if !hb.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("heartbeat time %v, want %v", hb, t0.Add(10*time.Second))
	}
	// A change is written at once, with a new transition time.
	h.clock.Step(time.Second)
	before := h.writes()
	h.assignCIDR(t, "10.244.3.0/24")
	sync()
	n := h.node(t)
	if got := h.writes() - before; got != 2 {
		t.Errorf("%d node writes after a change, want 2: the test's pod CIDR, then the status", got)
	}
	if c := ready(n); c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Time.Equal(t0.Add(11*time.Second)) {
		t.Errorf("Ready %s since %v, want True since %v", c.Status, c.LastTransitionTime, t0.Add(11*time.Second))
	}
	if n.Spec.PodCIDR != "10.244.3.0/24" {
		t.Errorf("the status write lost the pod CIDR: %q", n.Spec.PodCIDR)
	}
}

func TestRegisterAgain(t *testing.T) {
	existing := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "old", Labels: map[string]string{"team": "a"}},
		Spec:       corev1.NodeSpec{PodCIDR: "10.244.7.0/24", PodCIDRs: []string{"10.244.7.0/24"}},
	}
	h := newHarness(t, existing)
	if err := h.m.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := h.node(t)
	if n.Labels["team"] != "a" || n.Labels["kubernetes.io/hostname"] != "n1" {
		t.Errorf("labels %v: want the old ones and ours", n.Labels)
	}
	if c := ready(n); c.Status != corev1.ConditionTrue {
		t.Errorf("Ready %s (%s): the existing pod CIDR should make the network ready", c.Status, c.Message)
	}
	// Deleted by an operator: registered again.
	h.client.CoreV1().Nodes().Delete(context.Background(), "n1", metav1.DeleteOptions{})
	h.clock.Step(HeartbeatInterval)
	if err := h.m.sync(context.Background()); err == nil {
		t.Error("sync of a deleted node succeeded")
	}
	if err := h.m.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.node(t)
}

func TestLease(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if err := h.m.renewLease(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.m.sync(ctx); err != nil { // registers the node: the lease's owner
		t.Fatal(err)
	}
	for range 3 {
		h.clock.Step(RenewInterval)
		if err := h.m.renewLease(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Renewals update without reading first: one read, when there was no lease.
	gets := 0
	for _, a := range h.client.Actions() {
		if a.GetResource().Resource == "leases" && a.GetVerb() == "get" {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("%d lease reads, want 1", gets)
	}
	l, err := h.client.CoordinationV1().Leases(LeaseNamespace).Get(ctx, "n1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *l.Spec.HolderIdentity != "n1" || *l.Spec.LeaseDurationSeconds != 40 || !l.Spec.RenewTime.Time.Equal(t0.Add(3*time.Second)) {
		t.Errorf("lease spec %+v, want holder n1, 40 s, renewed at %v", l.Spec, t0.Add(3*time.Second))
	}
	if len(l.OwnerReferences) != 1 || l.OwnerReferences[0].Kind != "Node" || l.OwnerReferences[0].UID != h.node(t).UID {
		t.Errorf("lease owners %v, want the node", l.OwnerReferences)
	}
	// A failed renewal reads the lease again next time.
	h.client.PrependReactor("update", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("etcd is slow")
	})
	if err := h.m.renewLease(ctx); err == nil {
		t.Error("renewal succeeded against a failing server")
	}
	if h.m.lease.lease != nil {
		t.Error("the lease is kept after a failed renewal")
	}
}
